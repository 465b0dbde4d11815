// Runs every case of the AWS Signature Version 4 test suite (shared/aws-sigv4-test-suite):
// for each request, header signing and query signing must produce the suite's canonical
// request, string to sign and signature.
#include "core/sha256.hpp"
#include "core/config.hpp"
#include "s3/sigv4.hpp"

#include <boost/json/parse.hpp>
#include <boost/url/decode_view.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace mxcd::s3 {
namespace {

namespace fs = std::filesystem;

const fs::path kSuite = MXCD_SIGV4_SUITE_DIR;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (char c : boost::urls::decode_view(s)) out += c;
  return out;
}

struct SuiteCase {
  RequestToSign request;
  Credentials credentials;
  SigningScope scope;
  std::chrono::system_clock::time_point now;
  std::chrono::seconds expires{0};
  bool sign_body = false;
};

SuiteCase load(const fs::path& dir) {
  SuiteCase c;
  auto context = boost::json::parse(read_file(dir / "context.json")).as_object();
  const auto& creds = context.at("credentials").as_object();
  c.credentials.access_key_id = creds.at("access_key_id").as_string();
  c.credentials.secret_access_key = creds.at("secret_access_key").as_string();
  // "post-sts-header-after" adds the token after signing: it is not part of the signature.
  if (creds.contains("token") && dir.filename() != "post-sts-header-after") {
    c.credentials.session_token = creds.at("token").as_string();
  }
  c.scope.region = context.at("region").as_string();
  c.scope.service = context.at("service").as_string();
  c.scope.normalize_path = context.at("normalize").as_bool();
  c.sign_body = context.at("sign_body").as_bool();
  c.expires = std::chrono::seconds(context.at("expiration_in_seconds").as_int64());
  c.now = std::chrono::system_clock::time_point(std::chrono::milliseconds(
      *parse_utc_timestamp(std::string(context.at("timestamp").as_string()))));

  std::string raw = read_file(dir / "request.txt");
  std::string body;
  if (auto blank = raw.find("\n\n"); blank != std::string::npos) {
    body = raw.substr(blank + 2);
    raw.resize(blank);
  }
  std::istringstream lines(raw);
  std::string line;
  std::getline(lines, line);
  auto first_space = line.find(' ');
  auto last_space = line.rfind(' ');
  c.request.method = line.substr(0, first_space);
  std::string target = line.substr(first_space + 1, last_space - first_space - 1);
  auto question = target.find('?');
  c.request.path = target.substr(0, question);
  if (question != std::string::npos) {
    std::string_view query = std::string_view(target).substr(question + 1);
    while (!query.empty()) {
      auto amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      auto eq = pair.find('=');
      c.request.query.emplace_back(
          percent_decode(pair.substr(0, eq)),
          eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1)));
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    }
  }
  while (std::getline(lines, line)) {
    if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
      c.request.headers.back().second += "\n" + line;  // a folded header continues
      continue;
    }
    auto colon = line.find(':');
    c.request.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  c.request.payload_sha256 = Sha256::hex_of(body);
  return c;
}

std::string expected(const fs::path& dir, const char* name) { return read_file(dir / name); }

class SigV4Suite : public ::testing::TestWithParam<std::string> {};

TEST_P(SigV4Suite, HeaderSigning) {
  const fs::path dir = kSuite / GetParam();
  SuiteCase c = load(dir);
  Signature s = sign_with_headers(c.request, c.credentials, c.scope, c.now, c.sign_body);
  EXPECT_EQ(s.canonical_request, expected(dir, "header-canonical-request.txt"));
  EXPECT_EQ(s.string_to_sign, expected(dir, "header-string-to-sign.txt"));
  EXPECT_EQ(s.signature, expected(dir, "header-signature.txt"));
  std::string authorization = s.added.back().second;
  EXPECT_NE(expected(dir, "header-signed-request.txt").find("Authorization:" + authorization),
            std::string::npos);
}

TEST_P(SigV4Suite, QuerySigning) {
  const fs::path dir = kSuite / GetParam();
  SuiteCase c = load(dir);
  Signature s = sign_with_query(c.request, c.credentials, c.scope, c.now, c.expires);
  EXPECT_EQ(s.canonical_request, expected(dir, "query-canonical-request.txt"));
  EXPECT_EQ(s.string_to_sign, expected(dir, "query-string-to-sign.txt"));
  EXPECT_EQ(s.signature, expected(dir, "query-signature.txt"));
}

std::vector<std::string> suite_cases() {
  std::vector<std::string> names;
  if (!fs::is_directory(kSuite)) return names;
  for (const auto& entry : fs::directory_iterator(kSuite)) {
    if (fs::exists(entry.path() / "request.txt")) names.push_back(entry.path().filename());
  }
  std::sort(names.begin(), names.end());
  return names;
}

INSTANTIATE_TEST_SUITE_P(Aws, SigV4Suite, ::testing::ValuesIn(suite_cases()), [](const auto& info) {
  std::string name = info.param;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
});

TEST(SigV4Suite, IsPresent) {
  // The suite lives beside the repository; without it the cases above would silently vanish.
  EXPECT_GE(suite_cases().size(), 30u) << "missing AWS SigV4 test suite at " << kSuite;
}

TEST(SigV4, S3PathsAreNotNormalised) {
  EXPECT_EQ(canonical_path("/bucket/a//b/./c", false), "/bucket/a//b/./c");
  EXPECT_EQ(canonical_path("/bucket/key with space", false), "/bucket/key%20with%20space");
  EXPECT_EQ(canonical_path("/a/b/../c", true), "/a/c");
  EXPECT_EQ(canonical_path("", false), "/");
}

TEST(SigV4, UriEncode) {
  EXPECT_EQ(uri_encode("a b+c/d~e", false), "a%20b%2Bc%2Fd~e");
  EXPECT_EQ(uri_encode("a/b", true), "a/b");
  EXPECT_EQ(uri_encode("\xe1\x88\xb4", false), "%E1%88%B4");
}

}  // namespace
}  // namespace mxcd::s3
