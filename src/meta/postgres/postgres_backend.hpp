// The SQL metadata store's backend on PostgreSQL, for any number of mxcd instances sharing one
// database. Every transaction that reads and writes runs SERIALIZABLE and is run again when
// PostgreSQL reports a conflict with another transaction, so the rules that SQLite gets from
// its single writer (the pending-upload limit, one fill per reservation, a blob deleted only
// when no record or lease holds it) hold across instances without any lock of our own.
// Connections come from a bounded pool; a lost connection is replaced, and a database that
// cannot be reached gives 503 until it is back. Fills of async uploads and deletions are
// announced to every instance with LISTEN/NOTIFY.
#pragma once

#include "core/config.hpp"
#include "meta/open_metadata_store.hpp"
#include "meta/sql/sql_backend.hpp"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

namespace mxcd {

class PgPool;

class PostgresBackend final : public sql::Backend {
 public:
  // Migrating, connects and migrates the schema (one instance at a time: the others wait).
  // Inspecting, changes nothing and the schema version is the caller's to check. Throws
  // std::runtime_error with a readable message when it cannot, or when the schema is newer
  // than this binary.
  PostgresBackend(const Config::Database::Postgres& config, MetadataOpening opening);
  ~PostgresBackend() override;

  const sql::Dialect& dialect() const override;
  Status transaction(const char* operation, Kind kind,
                     const std::function<void(sql::Session&)>& body) override;
  void watch_changes(std::function<void(const MetadataStore::MediaChange&)> on_change) override;
  void stop_watching() override;

  // The schema version of the database: 0 before mxcd has created its tables there.
  static int stored_schema_version(const Config::Database::Postgres& config);

 private:
  void migrate();
  void listen(const std::function<void(const MetadataStore::MediaChange&)>& on_change);

  Config::Database::Postgres config_;
  std::unique_ptr<PgPool> pool_;

  std::thread listener_;
  std::mutex stop_mutex_;
  std::condition_variable stop_signal_;
  std::atomic<bool> stopping_{false};
};

}  // namespace mxcd
