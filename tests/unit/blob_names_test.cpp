// Where blobs of a name live (blob/blob_names): the spread over directories is the same for
// a filesystem store, a cache and a bucket, and an unhashed name spreads by its hash digits.
#include "blob/blob_names.hpp"

#include <gtest/gtest.h>

namespace mxcd {
namespace {

const std::string kHashed = "ab12" + std::string(60, 'c');
const std::string kUnhashed = "unhashed-9f3e" + std::string(60, '0');

TEST(BlobNames, SpreadByTheFirstFourHexDigits) {
  EXPECT_EQ(spread_blob_name(kHashed), "ab/12/" + kHashed);
  EXPECT_EQ(spread_blob_name(kUnhashed), "9f/3e/" + kUnhashed);
}

TEST(BlobNames, ObjectKeysUnderAPrefixOrNone) {
  EXPECT_EQ(object_key("", kHashed), "ab/12/" + kHashed);
  EXPECT_EQ(object_key("media/mxcd", kHashed), "media/mxcd/ab/12/" + kHashed);
}

TEST(BlobNames, DirectoriesOfStoresCachesAndQueues) {
  const std::filesystem::path storage = "/var/lib/mxcd";
  EXPECT_EQ(blobs_dir(storage), "/var/lib/mxcd/blobs");
  EXPECT_EQ(tmp_dir(storage), "/var/lib/mxcd/tmp");
  EXPECT_EQ(damaged_dir(storage), "/var/lib/mxcd/damaged");
  EXPECT_EQ(blobs_dir(cache_root(storage, "bucket")), "/var/lib/mxcd/cache/bucket/blobs");
  EXPECT_EQ(queue_dir(storage, "bucket"), "/var/lib/mxcd/queue/bucket");
}

TEST(BlobNames, KindsOfNames) {
  EXPECT_TRUE(is_blob_name(kHashed));
  EXPECT_TRUE(is_blob_name(kUnhashed));
  EXPECT_FALSE(is_blob_name("AB12" + std::string(60, 'c')));  // upper case
  EXPECT_FALSE(is_blob_name("../" + kHashed));
  EXPECT_EQ(unhashed_blob_id("bucket", "a/b"), unhashed_blob_id("bucket", "a/b"));
  EXPECT_NE(unhashed_blob_id("bucket", "a/b"), unhashed_blob_id("bucket", "a/c"));
  EXPECT_TRUE(is_unhashed(unhashed_blob_id("bucket", "a/b")));
}

}  // namespace
}  // namespace mxcd
