// The metadata store, on SQLite and, when MXCD_TEST_POSTGRES holds a libpq conninfo in
// keyword=value form (scripts/test.sh starts a PostgreSQL for it), on PostgreSQL: every case
// runs against both backends. First the blob deletion protocol: leases, claims, and what a
// deletion must never take (a blob that a record, a thumbnail or a live upload still needs).
// Then blobs adopted in place (locations, unhashed ids, replace_blob), and opening a
// database without changing it.
#include "meta/open_metadata_store.hpp"
#include "meta/postgres/pg_connection.hpp"
#include "meta/postgres/postgres_backend.hpp"
#include "meta/sqlite/sqlite_backend.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>

namespace mxcd {
namespace {

constexpr std::int64_t kNow = 1'700'000'000'000;
constexpr std::int64_t kLater = kNow + 60'000;
constexpr std::int64_t kNoReclaim = 0;  // no claim is old enough to be taken over

const BlobId kBlob{std::string(64, 'a'), 5};
const BlobId kOtherBlob{std::string(64, 'b'), 7};
const BlobId kThumbnailBlob{std::string(64, 'c'), 3};

std::string test_name() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(info->test_suite_name()) + "." + info->name();
}

// The database of one test: an SQLite file in a folder of its own, or a PostgreSQL schema of
// its own (so that tests may run in parallel on one server), emptied first.
class MetadataStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mxcd-meta-test-" + std::to_string(getpid()) + "-" +
            std::to_string(std::hash<std::string>()(test_name())));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    if (GetParam() == "sqlite") {
      database_.sqlite_path = dir_ / "mxcd.db";
    } else {
      const char* conninfo = std::getenv("MXCD_TEST_POSTGRES");
      if (!conninfo) GTEST_SKIP() << "MXCD_TEST_POSTGRES names no PostgreSQL database";
      schema_ = "mxcd_test_" + std::to_string(std::hash<std::string>()(test_name()));
      admin_ = std::make_unique<PgConnection>(conninfo, PgTimeouts{});
      admin_->exec("SET client_min_messages = warning");  // no NOTICE of each DROP
      admin_->exec(
          ("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE; CREATE SCHEMA " + schema_).c_str());
      Config::Database::Postgres postgres;
      postgres.conninfo = std::string(conninfo) + " options='-csearch_path=" + schema_ + "'";
      database_.postgres = postgres;
    }
    store_ = open_metadata_store(database_);
  }
  void TearDown() override {
    store_.reset();
    if (admin_) admin_->exec(("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE").c_str());
    std::filesystem::remove_all(dir_);
  }

  static MediaRecord record(const std::string& media_id, const BlobId& blob) {
    MediaRecord r;
    r.key = {"example.org", media_id};
    r.blob = blob;
    r.store = "local";
    r.content_type = "text/plain";
    r.uploader = "@alice:example.org";
    r.created_ts = kNow;
    return r;
  }

  // A reserved media ID waiting for its bytes.
  static MediaRecord reservation(const std::string& media_id) {
    MediaRecord r = record(media_id, kBlob);
    r.blob.reset();
    r.pending_expires_ts = kLater;
    return r;
  }

  // An upload's lease, taken before it stores the blob's bytes in the local store.
  std::int64_t lease(const BlobId& blob, std::int64_t expires_ts = kLater) {
    auto leased =
        store_->lease_blob(blob.name, expires_ts, MetadataStore::BlobToStore{blob, "local", kNow});
    EXPECT_TRUE(leased.ok());
    EXPECT_TRUE(leased.ok() && leased->has_value()) << "the blob is being deleted";
    return leased.ok() && leased->has_value() ? **leased : -1;
  }

  void insert(const std::string& media_id, const BlobId& blob) {
    Status inserted = store_->insert_media(record(media_id, blob), lease(blob));
    ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  }

  void remove(const std::string& media_id) {
    auto removed = store_->delete_media({"example.org", media_id}, kNow);
    ASSERT_TRUE(removed.ok());
    ASSERT_TRUE(*removed);
  }

  std::vector<std::string> claim(std::int64_t now = kNow,
                                 std::int64_t reclaim_before = kNoReclaim) {
    auto claimed = store_->claim_unreferenced_blobs(now, reclaim_before, 100);
    EXPECT_TRUE(claimed.ok());
    std::vector<std::string> shas;
    if (claimed.ok()) {
      for (const auto& d : *claimed) {
        EXPECT_EQ(d.store, "local");
        shas.push_back(d.blob.name);
      }
    }
    std::sort(shas.begin(), shas.end());
    return shas;
  }

  using Shas = std::vector<std::string>;

  std::filesystem::path dir_;
  Config::Database database_;
  std::string schema_;                   // PostgreSQL's
  std::unique_ptr<PgConnection> admin_;  // PostgreSQL's, outside the schema
  std::unique_ptr<MetadataStore> store_;
};

