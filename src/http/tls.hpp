// The TLS side of every outbound connection mxcd makes (to the homeserver, to S3): which
// certificates are trusted and how the server's name is checked, decided once.
//
// Trusted: the system's CA store plus an optional extra CA file. The certificate must name the
// host that was asked for: a DNS name or an IP address. The check is OpenSSL's own (not a
// verify callback), so a mismatch is recorded as the verification result and the error can
// say what was wrong with the certificate. SNI carries DNS names only: RFC 6066 allows no
// IP addresses in it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace mxcd::http {

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

class TlsConnector {
 public:
  // Throws std::runtime_error when ca_file is given and cannot be loaded.
  explicit TlsConnector(const std::filesystem::path& ca_file = {});
  TlsConnector(const TlsConnector&) = delete;
  TlsConnector& operator=(const TlsConnector&) = delete;

  // The context new TlsStreams are made with.
  boost::asio::ssl::context& context() { return context_; }

  // Before connecting: makes the stream ask for host and accept only a certificate valid for
  // it. Returns what went wrong, if anything.
  static std::optional<std::string> expect_host(TlsStream& stream, const std::string& host);

  // The handshake on a connected stream, under the deadline already set on it. Returns why it
  // failed, if it did: the certificate's problem when verification failed, else the error;
  // server names the other side in the message.
  static boost::asio::awaitable<std::optional<std::string>> handshake(TlsStream& stream,
                                                                      std::string_view server);

 private:
  boost::asio::ssl::context context_;
};

}  // namespace mxcd::http
