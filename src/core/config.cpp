#include "core/config.hpp"

#include "core/http_grammar.hpp"

#include <boost/url/parse.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <set>

namespace mxcd {

namespace {

// Thrown inside this file only; load_config_* turn it into a ConfigError value.
struct Invalid {
  std::string key;
  std::string message;
};

std::optional<std::uint64_t> parse_unsigned(std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Splits "100MiB" into 100 and "MiB".
std::pair<std::optional<std::uint64_t>, std::string_view> number_and_unit(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::string_view unit = text.substr(digits);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  return {parse_unsigned(text.substr(0, digits)), unit};
}

// ${NAME} anywhere in a string is replaced by the environment variable NAME.
std::string expand_environment(const std::string& value, const std::string& key) {
  std::string out;
  std::size_t pos = 0;
  while (true) {
    std::size_t start = value.find("${", pos);
    if (start == std::string::npos) break;
    std::size_t end = value.find('}', start);
    if (end == std::string::npos) throw Invalid{key, "unterminated ${ in value"};
    std::string name = value.substr(start + 2, end - start - 2);
    const char* env = std::getenv(name.c_str());
    if (name.empty() || env == nullptr) {
      throw Invalid{key, "environment variable " + name + " is not set"};
    }
    out.append(value, pos, start - pos).append(env);
    pos = end + 1;
  }
  return out.append(value, pos);
}

// Walks one YAML mapping, remembering which keys were read so that unknown (misspelt) keys
// can be reported instead of silently ignored.
class Section {
 public:
  Section(const YAML::Node& node, std::string path) : node_(node), path_(std::move(path)) {
    if (node_ && !node_.IsNull() && !node_.IsMap()) throw Invalid{path_, "must be a mapping"};
    // YAML forbids repeated keys, but yaml-cpp silently keeps the first: say so instead.
    std::set<std::string> seen;
    if (node_ && node_.IsMap()) {
      for (const auto& entry : node_) {
        std::string key = entry.first.as<std::string>();
        if (!seen.insert(key).second) throw Invalid{key_path(key), "appears twice"};
      }
    }
  }

  std::string key_path(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }

  YAML::Node get(const std::string& key) {
    known_.insert(key);
    if (!node_ || node_.IsNull()) return YAML::Node();
    return node_[key];
  }

  std::optional<std::string> scalar(const std::string& key) {
    YAML::Node v = get(key);
    if (!v || v.IsNull()) return std::nullopt;
    if (!v.IsScalar()) throw Invalid{key_path(key), "must be a single value"};
    return expand_environment(v.Scalar(), key_path(key));
  }

  void string(const std::string& key, std::string& out) {
    if (auto v = scalar(key)) out = *v;
  }

  template <class Int>
  void integer(const std::string& key, Int& out, std::uint64_t min, std::uint64_t max) {
    if (auto v = scalar(key)) {
      auto n = parse_unsigned(*v);
      if (!n || *n < min || *n > max) {
        throw Invalid{key_path(key), "must be an integer from " + std::to_string(min) + " to " +
                                         std::to_string(max) + ", got \"" + *v + "\""};
      }
      out = static_cast<Int>(*n);
    }
  }

  template <class Int>
  void size(const std::string& key, Int& out, std::uint64_t min) {
    if (auto v = scalar(key)) {
      auto n = parse_size(*v);
      if (!n || *n < min) {
        throw Invalid{key_path(key), "must be a size such as 100MiB (at least " +
                                         std::to_string(min) + " bytes), got \"" + *v + "\""};
      }
      out = static_cast<Int>(*n);
    }
  }

  void flag(const std::string& key, bool& out) {
    if (auto v = scalar(key)) {
      require_flag(*v == "true" || *v == "false", key, *v);
      out = *v == "true";
    }
  }

  void duration(const std::string& key, Duration& out) {
    if (auto v = scalar(key)) {
      auto d = parse_duration(*v);
      if (!d || d->count() <= 0) {
        throw Invalid{key_path(key), "must be a positive duration such as 30s, got \"" + *v + "\""};
      }
      out = *d;
    }
  }

  Section section(const std::string& key) { return Section(get(key), key_path(key)); }

  void require_flag(bool ok, const std::string& key, const std::string& value) const {
    if (!ok) throw Invalid{key_path(key), "must be true or false, got \"" + value + "\""};
  }

  std::vector<YAML::Node> list(const std::string& key) {
    YAML::Node v = get(key);
    if (!v || v.IsNull()) return {};
    if (!v.IsSequence()) throw Invalid{key_path(key), "must be a list"};
    return {v.begin(), v.end()};
  }

  void reject_unknown_keys() const {
    if (!node_ || node_.IsNull()) return;
    for (const auto& entry : node_) {
      std::string key = entry.first.as<std::string>();
      if (!known_.count(key)) throw Invalid{key_path(key), "unknown key"};
    }
  }

 private:
  YAML::Node node_;
  std::string path_;
  std::set<std::string> known_;
};

void require(bool condition, std::string key, std::string message) {
  if (!condition) throw Invalid{std::move(key), std::move(message)};
}

void require_user_id(const std::string& user_id, const std::string& key) {
  require(user_id.size() > 1 && user_id.front() == '@' && user_id.find(':') != std::string::npos,
          key, "must be a Matrix user ID such as @name:server");
}

// Picks one of the named choices, e.g. "durability: background".
template <class Enum>
void choice(Section& section, const std::string& key, Enum& out,
            std::initializer_list<std::pair<const char*, Enum>> choices) {
  auto v = section.scalar(key);
  if (!v) return;
  std::string names;
  for (const auto& [name, value] : choices) {
    if (*v == name) {
      out = value;
      return;
    }
    names += (names.empty() ? "" : ", ") + std::string(name);
  }
  throw Invalid{section.key_path(key), "must be one of " + names + ", got \"" + *v + "\""};
}

bool is_ip_or_localhost(const boost::urls::url_view& url) {
  return url.host_type() == boost::urls::host_type::ipv4 ||
         url.host_type() == boost::urls::host_type::ipv6 || url.host() == "localhost";
}

S3StoreConfig parse_s3_store(Section& s) {
  S3StoreConfig c;
  s.string("endpoint", c.endpoint);
  while (c.endpoint.ends_with('/')) c.endpoint.pop_back();
  auto url = boost::urls::parse_absolute_uri(c.endpoint);
  require(url && (url->scheme() == "http" || url->scheme() == "https") && !url->host().empty() &&
              url->encoded_path().empty() && !url->has_query() && !url->has_userinfo(),
          s.key_path("endpoint"),
          "must be an http:// or https:// URL with nothing after the host and port, got \"" +
              c.endpoint + "\"");
  s.string("region", c.region);
  require(!c.region.empty(), s.key_path("region"), "must not be empty");
  s.string("bucket", c.bucket);
  // The rules S3 gives for bucket names; they also keep the name safe in a host name.
  require(c.bucket.size() >= 3 && c.bucket.size() <= 63 &&
              c.bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") ==
                  std::string::npos &&
              std::isalnum(static_cast<unsigned char>(c.bucket.front())) &&
              std::isalnum(static_cast<unsigned char>(c.bucket.back())),
          s.key_path("bucket"), "must be a bucket name: 3 to 63 of a-z 0-9 . -");
  s.string("prefix", c.prefix);
  while (c.prefix.starts_with('/')) c.prefix.erase(0, 1);
  while (c.prefix.ends_with('/')) c.prefix.pop_back();
  require(c.prefix.size() <= 512, s.key_path("prefix"), "must be at most 512 bytes");
  // Virtual-hosted addressing needs a DNS name to put the bucket in front of; with a dotted
  // bucket name the provider's wildcard certificate would not match either.
  const bool virtual_possible =
      !is_ip_or_localhost(*url) &&
      (url->scheme() == "http" || c.bucket.find('.') == std::string::npos);
  c.path_style = !virtual_possible;
  enum class Addressing { virtual_hosted, path };
  Addressing addressing = c.path_style ? Addressing::path : Addressing::virtual_hosted;
  choice(s, "addressing", addressing,
         {{"virtual", Addressing::virtual_hosted}, {"path", Addressing::path}});
  require(addressing == Addressing::path || virtual_possible, s.key_path("addressing"),
          "virtual needs an endpoint with a DNS name and, over https, a bucket name without dots");
  c.path_style = addressing == Addressing::path;
  s.string("access_key_id", c.access_key_id);
  require(!c.access_key_id.empty(), s.key_path("access_key_id"), "is required");
  s.string("secret_access_key", c.secret_access_key);
  require(!c.secret_access_key.empty(), s.key_path("secret_access_key"), "is required");
  s.string("session_token", c.session_token);
  std::string ca_file;
  s.string("ca_file", ca_file);
  c.ca_file = ca_file;
  s.string("storage_class", c.storage_class);
  require(c.storage_class.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789") ==
              std::string::npos,
          s.key_path("storage_class"), "must be a storage class name such as STANDARD");
  using Encryption = S3StoreConfig::Encryption;
  choice(s, "encryption", c.encryption,
         {{"none", Encryption::none},
          {"sse-s3", Encryption::sse_s3},
          {"sse-kms", Encryption::sse_kms},
          {"sse-c", Encryption::sse_c}});
  s.string("kms_key_id", c.kms_key_id);
  require(c.kms_key_id.empty() || c.encryption == Encryption::sse_kms, s.key_path("kms_key_id"),
          "is only used with encryption: sse-kms");
  s.string("customer_key", c.customer_key);
  require((c.encryption == Encryption::sse_c) == !c.customer_key.empty(),
          s.key_path("customer_key"), "is required with encryption: sse-c, and only then");
  enum class Signing { signed_payload, unsigned_payload } signing = Signing::signed_payload;
  choice(s, "payload_signing", signing,
         {{"signed", Signing::signed_payload}, {"unsigned", Signing::unsigned_payload}});
  c.unsigned_payload = signing == Signing::unsigned_payload;
  // S3 refuses parts under 5 MiB (but the last) and more than 10,000 parts.
  s.size("part_size", c.part_size, 5ULL << 20);
  require(c.part_size <= (5ULL << 30), s.key_path("part_size"), "must be at most 5GiB");
  s.size("multipart_threshold", c.multipart_threshold, 5ULL << 20);
  s.integer("parallel_parts", c.parallel_parts, 1, 64);
  s.duration("connect_timeout", c.connect_timeout);
  s.duration("read_timeout", c.read_timeout);
  s.integer("max_attempts", c.max_attempts, 1, 20);
  using Durability = S3StoreConfig::Durability;
  choice(s, "durability", c.durability,
         {{"sync", Durability::sync}, {"background", Durability::background}});
  using Redirect = S3StoreConfig::Redirect;
  choice(s, "redirect", c.redirect,
         {{"off", Redirect::off},
          {"presigned", Redirect::presigned},
          {"public_base_url", Redirect::public_base_url}});
  s.duration("presigned_ttl", c.presigned_ttl);
  require(c.presigned_ttl <= std::chrono::hours(24 * 7), s.key_path("presigned_ttl"),
          "must be at most 7d (the longest a SigV4 signature lasts)");
  s.string("public_base_url", c.public_base_url);
  while (c.public_base_url.ends_with('/')) c.public_base_url.pop_back();
  if (c.redirect == Redirect::public_base_url) {
    auto base = boost::urls::parse_absolute_uri(c.public_base_url);
    require(base && (base->scheme() == "https" || base->scheme() == "http") &&
                !base->host().empty() && !base->has_query(),
            s.key_path("public_base_url"),
            "must be an http(s):// URL with redirect: public_base_url");
  }
  require(!(c.redirect == Redirect::presigned && c.encryption == Encryption::sse_c),
          s.key_path("redirect"),
          "presigned cannot be used with encryption: sse-c (a client cannot send the key)");
  s.size("cache_size", c.cache_size, 1ULL << 20);
  s.duration("stale_multipart_age", c.stale_multipart_age);
  require(c.stale_multipart_age >= std::chrono::seconds(1), s.key_path("stale_multipart_age"),
          "must be at least 1s");
  return c;
}

std::vector<StoreConfig> parse_stores(Section& root) {
  std::vector<StoreConfig> stores;
  std::set<std::string> names = {kLocalStoreName};
  auto entries = root.list("stores");
  for (std::size_t i = 0; i < entries.size(); ++i) {
    Section s(entries[i], "stores[" + std::to_string(i) + "]");
    StoreConfig store;
    s.string("name", store.name);
    require(!store.name.empty() && store.name.size() <= 32 &&
                store.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") ==
                    std::string::npos,
            s.key_path("name"), "must be 1 to 32 of a-z 0-9 _ -");
    require(names.insert(store.name).second, s.key_path("name"),
            store.name == kLocalStoreName ? "\"local\" is the store in storage.path"
                                          : "\"" + store.name + "\" is used twice");
    choice(s, "type", store.type,
           {{"filesystem", StoreConfig::Type::filesystem}, {"s3", StoreConfig::Type::s3}});
    require(s.scalar("type").has_value(), s.key_path("type"), "is required: filesystem or s3");
    if (store.type == StoreConfig::Type::filesystem) {
      std::string path;
      s.string("path", path);
      require(!path.empty(), s.key_path("path"), "is required");
      store.path = path;
    } else {
      store.s3 = parse_s3_store(s);
    }
    s.reject_unknown_keys();
    stores.push_back(std::move(store));
  }
  return stores;
}

// database: {sqlite: {path}} or {postgres: {url | host, port, dbname, user, password, ...}}.
Config::Database parse_database(Section database) {
  Config::Database out;
  auto given = [&](const char* key) {
    YAML::Node node = database.get(key);
    return node.IsDefined() && !node.IsNull();
  };
  bool has_sqlite = given("sqlite");
  bool has_postgres = given("postgres");
  Section sqlite = database.section("sqlite");
  Section postgres = database.section("postgres");
  database.duration("health_timeout", out.health_timeout);
  database.reject_unknown_keys();
  require(!(has_sqlite && has_postgres), "database", "must have sqlite or postgres, not both");
  require(has_sqlite || has_postgres, "database", "needs sqlite (path) or postgres");
  if (has_sqlite) {
    std::string path;
    sqlite.string("path", path);
    require(!path.empty(), "database.sqlite.path", "is required");
    out.sqlite_path = path;
    sqlite.reject_unknown_keys();
    return out;
  }
  Config::Database::Postgres pg;
  std::string url;
  postgres.string("url", url);
  // Discrete keys become a libpq "key=value" string; libpq itself also reads PGPASSWORD
  // and ~/.pgpass, so a password need not be in the file at all.
  std::string conninfo;
  for (const char* key : {"host", "port", "dbname", "user", "password", "sslmode", "sslrootcert"}) {
    std::string value;
    postgres.string(key, value);
    if (!value.empty()) conninfo += std::string(key) + "=" + conninfo_value(value) + " ";
  }
  require(url.empty() || conninfo.empty(), "database.postgres.url",
          "cannot be combined with host, port, dbname, user, password or sslmode");
  require(!url.empty() || !conninfo.empty(), "database.postgres", "needs url or host and dbname");
  postgres.integer("pool_size", pg.pool_size, 1, 1000);
  postgres.duration("connect_timeout", pg.connect_timeout);
  postgres.duration("statement_timeout", pg.statement_timeout);
  postgres.duration("acquire_timeout", pg.acquire_timeout);
  postgres.duration("network_timeout", pg.network_timeout);
  // PostgreSQL takes statement_timeout and libpq tcp_user_timeout as 32-bit milliseconds, and
  // keepalive intervals in whole seconds.
  require(pg.statement_timeout <= std::chrono::hours(24), "database.postgres.statement_timeout",
          "must be at most 24h");
  require(
      pg.network_timeout >= std::chrono::seconds(1) && pg.network_timeout <= std::chrono::hours(1),
      "database.postgres.network_timeout", "must be from 1s to 1h");
  postgres.reject_unknown_keys();
  pg.conninfo = url.empty() ? conninfo : url;
  out.postgres = std::move(pg);
  return out;
}

Config::Thumbnails parse_thumbnails(Section section) {
  Config::Thumbnails t;
  auto sizes = section.list("sizes");
  if (YAML::Node given = section.get("sizes"); given && !given.IsNull()) t.sizes.clear();
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    Section entry(sizes[i], "thumbnails.sizes[" + std::to_string(i) + "]");
    Config::Thumbnails::Size size;
    entry.integer("width", size.width, 1, 4096);
    entry.integer("height", size.height, 1, 4096);
    require(size.width && size.height, entry.key_path("width"), "width and height are required");
    std::string method = "scale";
    entry.string("method", method);
    require(method == "crop" || method == "scale", entry.key_path("method"),
            "must be crop or scale, got \"" + method + "\"");
    size.crop = method == "crop";
    entry.reject_unknown_keys();
    t.sizes.push_back(size);
  }
  require(!t.sizes.empty(), "thumbnails.sizes", "must list at least one size");
  section.flag("generate_on_upload", t.generate_on_upload);
  section.flag("dynamic", t.dynamic);
  section.size("max_source_size", t.max_source_size, 1);
  section.integer("max_pixels", t.max_pixels, 1, 1'000'000'000);
  section.integer("max_frames", t.max_frames, 1, 100'000);
  section.integer("workers", t.workers, 1, 256);
  section.integer("queue_limit", t.queue_limit, 1, 1'000'000);
  section.duration("time_limit", t.time_limit);
  section.reject_unknown_keys();
  return t;
}

Config parse(const YAML::Node& root_node) {
  Config c;
  Section root(root_node, "");
  require(root_node && root_node.IsMap(), "", "the configuration must be a YAML mapping");

  root.string("server_name", c.server_name);
  require(!c.server_name.empty(), "server_name", "is required (the homeserver's server name)");

  Section listen = root.section("listen");
  listen.string("address", c.listen.address);
  boost::system::error_code ec;
  boost::asio::ip::make_address(c.listen.address, ec);
  require(!ec, "listen.address", "must be an IP address, got \"" + c.listen.address + "\"");
  listen.integer("port", c.listen.port, 1, 65535);
  listen.reject_unknown_keys();

  Section http = root.section("http");
  http.integer("threads", c.http.threads, 0, 256);
  http.integer("max_connections", c.http.max_connections, 1, 1'000'000);
  http.integer("max_pending_connections", c.http.max_pending_connections, 1, 1'000'000);
  http.size("max_header_size", c.http.max_header_size, 1024);
  http.duration("header_timeout", c.http.header_timeout);
  http.duration("idle_timeout", c.http.idle_timeout);
  http.duration("keepalive_timeout", c.http.keepalive_timeout);
  http.duration("body_timeout", c.http.body_timeout);
  http.size("min_body_rate", c.http.min_body_rate, 0);
  http.duration("shutdown_grace_period", c.http.shutdown_grace_period);
  auto proxies = http.list("trusted_proxies");
  for (std::size_t i = 0; i < proxies.size(); ++i) {
    std::string key = "http.trusted_proxies[" + std::to_string(i) + "]";
    require(proxies[i].IsScalar(), key, "must be an address or CIDR range");
    auto network = IpNetwork::parse(proxies[i].Scalar());
    require(network.has_value(), key,
            "must be an address or CIDR range, got \"" + proxies[i].Scalar() + "\"");
    c.http.trusted_proxies.push_back(*network);
  }
  http.reject_unknown_keys();

  Section auth = root.section("auth");
  auth.string("homeserver_url", c.auth.homeserver_url);
  if (!c.auth.homeserver_url.empty()) {
    auto url = boost::urls::parse_absolute_uri(c.auth.homeserver_url);
    require(url && (url->scheme() == "http" || url->scheme() == "https") && !url->host().empty() &&
                !url->has_query(),
            "auth.homeserver_url", "must be an http:// or https:// URL");
    while (c.auth.homeserver_url.ends_with('/')) c.auth.homeserver_url.pop_back();
  }
  std::string ca_file;
  auth.string("homeserver_ca_file", ca_file);
  c.auth.homeserver_ca_file = ca_file;
  auth.duration("token_cache_ttl", c.auth.token_cache_ttl);
  auto tokens = auth.list("static_tokens");
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    Section entry(tokens[i], "auth.static_tokens[" + std::to_string(i) + "]");
    StaticToken t;
    entry.string("token", t.token);
    entry.string("user_id", t.user_id);
    require(t.token.size() >= 8, entry.key_path("token"), "must be at least 8 characters");
    require(is_access_token(t.token), entry.key_path("token"),
            "must be printable ASCII without spaces, quotes or separators");
    require_user_id(t.user_id, entry.key_path("user_id"));
    entry.reject_unknown_keys();
    c.auth.static_tokens.push_back(std::move(t));
  }
  auto admins = auth.list("admin_users");
  for (std::size_t i = 0; i < admins.size(); ++i) {
    std::string key = "auth.admin_users[" + std::to_string(i) + "]";
    require(admins[i].IsScalar(), key, "must be a Matrix user ID");
    require_user_id(admins[i].Scalar(), key);
    c.auth.admin_users.push_back(admins[i].Scalar());
  }
  require(!c.auth.homeserver_url.empty() || !c.auth.static_tokens.empty(), "auth.homeserver_url",
          "is required unless static_tokens are configured");
  auth.reject_unknown_keys();

  Section storage = root.section("storage");
  std::string storage_path;
  storage.string("path", storage_path);
  require(!storage_path.empty(), "storage.path", "is required");
  c.storage.path = storage_path;
  storage.size("free_space_reserve", c.storage.free_space_reserve, 0);
  storage.reject_unknown_keys();

  c.stores = parse_stores(root);

  c.database = parse_database(root.section("database"));

  Section media = root.section("media");
  media.size("max_upload_size", c.media.max_upload_size, 1);
  media.integer("max_pending_uploads_per_user", c.media.max_pending_uploads_per_user, 1, 100000);
  media.duration("pending_upload_expiry", c.media.pending_upload_expiry);
  media.duration("download_wait_default", c.media.download_wait_default);
  media.duration("download_wait_max", c.media.download_wait_max);
  require(c.media.download_wait_default <= c.media.download_wait_max, "media.download_wait_default",
          "must not exceed media.download_wait_max");
  if (auto freeze = media.scalar("legacy_download_freeze"); freeze && *freeze != "off") {
    c.media.legacy_download_freeze_ms = parse_utc_timestamp(*freeze);
    require(c.media.legacy_download_freeze_ms.has_value(), "media.legacy_download_freeze",
            "must be \"off\" or a UTC time such as 2024-09-01T00:00:00Z, got \"" + *freeze + "\"");
  }
  Section write_store = media.section("write_store");
  auto& ws = c.media.write_store;
  for (auto [key, out] :
       {std::pair{"local_media", &ws.local_media}, std::pair{"remote_media", &ws.remote_media},
        std::pair{"thumbnails", &ws.thumbnails}}) {
    write_store.string(key, *out);
    const std::string& name = *out;  // a lambda may not capture a structured binding (clang)
    require(name == kLocalStoreName ||
                std::any_of(c.stores.begin(), c.stores.end(),
                            [&](const StoreConfig& s) { return s.name == name; }),
            write_store.key_path(key), "names no store: \"" + name + "\"");
  }
  write_store.reject_unknown_keys();
  media.reject_unknown_keys();

  Section scrub = root.section("scrub");
  scrub.flag("enabled", c.scrub.enabled);
  scrub.size("bytes_per_second", c.scrub.bytes_per_second, 4096);
  scrub.duration("interval", c.scrub.interval);
  scrub.reject_unknown_keys();

  c.thumbnails = parse_thumbnails(root.section("thumbnails"));

  Section log = root.section("log");
  log.string("level", c.log.level);
  static const std::set<std::string> levels = {"trace", "debug", "info", "warn", "error"};
  require(levels.count(c.log.level) > 0, "log.level",
          "must be one of trace, debug, info, warn, error");
  log.reject_unknown_keys();

  root.reject_unknown_keys();
  return c;
}

}  // namespace

std::optional<std::uint64_t> parse_size(std::string_view text) {
  auto [number, unit] = number_and_unit(text);
  if (!number) return std::nullopt;
  std::uint64_t factor;
  if (unit.empty() || unit == "B") factor = 1;
  else if (unit == "K" || unit == "KiB") factor = 1ULL << 10;
  else if (unit == "M" || unit == "MiB") factor = 1ULL << 20;
  else if (unit == "G" || unit == "GiB") factor = 1ULL << 30;
  else return std::nullopt;
  if (*number > UINT64_MAX / factor) return std::nullopt;
  return *number * factor;
}

std::optional<Duration> parse_duration(std::string_view text) {
  auto [number, unit] = number_and_unit(text);
  if (!number) return std::nullopt;
  std::uint64_t factor;
  if (unit == "ms") factor = 1;
  else if (unit.empty() || unit == "s") factor = 1000;
  else if (unit == "m") factor = 60'000;
  else if (unit == "h") factor = 3'600'000;
  else if (unit == "d") factor = 86'400'000;
  else return std::nullopt;
  // Ten years is plenty for any timeout and keeps every later addition far from overflow.
  if (*number > 315'360'000'000ULL / factor) return std::nullopt;
  return Duration(static_cast<std::int64_t>(*number * factor));
}

std::optional<std::int64_t> parse_utc_timestamp(std::string_view text) {
  std::tm tm{};
  int consumed = 0;
  std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != static_cast<int>(s.size()) || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
      tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

std::variant<Config, ConfigError> load_config_text(const std::string& yaml_text) {
  try {
    return parse(YAML::Load(yaml_text));
  } catch (const Invalid& e) {
    return ConfigError{e.key, e.message};
  } catch (const YAML::Exception& e) {
    return ConfigError{"", std::string("invalid YAML: ") + e.what()};
  }
}

std::string conninfo_value(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::variant<Config, ConfigError> load_config_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return ConfigError{"", "cannot read " + path.string()};
  std::stringstream text;
  text << in.rdbuf();
  return load_config_text(text.str());
}

}  // namespace mxcd
