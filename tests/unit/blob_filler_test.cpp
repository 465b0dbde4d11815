// The fill tier against a source held in memory: what readers of a blob being fetched
// receive, what reaches the cache, and how often the source is asked.
#include "blob/cache/blob_filler.hpp"

#include "core/identifiers.hpp"
#include "core/sha256.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <map>
#include <sstream>
#include <vector>

namespace mxcd {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

constexpr std::size_t kPiece = 1000;

// Blobs by location, sent a piece at a time. Between pieces the source yields to the other
// coroutines or, while held, waits until the test releases the next piece.
class MemorySource final : public BlobSource {
 public:
  explicit MemorySource(asio::io_context& io) : gate_(io) {}

  std::map<std::string, std::string> objects;
  std::optional<std::size_t> fail_after;  // bytes sent before the source fails
  std::optional<BlobHeaders> answer;      // headers the source's answer carries
  int gets = 0;
  std::vector<std::optional<ByteSpan>> ranges;  // asked for, one per get

  // From now on every piece after a get's first waits for release().
  void hold() { released_ = 0; }
  void release(std::size_t pieces) {
    *released_ += pieces;
    gate_.cancel();
  }

  std::string describe() const override { return "memory"; }
  std::string location(const BlobId& blob) const override {
    return blob.location.empty() ? blob.name : blob.location;
  }

  asio::awaitable<Status> get(const BlobId& blob, std::optional<ByteSpan> range,
                              BlobSink& sink) override {
    ++gets;
    ranges.push_back(range);
    auto it = objects.find(location(blob));
    if (it == objects.end()) co_return MatrixError::not_found("Not found");
    std::string_view bytes = it->second;
    if (range) bytes = bytes.substr(range->first, range->length());
    if (answer) {
      if (auto status = sink.headers(*answer); !status) co_return status;
    }
    for (std::size_t offset = 0, index = 0; offset < bytes.size(); offset += kPiece, ++index) {
      if (index > 0) co_await pause(index);
      if (fail_after && offset >= *fail_after)
        co_return MatrixError::unavailable("The source went away");
      const std::size_t size = std::min(kPiece, bytes.size() - offset);
      if (auto status = co_await sink.data(bytes.data() + offset, size); !status) co_return status;
    }
    co_return Status();
  }

  asio::awaitable<Result<std::optional<SourceObject>>> head(const BlobId& blob) override {
    auto it = objects.find(location(blob));
    if (it == objects.end()) co_return std::optional<SourceObject>();
    co_return std::optional<SourceObject>(SourceObject{it->second.size()});
  }

  asio::awaitable<Status> put(int fd, const BlobId& blob, const std::string&) override {
    std::string bytes(blob.size, '\0');
    if (::pread(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
      co_return MatrixError::internal("Could not read the file");
    }
    objects[location(blob)] = std::move(bytes);
    co_return Status();
  }

  asio::awaitable<Status> remove(const BlobId& blob) override {
    objects.erase(location(blob));
    co_return Status();
  }

 private:
  asio::awaitable<void> pause(std::size_t index) {
    if (!released_) {
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      co_return;
    }
    while (*released_ < index) {
      gate_.expires_at(asio::steady_timer::time_point::max());
      boost::system::error_code ignored;
      co_await gate_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
  }

  asio::steady_timer gate_;
  std::optional<std::size_t>
      released_;  // pieces released beyond each get's first; nullopt: not held
};

// What a reader of an opened blob received.
struct Read {
  std::string bytes;
  bool failed = false;  // the file stopped growing before all bytes were there
  int waits = 0;        // times the reader waited for more bytes
};

// Reads the first `length` bytes of the blob's file as a download would: what is there,
// then waits for more.
asio::awaitable<Read> read_file(const OpenBlob& blob, std::uint64_t length) {
  Read read;
  while (read.bytes.size() < length) {
    const std::uint64_t ready = blob.growing ? std::min(blob.growing->available(), length) : length;
    if (ready > read.bytes.size()) {
      std::string piece(ready - read.bytes.size(), '\0');
      ssize_t n =
          ::pread(blob.fd.get(), piece.data(), piece.size(), static_cast<off_t>(read.bytes.size()));
      if (n <= 0) {
        read.failed = true;
        break;
      }
      read.bytes.append(piece, 0, static_cast<std::size_t>(n));
      continue;
    }
    if (blob.growing->state() != GrowingFile::State::growing) {
      if (blob.growing->available() > read.bytes.size()) continue;
      read.failed = true;
      break;
    }
    ++read.waits;
    co_await blob.growing->wait_beyond(read.bytes.size());
  }
  co_return read;
}

std::string pattern(std::size_t size, char seed) {
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(seed + i * 7 + i / 251);
  return bytes;
}

BlobId hashed_blob(const std::string& bytes) { return BlobId{Sha256::hex_of(bytes), bytes.size()}; }

class BlobFillerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_logger_ = spdlog::default_logger();
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("blob_filler_test", sink));
    cache_ = std::make_unique<BlobCache>(root_, 1 << 24, std::vector<std::string>{});
    filler_ = std::make_unique<BlobFiller>(*cache_, source_, pool_);
  }

