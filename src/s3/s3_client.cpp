#include "s3/s3_client.hpp"

#include "core/sha256.hpp"
#include "core/blocking.hpp"
#include "http/outbound_header.hpp"
#include "s3/connection_pool.hpp"
#include "s3/retry_policy.hpp"
#include "s3/s3_xml.hpp"
#include "s3/sigv4.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <openssl/evp.h>
#include <openssl/md5.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace mxcd::s3 {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace beast_http = boost::beast::http;
using asio::awaitable;
using beast_http::verb;
using tcp = asio::ip::tcp;

namespace {

// Bytes moved per read or write of a body: bounds each request's memory.
constexpr std::size_t kBodyChunk = 256 * 1024;
// Largest error, list or multipart answer read into memory.
constexpr std::size_t kMaxAnswer = 8 * 1024 * 1024;
constexpr unsigned kMaxParts = 10000;

std::string base64(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3), '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string base64_md5(std::string_view data) {
  unsigned char digest[16];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_md5(), nullptr);
  return base64(digest, length);
}

MatrixError storage_error(unsigned status, std::string message) {
  MatrixError e;
  e.status = status;
  e.message = std::move(message);
  return e;
}

struct Call {
  Call(const char* operation, verb method, std::string key = {})
      : operation(operation), method(method), key(std::move(key)) {}
  const char* operation = "";
  verb method = verb::get;
  std::string key;  // empty for requests on the bucket
  NameValues query;
  NameValues headers;
  std::string payload_sha256 = "UNSIGNED-PAYLOAD";
  std::string text_body;
  std::optional<FileRegion> file_body;
  bool idempotent = true;
  bool retry = true;             // false: one attempt only (start-up check)
  bool reuse_connection = true;  // false: close it afterwards (its io_context is temporary)
  bool anonymous = false;        // sent without a signature (the bucket check's privacy test)
};

struct Answer {
  unsigned status = 0;
  std::string body;
  std::string etag;
  std::string content_type;
  std::string content_range;
  std::optional<std::uint64_t> content_length;
  std::string bucket_region, request_id, date, version_id;
};

Status read_region(const FileRegion& region, std::uint64_t offset, char* buffer, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::pread(region.fd, buffer, size, static_cast<off_t>(region.offset + offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return MatrixError::internal("Could not read the file to store");
    buffer += n;
    offset += static_cast<std::uint64_t>(n);
    size -= static_cast<std::size_t>(n);
  }
  return {};
}

// Where requests go and how they name the bucket, from the endpoint URL and the addressing
// style.
struct Addressing {
  std::string scheme;
  bool tls = false;
  std::string connect_host, connect_port;
  std::string host_header;  // host[:port] as signed and sent
  std::string path_prefix;  // "/bucket" with path-style addressing, else empty
};

Addressing addressing_of(const S3StoreConfig& c) {
  Addressing a;
  auto url = boost::urls::parse_absolute_uri(c.endpoint).value();
  a.scheme = std::string(url.scheme());
  a.tls = a.scheme == "https";
  a.connect_host = url.host_address();
  a.connect_port = url.has_port() ? std::string(url.port()) : a.tls ? "443" : "80";
  std::string endpoint_host(url.encoded_host_and_port());
  a.host_header = c.path_style ? endpoint_host : c.bucket + "." + endpoint_host;
  if (!c.path_style) a.connect_host = c.bucket + "." + a.connect_host;
  a.path_prefix = c.path_style ? "/" + c.bucket : "";
  return a;
}

}  // namespace

struct Client::Impl {
  const S3StoreConfig& config;
  asio::thread_pool& blocking_pool;
  const Addressing address;
  ConnectionPool connections;
  Credentials credentials;
  SigningScope scope;
  NameValues sse_headers;    // on PutObject and CreateMultipartUpload
  NameValues sse_c_headers;  // on every request that reads or writes object bytes
  ErrorContext error_context;