TEST_P(MetadataStoreTest, ReferencedBlobsAreNeverClaimed) {
  insert("one", kBlob);
  EXPECT_EQ(claim(), Shas{});
}

TEST_P(MetadataStoreTest, BlobIsClaimedOnceItsLastRecordIsDeleted) {
  insert("one", kBlob);
  insert("two", kBlob);
  insert("three", kOtherBlob);
  remove("one");
  EXPECT_EQ(claim(), Shas{}) << "\"two\" still refers to the blob";
  remove("two");
  auto claimed = store_->claim_unreferenced_blobs(kNow, kNoReclaim, 100);
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].blob.name, kBlob.name);
  EXPECT_EQ((*claimed)[0].blob.size, kBlob.size);
  EXPECT_EQ((*claimed)[0].store, "local");
  EXPECT_EQ(claim(), Shas{}) << "a claimed blob is not claimed twice";
  ASSERT_TRUE(store_->finish_blob_deletion(kBlob.name).ok());
  EXPECT_EQ(claim(), Shas{});
  auto three = store_->find_media({"example.org", "three"});
  ASSERT_TRUE(three.ok());
  EXPECT_TRUE(three->has_value());
}

TEST_P(MetadataStoreTest, DeleteReportsUnknownMedia) {
  auto removed = store_->delete_media({"example.org", "missing"}, kNow);
  ASSERT_TRUE(removed.ok());
  EXPECT_FALSE(*removed);
}

TEST_P(MetadataStoreTest, DeletingAPendingRecordFreesItsReservation) {
  MediaRecord pending = reservation("pending");
  auto reserved = store_->reserve_pending(pending, 1, kNow);
  ASSERT_TRUE(reserved.ok());
  ASSERT_TRUE(reserved->reserved);
  remove("pending");
  auto found = store_->find_media(pending.key);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
  pending.key.media_id = "pending2";
  reserved = store_->reserve_pending(pending, 1, kNow);
  ASSERT_TRUE(reserved.ok());
  EXPECT_TRUE(reserved->reserved) << "the deleted reservation no longer counts";
  EXPECT_EQ(claim(), Shas{});
}

TEST_P(MetadataStoreTest, LiveLeaseKeepsAnUnreferencedBlob) {
  insert("one", kBlob);
  std::int64_t held = lease(kBlob);  // an upload of the same bytes is under way
  remove("one");
  EXPECT_EQ(claim(), Shas{});
  // The upload lands: the blob is referenced again and stays.
  ASSERT_TRUE(store_->insert_media(record("two", kBlob), held).ok());
  EXPECT_EQ(claim(kLater + 1), Shas{});
}

TEST_P(MetadataStoreTest, ReleasedOrExpiredLeasesNoLongerProtect) {
  insert("one", kBlob);
  insert("two", kOtherBlob);
  std::int64_t released = lease(kBlob);
  lease(kOtherBlob, kNow + 10);
  remove("one");
  remove("two");
  ASSERT_TRUE(store_->release_lease(released).ok());
  EXPECT_EQ(claim(kNow), Shas{kBlob.name});
  EXPECT_EQ(claim(kNow + 10), Shas{kOtherBlob.name}) << "the lease expired";
}