  void TearDown() override {
    filler_.reset();
    cache_.reset();
    pool_.join();
    std::error_code ignored;
    fs::remove_all(root_, ignored);
    spdlog::set_default_logger(previous_logger_);
  }

  // Runs the coroutine and every fetch it started to their end.
  template <class Test>
  void run(Test test) {
    std::exception_ptr failure;
    asio::co_spawn(io_, test(), [&](std::exception_ptr e) { failure = e; });
    io_.run();
    io_.restart();
    if (failure) std::rethrow_exception(failure);
  }

  asio::awaitable<Result<FilledBlob>> open(const BlobId& blob, FillCheck check,
                                           const std::optional<ByteSpan>& range) {
    const FillRequest request{blob, check};
    co_return co_await filler_->open(request, range);
  }
  asio::awaitable<Result<FilledBlob>> open(const BlobId& blob, FillCheck check) {
    const std::optional<ByteSpan> whole;  // named: GCC 12 and temporaries in coroutine calls
    co_return co_await open(blob, check, whole);
  }

  bool cached(const BlobId& blob) { return cache_->open(blob).valid(); }
  std::string log() const { return log_.str(); }

  const fs::path root_ =
      fs::temp_directory_path() / ("mxcd-blob-filler-test-" + generate_media_id());
  asio::io_context io_;
  asio::thread_pool pool_{1};
  MemorySource source_{io_};
  std::unique_ptr<BlobCache> cache_;
  std::unique_ptr<BlobFiller> filler_;

 private:
  std::ostringstream log_;
  std::shared_ptr<spdlog::logger> previous_logger_;
};

TEST_F(BlobFillerTest, ReadersSeeTheFileGrowAndReceiveEveryByte) {
  const std::string bytes = pattern(10 * kPiece + 17, 'a');
  const BlobId blob = hashed_blob(bytes);
  source_.objects[blob.name] = bytes;
  source_.hold();
  std::uint64_t first_available = 0;
  bool growing_at_first = false;
  std::string stepwise;
  Read other;
  run([&]() -> asio::awaitable<void> {
    auto opened = co_await open(blob, FillCheck::sha256_of_name);
    if (!opened || !opened->blob.growing) co_return;
    first_available = opened->blob.growing->available();
    growing_at_first = opened->blob.growing->state() == GrowingFile::State::growing;
    // A second reader joins while the file grows and reads on its own.
    auto joined = co_await open(blob, FillCheck::sha256_of_name);
    if (joined) {
      asio::co_spawn(
          io_,
          [&, joined = std::make_shared<FilledBlob>(std::move(*joined))]()
              -> asio::awaitable<void> { other = co_await read_file(joined->blob, bytes.size()); },
          asio::detached);
    }
    // This reader lets the source send one piece at a time.
    const OpenBlob& file = opened->blob;
    while (stepwise.size() < bytes.size()) {
      const std::uint64_t ready = file.growing->available();
      std::string piece(ready - stepwise.size(), '\0');
      if (::pread(file.fd.get(), piece.data(), piece.size(), static_cast<off_t>(stepwise.size())) !=
          static_cast<ssize_t>(piece.size())) {
        ADD_FAILURE() << "cannot read the growing file";
        break;
      }
      stepwise += piece;
      if (file.growing->state() != GrowingFile::State::growing) break;
      source_.release(1);
      co_await file.growing->wait_beyond(stepwise.size());
    }
  });
  EXPECT_EQ(first_available, kPiece);
  EXPECT_TRUE(growing_at_first);
  EXPECT_EQ(stepwise, bytes);
  EXPECT_EQ(other.bytes, bytes);
  EXPECT_FALSE(other.failed);
  EXPECT_GT(other.waits, 0);
  EXPECT_EQ(source_.gets, 1);
  EXPECT_TRUE(cached(blob));
}