  explicit Impl(const S3StoreConfig& c, asio::thread_pool& pool)
      : config(c),
        blocking_pool(pool),
        address(addressing_of(c)),
        connections(address.connect_host, address.connect_port, address.tls, c.ca_file,
                    c.connect_timeout) {
    credentials = {c.access_key_id, c.secret_access_key, c.session_token};
    scope.region = c.region;
    error_context = {c.bucket, c.endpoint, c.region, {}};

    using Encryption = S3StoreConfig::Encryption;
    switch (c.encryption) {
      case Encryption::none:
        break;
      case Encryption::sse_s3:
        sse_headers = {{"x-amz-server-side-encryption", "AES256"}};
        break;
      case Encryption::sse_kms:
        sse_headers = {{"x-amz-server-side-encryption", "aws:kms"}};
        if (!c.kms_key_id.empty()) {
          sse_headers.emplace_back("x-amz-server-side-encryption-aws-kms-key-id", c.kms_key_id);
        }
        break;
      case Encryption::sse_c: {
        unsigned char key[48];
        int n = EVP_DecodeBlock(key, reinterpret_cast<const unsigned char*>(c.customer_key.data()),
                                static_cast<int>(c.customer_key.size()));
        // EVP_DecodeBlock counts '=' padding as zero bytes: 44 characters give 33.
        if (c.customer_key.size() != 44 || n != 33 || c.customer_key.back() != '=') {
          throw std::runtime_error("customer_key must be the base64 of exactly 32 bytes");
        }
        unsigned char digest[16];
        unsigned int length = 0;
        EVP_Digest(key, 32, digest, &length, EVP_md5(), nullptr);
        sse_c_headers = {{"x-amz-server-side-encryption-customer-algorithm", "AES256"},
                         {"x-amz-server-side-encryption-customer-key", c.customer_key},
                         {"x-amz-server-side-encryption-customer-key-MD5", base64(digest, length)}};
        sse_headers = sse_c_headers;
        break;
      }
    }
  }

  std::string object_path(const std::string& key) const { return address.path_prefix + "/" + key; }

  std::string describe() const { return "bucket " + config.bucket + " at " + config.endpoint; }

  // --- one attempt ---

