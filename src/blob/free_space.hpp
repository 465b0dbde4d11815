// The local disk that uploads, spool files and cached copies are written to: how a failed
// write is reported (a full disk is 507, not 500) and whether a body still fits in what is
// free once the configured reserve is kept aside. Every file write of an upload maps its
// errno here, so a full disk reads the same whichever store or spool hit it.
#pragma once

#include "core/matrix_error.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace mxcd {

// 507 M_UNKNOWN for ENOSPC and EDQUOT, 500 "Could not store the file" for anything else.
MatrixError write_error(int error_number);

// Writes all `size` bytes at `offset`, retrying short writes. On failure errno says why
// (ENOSPC for a write that wrote nothing).
bool write_all(int fd, const char* data, std::size_t size, std::uint64_t offset);

// The free space of the filesystem holding `path` (statvfs, as an unprivileged user sees it);
// nullopt when it cannot be read.
struct DiskSpace {
  std::uint64_t available = 0;
  std::uint64_t total = 0;
};
std::optional<DiskSpace> disk_space(const std::filesystem::path& path);

// Whether `bytes` more can be written and `reserve` still be left free.
bool body_fits(std::uint64_t bytes, std::uint64_t available, std::uint64_t reserve);

// "storage: 102.4 MiB free, below the reserve of 1.0 GiB": the reason health gives.
std::string short_of_space_reason(std::uint64_t available, std::uint64_t reserve);

}  // namespace mxcd
