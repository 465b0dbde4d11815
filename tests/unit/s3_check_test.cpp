#include "tools/s3_check.hpp"

#include <gtest/gtest.h>

namespace mxcd {
namespace {

TEST(S3Check, RecognisesTheProviderFromTheEndpoint) {
  EXPECT_EQ(recognise_s3_provider("https://s3.eu-central-1.amazonaws.com"), "AWS S3");
  EXPECT_EQ(recognise_s3_provider("https://s3.amazonaws.com"), "AWS S3");
  EXPECT_EQ(recognise_s3_provider("https://s3.us-west-004.backblazeb2.com"), "Backblaze B2");
  EXPECT_EQ(recognise_s3_provider("https://s3.wasabisys.com"), "Wasabi");
  EXPECT_EQ(recognise_s3_provider("https://ams3.digitaloceanspaces.com"), "DigitalOcean Spaces");
  EXPECT_EQ(recognise_s3_provider("https://gateway.storjshare.io"), "Storj");
  EXPECT_EQ(recognise_s3_provider("https://0123abcd.eu.r2.cloudflarestorage.com"), "Cloudflare R2");
  EXPECT_EQ(recognise_s3_provider("https://S3.EU-WEST-1.AMAZONAWS.COM:443"), "AWS S3");
}

TEST(S3Check, DoesNotGuessForOtherHosts) {
  EXPECT_EQ(recognise_s3_provider("http://127.0.0.1:7480"), "");
  EXPECT_EQ(recognise_s3_provider("https://minio.example.org:9000"), "");
  // Only the domain itself and names under it count.
  EXPECT_EQ(recognise_s3_provider("https://notamazonaws.com"), "");
  EXPECT_EQ(recognise_s3_provider("https://amazonaws.com.example.org"), "");
}

}  // namespace
}  // namespace mxcd
