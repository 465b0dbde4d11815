// mxcd's command line: serve, check-config, version, s3 queue, s3 check, database copy,
// import synapse, verify.
#include "api/admin_api.hpp"
#include "api/client_media_api.hpp"
#include "api/operator_api.hpp"
#include "auth/authenticator.hpp"
#include "blob/blob_stores.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/version.hpp"
#include "http/access_log.hpp"
#include "http/server.hpp"
#include "import/synapse_import.hpp"
#include "media/blob_collector.hpp"
#include "media/download.hpp"
#include "media/media_records.hpp"
#include "media/pending_uploads.hpp"
#include "media/scrubber.hpp"
#include "media/thumbnail.hpp"
#include "media/upload.hpp"
#include "meta/open_metadata_store.hpp"
#include "thumbnail/thumbnailer.hpp"
#include "tools/database_copy.hpp"
#include "tools/s3_check.hpp"
#include "tools/verify.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>
#include <thread>

namespace {

using namespace mxcd;

constexpr int kExitConfigError = 2;
// Threads for blocking work (fsync, database queries); the network threads never do it
// themselves.
constexpr unsigned kBlockingThreads = 4;
constexpr auto kMaintenanceInterval = std::chrono::seconds(30);
// Blobs are deleted right after their last record; this paces retries and crash recovery.
constexpr auto kBlobCollectionInterval = std::chrono::minutes(1);

std::optional<Config> load_or_report(const std::string& path) {
  auto loaded = load_config_file(path);
  if (auto* error = std::get_if<ConfigError>(&loaded)) {
    std::cerr << "config error: " << error->describe() << "\n";
    return std::nullopt;
  }
  return std::get<Config>(std::move(loaded));
}

// --progress and --progress-interval, for the commands that show a progress bar.
void add_progress_options(CLI::App* command, Progress::Style& style, unsigned& seconds) {
  command
      ->add_option("--progress", style,
                   "auto (a bar on a terminal, else lines), bar, lines or none")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, Progress::Style>{{"auto", Progress::automatic_style()},
                                                 {"bar", Progress::Style::bar},
                                                 {"lines", Progress::Style::lines},
                                                 {"none", Progress::Style::none}}));
  command->add_option("--progress-interval", seconds, "Seconds between progress lines (default 10)")
      ->check(CLI::Range(1, 3600));
}

void set_up_logging(const Config& config) {
  // Every line is its own write(2); request lines are batched by http::access_log instead.
  auto logger = spdlog::stderr_logger_mt("mxcd");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v", spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::level::from_str(config.log.level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  http::access_log::enable(logger->should_log(spdlog::level::info));
}