  // Sends the call; fills answer. With a sink and a 2xx answer, streams the body into it and
  // counts the bytes in delivered (a sink error is returned as the Status).
  template <class Stream>
  awaitable<Status> exchange(Stream& stream, Connection& c, const Call& call,
                             beast_http::request<beast_http::string_body>& request, Answer& answer,
                             ObjectSink* sink, std::uint64_t& delivered) {
    boost::system::error_code ec;
    auto use = asio::redirect_error(asio::use_awaitable, ec);
    auto fail = [&](const char* stage) {
      return NetworkFailure{std::string(stage) + " " + address.connect_host + ":" +
                            address.connect_port + ": " +
                            (ec == beast::error::timeout ? "timed out" : ec.message())};
    };
    c.lowest().expires_after(config.read_timeout);
    if (!call.file_body) {
      co_await beast_http::async_write(stream, request, use);
      if (ec) throw fail("cannot send to");
    } else {
      beast_http::request_serializer<beast_http::string_body> serializer(request);
      co_await beast_http::async_write_header(stream, serializer, use);
      if (ec) throw fail("cannot send to");
      auto buffer = std::make_unique<char[]>(kBodyChunk);
      for (std::uint64_t sent = 0; sent < call.file_body->length;) {
        auto n = static_cast<std::size_t>(
            std::min<std::uint64_t>(kBodyChunk, call.file_body->length - sent));
        if (auto read = read_region(*call.file_body, sent, buffer.get(), n); !read) co_return read;
        c.lowest().expires_after(config.read_timeout);
        co_await asio::async_write(stream, asio::buffer(buffer.get(), n), use);
        if (ec) throw fail("cannot send to");
        sent += n;
      }
    }

    beast_http::response_parser<beast_http::buffer_body> parser;
    parser.body_limit(boost::none);
    if (call.method == verb::head) parser.skip(true);
    c.lowest().expires_after(config.read_timeout);
    co_await beast_http::async_read_header(stream, c.buffer, parser, use);
    if (ec) throw fail("no answer from");
    const auto& head = parser.get();
    answer.status = head.result_int();
    answer.etag = std::string(head[beast_http::field::etag]);
    answer.content_type = std::string(head[beast_http::field::content_type]);
    answer.content_range = std::string(head[beast_http::field::content_range]);
    answer.bucket_region = std::string(head["x-amz-bucket-region"]);
    answer.request_id = std::string(head["x-amz-request-id"]);
    answer.date = std::string(head[beast_http::field::date]);
    answer.version_id = std::string(head["x-amz-version-id"]);
    if (auto length = parser.content_length()) answer.content_length = *length;

    // A resumed download must continue where it broke off: a whole object would repeat bytes.
    const bool resumed = delivered > 0;
    const bool stream_body = sink && answer.status / 100 == 2 && !(resumed && answer.status == 200);
    auto buffer = std::make_unique<char[]>(kBodyChunk);
    if (stream_body && !parser.chunked() && answer.content_length) {
      // Straight from the socket into our buffer, in large reads: the parser would copy the
      // body through its own buffer 64 KiB at a time, which halves the throughput.
      std::uint64_t remaining = *answer.content_length;
      while (remaining > 0) {
        std::size_t n;
        if (c.buffer.size() > 0) {  // body bytes that arrived with the head
          n = std::min<std::size_t>(c.buffer.size(),
                                    std::min<std::uint64_t>(remaining, kBodyChunk));
          asio::buffer_copy(asio::buffer(buffer.get(), n), c.buffer.data());
          c.buffer.consume(n);
        } else {
          c.lowest().expires_after(config.read_timeout);
          n = co_await stream.async_read_some(
              asio::buffer(buffer.get(), std::min<std::uint64_t>(remaining, kBodyChunk)), use);
          if (ec) throw fail("the answer broke off from");
        }
        auto status = co_await sink->data(buffer.get(), n);
        if (!status) co_return status;
        delivered += n;
        remaining -= n;
      }
      if (!head.keep_alive()) c.lowest().socket().close();
      co_return Status();
    }
    while (!parser.is_done()) {
      parser.get().body().data = buffer.get();
      parser.get().body().size = kBodyChunk;
      c.lowest().expires_after(config.read_timeout);
      co_await beast_http::async_read(stream, c.buffer, parser, use);
      if (ec == beast_http::error::need_buffer) ec = {};
      if (ec) throw fail("the answer broke off from");
      std::size_t n = kBodyChunk - parser.get().body().size;
      if (n == 0) continue;
      if (stream_body) {
        auto status = co_await sink->data(buffer.get(), n);
        if (!status) co_return status;
        delivered += n;
      } else {
        if (answer.body.size() + n > kMaxAnswer) {
          ec = beast_http::error::body_limit;
          throw fail("too long an answer from");
        }
        answer.body.append(buffer.get(), n);
      }
    }
    if (!head.keep_alive()) c.lowest().socket().close();
    co_return Status();
  }