TEST_P(MetadataStoreTest, BytesStoredButNeverRecordedAreClaimedOnceTheLeaseExpires) {
  lease(kBlob, kNow + 10);  // an upload stored the bytes and died before its record
  EXPECT_EQ(claim(kNow), Shas{}) << "the lease still holds them";
  EXPECT_EQ(claim(kNow + 10), Shas{kBlob.name});
}

TEST_P(MetadataStoreTest, AFailedUploadLeavesItsBytesToTheCollector) {
  std::int64_t held = lease(kBlob);
  ASSERT_TRUE(store_->release_lease(held).ok());
  EXPECT_EQ(claim(), Shas{kBlob.name});
}

TEST_P(MetadataStoreTest, LeasingStoredBytesKeepsTheBlobRowThereIs) {
  insert("one", kBlob);
  std::int64_t held = lease(kBlob);  // the same bytes again: the row stays referenced
  ASSERT_TRUE(store_->release_lease(held).ok());
  EXPECT_EQ(claim(kLater + 1), Shas{});
  auto one = store_->find_media({"example.org", "one"});
  ASSERT_TRUE(one.ok() && one->has_value());
  EXPECT_EQ((*one)->store, "local");
}

TEST_P(MetadataStoreTest, ALeaseOnAnAdoptedBlobAddsNoRow) {
  // mxcd did not write an adopted object: however its import ends, it is not mxcd's to delete.
  auto leased = store_->lease_blob(kBlob.name, kNow + 10, std::nullopt);
  ASSERT_TRUE(leased.ok() && leased->has_value());
  EXPECT_EQ(claim(kNow + 10), Shas{});
}

TEST_P(MetadataStoreTest, NoLeaseWhileDeletingAndANewBlobAfterwards) {
  insert("one", kBlob);
  remove("one");
  ASSERT_EQ(claim(), Shas{kBlob.name});
  auto refused =
      store_->lease_blob(kBlob.name, kLater, MetadataStore::BlobToStore{kBlob, "local", kNow});
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->has_value()) << "an upload must wait while the bytes are removed";
  ASSERT_TRUE(store_->finish_blob_deletion(kBlob.name).ok());
  // The upload stores the bytes again and records them as a fresh blob.
  insert("two", kBlob);
  EXPECT_EQ(claim(), Shas{});
  auto two = store_->find_media({"example.org", "two"});
  ASSERT_TRUE(two.ok() && two->has_value());
  EXPECT_EQ((**two).blob->name, kBlob.name);
}

TEST_P(MetadataStoreTest, AbandonedDeletionIsRetriedAndUploadsMayLeaseMeanwhile) {
  insert("one", kBlob);
  remove("one");
  ASSERT_EQ(claim(), Shas{kBlob.name});
  ASSERT_TRUE(store_->abandon_blob_deletion(kBlob.name).ok());
  EXPECT_EQ(claim(), Shas{kBlob.name}) << "the next round tries again";
  ASSERT_TRUE(store_->abandon_blob_deletion(kBlob.name).ok());
  std::int64_t held = lease(kBlob);
  EXPECT_EQ(claim(), Shas{});
  ASSERT_TRUE(store_->insert_media(record("two", kBlob), held).ok());
  EXPECT_EQ(claim(kLater + 1), Shas{});
}

TEST_P(MetadataStoreTest, DeletionLeftByACrashedProcessIsReclaimed) {
  insert("one", kBlob);
  remove("one");
  ASSERT_EQ(claim(kNow), Shas{kBlob.name});
  EXPECT_EQ(claim(kLater, kNow), Shas{}) << "a claim that is not older than the limit stays";
  EXPECT_EQ(claim(kLater, kNow + 1), Shas{kBlob.name});
}