int serve(const Config& config) {
  set_up_logging(config);
  unsigned threads =
      config.http.threads ? config.http.threads : std::max(1U, std::thread::hardware_concurrency());
  http::IoThreads io_threads(threads);
  boost::asio::thread_pool blocking_pool(kBlockingThreads);

  std::unique_ptr<BlobStores> stores;
  std::unique_ptr<MetadataStore> metadata;
  std::unique_ptr<auth::Authenticator> authenticator;
  try {
    thumbnail::initialise();
    stores = std::make_unique<BlobStores>(config, blocking_pool);
    metadata = open_metadata_store(config.database);
    authenticator = std::make_unique<auth::Authenticator>(config.auth);
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
  // A wrong key, region or bucket is a set-up mistake: say so now, not at the first upload.
  if (auto problems = stores->check_buckets(); !problems.empty()) {
    for (const auto& problem : problems) spdlog::critical("cannot start: {}", problem);
    return 1;
  }
  MediaRecords records(*metadata, blocking_pool);
  UploadWaiters waiters;
  UploadPipeline uploads(config, *stores, records, waiters);
  DownloadPipeline downloads(config, *stores, records, waiters);
  ThumbnailPipeline thumbnails(config, *stores, records, downloads, blocking_pool);
  uploads.on_stored([&](RecordPtr media, boost::asio::any_io_executor executor) {
    thumbnails.made_upload(std::move(media), std::move(executor));
  });
  api::ClientMediaApi client_api(config, *authenticator, uploads, downloads, thumbnails);
  api::OperatorApi operator_api(records, *stores, config);
  BlobCollector collector(*metadata, *stores, blocking_pool);
  Scrubber scrubber(config.scrub, *metadata, *stores, blocking_pool);
  api::AdminApi admin_api(config, *authenticator, records, collector);
  http::Router router;
  client_api.add_routes(router);
  operator_api.add_routes(router);
  admin_api.add_routes(router);

  http::Server server(io_threads, config.http, router, [&] {
    records.stop();
    thumbnails.stop();
    collector.stop();
    scrubber.stop();
    stores->stop();
    io_threads.release();
  });
  try {
    server.start({boost::asio::ip::make_address(config.listen.address), config.listen.port});
  } catch (const boost::system::system_error& e) {
    spdlog::critical("cannot listen on {}:{}: {}", config.listen.address, config.listen.port,
                     e.code().message());
    return 1;
  }
  records.start_maintenance(io_threads.main(), kMaintenanceInterval);
  collector.start(io_threads.main(), kBlobCollectionInterval);
  stores->start(io_threads.main());
  if (config.scrub.enabled) scrubber.start(io_threads.main());
  // What other instances sharing the database change: fills wake this instance's waiters,
  // deletions drop records from its cache.
  metadata->watch_changes([&](const MetadataStore::MediaChange& change) {
    using Kind = MetadataStore::MediaChange::Kind;
    if (change.kind == Kind::filled) waiters.announce(change.key);
    if (change.kind == Kind::deleted) records.forget(change.key);
    if (change.kind == Kind::unknown) {
      records.forget_all();
      waiters.announce_all();
    }
  });

  boost::asio::signal_set signals(io_threads.main(), SIGTERM, SIGINT);
  signals.async_wait([&](boost::system::error_code ec, int signal) {
    if (ec) return;
    spdlog::info("received signal {}, stopping", signal);
    server.stop();
  });
  std::signal(SIGPIPE, SIG_IGN);

  spdlog::info("mxcd {} serving {} on {}:{} with {} thread(s)", kVersion, config.server_name,
               config.listen.address, server.local_endpoint().port(), threads);
  io_threads.run();

  metadata->stop_watching();  // before the objects its thread calls go away
  records.flush_access_times();
  spdlog::info("stopped");
  spdlog::shutdown();
  if (server.abandoned_requests()) {
    // Coroutines of the abandoned requests still refer to the objects on this stack; leave
    // without destroying them. Their temporary files are removed at the next start.
    std::_Exit(0);
  }
  return 0;
}

// Reads the queue directories; works while the server runs.
int print_upload_queues(const Config& config) {
  for (const auto& queue : BlobStores::report_queues(config)) {
    std::cout << "store " << queue.store << " (bucket " << queue.bucket << "): " << queue.blobs
              << " blob(s), " << queue.bytes << " bytes waiting";
    if (queue.blobs > 0) {
      auto age = std::chrono::milliseconds(now_ms() - queue.oldest_queued_ts);
      std::cout << ", the oldest for "
                << std::chrono::duration_cast<std::chrono::seconds>(age).count() << " s";
    }
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mxcd: a media repository for Matrix homeservers"};
  app.require_subcommand(1);
  std::string config_path;

  auto* serve_cmd = app.add_subcommand("serve", "Run the media server");
  serve_cmd->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();
  auto* check_cmd = app.add_subcommand("check-config", "Validate a configuration file and exit");
  check_cmd->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();
  app.add_subcommand("version", "Print the version");
  auto* s3_cmd = app.add_subcommand("s3", "S3 store tools");
  s3_cmd->require_subcommand(1);
  auto* queue_cmd = s3_cmd->add_subcommand(
      "queue", "Summarise the blobs waiting to be uploaded (durability: background): how many, "
               "how many bytes, the oldest");
  queue_cmd->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();
  std::string check_store;
  bool check_json = false;
  auto* s3_check_cmd = s3_cmd->add_subcommand(
      "check",
      "Check the buckets of the S3 stores: access, permissions, privacy, versioning, clock");
  s3_check_cmd->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();
  s3_check_cmd->add_option("--store", check_store,
                           "Check only this store (default: every S3 store)");
  s3_check_cmd->add_flag("--json", check_json, "Print one JSON document instead of lines");
  auto* database_cmd = app.add_subcommand("database", "Metadata database tools");
  database_cmd->require_subcommand(1);
  std::string sqlite_path;
  auto* copy_cmd = database_cmd->add_subcommand(
      "copy", "Copy an SQLite metadata database into the configured PostgreSQL database");
  copy_cmd->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();
  copy_cmd->add_option("--from-sqlite", sqlite_path, "The SQLite database file")->required();

  auto* import_cmd = app.add_subcommand("import", "Bring media over from another media repository");
  import_cmd->require_subcommand(1);
  synapse::ImportOptions import_options;
  auto* synapse_cmd = import_cmd->add_subcommand(
      "synapse", "Import a Synapse homeserver's media (its database and media store)");
  synapse_cmd->add_option("-c,--config", config_path, "mxcd's configuration file (YAML)")
      ->required();
  synapse_cmd->add_option("--homeserver-config", import_options.homeserver_config,
                          "Synapse's homeserver.yaml: server_name, media_store_path, database");
  synapse_cmd->add_option("--server-name", import_options.server_name,
                          "Synapse's server_name (instead of homeserver.yaml's)");
  synapse_cmd->add_option("--media-store", import_options.media_store,
                          "Synapse's media_store_path (instead of homeserver.yaml's)");
  auto* sqlite_option = synapse_cmd->add_option("--sqlite", import_options.sqlite_path,
                                                "Synapse's SQLite database file");
  synapse_cmd
      ->add_option("--postgres", import_options.postgres_conninfo,
                   "Synapse's PostgreSQL database, as a libpq connection string")
      ->excludes(sqlite_option);
  synapse_cmd->add_option("--workers", import_options.workers, "Files copied at once")
      ->check(CLI::Range(1, 64));
  synapse_cmd->add_flag("--dry-run", import_options.dry_run,
                        "Report what would be imported; change nothing");
  synapse_cmd->add_flag("--verify", import_options.verify,
                        "Afterwards read every imported blob back and check its hash and size");
  synapse_cmd->add_option("--bucket-store", import_options.bucket_store,
                          "The S3 store (of mxcd's configuration) whose bucket holds "
                          "synapse-s3-storage-provider's objects");
  synapse_cmd->add_option("--bucket-prefix", import_options.bucket_prefix,
                          "The provider's prefix (default: from homeserver.yaml)");
  synapse_cmd
      ->add_option("--bucket-media", import_options.bucket_media,
                   "adopt: record the bucket's objects where they are; copy: store them again")
      ->transform(
          CLI::CheckedTransformer(std::map<std::string, synapse::ImportOptions::BucketMedia>{
              {"adopt", synapse::ImportOptions::BucketMedia::adopt},
              {"copy", synapse::ImportOptions::BucketMedia::copy}}));
  unsigned progress_seconds = 10;
  add_progress_options(synapse_cmd, import_options.progress, progress_seconds);

  VerifyOptions verify_options;
  auto* verify_cmd = app.add_subcommand(
      "verify", "Read every stored blob back and check its hash and size; exit 1 when one is "
                "bad, missing or unreadable");
  verify_cmd->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();
  verify_cmd->add_option("--store", verify_options.store, "Check only this store (default: all)");
  verify_cmd->add_option("--workers", verify_options.workers, "Blobs read at once (default 4)")
      ->check(CLI::Range(1, 64));
  add_progress_options(verify_cmd, verify_options.progress, progress_seconds);

  CLI11_PARSE(app, argc, argv);

  if (app.got_subcommand("version")) {
    std::cout << "mxcd " << kVersion << "\n";
    return 0;
  }
  auto config = load_or_report(config_path);
  if (!config) return kExitConfigError;
  if (app.got_subcommand("check-config")) {
    std::cout << "configuration OK\n";
    return 0;
  }
  if (queue_cmd->parsed()) return print_upload_queues(*config);
  if (s3_check_cmd->parsed()) {
    return check_s3_stores(*config, check_store, check_json, std::cout, std::cerr);
  }
  if (copy_cmd->parsed()) return copy_sqlite_to_postgres(*config, sqlite_path, std::cout);
  if (synapse_cmd->parsed()) {
    set_up_logging(*config);
    import_options.progress_interval = std::chrono::seconds(progress_seconds);
    return synapse::import_media(*config, import_options, std::cout);
  }
  if (verify_cmd->parsed()) {
    set_up_logging(*config);
    verify_options.progress_interval = std::chrono::seconds(progress_seconds);
    return verify_stores(*config, verify_options, std::cout);
  }
  return serve(*config);
}
