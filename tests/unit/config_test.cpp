#include "core/config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace mxcd {
namespace {

constexpr const char* kMinimal = R"(
server_name: example.org
auth: {homeserver_url: "http://127.0.0.1:8008/"}
storage: {path: /var/lib/mxcd}
database: {sqlite: {path: /var/lib/mxcd/db}}
)";

// The minimal config with whole top-level sections replaced by those in `sections`.
std::string minimal_with(const std::string& sections) {
  std::string out;
  std::string_view rest = kMinimal;
  while (!rest.empty()) {
    auto end = rest.find('\n');
    std::string_view line = rest.substr(0, end + 1);
    rest.remove_prefix(line.size());
    auto colon = line.find(':');
    // "\nkey:" built by append: GCC 12 warns (falsely, -Wrestrict) about operator+ here.
    std::string key = "\n";
    key.append(line.substr(0, colon + 1));
    bool replaced = colon != std::string_view::npos && (sections.rfind(key.substr(1), 0) == 0 ||
                                                        sections.find(key) != std::string::npos);
    if (!replaced) out += line;
  }
  return out + sections + "\n";
}

Config load_ok(const std::string& text) {
  auto result = load_config_text(text);
  if (auto* error = std::get_if<ConfigError>(&result)) {
    ADD_FAILURE() << error->describe();
    return {};
  }
  return std::get<Config>(result);
}

ConfigError load_error(const std::string& text) {
  auto result = load_config_text(text);
  if (auto* error = std::get_if<ConfigError>(&result)) return *error;
  ADD_FAILURE() << "expected an error for:\n" << text;
  return {};
}

TEST(Config, MinimalConfigGetsDefaults) {
  Config c = load_ok(kMinimal);
  EXPECT_EQ(c.server_name, "example.org");
  EXPECT_EQ(c.auth.homeserver_url, "http://127.0.0.1:8008");  // trailing slash removed
  EXPECT_EQ(c.listen.address, "127.0.0.1");
  EXPECT_EQ(c.listen.port, 8090);
  EXPECT_EQ(c.media.max_upload_size, 100ULL << 20);
  EXPECT_EQ(c.media.download_wait_default, std::chrono::seconds(20));
  EXPECT_EQ(c.media.download_wait_max, std::chrono::seconds(60));
  EXPECT_EQ(c.media.max_pending_uploads_per_user, 5u);
  EXPECT_FALSE(c.media.legacy_download_freeze_ms.has_value());
  EXPECT_EQ(c.storage.path, "/var/lib/mxcd");
  EXPECT_EQ(c.storage.free_space_reserve, 1ULL << 30);
}

TEST(Config, FreeSpaceReserve) {
  Config c = load_ok(minimal_with("storage: {path: /var/lib/mxcd, free_space_reserve: 8MiB}\n"));
  EXPECT_EQ(c.storage.free_space_reserve, 8ULL << 20);
  EXPECT_EQ(load_ok(minimal_with("storage: {path: /m, free_space_reserve: 0}\n"))
                .storage.free_space_reserve,
            0u);
}