TEST_P(MetadataStoreTest, InsertWithAGoneLeaseIsRefusedAndRecordsNothing) {
  std::int64_t held = lease(kBlob);
  ASSERT_TRUE(store_->release_lease(held).ok());
  Status inserted = store_->insert_media(record("one", kBlob), held);
  ASSERT_FALSE(inserted.ok());
  EXPECT_EQ(inserted.error().status, 503u);
  auto found = store_->find_media({"example.org", "one"});
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
  // What the refused upload stored is the collector's: no record refers to it.
  EXPECT_EQ(claim(), Shas{kBlob.name});
}

TEST_P(MetadataStoreTest, FillConsumesTheLease) {
  MediaRecord pending = reservation("pending");
  ASSERT_TRUE(store_->reserve_pending(pending, 5, kNow).ok());
  std::int64_t held = lease(kBlob);
  auto filled = store_->fill_pending(record("pending", kBlob), held, kNow);
  ASSERT_TRUE(filled.ok());
  EXPECT_EQ(*filled, MetadataStore::FillOutcome::filled);
  EXPECT_FALSE(store_->insert_media(record("other", kBlob), held).ok()) << "a lease is used once";
  remove("pending");
  EXPECT_EQ(claim(), Shas{kBlob.name});
}

TEST_P(MetadataStoreTest, FillWithAGoneLeaseIsRefusedAndStaysPending) {
  MediaRecord pending = reservation("pending");
  ASSERT_TRUE(store_->reserve_pending(pending, 5, kNow).ok());
  auto filled = store_->fill_pending(record("pending", kBlob), 12345, kNow);
  ASSERT_FALSE(filled.ok());
  EXPECT_EQ(filled.error().status, 503u);
  auto found = store_->find_media(pending.key);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_TRUE((**found).pending());
}

ThumbnailRecord thumbnail(const std::string& media_id, const BlobId& blob) {
  return {{{"example.org", media_id}, 32, 32, true, false}, blob, "local", "image/png", kNow};
}

TEST_P(MetadataStoreTest, ThumbnailIsFoundByItsBoxAndKeepsItsBlob) {
  insert("image", kBlob);
  auto stored = store_->insert_thumbnail(thumbnail("image", kThumbnailBlob), lease(kThumbnailBlob));
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((**stored).blob.name, kThumbnailBlob.name);
  EXPECT_EQ((**stored).blob.size, kThumbnailBlob.size);
  ThumbnailKey other_box = thumbnail("image", kThumbnailBlob).key;
  other_box.crop = false;
  auto missing = store_->find_thumbnail(other_box);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  EXPECT_EQ(claim(), Shas{}) << "the thumbnail refers to its blob";
}

TEST_P(MetadataStoreTest, DeletingMediaFreesItsThumbnailsBlobs) {
  insert("image", kBlob);
  ASSERT_TRUE(
      store_->insert_thumbnail(thumbnail("image", kThumbnailBlob), lease(kThumbnailBlob)).ok());
  remove("image");
  auto found = store_->find_thumbnail(thumbnail("image", kThumbnailBlob).key);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
  EXPECT_EQ(claim(), (Shas{kBlob.name, kThumbnailBlob.name}));
}

TEST_P(MetadataStoreTest, ThumbnailBlobSharedWithMediaStaysWhileEitherRefersToIt) {
  insert("image", kBlob);
  insert("small", kThumbnailBlob);  // an upload with the same bytes as the thumbnail
  ASSERT_TRUE(
      store_->insert_thumbnail(thumbnail("image", kThumbnailBlob), lease(kThumbnailBlob)).ok());
  remove("small");
  EXPECT_EQ(claim(), Shas{}) << "the thumbnail still refers to the blob";
  remove("image");
  EXPECT_EQ(claim(), (Shas{kBlob.name, kThumbnailBlob.name}));
}

TEST_P(MetadataStoreTest, ThumbnailOfDeletedMediaIsNotRecordedAndItsBlobIsFreed) {
  insert("image", kBlob);
  remove("image");
  auto stored = store_->insert_thumbnail(thumbnail("image", kThumbnailBlob), lease(kThumbnailBlob));
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(stored->has_value());
  EXPECT_EQ(claim(), (Shas{kBlob.name, kThumbnailBlob.name}));
}

