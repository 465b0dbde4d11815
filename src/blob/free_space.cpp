#include "blob/free_space.hpp"

#include "core/human_bytes.hpp"

#include <fmt/format.h>

#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>

namespace mxcd {

MatrixError write_error(int error_number) {
  if (error_number == ENOSPC || error_number == EDQUOT) return MatrixError::insufficient_storage();
  return MatrixError::internal("Could not store the file");
}

bool write_all(int fd, const char* data, std::size_t size, std::uint64_t offset) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) errno = ENOSPC;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return true;
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
