#include "import/synapse_paths.hpp"

#include <gtest/gtest.h>

namespace mxcd::synapse {
namespace {

MediaRow local(std::string id) {
  MediaRow row;
  row.media_id = std::move(id);
  return row;
}

MediaRow remote(std::string origin, std::string filesystem_id) {
  MediaRow row;
  row.local = false;
  row.origin = std::move(origin);
  row.media_id = "remoteId";
  row.filesystem_id = std::move(filesystem_id);
  return row;
}

TEST(SynapsePaths, LocalMediaAndThumbnails) {
  auto row = local("abcdefghijklmnopqrstuvwx");
  EXPECT_EQ(original_path(row), "local_content/ab/cd/efghijklmnopqrstuvwx");
  EXPECT_EQ(thumbnail_paths(row, {32, 32, "image/jpeg", "crop"}),
            std::vector<std::string>{
                "local_thumbnails/ab/cd/efghijklmnopqrstuvwx/32-32-image-jpeg-crop"});
}

TEST(SynapsePaths, RemoteMediaUseTheFilesystemIdAndKeepTheOriginVerbatim) {
  auto row = remote("[2001:db8::1]:8448", "XyZwabcdefghijklmnopqrst");
  EXPECT_EQ(original_path(row), "remote_content/[2001:db8::1]:8448/Xy/Zw/abcdefghijklmnopqrst");
  // The thumbnail directory has no trailing s; old Synapse versions left out the method.
  EXPECT_EQ(
      thumbnail_paths(row, {96, 96, "image/png", "crop"}),
      (std::vector<std::string>{
          "remote_thumbnail/[2001:db8::1]:8448/Xy/Zw/abcdefghijklmnopqrst/96-96-image-png-crop",
          "remote_thumbnail/[2001:db8::1]:8448/Xy/Zw/abcdefghijklmnopqrst/96-96-image-png"}));
}

TEST(SynapsePaths, UrlPreviewMediaByDateOrByOldId) {
  auto dated = local("2025-11-20_AbCdEfGhIjKlMnOp");
  dated.url_cache = "https://example.org/";
  EXPECT_EQ(original_path(dated), "url_cache/2025-11-20/AbCdEfGhIjKlMnOp");
  EXPECT_EQ(thumbnail_paths(dated, {32, 32, "image/png", "scale"}),
            std::vector<std::string>{
                "url_cache_thumbnails/2025-11-20/AbCdEfGhIjKlMnOp/32-32-image-png-scale"});
  auto old = local("abcdefghijkl");
  old.url_cache = "https://example.org/";
  EXPECT_EQ(original_path(old), "url_cache/ab/cd/efghijkl");
}

TEST(SynapsePaths, NamesThatCouldLeaveTheMediaStoreGiveNoPath) {
  EXPECT_EQ(original_path(local("../../../etc/passwd")), std::nullopt);
  EXPECT_EQ(original_path(local("ab/cdefgh")), std::nullopt);
  EXPECT_EQ(original_path(local("abc")), std::nullopt);  // too short to split
  EXPECT_EQ(original_path(remote("..", "abcdefghijkl")), std::nullopt);
  EXPECT_EQ(original_path(remote("evil.example", "ab/../../../x")), std::nullopt);
  EXPECT_EQ(original_path(remote("", "abcdefghijkl")), std::nullopt);
  auto row = local("abcdefghijkl");
  EXPECT_TRUE(thumbnail_paths(row, {32, 32, "image/../../x", "crop"}).empty());
  EXPECT_TRUE(thumbnail_paths(row, {32, 32, "imagejpeg", "crop"}).empty());
  EXPECT_TRUE(thumbnail_paths(row, {32, 32, "image/jpeg", "../crop"}).empty());
}

}  // namespace
}  // namespace mxcd::synapse