TEST_P(MetadataStoreTest, SecondThumbnailForTheSameBoxKeepsTheFirst) {
  insert("image", kBlob);
  ASSERT_TRUE(
      store_->insert_thumbnail(thumbnail("image", kThumbnailBlob), lease(kThumbnailBlob)).ok());
  auto second = store_->insert_thumbnail(thumbnail("image", kOtherBlob), lease(kOtherBlob));
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((**second).blob.name, kThumbnailBlob.name);
  EXPECT_EQ(claim(), Shas{kOtherBlob.name}) << "the second thumbnail's blob is unused";
}

// --- Blobs adopted in place: locations, unhashed ids, replace_blob ---

constexpr const char* kSynapseKey = "synapse/local_content/ab/cd/efghijklmnopqrstuvwx";

TEST(UnhashedBlobId, IsStableAndNeverAContentHash) {
  const std::string id = unhashed_blob_id("bucket", kSynapseKey);
  // "unhashed-" and the SHA-256 of "bucket\n<location>".
  EXPECT_EQ(id, "unhashed-887f74a72b3e7d89e2e70ff5552b8902d099b0d7fd99f901794c359afd3218e7");
  EXPECT_EQ(id, unhashed_blob_id("bucket", kSynapseKey));
  EXPECT_NE(id, unhashed_blob_id("other", kSynapseKey));
  EXPECT_NE(id, unhashed_blob_id("bucket", std::string(kSynapseKey) + "x"));
  EXPECT_TRUE(is_unhashed(id));
  EXPECT_TRUE(is_unhashed(BlobId{id, 1, kSynapseKey}));
  EXPECT_FALSE(is_sha256_hex(id));
  EXPECT_TRUE(is_blob_name(id));
  EXPECT_EQ(blob_name_digits(id), id.substr(9));
  EXPECT_FALSE(is_unhashed(kBlob.name));
  EXPECT_TRUE(is_blob_name(kBlob.name));
  EXPECT_EQ(blob_name_digits(kBlob.name), kBlob.name);
  EXPECT_FALSE(is_unhashed("unhashed-" + std::string(64, 'A')));
  EXPECT_FALSE(is_blob_name("unhashed-../../etc/passwd"));
  EXPECT_FALSE(is_blob_name(std::string(63, 'a')));
}

class AdoptedBlobTest : public MetadataStoreTest {
 protected:
  const BlobId unhashed_{unhashed_blob_id("bucket", kSynapseKey), 11, kSynapseKey};
  const BlobId hashed_{std::string(64, 'd'), 11};  // what hashing unhashed_'s bytes gives

  void adopt(const BlobId& blob, const std::vector<std::string>& media_ids) {
    auto added = store_->add_blobs({{blob, "bucket", kNow, std::nullopt}});
    ASSERT_TRUE(added.ok());
    ASSERT_EQ(*added, 1u);
    std::vector<MediaRecord> records;
    records.reserve(media_ids.size());
    for (const auto& id : media_ids) records.push_back(record(id, blob));
    ASSERT_TRUE(store_->add_media(records).ok());
  }

  BlobId blob_of(const std::string& media_id) {
    auto found = store_->find_media({"example.org", media_id});
    EXPECT_TRUE(found.ok() && found->has_value() && (**found).blob);
    return found.ok() && found->has_value() && (**found).blob ? *(**found).blob : BlobId{};
  }

  std::vector<MetadataStore::DoomedBlob> claim_all() {
    auto claimed = store_->claim_unreferenced_blobs(kNow, kNoReclaim, 100);
    EXPECT_TRUE(claimed.ok());
    return claimed.ok() ? *claimed : std::vector<MetadataStore::DoomedBlob>{};
  }

  Result<MetadataStore::BlobReplacement> replace() {
    return store_->replace_blob(unhashed_.name, hashed_);
  }
};

