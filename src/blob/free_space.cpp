#include "blob/free_space.hpp"

#include "core/human_bytes.hpp"

#include <fmt/format.h>

#include <sys/statvfs.h>

#include <cerrno>

namespace mxcd {

MatrixError write_error(int error_number) {
  if (error_number == ENOSPC || error_number == EDQUOT) return MatrixError::insufficient_storage();
  return MatrixError::internal("Could not store the file");
}

std::optional<DiskSpace> disk_space(const std::filesystem::path& path) {
  struct statvfs s {};
  if (::statvfs(path.c_str(), &s) != 0) return std::nullopt;
  return DiskSpace{static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize,
                   static_cast<std::uint64_t>(s.f_blocks) * s.f_frsize};
}

bool body_fits(std::uint64_t bytes, std::uint64_t available, std::uint64_t reserve) {
  return available >= reserve && bytes <= available - reserve;
}

std::string short_of_space_reason(std::uint64_t available, std::uint64_t reserve) {
  return fmt::format("storage: {} free, below the reserve of {}",
                     human_bytes(static_cast<std::int64_t>(available)),
                     human_bytes(static_cast<std::int64_t>(reserve)));
}

}  // namespace mxcd
