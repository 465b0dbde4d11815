// Incremental SHA-256 (OpenSSL): the name of every blob, and the payload hash of S3 requests.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

namespace mxcd {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  // Lower-case hex of the digest. Ends the computation.
  std::string finish_hex();

  static std::string hex_of(std::string_view data);

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context_;
};

}  // namespace mxcd