  // Fails only when a header value could not be sent safely (http/outbound_header.hpp).
  Result<beast_http::request<beast_http::string_body>> build(const Call& call,
                                                             const std::optional<ByteSpan>& range) {
    RequestToSign r;
    r.method = std::string(beast_http::to_string(call.method));
    r.path = call.key.empty() ? (address.path_prefix.empty() ? "/" : address.path_prefix)
                              : object_path(call.key);
    r.query = call.query;
    r.headers = call.headers;
    r.headers.emplace_back("Host", address.host_header);
    if (range) {
      const bool open_ended = range->last == std::numeric_limits<std::uint64_t>::max();
      r.headers.emplace_back("Range", "bytes=" + std::to_string(range->first) + "-" +
                                          (open_ended ? "" : std::to_string(range->last)));
    }
    r.payload_sha256 = call.payload_sha256;
    Signature signature;
    if (!call.anonymous) {
      signature = sign_with_headers(r, credentials, scope, std::chrono::system_clock::now());
    }

    std::string target = uri_encode(r.path, true);
    char separator = '?';
    for (const auto& [name, value] : call.query) {
      target += separator;
      target += uri_encode(name, false) + "=" + uri_encode(value, false);
      separator = '&';
    }
    beast_http::request<beast_http::string_body> request{call.method, target, 11};
    for (const auto* headers : {&r.headers, &signature.added}) {
      for (const auto& [name, value] : *headers) {
        if (auto set = http::set_outbound_header(request, name, value); !set) {
          return std::move(set).error();
        }
      }
    }
    request.set(beast_http::field::user_agent, "mxcd");
    if (call.file_body) {
      request.content_length(call.file_body->length);
    } else {
      request.body() = call.text_body;
      if (call.method == verb::put || call.method == verb::post || !call.text_body.empty()) {
        request.content_length(call.text_body.size());
      }
    }
    return request;
  }

  // --- attempts and retries ---

  // One try on a pooled or new connection. Throws NetworkFailure.
  awaitable<Status> attempt(const Call& call, const std::optional<ByteSpan>& range,
                            ObjectSink* sink, Answer& answer, std::uint64_t& delivered,
                            bool& reused) {
    auto built = build(call, range);
    if (!built) co_return std::move(built).error();
    auto& request = *built;
    auto c = co_await connections.acquire();
    reused = c->reused;
    const bool resumed = delivered > 0;
    // Not a ?: between two co_awaits: GCC 12 destroys the result twice.
    Status status;
    if (c->tls) {
      status = co_await exchange(*c->tls, *c, call, request, answer, sink, delivered);
    } else {
      status = co_await exchange(*c->plain, *c, call, request, answer, sink, delivered);
    }
    if (resumed && status && answer.status == 200) {
      throw NetworkFailure{"the server ignored the Range of a resumed download"};
    }
    if (status && call.reuse_connection && c->lowest().socket().is_open()) {
      connections.release(std::move(c));
    }
    co_return status;
  }

  // Runs the call until it succeeds, fails for good, or runs out of attempts. A 2xx answer and
  // a 404 on HEAD/GET count as answers; everything else is turned into a MatrixError here.
  awaitable<Result<Answer>> perform(const Call& call) {
    // Named: GCC 12 mishandles temporaries inside co_await expressions.
    const std::optional<ByteSpan> whole;
    co_return co_await perform(call, whole, nullptr);
  }

