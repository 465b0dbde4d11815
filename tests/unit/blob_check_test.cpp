// Reading stored bytes back (blob/blob_digest) and the cache's side of the scrubber (a
// damaged copy is dropped only when it is still the file that was hashed and not pinned)
// and of a full disk (copies dropped to make room, never a pinned one).
#include "blob/blob_digest.hpp"
#include "blob/cache/blob_cache.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <fstream>

namespace mxcd {
namespace {

namespace fs = std::filesystem;

class BlobCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("mxcd-blob-check-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  static void write(const fs::path& path, const std::string& bytes) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << bytes;
  }

  // A blob put in the cache the way a fill does: a file under tmp/, published.
  static BlobId cache_blob(BlobCache& cache, const std::string& bytes, bool pinned) {
    BlobId blob{Sha256::hex_of(bytes), bytes.size()};
    auto file = cache.create_temporary("fill");
    EXPECT_TRUE(file.ok());
    EXPECT_EQ(::write(file->first.get(), bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
    EXPECT_TRUE(cache.publish(blob, file->second, pinned).ok());
    return blob;
  }

  fs::path root_;
};

TEST_F(BlobCheck, DigestOfAFileIsItsHashAndSize) {
  std::string bytes(3 * 1024 * 1024 + 17, 'x');  // more than one piece
  bytes[12345] = 'y';
  write(root_ / "file", bytes);
  UniqueFd fd(::open((root_ / "file").c_str(), O_RDONLY | O_CLOEXEC));
  auto digest = digest_file(fd.get());
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(digest->sha256, Sha256::hex_of(bytes));
  EXPECT_EQ(digest->size, bytes.size());
}

TEST_F(BlobCheck, DigestPiecesAddUpToTheFile) {
  write(root_ / "file", "abcdefghij");
  UniqueFd fd(::open((root_ / "file").c_str(), O_RDONLY | O_CLOEXEC));
  Digester digester;
  char piece[4];
  std::vector<std::size_t> reads;
  while (true) {
    auto n = digest_next_piece(fd.get(), digester, piece);
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
    reads.push_back(*n);
  }
  EXPECT_EQ(reads, (std::vector<std::size_t>{4, 4, 2}));
  EXPECT_EQ(digester.finish().sha256, Sha256::hex_of("abcdefghij"));
}

TEST_F(BlobCheck, DamagedCachedCopyIsDroppedWhenStillTheFileHashed) {
  BlobCache cache(root_, 1 << 20, {});
  BlobId blob = cache_blob(cache, "cached bytes", false);
  auto copy = cache.open_copy(blob.name);
  ASSERT_TRUE(copy.has_value());
  EXPECT_EQ(copy->path, cache.path_of(blob.name));
  EXPECT_TRUE(cache.remove_if_same(blob.name, *copy));
  EXPECT_FALSE(fs::exists(copy->path));
  EXPECT_EQ(cache.count(), 0u);
  EXPECT_FALSE(cache.open_copy(blob.name).has_value());
}

TEST_F(BlobCheck, CachedCopyReplacedMeanwhileStays) {
  BlobCache cache(root_, 1 << 20, {});
  BlobId blob = cache_blob(cache, "cached bytes", false);
  auto copy = cache.open_copy(blob.name);
  ASSERT_TRUE(copy.has_value());
  cache_blob(cache, "cached bytes", false);  // a fresh fill of the same blob
  EXPECT_FALSE(cache.remove_if_same(blob.name, *copy));
  EXPECT_TRUE(fs::exists(cache.path_of(blob.name)));
  EXPECT_EQ(cache.count(), 1u);
}

TEST_F(BlobCheck, PinnedCopyIsNeverDropped) {
  BlobCache cache(root_, 1 << 20, {});
  BlobId blob = cache_blob(cache, "queued bytes", true);
  auto copy = cache.open_copy(blob.name);
  ASSERT_TRUE(copy.has_value());
  EXPECT_FALSE(cache.remove_if_same(blob.name, *copy));
  EXPECT_TRUE(fs::exists(cache.path_of(blob.name)));
}

TEST_F(BlobCheck, ReleasingSpaceDropsLeastRecentlyUsedUnpinnedCopies) {
  BlobCache cache(root_, 1 << 20, {});
  BlobId oldest = cache_blob(cache, std::string(100, 'a'), false);
  BlobId queued = cache_blob(cache, std::string(100, 'b'), true);
  BlobId used = cache_blob(cache, std::string(100, 'c'), false);
  BlobId newest = cache_blob(cache, std::string(100, 'd'), false);
  EXPECT_TRUE(cache.open(oldest).valid());  // now used after all the others
  // 150 bytes wanted: "c" (the least recently used that is not queued) and "d" go.
  EXPECT_EQ(cache.release(150), 200u);
  EXPECT_FALSE(fs::exists(cache.path_of(used.name)));
  EXPECT_FALSE(fs::exists(cache.path_of(newest.name)));
  EXPECT_TRUE(fs::exists(cache.path_of(oldest.name)));
  EXPECT_TRUE(fs::exists(cache.path_of(queued.name)));
  EXPECT_EQ(cache.bytes(), 200u);
  // Asked for more than is left: all but the queued copy, and no more.
  EXPECT_EQ(cache.release(1000), 100u);
  EXPECT_EQ(cache.count(), 1u);
  EXPECT_TRUE(cache.pinned(queued.name));
  EXPECT_EQ(cache.release(1000), 0u);
}

TEST_F(BlobCheck, InspectingACacheChangesNothing) {
  write(root_ / "tmp" / "fill-unfinished", "partial");
  write(root_ / "blobs" / "stray", "not a blob");
  { BlobCache inspecting(root_, 0, {}, StoreOpening::inspect); }
  EXPECT_TRUE(fs::exists(root_ / "tmp" / "fill-unfinished"));
  EXPECT_TRUE(fs::exists(root_ / "blobs" / "stray"));
  { BlobCache recovering(root_, 0, {}); }
  EXPECT_FALSE(fs::exists(root_ / "tmp" / "fill-unfinished"));
  EXPECT_FALSE(fs::exists(root_ / "blobs" / "stray"));
}

}  // namespace
}  // namespace mxcd