TEST(Config, ValuesAndUnits) {
  Config c = load_ok(minimal_with(R"(listen: {address: "::1", port: 9000}
http: {max_header_size: 32KiB, header_timeout: 500ms, keepalive_timeout: 2m,
       body_timeout: 5s, min_body_rate: 4KiB, max_pending_connections: 7,
       trusted_proxies: [10.0.0.0/8, "::1"]}
media: {max_upload_size: 50M, pending_upload_expiry: 1d, legacy_download_freeze: "2024-09-01T00:00:00Z"}
log: {level: debug}
)"));
  EXPECT_EQ(c.listen.port, 9000);
  EXPECT_EQ(c.http.max_header_size, 32u * 1024);
  EXPECT_EQ(c.http.header_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(c.http.keepalive_timeout, std::chrono::minutes(2));
  EXPECT_EQ(c.http.body_timeout, std::chrono::seconds(5));
  EXPECT_EQ(c.http.min_body_rate, 4096u);
  EXPECT_EQ(c.http.max_pending_connections, 7u);
  EXPECT_EQ(c.http.trusted_proxies.size(), 2u);
  EXPECT_EQ(c.media.max_upload_size, 50ULL << 20);
  EXPECT_EQ(c.media.pending_upload_expiry, std::chrono::hours(24));
  EXPECT_EQ(c.media.legacy_download_freeze_ms, 1725148800000LL);
  EXPECT_EQ(c.log.level, "debug");
}

TEST(Config, HttpsHomeserverWithItsOwnCa) {
  Config c = load_ok(minimal_with(
      "auth: {homeserver_url: \"https://matrix.example.org\", homeserver_ca_file: /etc/ca.pem}"));
  EXPECT_EQ(c.auth.homeserver_url, "https://matrix.example.org");
  EXPECT_EQ(c.auth.homeserver_ca_file, "/etc/ca.pem");
}

TEST(Config, EnvironmentVariables) {
  setenv("MXCD_TEST_TOKEN", "from-the-environment", 1);
  Config c = load_ok(
      minimal_with("auth: {static_tokens: [{token: \"${MXCD_TEST_TOKEN}\", user_id: \"@a:b\"}]}"));
  ASSERT_EQ(c.auth.static_tokens.size(), 1u);
  EXPECT_EQ(c.auth.static_tokens[0].token, "from-the-environment");
  unsetenv("MXCD_UNSET_VARIABLE");
  ConfigError e = load_error(minimal_with("storage: {path: \"${MXCD_UNSET_VARIABLE}/x\"}"));
  EXPECT_EQ(e.key, "storage.path");
  EXPECT_NE(e.message.find("MXCD_UNSET_VARIABLE"), std::string::npos);
}

TEST(Config, PostgresFromDiscreteKeysOrUrl) {
  setenv("MXCD_TEST_DB_PASSWORD", "it's a \\secret", 1);
  Config c = load_ok(minimal_with(R"(database:
  postgres: {host: db.internal, port: 5433, dbname: mxcd, user: mxcd,
             password: "${MXCD_TEST_DB_PASSWORD}", pool_size: 20, connect_timeout: 2s})"));
  EXPECT_TRUE(c.database.sqlite_path.empty());
  ASSERT_TRUE(c.database.postgres.has_value());
  EXPECT_EQ(c.database.postgres->conninfo,
            "host='db.internal' port='5433' dbname='mxcd' user='mxcd' "
            "password='it\\'s a \\\\secret' ");
  EXPECT_EQ(c.database.postgres->pool_size, 20u);
  EXPECT_EQ(c.database.postgres->connect_timeout, std::chrono::seconds(2));

  c = load_ok(minimal_with("database: {postgres: {url: \"postgresql://mxcd@db/mxcd\"}}"));
  ASSERT_TRUE(c.database.postgres.has_value());
  EXPECT_EQ(c.database.postgres->conninfo, "postgresql://mxcd@db/mxcd");
  EXPECT_EQ(c.database.postgres->pool_size, 10u);
}

TEST(Config, DatabaseTimeouts) {
  // Defaults of a few seconds: a frozen database costs a request seconds, not forever.
  Config c = load_ok(minimal_with("database: {postgres: {host: h}}"));
  ASSERT_TRUE(c.database.postgres.has_value());
  EXPECT_EQ(c.database.postgres->connect_timeout, std::chrono::seconds(5));
  EXPECT_EQ(c.database.postgres->statement_timeout, std::chrono::seconds(5));
  EXPECT_EQ(c.database.postgres->acquire_timeout, std::chrono::seconds(5));
  EXPECT_EQ(c.database.postgres->network_timeout, std::chrono::seconds(10));
  EXPECT_EQ(c.database.health_timeout, std::chrono::seconds(5));

  c = load_ok(minimal_with(R"(database:
  health_timeout: 1500ms
  postgres: {host: h, statement_timeout: 250ms, acquire_timeout: 2s, network_timeout: 30s})"));
  EXPECT_EQ(c.database.postgres->statement_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(c.database.postgres->acquire_timeout, std::chrono::seconds(2));
  EXPECT_EQ(c.database.postgres->network_timeout, std::chrono::seconds(30));
  EXPECT_EQ(c.database.health_timeout, std::chrono::milliseconds(1500));

  // The health deadline is the database section's, whichever the backend.
  c = load_ok(minimal_with("database: {health_timeout: 3s, sqlite: {path: /db}}"));
  EXPECT_EQ(c.database.health_timeout, std::chrono::seconds(3));
}

struct BadCase {
  const char* yaml;  // replaces the minimal config's section of the same name
  const char* key;
};

class InvalidConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(InvalidConfig, NamesTheKey) {
  ConfigError e = load_error(minimal_with(GetParam().yaml));
  EXPECT_EQ(e.key, GetParam().key) << e.describe();
  EXPECT_FALSE(e.message.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Keys, InvalidConfig,
    ::testing::Values(
        BadCase{"unknown_top_level: 1", "unknown_top_level"},
        BadCase{"media: {max_upload_sise: 1M}", "media.max_upload_sise"},
        BadCase{"media: {max_upload_size: [1, 2]}", "media.max_upload_size"},
        BadCase{"media: {max_upload_size: 10 parsecs}", "media.max_upload_size"},
        BadCase{"media: {max_upload_size: 0}", "media.max_upload_size"},
        BadCase{"storage: {path: /m, free_space_reserve: lots}", "storage.free_space_reserve"},
        BadCase{"http: {idle_timeout: soon}", "http.idle_timeout"},
        BadCase{"http: {idle_timeout: 0s}", "http.idle_timeout"},
        BadCase{"http: {idle_timeout: -5s}", "http.idle_timeout"},
        BadCase{"listen: {port: 0}", "listen.port"},
        BadCase{"listen: {port: 70000}", "listen.port"},
        BadCase{"listen: {address: localhost}", "listen.address"},
        BadCase{"http: {trusted_proxies: [10.0.0.0/8, nonsense]}", "http.trusted_proxies[1]"},
        BadCase{"http: [1, 2]", "http"},
        BadCase{"auth: {homeserver_url: \"ftp://hs.example\"}", "auth.homeserver_url"},
        BadCase{"auth: {homeserver_url: \"https://\"}", "auth.homeserver_url"},
        BadCase{"auth: {homeserver_url: \"\"}", "auth.homeserver_url"},
        BadCase{"auth: {static_tokens: [{token: short, user_id: \"@a:b\"}]}",
                "auth.static_tokens[0].token"},
        BadCase{"auth: {static_tokens: [{token: long-enough-token, user_id: alice}]}",
                "auth.static_tokens[0].user_id"},
        BadCase{"storage: {path: \"\"}", "storage.path"},
        BadCase{"database: {sqlite: {}}", "database.sqlite.path"},
        BadCase{"database: {postgres: {}}", "database.postgres"},
        BadCase{"database: {}", "database"},
        BadCase{"database: {sqlite: {path: /db}, postgres: {url: \"postgresql://h/d\"}}",
                "database"},
        BadCase{"database: {postgres: {url: \"postgresql://h/d\", host: h}}",
                "database.postgres.url"},
        BadCase{"database: {postgres: {host: h, pool_size: 0}}", "database.postgres.pool_size"},
        BadCase{"database: {postgres: {host: h, hots: x}}", "database.postgres.hots"},
        BadCase{"database: {postgres: {host: h, statement_timeout: 0s}}",
                "database.postgres.statement_timeout"},
        BadCase{"database: {postgres: {host: h, statement_timeout: 25d}}",
                "database.postgres.statement_timeout"},
        BadCase{"database: {postgres: {host: h, acquire_timeout: never}}",
                "database.postgres.acquire_timeout"},
        BadCase{"database: {postgres: {host: h, network_timeout: 500ms}}",
                "database.postgres.network_timeout"},
        BadCase{"database: {postgres: {host: h, network_timeout: 2h}}",
                "database.postgres.network_timeout"},
        BadCase{"database: {health_timeout: 0s, postgres: {host: h}}", "database.health_timeout"},
        BadCase{"media: {download_wait_default: 2m, download_wait_max: 1m}",
                "media.download_wait_default"},
        BadCase{"media: {legacy_download_freeze: yesterday}", "media.legacy_download_freeze"},
        BadCase{"log: {level: chatty}", "log.level"}));

TEST(Config, DuplicateKeysAreAnError) {
  EXPECT_EQ(load_error(std::string(kMinimal) + "storage: {path: /elsewhere}\n").key, "storage");
  EXPECT_EQ(load_error(minimal_with("listen: {port: 1, port: 2}")).key, "listen.port");
}

TEST(Config, MissingServerName) {
  EXPECT_EQ(load_error("storage: {path: /x}\n").key, "server_name");
}

TEST(Config, SyntaxErrorHasNoKey) {
  ConfigError e = load_error("server_name: [unclosed\n");
  EXPECT_EQ(e.key, "");
  EXPECT_NE(e.message.find("YAML"), std::string::npos);
}

TEST(Units, Sizes) {
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_EQ(parse_size("1024"), 1024u);
  EXPECT_EQ(parse_size("16K"), 16u * 1024);
  EXPECT_EQ(parse_size("16KiB"), 16u * 1024);
  EXPECT_EQ(parse_size("2 GiB"), 2ULL << 30);
  EXPECT_FALSE(parse_size(""));
  EXPECT_FALSE(parse_size("M"));
  EXPECT_FALSE(parse_size("1.5M"));
  EXPECT_FALSE(parse_size("-1"));
  EXPECT_FALSE(parse_size("10MB"));
  EXPECT_FALSE(parse_size("99999999999999G"));
}

TEST(Units, Durations) {
  EXPECT_EQ(parse_duration("90"), std::chrono::seconds(90));
  EXPECT_EQ(parse_duration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(parse_duration("3m"), std::chrono::minutes(3));
  EXPECT_EQ(parse_duration("2h"), std::chrono::hours(2));
  EXPECT_EQ(parse_duration("1d"), std::chrono::hours(24));
  EXPECT_FALSE(parse_duration("1w"));
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration("1.5s"));
  EXPECT_FALSE(parse_duration("99999999999999d"));
}

TEST(Units, Timestamps) {
  EXPECT_EQ(parse_utc_timestamp("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_utc_timestamp("2024-09-01T00:00:00Z"), 1725148800000LL);
  EXPECT_FALSE(parse_utc_timestamp("2024-09-01"));
  EXPECT_FALSE(parse_utc_timestamp("2024-09-01T00:00:00+02:00"));
  EXPECT_FALSE(parse_utc_timestamp("yesterday"));
}

TEST(Config, ThumbnailSizesAndLimits) {
  Config defaults = load_ok(kMinimal);
  EXPECT_EQ(defaults.thumbnails.sizes.size(), 5u);
  EXPECT_TRUE(defaults.thumbnails.generate_on_upload);
  EXPECT_FALSE(defaults.thumbnails.dynamic);
  Config c = load_ok(minimal_with(
      "thumbnails: {sizes: [{width: 64, height: 48, method: crop}, {width: 200, height: 100}], "
      "generate_on_upload: false, dynamic: true, max_source_size: 8MiB, max_pixels: 1000, "
      "max_frames: 10, workers: 3, time_limit: 5s}"));
  ASSERT_EQ(c.thumbnails.sizes.size(), 2u);
  EXPECT_EQ(c.thumbnails.sizes[0].width, 64u);
  EXPECT_TRUE(c.thumbnails.sizes[0].crop);
  EXPECT_FALSE(c.thumbnails.sizes[1].crop) << "scale is the default method";
  EXPECT_FALSE(c.thumbnails.generate_on_upload);
  EXPECT_TRUE(c.thumbnails.dynamic);
  EXPECT_EQ(c.thumbnails.max_source_size, 8u << 20);
  EXPECT_EQ(c.thumbnails.max_pixels, 1000u);
  EXPECT_EQ(c.thumbnails.max_frames, 10u);
  EXPECT_EQ(c.thumbnails.workers, 3u);
  EXPECT_EQ(c.thumbnails.time_limit, std::chrono::seconds(5));
}

TEST(Config, ThumbnailQueueLimit) {
  EXPECT_EQ(load_ok(kMinimal).thumbnails.queue_limit, 256u);
  EXPECT_EQ(load_ok(minimal_with("thumbnails: {queue_limit: 3}")).thumbnails.queue_limit, 3u);
  EXPECT_EQ(load_error(minimal_with("thumbnails: {queue_limit: 0}")).key, "thumbnails.queue_limit");
  EXPECT_EQ(load_error(minimal_with("thumbnails: {queue_limit: many}")).key,
            "thumbnails.queue_limit");
}

TEST(Config, BadThumbnailSettingsNameTheKey) {
  EXPECT_EQ(load_error(minimal_with("thumbnails: {sizes: []}")).key, "thumbnails.sizes");
  EXPECT_EQ(
      load_error(minimal_with("thumbnails: {sizes: [{width: 10, height: 10, method: fit}]}")).key,
      "thumbnails.sizes[0].method");
  EXPECT_EQ(load_error(minimal_with("thumbnails: {sizes: [{width: 10}]}")).key,
            "thumbnails.sizes[0].width");
  EXPECT_EQ(load_error(minimal_with("thumbnails: {dynamic: yes}")).key, "thumbnails.dynamic");
  EXPECT_EQ(load_error(minimal_with("thumbnails: {workers: 0}")).key, "thumbnails.workers");
  EXPECT_EQ(load_error(minimal_with("thumbnails: {size: []}")).key, "thumbnails.size");
}

TEST(Config, ScrubIsOffAndSlowByDefault) {
  Config c = load_ok(kMinimal);
  EXPECT_FALSE(c.scrub.enabled);
  EXPECT_EQ(c.scrub.bytes_per_second, 8ULL << 20);
  EXPECT_EQ(c.scrub.interval, std::chrono::hours(24 * 7));
}

TEST(Config, ScrubSettings) {
  Config c =
      load_ok(minimal_with("scrub: {enabled: true, bytes_per_second: 200MiB, interval: 500ms}"));
  EXPECT_TRUE(c.scrub.enabled);
  EXPECT_EQ(c.scrub.bytes_per_second, 200ULL << 20);
  EXPECT_EQ(c.scrub.interval, std::chrono::milliseconds(500));
}

TEST(Config, BadScrubSettingsNameTheKey) {
  EXPECT_EQ(load_error(minimal_with("scrub: {enabled: yes}")).key, "scrub.enabled");
  EXPECT_EQ(load_error(minimal_with("scrub: {bytes_per_second: 100}")).key,
            "scrub.bytes_per_second");
  EXPECT_EQ(load_error(minimal_with("scrub: {bytes_per_second: fast}")).key,
            "scrub.bytes_per_second");
  EXPECT_EQ(load_error(minimal_with("scrub: {interval: 0s}")).key, "scrub.interval");
  EXPECT_EQ(load_error(minimal_with("scrub: {rate: 1MiB}")).key, "scrub.rate");
}

}  // namespace
}  // namespace mxcd

namespace mxcd {
namespace {

constexpr const char* kBucketStore =
    "stores: [{name: bucket, type: s3, endpoint: 'http://127.0.0.1:7480', bucket: media, "
    "access_key_id: k, secret_access_key: s";

TEST(Config, StaleMultipartAge) {
  Config defaults = load_ok(minimal_with(std::string(kBucketStore) + "}]"));
  ASSERT_EQ(defaults.stores.size(), 1u);
  EXPECT_EQ(defaults.stores[0].s3.stale_multipart_age, std::chrono::hours(24));
  Config set = load_ok(minimal_with(std::string(kBucketStore) + ", stale_multipart_age: 90s}]"));
  ASSERT_EQ(set.stores.size(), 1u);
  EXPECT_EQ(set.stores[0].s3.stale_multipart_age, std::chrono::seconds(90));
  EXPECT_EQ(load_error(minimal_with(std::string(kBucketStore) + ", stale_multipart_age: 0s}]")).key,
            "stores[0].stale_multipart_age");
}

}  // namespace
}  // namespace mxcd

namespace mxcd {
namespace {

TEST(Config, StaticTokensMustFitTheAuthorizationHeader) {
  EXPECT_EQ(load_error(minimal_with(
                           "auth: {static_tokens: [{token: \"has a space\", user_id: \"@a:b\"}]}"))
                .key,
            "auth.static_tokens[0].token");
  EXPECT_EQ(
      load_error(
          minimal_with("auth: {static_tokens: [{token: \"quote\\\"d-token\", user_id: \"@a:b\"}]}"))
          .key,
      "auth.static_tokens[0].token");
  load_ok(minimal_with(
      "auth: {static_tokens: [{token: \"syt_YWxpY2U_abc/def+g==\", user_id: \"@a:b\"}]}"));
}

}  // namespace
}  // namespace mxcd