  awaitable<Result<Answer>> perform(const Call& call, std::optional<ByteSpan> range,
                                    ObjectSink* sink) {
    const RetryPolicy policy(call.retry ? config.max_attempts : 1);
    std::uint64_t delivered = 0;
    for (unsigned tries = 1;; ++tries) {
      std::optional<ByteSpan> this_range = range;
      if (delivered > 0) {
        // Resume a download that broke off, from its first missing byte.
        if (!this_range) this_range = ByteSpan{0, std::numeric_limits<std::uint64_t>::max()};
        this_range->first += delivered;
      }
      Answer answer;
      AttemptOutcome outcome;
      outcome.attempt = tries;
      outcome.idempotent = call.idempotent;
      std::string problem;
      S3Error error;
      try {
        auto status =
            co_await attempt(call, this_range, sink, answer, delivered, outcome.reused_connection);
        if (!status) co_return status.error();
      } catch (const NetworkFailure& failure) {
        outcome.network_failure = true;
        problem = failure.what;
      }
      outcome.http_status = answer.status;

      if (!outcome.network_failure) {
        if (answer.status / 100 == 2) co_return answer;
        if (answer.status == 404 && (call.method == verb::head || call.method == verb::get ||
                                     call.method == verb::delete_)) {
          co_return answer;
        }
        error = parse_s3_error(answer.status, answer.body,
                               {answer.bucket_region, answer.request_id, answer.date});
        ErrorContext context = error_context;
        context.local_time = std::chrono::system_clock::now();
        problem = explain(error, context);
        outcome.error_code = error.code;
      }
      const RetryDecision decision = policy.decide(outcome);
      if (!decision.retry) {
        spdlog::error("S3 {} {} failed after {} attempt(s): {}", call.operation,
                      call.key.empty() ? describe() : call.key, tries, problem);
        if (decision.temporary) {
          co_return storage_error(503, "The media storage is unavailable; try again later");
        }
        co_return storage_error(502, "The media storage refused the request");
      }
      auto delay = draw_pause(decision);
      spdlog::warn("S3 {} {}: {}; retrying in {} ms", call.operation, call.key, problem,
                   delay.count());
      asio::steady_timer timer(co_await asio::this_coro::executor, delay);
      boost::system::error_code ignored;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
  }

  // --- multipart ---

  awaitable<std::string> region_sha256(FileRegion region) {
    if (config.unsigned_payload) co_return "UNSIGNED-PAYLOAD";
    co_return co_await run_blocking(blocking_pool, [region]() -> std::string {
      Sha256 hash;
      std::vector<char> buffer(kBodyChunk);
      for (std::uint64_t done = 0; done < region.length;) {
        auto n =
            static_cast<std::size_t>(std::min<std::uint64_t>(kBodyChunk, region.length - done));
        if (!read_region(region, done, buffer.data(), n)) return {};
        hash.update(buffer.data(), n);
        done += n;
      }
      return hash.finish_hex();
    });
  }
};

Client::Client(const S3StoreConfig& config, asio::thread_pool& blocking_pool)
    : config_(config), impl_(std::make_unique<Impl>(config, blocking_pool)) {}

Client::~Client() = default;

std::string Client::describe() const { return impl_->describe(); }

awaitable<Result<std::optional<ObjectInfo>>> Client::head_object(const std::string& key) {
  Call call("HeadObject", verb::head, key);
  call.headers = impl_->sse_c_headers;
  auto answer = co_await impl_->perform(call);
  if (!answer) co_return answer.error();
  if (answer->status == 404) co_return std::optional<ObjectInfo>();
  co_return std::optional<ObjectInfo>(
      ObjectInfo{answer->content_length.value_or(0), answer->etag, answer->content_type});
}

awaitable<Status> Client::put_file(const std::string& key, FileRegion body,
                                   const std::string& body_sha256,
                                   const std::string& content_type) {
  if (body.length < config_.multipart_threshold) {
    Call call("PutObject", verb::put, key);
    call.headers = impl_->sse_headers;
    call.headers.emplace_back("Content-Type", content_type);
    if (!config_.storage_class.empty())
      call.headers.emplace_back("x-amz-storage-class", config_.storage_class);
    call.payload_sha256 = config_.unsigned_payload ? "UNSIGNED-PAYLOAD" : body_sha256;
    call.file_body = body;
    auto answer = co_await impl_->perform(call);
    if (!answer) co_return answer.error();
    co_return Status();
  }

  // At most 10,000 parts: a very large file gets larger parts (whole MiB).
  std::uint64_t part_size = std::max<std::uint64_t>(
      config_.part_size, ((body.length + kMaxParts - 1) / kMaxParts + (1 << 20) - 1) >> 20 << 20);
  const std::size_t parts = static_cast<std::size_t>((body.length + part_size - 1) / part_size);
  auto upload_id = co_await create_multipart_upload(key, content_type);
  if (!upload_id) co_return upload_id.error();

  // Workers take the next part until none is left or one fails; the parent waits on a timer
  // that the last worker cancels. All run on this coroutine's (single-threaded) executor.
  struct Shared {
    explicit Shared(asio::any_io_executor e, std::size_t parts) : all_done(e), etags(parts) {}
    asio::steady_timer all_done;
    std::vector<std::string> etags;
    std::size_t next = 0;
    std::size_t running = 0;
    std::optional<MatrixError> failure;
  };
  auto executor = co_await asio::this_coro::executor;
  auto shared = std::make_shared<Shared>(executor, parts);
  shared->all_done.expires_at(asio::steady_timer::time_point::max());
  auto worker = [this, shared, body, part_size, &key, &upload_id]() -> awaitable<void> {
    while (!shared->failure && shared->next < shared->etags.size()) {
      std::size_t index = shared->next++;
      std::uint64_t offset = index * part_size;
      FileRegion part{body.fd, body.offset + offset, std::min(part_size, body.length - offset)};
      auto etag = co_await upload_part(key, *upload_id, static_cast<unsigned>(index + 1), part);
      if (!etag) {
        if (!shared->failure) shared->failure = etag.error();
        co_return;
      }
      shared->etags[index] = std::move(*etag);
    }
  };
  const std::size_t workers = std::min<std::size_t>(config_.parallel_parts, parts);
  shared->running = workers;
  for (std::size_t i = 0; i < workers; ++i) {
    asio::co_spawn(executor, worker, [shared](std::exception_ptr error) {
      if (error && !shared->failure) shared->failure = MatrixError::internal("Upload failed");
      if (--shared->running == 0) shared->all_done.cancel();
    });
  }
  boost::system::error_code ignored;
  co_await shared->all_done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));

  Status result;
  if (shared->failure) {
    result = *shared->failure;
  } else {
    result = co_await complete_multipart_upload(key, *upload_id, shared->etags);
  }
  if (!result) {
    // Never leave an unfinished upload behind: its parts would be billed forever.
    if (auto aborted = co_await abort_multipart_upload(key, *upload_id); !aborted) {
      spdlog::error("S3 multipart upload {} of {} could not be aborted; a lifecycle rule that "
                    "aborts incomplete uploads will remove it",
                    *upload_id, key);
    }
  }
  co_return result;
}