TEST_F(BlobFillerTest, WrongBytesNeverCompleteAndAreNotCached) {
  const std::string bytes = pattern(5 * kPiece, 'a');
  const BlobId blob = hashed_blob(bytes);
  source_.objects[blob.name] = pattern(5 * kPiece, 'b');  // same size, other bytes
  Read read;
  run([&]() -> asio::awaitable<void> {
    auto opened = co_await open(blob, FillCheck::sha256_of_name);
    if (opened) read = co_await read_file(opened->blob, blob.size);
  });
  EXPECT_TRUE(read.failed);
  EXPECT_EQ(read.bytes.size(), blob.size - 1);  // all but the last byte
  EXPECT_FALSE(cached(blob));
  EXPECT_NE(log().find("does not match its name"), std::string::npos) << log();
}

TEST_F(BlobFillerTest, AWrongOneByteBlobIsAnError) {
  const BlobId blob = hashed_blob("x");
  source_.objects[blob.name] = "y";
  std::optional<MatrixError> error;
  run([&]() -> asio::awaitable<void> {
    auto opened = co_await open(blob, FillCheck::sha256_of_name);
    if (!opened) error = opened.error();
  });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->message, "The media's content is damaged");
  EXPECT_FALSE(cached(blob));
}

TEST_F(BlobFillerTest, ASourceFailingMidwayFailsItsReadersAndIsAskedAgainLater) {
  const std::string bytes = pattern(6 * kPiece, 'c');
  const BlobId blob = hashed_blob(bytes);
  source_.objects[blob.name] = bytes;
  source_.fail_after = 3 * kPiece;
  Read first, second;
  run([&]() -> asio::awaitable<void> {
    auto a = co_await open(blob, FillCheck::sha256_of_name);
    auto b = co_await open(blob, FillCheck::sha256_of_name);
    if (a) first = co_await read_file(a->blob, blob.size);
    if (b) second = co_await read_file(b->blob, blob.size);
  });
  EXPECT_TRUE(first.failed);
  EXPECT_TRUE(second.failed);
  EXPECT_EQ(first.bytes, bytes.substr(0, 3 * kPiece));
  EXPECT_EQ(source_.gets, 1);
  EXPECT_FALSE(cached(blob));

  source_.fail_after.reset();
  Read again;
  run([&]() -> asio::awaitable<void> {
    auto opened = co_await open(blob, FillCheck::sha256_of_name);
    if (opened) again = co_await read_file(opened->blob, blob.size);
  });
  EXPECT_EQ(again.bytes, bytes);
  EXPECT_EQ(source_.gets, 2);
  EXPECT_TRUE(cached(blob));
}

TEST_F(BlobFillerTest, AMissingBlobIsTheSourcesError) {
  const BlobId blob = hashed_blob("not there");
  std::optional<MatrixError> error;
  run([&]() -> asio::awaitable<void> {
    auto opened = co_await open(blob, FillCheck::sha256_of_name);
    if (!opened) error = opened.error();
  });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->message, "Not found");
}

TEST_F(BlobFillerTest, ConcurrentRequestsShareOneFetch) {
  const std::string bytes = pattern(8 * kPiece + 3, 'd');
  const BlobId blob = hashed_blob(bytes);
  source_.objects[blob.name] = bytes;
  source_.hold();
  std::vector<Read> reads(3);
  int growing = 0;
  run([&]() -> asio::awaitable<void> {
    std::vector<std::shared_ptr<FilledBlob>> opened;
    for (std::size_t i = 0; i < reads.size(); ++i) {
      auto filled = co_await open(blob, FillCheck::sha256_of_name);
      if (!filled) co_return;
      if (filled->blob.growing) ++growing;
      opened.push_back(std::make_shared<FilledBlob>(std::move(*filled)));
    }
    for (std::size_t i = 0; i < opened.size(); ++i) {
      asio::co_spawn(
          io_,
          [&, i, file = opened[i]]() -> asio::awaitable<void> {
            reads[i] = co_await read_file(file->blob, bytes.size());
          },
          asio::detached);
    }
    source_.release(100);
  });
  EXPECT_EQ(growing, 3);
  for (const auto& read : reads) EXPECT_EQ(read.bytes, bytes);
  EXPECT_EQ(source_.gets, 1);
  EXPECT_TRUE(cached(blob));
}

TEST_F(BlobFillerTest, ARangeIsFetchedAloneAndNotCached) {
  const std::string bytes = pattern(10 * kPiece, 'e');
  const BlobId blob = hashed_blob(bytes);
  source_.objects[blob.name] = bytes;
  std::uint64_t start = 0;
  Read read;
  run([&]() -> asio::awaitable<void> {
    const std::optional<ByteSpan> range = ByteSpan{2500, 4999};
    auto opened = co_await open(blob, FillCheck::sha256_of_name, range);
    if (!opened) co_return;
    start = opened->blob.start;
    read = co_await read_file(opened->blob, 2500);
  });
  EXPECT_EQ(start, 2500u);
  EXPECT_EQ(read.bytes, bytes.substr(2500, 2500));
  ASSERT_EQ(source_.ranges.size(), 1u);
  ASSERT_TRUE(source_.ranges[0]);
  EXPECT_EQ(source_.ranges[0]->first, 2500u);
  EXPECT_EQ(source_.ranges[0]->last, 4999u);
  EXPECT_FALSE(cached(blob));
  EXPECT_EQ(cache_->count(), 0u);
}