TEST_P(AdoptedBlobTest, LocationIsReadWhereverTheBlobIs) {
  adopt(unhashed_, {"adopted"});
  insert("uploaded", kBlob);
  ASSERT_TRUE(store_->add_thumbnails({thumbnail("adopted", unhashed_)}).ok());

  EXPECT_EQ(blob_of("adopted").location, kSynapseKey);
  EXPECT_EQ(blob_of("adopted").name, unhashed_.name);
  EXPECT_EQ(blob_of("adopted").size, 11u);
  EXPECT_EQ(blob_of("uploaded").location, "") << "uploads are content-addressed";
  auto thumb = store_->find_thumbnail(thumbnail("adopted", unhashed_).key);
  ASSERT_TRUE(thumb.ok() && thumb->has_value());
  EXPECT_EQ((**thumb).blob.location, kSynapseKey);

  auto blobs = store_->list_blobs("", 10);
  ASSERT_TRUE(blobs.ok());
  ASSERT_EQ(blobs->size(), 2u);
  EXPECT_EQ((*blobs)[0].blob.location, "");
  EXPECT_EQ((*blobs)[1].blob.name, unhashed_.name) << "unhashed ids sort after hashes";
  EXPECT_EQ((*blobs)[1].blob.location, kSynapseKey);
  EXPECT_EQ((*blobs)[1].store, "bucket");
  auto media = store_->list_media({}, 10);
  ASSERT_TRUE(media.ok() && media->size() == 2u);
  EXPECT_EQ((*media)[0].blob->location, kSynapseKey);
  auto thumbnails = store_->list_thumbnails({}, 10);
  ASSERT_TRUE(thumbnails.ok() && thumbnails->size() == 1u);
  EXPECT_EQ((*thumbnails)[0].blob.location, kSynapseKey);

  remove("adopted");
  auto doomed = claim_all();
  ASSERT_EQ(doomed.size(), 1u);
  EXPECT_EQ(doomed[0].blob.name, unhashed_.name);
  EXPECT_EQ(doomed[0].blob.location, kSynapseKey) << "the collector deletes the object where it is";
  EXPECT_EQ(doomed[0].store, "bucket");
}

TEST_P(AdoptedBlobTest, UnhashedIdAndAHashOfTheSameDigitsAreTwoBlobs) {
  const BlobId lookalike{std::string(blob_name_digits(unhashed_.name)), 3};
  adopt(unhashed_, {"adopted"});
  insert("uploaded", lookalike);
  EXPECT_EQ(blob_of("adopted").name, unhashed_.name);
  EXPECT_EQ(blob_of("uploaded").name, lookalike.name);
  EXPECT_EQ(blob_of("uploaded").location, "");
  auto counts = store_->count_rows();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->blobs, 2);
}

TEST_P(AdoptedBlobTest, ReplacedBlobKeepsItsObjectUnderItsHash) {
  adopt(unhashed_, {"one", "two"});
  ASSERT_TRUE(store_->add_thumbnails({thumbnail("one", unhashed_)}).ok());
  auto replaced = replace();
  ASSERT_TRUE(replaced.ok()) << replaced.error().message;
  EXPECT_EQ(*replaced, MetadataStore::BlobReplacement::replaced);

  for (const char* id : {"one", "two"}) {
    BlobId blob = blob_of(id);
    EXPECT_EQ(blob.name, hashed_.name);
    EXPECT_EQ(blob.location, kSynapseKey) << "the bytes stay where they are";
    EXPECT_EQ(blob.size, 11u);
  }
  auto thumb = store_->find_thumbnail(thumbnail("one", unhashed_).key);
  ASSERT_TRUE(thumb.ok() && thumb->has_value());
  EXPECT_EQ((**thumb).blob.name, hashed_.name);
  auto blobs = store_->list_blobs("", 10);
  ASSERT_TRUE(blobs.ok());
  ASSERT_EQ(blobs->size(), 1u) << "the unhashed row is gone";
  EXPECT_EQ((*blobs)[0].store, "bucket");
  EXPECT_EQ((*blobs)[0].created_ts, kNow);
  EXPECT_TRUE(claim_all().empty()) << "nothing is left to delete";

  auto again = replace();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, MetadataStore::BlobReplacement::not_found);

  remove("one");
  remove("two");
  auto doomed = claim_all();
  ASSERT_EQ(doomed.size(), 1u);
  EXPECT_EQ(doomed[0].blob.name, hashed_.name);
  EXPECT_EQ(doomed[0].blob.location, kSynapseKey);
}