awaitable<Result<std::string>> Client::create_multipart_upload(const std::string& key,
                                                               const std::string& content_type) {
  Call call("CreateMultipartUpload", verb::post, key);
  call.query = {{"uploads", ""}};
  call.headers = impl_->sse_headers;
  call.headers.emplace_back("Content-Type", content_type);
  if (!config_.storage_class.empty())
    call.headers.emplace_back("x-amz-storage-class", config_.storage_class);
  call.idempotent = false;
  auto answer = co_await impl_->perform(call);
  if (!answer) co_return answer.error();
  std::string upload_id = xml::upload_id(answer->body);
  if (upload_id.empty()) {
    spdlog::error("S3 CreateMultipartUpload {}: no UploadId in the answer", key);
    co_return storage_error(502, "The media storage sent an invalid answer");
  }
  co_return upload_id;
}

awaitable<Result<std::string>> Client::upload_part(const std::string& key,
                                                   const std::string& upload_id,
                                                   unsigned part_number, FileRegion body) {
  Call call("UploadPart", verb::put, key);
  call.query = {{"partNumber", std::to_string(part_number)}, {"uploadId", upload_id}};
  call.headers = impl_->sse_c_headers;
  call.payload_sha256 = co_await impl_->region_sha256(body);
  if (call.payload_sha256.empty())
    co_return MatrixError::internal("Could not read the file to store");
  call.file_body = body;
  auto answer = co_await impl_->perform(call);
  if (!answer) co_return answer.error();
  if (answer->etag.empty()) {
    spdlog::error("S3 UploadPart {} part {}: no ETag in the answer", key, part_number);
    co_return storage_error(502, "The media storage sent an invalid answer");
  }
  co_return answer->etag;
}

