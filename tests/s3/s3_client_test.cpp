// The S3 client's operations against a real S3 server. tests/integration/test_s3_client.py
// starts Ceph RGW, creates a bucket and runs this binary with MXCD_TEST_S3_* set.
#include "s3/s3_client.hpp"

#include "core/sha256.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>

namespace mxcd::s3 {
namespace {

namespace asio = boost::asio;

std::string env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) {
    ADD_FAILURE() << name << " is not set: run this through tests/integration/test_s3_client.py";
    return {};
  }
  return value;
}

class Collect final : public ObjectSink {
 public:
  std::string bytes;
  asio::awaitable<Status> data(const char* p, std::size_t n) override {
    bytes.append(p, n);
    co_return Status();
  }
};

// A file holding the given bytes, for request bodies.
class TempFile {
 public:
  explicit TempFile(const std::string& bytes) {
    char name[] = "/tmp/mxcd-s3-client-test-XXXXXX";
    fd_ = ::mkstemp(name);
    ::unlink(name);
    EXPECT_EQ(::write(fd_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  ~TempFile() { ::close(fd_); }
  FileRegion region(std::uint64_t offset, std::uint64_t length) const {
    return {fd_, offset, length};
  }

 private:
  int fd_ = -1;
};

std::string random_bytes(std::size_t n) {
  std::mt19937_64 random(n);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(random());
  return s;
}

class S3ClientTest : public ::testing::Test {
 protected:
  S3ClientTest() : pool_(1) {
    config_.endpoint = env("MXCD_TEST_S3_ENDPOINT");
    config_.bucket = env("MXCD_TEST_S3_BUCKET");
    config_.access_key_id = env("MXCD_TEST_S3_ACCESS_KEY");
    config_.secret_access_key = env("MXCD_TEST_S3_SECRET_KEY");
    config_.path_style = std::getenv("MXCD_TEST_S3_VIRTUAL") == nullptr;
    config_.multipart_threshold = 5 << 20;
    config_.part_size = 5 << 20;
    client_ = std::make_unique<Client>(config_, pool_);
  }

  void put(const std::string& key, const std::string& bytes) {
    TempFile file(bytes);
    Status status = run(client_->put_file(key, file.region(0, bytes.size()), Sha256::hex_of(bytes),
                                          "application/octet-stream"));
    ASSERT_TRUE(status) << status.error().message;
  }

  std::string get(const std::string& key, std::optional<ByteSpan> range = std::nullopt) {
    Collect sink;
    Status status = run(client_->get_object(key, range, sink));
    EXPECT_TRUE(status) << status.error().message;
    return sink.bytes;
  }

  // Runs one coroutine to completion. One context for the whole test: the client keeps
  // connections open on it between calls.
  template <class T>
  T run(asio::awaitable<T> task) {
    std::optional<T> result;
    auto wrapper = [&]() -> asio::awaitable<void> { result.emplace(co_await std::move(task)); };
    asio::co_spawn(context_, wrapper, [](std::exception_ptr error) {
      if (error) std::rethrow_exception(error);
    });
    context_.restart();
    context_.run();
    return std::move(*result);
  }

  asio::io_context context_;
  asio::thread_pool pool_;
  S3StoreConfig config_;
  std::unique_ptr<Client> client_;
};

TEST_F(S3ClientTest, PutHeadGetRangeDelete) {
  std::string bytes = random_bytes(300'000);
  put("ops/object", bytes);
  auto info = run(client_->head_object("ops/object"));
  ASSERT_TRUE(info);
  ASSERT_TRUE(info->has_value());
  EXPECT_EQ((*info)->size, bytes.size());
  EXPECT_EQ((*info)->content_type, "application/octet-stream");
  EXPECT_EQ(get("ops/object"), bytes);
  EXPECT_EQ(get("ops/object", ByteSpan{1000, 1999}), bytes.substr(1000, 1000));
  EXPECT_TRUE(run(client_->delete_object("ops/object")));
  auto gone = run(client_->head_object("ops/object"));
  ASSERT_TRUE(gone);
  EXPECT_FALSE(gone->has_value());
  EXPECT_TRUE(run(client_->delete_object("ops/object")));  // deleting twice is fine

  Collect sink;
  Status missing = run(client_->get_object("ops/object", std::nullopt, sink));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().status, 404U);
}

TEST_F(S3ClientTest, KeysWithCharactersThatNeedEncoding) {
  const std::string key = "odd keys/a b+c%d~e=f&g/ü.txt";
  put(key, "encoded");
  EXPECT_EQ(get(key), "encoded");
  auto page = run(client_->list_objects("odd keys/", ""));
  ASSERT_TRUE(page);
  ASSERT_EQ(page->objects.size(), 1U);
  EXPECT_EQ(page->objects[0].key, key);
}

TEST_F(S3ClientTest, ListPaginatesAndBatchDeleteRemovesAll) {
  std::vector<std::string> keys;
  for (int i = 0; i < 7; ++i) {
    keys.push_back("list/" + std::to_string(i));
    put(keys.back(), "item " + std::to_string(i));
  }
  std::vector<std::string> listed;
  std::string token;
  int pages = 0;
  do {
    auto page = run(client_->list_objects("list/", token, 3));
    ASSERT_TRUE(page) << page.error().message;
    for (auto& object : page->objects) listed.push_back(object.key);
    token = page->next_continuation_token;
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(listed, keys);

  auto failed = run(client_->delete_objects(keys));
  ASSERT_TRUE(failed) << failed.error().message;
  EXPECT_TRUE(failed->empty());
  auto after = run(client_->list_objects("list/", ""));
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->objects.empty());
}

TEST_F(S3ClientTest, MultipartThroughPutFile) {
  std::string bytes = random_bytes(11 << 20);  // three parts: 5 + 5 + 1 MiB
  put("multi/object", bytes);
  EXPECT_EQ(get("multi/object"), bytes);
  auto uploads = run(client_->list_multipart_uploads("multi/"));
  ASSERT_TRUE(uploads);
  EXPECT_TRUE(uploads->empty());
}

TEST_F(S3ClientTest, MultipartStepsAndAbort) {
  auto id = run(client_->create_multipart_upload("steps/object", "text/plain"));
  ASSERT_TRUE(id) << id.error().message;
  std::string part = random_bytes(5 << 20);
  TempFile file(part);
  auto etag = run(client_->upload_part("steps/object", *id, 1, file.region(0, part.size())));
  ASSERT_TRUE(etag) << etag.error().message;
  auto listed = run(client_->list_multipart_uploads("steps/"));
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1U);
  EXPECT_EQ((*listed)[0].upload_id, *id);
  EXPECT_TRUE(run(client_->abort_multipart_upload("steps/object", *id)));
  listed = run(client_->list_multipart_uploads("steps/"));
  ASSERT_TRUE(listed);
  EXPECT_TRUE(listed->empty());
  auto head = run(client_->head_object("steps/object"));
  ASSERT_TRUE(head);
  EXPECT_FALSE(head->has_value());
}

TEST_F(S3ClientTest, UnsignedPayload) {
  config_.unsigned_payload = true;
  client_ = std::make_unique<Client>(config_, pool_);
  put("unsigned/object", "sent as UNSIGNED-PAYLOAD");
  EXPECT_EQ(get("unsigned/object"), "sent as UNSIGNED-PAYLOAD");
}

TEST_F(S3ClientTest, PresignedUrlIsPrintedForTheCaller) {
  put("presigned/object", "fetched with curl");
  std::string url = client_->presigned_get_url("presigned/object", std::chrono::minutes(1),
                                               {"text/plain", "attachment; filename=\"a b.txt\""});
  // The Python side fetches it with curl and checks the bytes and headers.
  std::printf("PRESIGNED %s\n", url.c_str());
}

TEST_F(S3ClientTest, CheckAccessExplainsAWrongSecret) {
  config_.secret_access_key = "wrong";
  client_ = std::make_unique<Client>(config_, pool_);
  auto check = run(client_->check_access());
  EXPECT_TRUE(check.reachable);
  EXPECT_NE(check.problem.find("secret_access_key"), std::string::npos) << check.problem;
}

}  // namespace
}  // namespace mxcd::s3
