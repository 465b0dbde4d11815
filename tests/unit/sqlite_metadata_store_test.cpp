// The blob deletion protocol of the SQLite metadata store: leases, claims, and what a
// deletion must never take (a blob that a record, a thumbnail or a live upload still needs).
#include "meta/sqlite/sqlite_metadata_store.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>

namespace mxcd {
namespace {

constexpr std::int64_t kNow = 1'700'000'000'000;
constexpr std::int64_t kLater = kNow + 60'000;
constexpr std::int64_t kNoReclaim = 0;  // no claim is old enough to be taken over

const BlobId kBlob{std::string(64, 'a'), 5};
const BlobId kOtherBlob{std::string(64, 'b'), 7};
const BlobId kThumbnailBlob{std::string(64, 'c'), 3};

class SqliteMetadataStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mxcd-meta-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    store_ = std::make_unique<SqliteMetadataStore>(dir_ / "mxcd.db");
  }
  void TearDown() override {
    store_.reset();
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

  std::int64_t lease(const BlobId& blob, std::int64_t expires_ts = kLater) {
    auto leased = store_->lease_blob(blob.sha256, expires_ts);
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

  std::vector<std::string> claim(std::int64_t now = kNow, std::int64_t reclaim_before = kNoReclaim) {
    auto claimed = store_->claim_unreferenced_blobs(now, reclaim_before, 100);
    EXPECT_TRUE(claimed.ok());
    std::vector<std::string> shas;
    if (claimed.ok()) {
      for (const auto& d : *claimed) {
        EXPECT_EQ(d.store, "local");
        shas.push_back(d.blob.sha256);
      }
    }
    std::sort(shas.begin(), shas.end());
    return shas;
  }

  using Shas = std::vector<std::string>;

  std::filesystem::path dir_;
  std::unique_ptr<SqliteMetadataStore> store_;
};

TEST_F(SqliteMetadataStoreTest, ReferencedBlobsAreNeverClaimed) {
  insert("one", kBlob);
  EXPECT_EQ(claim(), Shas{});
}

TEST_F(SqliteMetadataStoreTest, BlobIsClaimedOnceItsLastRecordIsDeleted) {
  insert("one", kBlob);
  insert("two", kBlob);
  insert("three", kOtherBlob);
  remove("one");
  EXPECT_EQ(claim(), Shas{}) << "\"two\" still refers to the blob";
  remove("two");
  auto claimed = store_->claim_unreferenced_blobs(kNow, kNoReclaim, 100);
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].blob.sha256, kBlob.sha256);
  EXPECT_EQ((*claimed)[0].blob.size, kBlob.size);
  EXPECT_EQ((*claimed)[0].store, "local");
  EXPECT_EQ(claim(), Shas{}) << "a claimed blob is not claimed twice";
  ASSERT_TRUE(store_->finish_blob_deletion(kBlob.sha256).ok());
  EXPECT_EQ(claim(), Shas{});
  auto three = store_->find_media({"example.org", "three"});
  ASSERT_TRUE(three.ok());
  EXPECT_TRUE(three->has_value());
}

TEST_F(SqliteMetadataStoreTest, DeleteReportsUnknownMedia) {
  auto removed = store_->delete_media({"example.org", "missing"}, kNow);
  ASSERT_TRUE(removed.ok());
  EXPECT_FALSE(*removed);
}

TEST_F(SqliteMetadataStoreTest, DeletingAPendingRecordFreesItsReservation) {
  MediaRecord pending = record("pending", kBlob);
  pending.blob.reset();
  pending.pending_expires_ts = kLater;
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

TEST_F(SqliteMetadataStoreTest, LiveLeaseKeepsAnUnreferencedBlob) {
  insert("one", kBlob);
  std::int64_t held = lease(kBlob);  // an upload of the same bytes is under way
  remove("one");
  EXPECT_EQ(claim(), Shas{});
  // The upload lands: the blob is referenced again and stays.
  ASSERT_TRUE(store_->insert_media(record("two", kBlob), held).ok());
  EXPECT_EQ(claim(kLater + 1), Shas{});
}

TEST_F(SqliteMetadataStoreTest, ReleasedOrExpiredLeasesNoLongerProtect) {
  insert("one", kBlob);
  insert("two", kOtherBlob);
  std::int64_t released = lease(kBlob);
  lease(kOtherBlob, kNow + 10);
  remove("one");
  remove("two");
  ASSERT_TRUE(store_->release_lease(released).ok());
  EXPECT_EQ(claim(kNow), Shas{kBlob.sha256});
  EXPECT_EQ(claim(kNow + 10), Shas{kOtherBlob.sha256}) << "the lease expired";
}

TEST_F(SqliteMetadataStoreTest, NoLeaseWhileDeletingAndANewBlobAfterwards) {
  insert("one", kBlob);
  remove("one");
  ASSERT_EQ(claim(), Shas{kBlob.sha256});
  auto refused = store_->lease_blob(kBlob.sha256, kLater);
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->has_value()) << "an upload must wait while the bytes are removed";
  ASSERT_TRUE(store_->finish_blob_deletion(kBlob.sha256).ok());
  // The upload stores the bytes again and records them as a fresh blob.
  insert("two", kBlob);
  EXPECT_EQ(claim(), Shas{});
  auto two = store_->find_media({"example.org", "two"});
  ASSERT_TRUE(two.ok() && two->has_value());
  EXPECT_EQ((**two).blob->sha256, kBlob.sha256);
}