TEST_P(AdoptedBlobTest, MergedBlobLeavesItsObjectToTheCollector) {
  insert("uploaded", hashed_);  // the same bytes, uploaded before
  adopt(unhashed_, {"adopted"});
  ASSERT_TRUE(store_->add_thumbnails({thumbnail("adopted", unhashed_)}).ok());
  auto merged = replace();
  ASSERT_TRUE(merged.ok()) << merged.error().message;
  EXPECT_EQ(*merged, MetadataStore::BlobReplacement::merged);

  EXPECT_EQ(blob_of("adopted").name, hashed_.name);
  EXPECT_EQ(blob_of("adopted").location, "") << "served from the blob stored before";
  auto thumb = store_->find_thumbnail(thumbnail("adopted", unhashed_).key);
  ASSERT_TRUE(thumb.ok() && thumb->has_value());
  EXPECT_EQ((**thumb).blob.name, hashed_.name);

  auto doomed = claim_all();
  ASSERT_EQ(doomed.size(), 1u);
  EXPECT_EQ(doomed[0].blob.name, unhashed_.name);
  EXPECT_EQ(doomed[0].blob.location, kSynapseKey);
  EXPECT_EQ(doomed[0].store, "bucket");
  ASSERT_TRUE(store_->finish_blob_deletion(unhashed_.name).ok());
  remove("uploaded");
  EXPECT_TRUE(claim_all().empty()) << "\"adopted\" still refers to the hashed blob";
}

TEST_P(AdoptedBlobTest, MergingIntoAnUnreferencedBlobKeepsIt) {
  insert("uploaded", hashed_);
  remove("uploaded");  // unreferenced, not claimed yet
  adopt(unhashed_, {"adopted"});
  auto merged = replace();
  ASSERT_TRUE(merged.ok());
  EXPECT_EQ(*merged, MetadataStore::BlobReplacement::merged);
  auto doomed = claim_all();
  ASSERT_EQ(doomed.size(), 1u) << "the hashed blob is referred to again";
  EXPECT_EQ(doomed[0].blob.name, unhashed_.name);
}

TEST_P(AdoptedBlobTest, NothingMovesOntoABlobBeingDeleted) {
  insert("uploaded", hashed_);
  remove("uploaded");
  ASSERT_EQ(claim(), Shas{hashed_.name});  // its deletion is under way
  adopt(unhashed_, {"adopted"});
  auto refused = replace();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().status, 503u);
  EXPECT_EQ(blob_of("adopted").name, unhashed_.name);
  ASSERT_TRUE(store_->finish_blob_deletion(hashed_.name).ok());
  auto replaced = replace();
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(*replaced, MetadataStore::BlobReplacement::replaced);
  EXPECT_EQ(blob_of("adopted").location, kSynapseKey);
}

TEST_P(AdoptedBlobTest, UnknownOrDeletedBlobsAreNotFound) {
  auto missing = replace();
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(*missing, MetadataStore::BlobReplacement::not_found);
  adopt(unhashed_, {"gone"});
  remove("gone");  // nothing refers to the adopted blob any more: its deletion begins
  ASSERT_EQ(claim_all().size(), 1u);
  auto deleting = replace();
  ASSERT_TRUE(deleting.ok());
  EXPECT_EQ(*deleting, MetadataStore::BlobReplacement::not_found);
}