awaitable<Status> Client::complete_multipart_upload(const std::string& key,
                                                    const std::string& upload_id,
                                                    const std::vector<std::string>& etags) {
  Call call("CompleteMultipartUpload", verb::post, key);
  call.query = {{"uploadId", upload_id}};
  call.text_body = xml::complete_multipart_upload(etags);
  call.payload_sha256 = Sha256::hex_of(call.text_body);
  call.headers = {{"Content-Type", "application/xml"}};
  auto answer = co_await impl_->perform(call);
  if (!answer) co_return answer.error();
  // The answer may be 200 with an <Error> inside (the server failed while assembling). Its
  // ETag is not used: some servers (Ceph RGW) send it empty.
  if (xml::is_error(answer->body)) {
    S3Error error = parse_s3_error(500, answer->body, {});
    spdlog::error("S3 CompleteMultipartUpload {} failed: {} {}", key, error.code, error.message);
    co_return storage_error(503, "The media storage is unavailable; try again later");
  }
  co_return Status();
}

awaitable<Status> Client::abort_multipart_upload(const std::string& key,
                                                 const std::string& upload_id) {
  Call call("AbortMultipartUpload", verb::delete_, key);
  call.query = {{"uploadId", upload_id}};
  auto answer = co_await impl_->perform(call);  // 404 NoSuchUpload: already gone
  if (!answer) co_return answer.error();
  co_return Status();
}

awaitable<Result<std::vector<MultipartUpload>>> Client::list_multipart_uploads(
    const std::string& prefix) {
  std::vector<MultipartUpload> uploads;
  std::string key_marker, upload_id_marker;
  while (true) {
    Call call("ListMultipartUploads", verb::get);
    call.query = {{"prefix", prefix}, {"uploads", ""}};
    if (!key_marker.empty()) {
      call.query.emplace_back("key-marker", key_marker);
      call.query.emplace_back("upload-id-marker", upload_id_marker);
    }
    auto answer = co_await impl_->perform(call);
    if (!answer) co_return answer.error();
    auto page = xml::multipart_uploads_page(answer->body);
    for (auto& upload : page.uploads) uploads.push_back(std::move(upload));
    // A server that says "truncated" without a marker to go on from would loop forever.
    if (!page.truncated || page.next_key_marker.empty() ||
        (page.next_key_marker == key_marker && upload_id_marker == page.next_upload_id_marker)) {
      break;
    }
    key_marker = std::move(page.next_key_marker);
    upload_id_marker = std::move(page.next_upload_id_marker);
  }
  co_return uploads;
}

awaitable<Status> Client::get_object(const std::string& key, std::optional<ByteSpan> range,
                                     ObjectSink& sink) {
  Call call("GetObject", verb::get, key);
  call.headers = impl_->sse_c_headers;
  auto answer = co_await impl_->perform(call, range, &sink);
  if (!answer) co_return answer.error();
  if (answer->status == 404) {
    spdlog::error("S3 object {} is missing from {}", key, describe());
    co_return MatrixError::not_found("The media's content is missing");
  }
  co_return Status();
}

awaitable<Status> Client::delete_object(const std::string& key) {
  Call call("DeleteObject", verb::delete_, key);
  auto answer = co_await impl_->perform(call);
  if (!answer) co_return answer.error();
  co_return Status();
}

awaitable<Result<std::vector<std::string>>> Client::delete_objects(
    const std::vector<std::string>& keys) {
  Call call("DeleteObjects", verb::post);
  call.query = {{"delete", ""}};
  call.text_body = xml::delete_objects(keys);
  call.payload_sha256 = Sha256::hex_of(call.text_body);
  // S3 requires an integrity header on this request; MD5 is the one every server accepts.
  call.headers = {{"Content-Type", "application/xml"}, {"Content-MD5", base64_md5(call.text_body)}};
  auto answer = co_await impl_->perform(call);
  if (!answer) co_return answer.error();
  std::vector<std::string> failed;
  for (auto& error : xml::delete_errors(answer->body)) {
    spdlog::warn("S3 could not delete {}: {} {}", error.key, error.code, error.message);
    failed.push_back(std::move(error.key));
  }
  co_return failed;
}

