// Reading a blob's bytes back to check them: their SHA-256 and their count, which must match
// the blob's name and recorded size. Used by the scrubber, `mxcd verify` and
// `mxcd import synapse --verify`, whichever store the bytes come from.
#pragma once

#include "core/sha256.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <span>
#include <string>

namespace mxcd {

struct BlobDigest {
  std::string sha256;
  std::uint64_t size = 0;
};

// Hashes bytes as they come and counts them.
class Digester {
 public:
  void update(const void* data, std::size_t size) {
    hash_.update(data, size);
    size_ += size;
  }
  std::uint64_t size() const { return size_; }
  // Ends the computation.
  BlobDigest finish() { return {hash_.finish_hex(), size_}; }

 private:
  Sha256 hash_;
  std::uint64_t size_ = 0;
};

// Reads the file's next piece (from offset digester.size(), at most buffer.size() bytes) and
// hashes it. Returns the bytes read: 0 at the end of the file. Blocks on the disk.
Result<std::size_t> digest_next_piece(int fd, Digester& digester, std::span<char> buffer);

// The whole file, from its first byte. Blocks on the disk.
Result<BlobDigest> digest_file(int fd);

}  // namespace mxcd
