// The SQL metadata store's backend on SQLite in WAL mode: one writer connection and one reader
// connection, each behind its own mutex, so downloads never queue behind an upload's commit.
// Writes take the write lock up front (BEGIN IMMEDIATE), so read-then-write sequences cannot
// race. Schema changes are versioned migrations applied at open, each in its own transaction.
#pragma once

#include "meta/open_metadata_store.hpp"
#include "meta/sql/sql_backend.hpp"

#include <filesystem>
#include <memory>
#include <mutex>

namespace mxcd {

class SqliteConnection;

class SqliteBackend final : public sql::Backend {
 public:
  // Migrating, opens (creating if needed) and migrates the database. Inspecting, opens it
  // read-only and its schema version is the caller's to check (open_metadata_store). Throws
  // std::runtime_error with a readable message when it cannot, or when the schema is newer than
  // this binary.
  SqliteBackend(const std::filesystem::path& path, MetadataOpening opening);
  // An empty database in memory, migrated: what a database that does not exist yet holds.
  static std::unique_ptr<SqliteBackend> in_memory();
  ~SqliteBackend() override;

  const sql::Dialect& dialect() const override;
  Status transaction(const char* operation, Kind kind,
                     const std::function<void(sql::Session&)>& body) override;

  // The schema version of the database at path: 0 when it does not exist (nothing is created).
  static int stored_schema_version(const std::filesystem::path& path);

 private:
  struct Lane {
    std::mutex mutex;
    std::unique_ptr<SqliteConnection> connection;
  };
  SqliteBackend() = default;
  void migrate();

  Lane writer_;
  Lane reader_;
  Lane* reads_ = &reader_;  // the writer's lane when there is one connection (in memory)
};

}  // namespace mxcd
