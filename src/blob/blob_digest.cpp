#include "blob/blob_digest.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace mxcd {

namespace {

constexpr std::size_t kPiece = 1 << 20;

}  // namespace

Result<std::size_t> digest_next_piece(int fd, Digester& digester, std::span<char> buffer) {
  while (true) {
    ssize_t n = ::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(digester.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return MatrixError::internal(std::string("cannot read: ") + std::strerror(errno));
    digester.update(buffer.data(), static_cast<std::size_t>(n));
    return static_cast<std::size_t>(n);
  }
}

Result<BlobDigest> digest_file(int fd) {
  auto buffer = std::make_unique<char[]>(kPiece);
  Digester digester;
  while (true) {
    auto n = digest_next_piece(fd, digester, {buffer.get(), kPiece});
    if (!n) return n.error();
    if (*n == 0) return digester.finish();
  }
}

}  // namespace mxcd