TEST_F(SqliteMetadataStoreTest, AbandonedDeletionIsRetriedAndUploadsMayLeaseMeanwhile) {
  insert("one", kBlob);
  remove("one");
  ASSERT_EQ(claim(), Shas{kBlob.sha256});
  ASSERT_TRUE(store_->abandon_blob_deletion(kBlob.sha256).ok());
  EXPECT_EQ(claim(), Shas{kBlob.sha256}) << "the next round tries again";
  ASSERT_TRUE(store_->abandon_blob_deletion(kBlob.sha256).ok());
  std::int64_t held = lease(kBlob);
  EXPECT_EQ(claim(), Shas{});
  ASSERT_TRUE(store_->insert_media(record("two", kBlob), held).ok());
  EXPECT_EQ(claim(kLater + 1), Shas{});
}

TEST_F(SqliteMetadataStoreTest, DeletionLeftByACrashedProcessIsReclaimed) {
  insert("one", kBlob);
  remove("one");
  ASSERT_EQ(claim(kNow), Shas{kBlob.sha256});
  EXPECT_EQ(claim(kLater, kNow), Shas{}) << "a claim that is not older than the limit stays";
  EXPECT_EQ(claim(kLater, kNow + 1), Shas{kBlob.sha256});
}

TEST_F(SqliteMetadataStoreTest, InsertWithAGoneLeaseIsRefusedAndRecordsNothing) {
  std::int64_t held = lease(kBlob);
  ASSERT_TRUE(store_->release_lease(held).ok());
  Status inserted = store_->insert_media(record("one", kBlob), held);
  ASSERT_FALSE(inserted.ok());
  EXPECT_EQ(inserted.error().status, 503u);
  auto found = store_->find_media({"example.org", "one"});
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
  EXPECT_EQ(claim(), Shas{});
}

TEST_F(SqliteMetadataStoreTest, FillConsumesTheLease) {
  MediaRecord pending = record("pending", kBlob);
  pending.blob.reset();
  pending.pending_expires_ts = kLater;
  ASSERT_TRUE(store_->reserve_pending(pending, 5, kNow).ok());
  std::int64_t held = lease(kBlob);
  auto filled = store_->fill_pending(record("pending", kBlob), held, kNow);
  ASSERT_TRUE(filled.ok());
  EXPECT_EQ(*filled, MetadataStore::FillOutcome::filled);
  EXPECT_FALSE(store_->insert_media(record("other", kBlob), held).ok()) << "a lease is used once";
  remove("pending");
  EXPECT_EQ(claim(), Shas{kBlob.sha256});
}

TEST_F(SqliteMetadataStoreTest, FillWithAGoneLeaseIsRefusedAndStaysPending) {
  MediaRecord pending = record("pending", kBlob);
  pending.blob.reset();
  pending.pending_expires_ts = kLater;
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

TEST_F(SqliteMetadataStoreTest, ThumbnailIsFoundByItsBoxAndKeepsItsBlob) {
  insert("image", kBlob);
  auto stored = store_->insert_thumbnail(thumbnail("image", kThumbnailBlob), lease(kThumbnailBlob));
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((**stored).blob.sha256, kThumbnailBlob.sha256);
  EXPECT_EQ((**stored).blob.size, kThumbnailBlob.size);
  ThumbnailKey other_box = thumbnail("image", kThumbnailBlob).key;
  other_box.crop = false;
  auto missing = store_->find_thumbnail(other_box);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  EXPECT_EQ(claim(), Shas{}) << "the thumbnail refers to its blob";
}

TEST_F(SqliteMetadataStoreTest, DeletingMediaFreesItsThumbnailsBlobs) {
  insert("image", kBlob);
  ASSERT_TRUE(store_->insert_thumbnail(thumbnail("image", kThumbnailBlob), lease(kThumbnailBlob)).ok());
  remove("image");
  auto found = store_->find_thumbnail(thumbnail("image", kThumbnailBlob).key);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
  EXPECT_EQ(claim(), (Shas{kBlob.sha256, kThumbnailBlob.sha256}));
}

TEST_F(SqliteMetadataStoreTest, ThumbnailBlobSharedWithMediaStaysWhileEitherRefersToIt) {
  insert("image", kBlob);
  insert("small", kThumbnailBlob);  // an upload with the same bytes as the thumbnail
  ASSERT_TRUE(store_->insert_thumbnail(thumbnail("image", kThumbnailBlob), lease(kThumbnailBlob)).ok());
  remove("small");
  EXPECT_EQ(claim(), Shas{}) << "the thumbnail still refers to the blob";
  remove("image");
  EXPECT_EQ(claim(), (Shas{kBlob.sha256, kThumbnailBlob.sha256}));
}

TEST_F(SqliteMetadataStoreTest, ThumbnailOfDeletedMediaIsNotRecordedAndItsBlobIsFreed) {
  insert("image", kBlob);
  remove("image");
  auto stored = store_->insert_thumbnail(thumbnail("image", kThumbnailBlob), lease(kThumbnailBlob));
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(stored->has_value());
  EXPECT_EQ(claim(), (Shas{kBlob.sha256, kThumbnailBlob.sha256}));
}

TEST_F(SqliteMetadataStoreTest, SecondThumbnailForTheSameBoxKeepsTheFirst) {
  insert("image", kBlob);
  ASSERT_TRUE(store_->insert_thumbnail(thumbnail("image", kThumbnailBlob), lease(kThumbnailBlob)).ok());
  auto second = store_->insert_thumbnail(thumbnail("image", kOtherBlob), lease(kOtherBlob));
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((**second).blob.sha256, kThumbnailBlob.sha256);
  EXPECT_EQ(claim(), Shas{kOtherBlob.sha256}) << "the second thumbnail's blob is unused";
}

}  // namespace
}  // namespace mxcd