TEST_F(BlobFillerTest, ARangeFromTheStartFetchesTheWholeBlobIntoTheCache) {
  const std::string bytes = pattern(3 * kPiece, 'f');
  const BlobId blob = hashed_blob(bytes);
  source_.objects[blob.name] = bytes;
  Read read;
  run([&]() -> asio::awaitable<void> {
    const std::optional<ByteSpan> range = ByteSpan{0, 99};
    auto opened = co_await open(blob, FillCheck::sha256_of_name, range);
    if (opened) read = co_await read_file(opened->blob, 100);
  });
  EXPECT_EQ(read.bytes, bytes.substr(0, 100));
  ASSERT_EQ(source_.ranges.size(), 1u);
  EXPECT_FALSE(source_.ranges[0]);
  EXPECT_TRUE(cached(blob));
}

TEST_F(BlobFillerTest, AnUnhashedBlobIsCheckedBySize) {
  const std::string bytes = pattern(4 * kPiece + 1, 'g');
  BlobId blob{unhashed_blob_id("memory", "adopted/object"), bytes.size(), "adopted/object"};
  source_.objects[blob.location] = bytes;
  Read read;
  run([&]() -> asio::awaitable<void> {
    auto opened = co_await open(blob, FillCheck::size_only);
    if (opened) read = co_await read_file(opened->blob, blob.size);
  });
  EXPECT_EQ(read.bytes, bytes);
  EXPECT_FALSE(read.failed);
  EXPECT_TRUE(cached(blob));

  // An object shorter than the blob's size never completes.
  BlobId other{unhashed_blob_id("memory", "adopted/short"), bytes.size(), "adopted/short"};
  source_.objects[other.location] = bytes.substr(0, bytes.size() - 10);
  Read short_read;
  run([&]() -> asio::awaitable<void> {
    auto opened = co_await open(other, FillCheck::size_only);
    if (opened) short_read = co_await read_file(opened->blob, other.size);
  });
  EXPECT_TRUE(short_read.failed);
  EXPECT_EQ(short_read.bytes.size(), bytes.size() - 10);
  EXPECT_FALSE(cached(other));
  EXPECT_NE(log().find("has 3991 bytes, 4001 expected"), std::string::npos) << log();
}

TEST_F(BlobFillerTest, AComputedHashIsReportedAndTheAnswersHeadersReachTheCaller) {
  const std::string bytes = pattern(2 * kPiece + 5, 'h');
  BlobId blob{unhashed_blob_id("memory", "remote/media"), bytes.size(), "remote/media"};
  source_.objects[blob.location] = bytes;
  source_.answer = BlobHeaders{"image/png", "cat.png"};
  std::string hashed;
  BlobHeaders headers;
  Read read;
  run([&]() -> asio::awaitable<void> {
    const FillRequest request{blob, FillCheck::compute_sha256,
                              [&](const std::string& sha256) { hashed = sha256; }};
    const std::optional<ByteSpan> whole;
    auto opened = co_await filler_->open(request, whole);
    if (!opened) co_return;
    headers = opened->headers;
    read = co_await read_file(opened->blob, blob.size);
  });
  EXPECT_EQ(read.bytes, bytes);
  EXPECT_EQ(hashed, Sha256::hex_of(bytes));
  EXPECT_EQ(headers.content_type, "image/png");
  EXPECT_EQ(headers.filename, "cat.png");
  EXPECT_TRUE(cached(blob));
}

TEST_F(BlobFillerTest, RemovingTheBlobDuringItsFetchKeepsItOutOfTheCache) {
  const std::string bytes = pattern(4 * kPiece, 'i');
  const BlobId blob = hashed_blob(bytes);
  source_.objects[blob.name] = bytes;
  Read read;
  run([&]() -> asio::awaitable<void> {
    auto opened = co_await open(blob, FillCheck::sha256_of_name);
    if (!opened) co_return;
    filler_->remove(blob.name);
    read = co_await read_file(opened->blob, blob.size);
  });
  EXPECT_EQ(read.bytes, bytes);
  EXPECT_FALSE(cached(blob));
}

}  // namespace
}  // namespace mxcd