TEST_P(AdoptedBlobTest, OnlyAContentHashReplacesABlob) {
  adopt(unhashed_, {"adopted"});
  for (const auto& name :
       {unhashed_.name, unhashed_blob_id("bucket", "elsewhere"), std::string("not a hash")}) {
    auto refused = store_->replace_blob(unhashed_.name, BlobId{name, 11});
    ASSERT_FALSE(refused.ok()) << name;
    EXPECT_EQ(refused.error().status, 500u);
  }
  EXPECT_EQ(blob_of("adopted").name, unhashed_.name);
}

// --- Opening a database without changing it (mxcd import synapse --dry-run) ---

TEST_P(MetadataStoreTest, InspectingADatabaseThatIsNotThereCreatesNothingAndReadsEmpty) {
  store_.reset();
  Config::Database absent = database_;
  if (GetParam() == "sqlite") {
    absent.sqlite_path = dir_ / "absent" / "mxcd.db";
  } else {
    admin_->exec(("DROP SCHEMA " + schema_ + " CASCADE; CREATE SCHEMA " + schema_).c_str());
  }
  store_ = open_metadata_store(absent, MetadataOpening::inspect);
  auto found = store_->find_media({"example.org", "one"});
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
  store_.reset();
  if (GetParam() == "sqlite") {
    EXPECT_FALSE(std::filesystem::exists(dir_ / "absent"));
  } else {
    auto tables = admin_->query(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1", schema_);
    EXPECT_EQ(tables.integer(0, 0), 0) << "no table was created";
  }
}

TEST_P(MetadataStoreTest, InspectingReadsWhatIsThereAndWritesNothing) {
  insert("one", kBlob);
  store_.reset();
  store_ = open_metadata_store(database_, MetadataOpening::inspect);
  auto found = store_->find_media({"example.org", "one"});
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((**found).blob->name, kBlob.name);
  if (GetParam() == "sqlite") {
    auto refused = store_->delete_media({"example.org", "one"}, kNow);
    EXPECT_FALSE(refused.ok()) << "the file is open read-only";
  }
}

TEST_P(MetadataStoreTest, AnOlderSchemaIsNotReadWithoutMigrating) {
  store_.reset();
  if (GetParam() == "sqlite") {
    auto backend = std::make_unique<SqliteBackend>(database_.sqlite_path, MetadataOpening::migrate);
    ASSERT_TRUE(
        backend
            ->transaction("downgrade", sql::Backend::Kind::write,
                          [](sql::Session& s) { s.query("UPDATE schema_version SET version = 3"); })
            .ok());
  } else {
    admin_->exec(("UPDATE " + schema_ + ".schema_version SET version = 3").c_str());
  }
  EXPECT_THROW(open_metadata_store(database_, MetadataOpening::inspect), std::runtime_error);
}

// Parameters are numbered as PostgreSQL numbers them, in whatever order they stand.
TEST_P(MetadataStoreTest, ParametersAreReadByTheirNumber) {
  std::unique_ptr<sql::Backend> backend;
  if (GetParam() == "sqlite") {
    backend = SqliteBackend::in_memory();
  } else {
    backend = std::make_unique<PostgresBackend>(*database_.postgres, MetadataOpening::migrate);
  }
  std::vector<std::int64_t> read;
  ASSERT_TRUE(
      backend
          ->transaction("parameters", sql::Backend::Kind::read,
                        [&](sql::Session& s) {
                          auto rows = s.query(
                              "SELECT CAST($2 AS BIGINT), CAST($1 AS BIGINT), CAST($2 AS BIGINT)",
                              std::int64_t{1}, std::int64_t{2});
                          for (int c = 0; c < 3; ++c) read.push_back(rows.first().integer(c));
                        })
          .ok());
  EXPECT_EQ(read, (std::vector<std::int64_t>{2, 1, 2}));
}

INSTANTIATE_TEST_SUITE_P(Databases, MetadataStoreTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Databases, AdoptedBlobTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace mxcd
