#include "http/tls.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <stdexcept>

namespace mxcd::http {

namespace asio = boost::asio;

TlsConnector::TlsConnector(const std::filesystem::path& ca_file)
    : context_(asio::ssl::context::tls_client) {
  context_.set_default_verify_paths();
  context_.set_verify_mode(asio::ssl::verify_peer);
  if (!ca_file.empty()) {
    boost::system::error_code ec;
    context_.load_verify_file(ca_file.string(), ec);
    if (ec)
      throw std::runtime_error("cannot load CA file " + ca_file.string() + ": " + ec.message());
  }
}

std::optional<std::string> TlsConnector::expect_host(TlsStream& stream, const std::string& host) {
  boost::system::error_code not_ip;
  asio::ip::make_address(host, not_ip);
  if (not_ip && SSL_set_tlsext_host_name(stream.native_handle(), host.c_str()) != 1) {
    return "cannot set the TLS server name";
  }
  if (SSL_set1_host(stream.native_handle(), host.c_str()) != 1) {
    return "cannot set the TLS host name to verify";
  }
  return std::nullopt;
}

asio::awaitable<std::optional<std::string>> TlsConnector::handshake(TlsStream& stream,
                                                                    std::string_view server) {
  boost::system::error_code ec;
  co_await stream.async_handshake(asio::ssl::stream_base::client,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) co_return std::nullopt;
  const long verified = SSL_get_verify_result(stream.native_handle());
  if (verified != X509_V_OK) {
    co_return "the TLS certificate of " + std::string(server) +
        " is not valid: " + X509_verify_cert_error_string(verified);
  }
  co_return "TLS with " + std::string(server) + " failed: " + ec.message();
}

}  // namespace mxcd::http