awaitable<Result<ListPage>> Client::list_objects(const std::string& prefix,
                                                 const std::string& continuation_token,
                                                 unsigned max_keys) {
  Call call("ListObjectsV2", verb::get);
  call.query = {{"list-type", "2"}, {"max-keys", std::to_string(max_keys)}, {"prefix", prefix}};
  if (!continuation_token.empty())
    call.query.emplace_back("continuation-token", continuation_token);
  auto answer = co_await impl_->perform(call);
  if (!answer) co_return answer.error();
  co_return xml::list_page(answer->body);
}

awaitable<Client::ProbeAnswer> Client::probe(const Probe& request) {
  Call call(request.operation.c_str(), beast_http::string_to_verb(request.method), request.key);
  call.query = request.query;
  call.retry = false;
  call.reuse_connection = false;
  call.anonymous = request.anonymous;
  if (request.object_headers == Probe::ObjectHeaders::creating) {
    call.headers = impl_->sse_headers;
    if (!config_.storage_class.empty())
      call.headers.emplace_back("x-amz-storage-class", config_.storage_class);
  } else if (request.object_headers == Probe::ObjectHeaders::using_bytes) {
    call.headers = impl_->sse_c_headers;
  }
  if (!request.content_type.empty())
    call.headers.emplace_back("Content-Type", request.content_type);
  if (!request.body.empty()) {
    call.text_body = request.body;
    call.payload_sha256 =
        config_.unsigned_payload ? "UNSIGNED-PAYLOAD" : Sha256::hex_of(request.body);
  }
  ProbeAnswer result;
  Answer answer;
  try {
    std::uint64_t delivered = 0;
    bool reused = false;
    const std::optional<ByteSpan> whole;
    auto sent = co_await impl_->attempt(call, whole, nullptr, answer, delivered, reused);
    if (!sent) {
      result.network_problem = sent.error().message;
      co_return result;
    }
  } catch (const NetworkFailure& failure) {
    result.network_problem = failure.what;
    co_return result;
  }
  result.answered = true;
  result.received = std::chrono::system_clock::now();
  result.status = answer.status;
  result.body = std::move(answer.body);
  result.date = answer.date;
  result.bucket_region = answer.bucket_region;
  result.version_id = answer.version_id;
  result.etag = answer.etag;
  if (answer.status / 100 != 2) {
    result.error = parse_s3_error(answer.status, result.body,
                                  {answer.bucket_region, answer.request_id, answer.date});
    ErrorContext context = impl_->error_context;
    context.local_time = result.received;
    result.explanation = explain(*result.error, context);
  }
  co_return result;
}

awaitable<Client::AccessCheck> Client::check_access() {
  Probe listing;
  listing.operation = "ListObjectsV2";
  listing.query = {{"list-type", "2"}, {"max-keys", "1"}, {"prefix", config_.prefix}};
  ProbeAnswer answer = co_await probe(listing);
  AccessCheck check;
  check.reachable = answer.answered;
  check.problem = answer.answered ? answer.explanation : answer.network_problem;
  co_return check;
}

std::string Client::presigned_get_url(const std::string& key, Duration ttl,
                                      const ResponseOverrides& overrides) const {
  RequestToSign r;
  r.method = "GET";
  r.path = impl_->object_path(key);
  if (!overrides.content_disposition.empty()) {
    r.query.emplace_back("response-content-disposition", overrides.content_disposition);
  }
  if (!overrides.content_type.empty()) {
    r.query.emplace_back("response-content-type", overrides.content_type);
  }
  r.headers = {{"Host", impl_->address.host_header}};
  r.payload_sha256 = "UNSIGNED-PAYLOAD";
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(ttl);
  Signature signature = sign_with_query(r, impl_->credentials, impl_->scope,
                                        std::chrono::system_clock::now(), seconds);
  std::string url =
      impl_->address.scheme + "://" + impl_->address.host_header + uri_encode(r.path, true);
  char separator = '?';
  for (const auto* list : {&r.query, &signature.added}) {
    for (const auto& [name, value] : *list) {
      url += separator;
      url += uri_encode(name, false) + "=" + uri_encode(value, false);
      separator = '&';
    }
  }
  return url;
}

}  // namespace mxcd::s3
