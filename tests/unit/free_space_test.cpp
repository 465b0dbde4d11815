#include "blob/free_space.hpp"

#include <gtest/gtest.h>

#include <cerrno>

namespace mxcd {
namespace {

TEST(WriteError, AFullDiskOrQuotaIsInsufficientStorage) {
  for (int full : {ENOSPC, EDQUOT}) {
    MatrixError e = write_error(full);
    EXPECT_EQ(e.status, 507u);
    EXPECT_EQ(e.errcode, "M_UNKNOWN");
    EXPECT_EQ(e.message, "The server has no space left to store this file");
  }
}

TEST(WriteError, OtherFailuresAreInternal) {
  for (int other : {EIO, EACCES, EROFS, 0}) {
    MatrixError e = write_error(other);
    EXPECT_EQ(e.status, 500u);
    EXPECT_EQ(e.message, "Could not store the file");
  }
}

TEST(BodyFits, LeavesTheReserveFree) {
  EXPECT_TRUE(body_fits(100, 1000, 900));
  EXPECT_FALSE(body_fits(101, 1000, 900));
  EXPECT_TRUE(body_fits(0, 1000, 1000));
  EXPECT_FALSE(body_fits(0, 999, 1000));  // already under the reserve: not even an empty body
  EXPECT_TRUE(body_fits(1000, 1000, 0));
  EXPECT_FALSE(body_fits(1001, 1000, 0));
}

TEST(BodyFits, HugeSizesDoNotOverflow) {
  constexpr std::uint64_t kMax = ~std::uint64_t{0};
  EXPECT_FALSE(body_fits(kMax, 1000, 1));
  EXPECT_FALSE(body_fits(1, 1000, kMax));
  EXPECT_TRUE(body_fits(kMax - 1, kMax, 1));
}

TEST(DiskSpace, ReadsTheFilesystemOfAPath) {
  auto space = disk_space(".");
  ASSERT_TRUE(space.has_value());
  EXPECT_GT(space->total, 0u);
  EXPECT_LE(space->available, space->total);
  EXPECT_FALSE(disk_space("/no/such/directory/anywhere").has_value());
}

TEST(ShortOfSpaceReason, SaysWhatIsFreeAndWhatIsKept) {
  EXPECT_EQ(short_of_space_reason(std::uint64_t{1} << 29, std::uint64_t{1} << 30),
            "storage: 512.0 MiB free, below the reserve of 1.0 GiB");
}

}  // namespace
}  // namespace mxcd
