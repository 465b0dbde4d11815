// What the one SQL metadata store (sql_metadata_store) needs from a database: transactions of
// a kind, statements with bound parameters ($1, $2, ... on every backend), the rows they
// return, and a hook that announces a change to the other instances. SQLite and PostgreSQL
// implement it; each keeps to itself its connections, its retries, its schema migrations
// and the few real differences of dialect (SqlDialect).
#pragma once

#include "core/result.hpp"
#include "meta/metadata_store.hpp"

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace mxcd::sql {

// The schema version every backend's migrations lead to (each keeps its own list of the same
// length, in its own DDL).
inline constexpr int kSchemaVersion = 4;

// A parameter or a column value. PostgreSQL hands every column over as text; integer() reads
// it either way.
using Value = std::variant<std::monostate, std::int64_t, std::string>;

inline Value value(std::int64_t v) { return v; }
inline Value value(int v) { return std::int64_t{v}; }
inline Value value(unsigned v) { return std::int64_t{v}; }
inline Value value(std::uint64_t v) { return static_cast<std::int64_t>(v); }
inline Value value(bool v) { return std::int64_t{v ? 1 : 0}; }  // both read 1 and 0 as booleans
inline Value value(const std::string& v) { return v; }
inline Value value(const char* v) { return std::string(v); }
template <class T>
Value value(const std::optional<T>& v) {
  return v ? value(*v) : Value{};
}

class Rows;

// One row of a result, read by column.
class Row {
 public:
  Row(const Rows& rows, int row) : rows_(rows), row_(row) {}
  bool is_null(int column) const;
  std::string text(int column) const;
  std::int64_t integer(int column) const;
  bool flag(int column) const;
  std::optional<std::string> optional_text(int column) const;
  std::optional<std::int64_t> optional_integer(int column) const;

 private:
  const Rows& rows_;
  int row_;
};

// What a statement returned: its rows (of SELECT, or of RETURNING) and the number of rows
// it changed.
class Rows {
 public:
  Rows(int columns, std::vector<Value> cells, std::int64_t affected)
      : columns_(columns), cells_(std::move(cells)), affected_(affected) {}

  int size() const { return columns_ == 0 ? 0 : static_cast<int>(cells_.size()) / columns_; }
  bool empty() const { return size() == 0; }
  std::int64_t affected() const { return affected_; }
  // A Row refers to its Rows: keep the Rows in a variable while reading it.
  Row row(int index) const& { return Row(*this, index); }
  Row first() const& { return row(0); }
  Row row(int) && = delete;
  Row first() && = delete;
  const Value& cell(int row, int column) const { return cells_.at(row * columns_ + column); }

 private:
  int columns_;
  std::vector<Value> cells_;  // row by row
  std::int64_t affected_;
};

// One connection inside one transaction.
class Session {
 public:
  virtual ~Session() = default;
  virtual Rows run(const char* sql, std::initializer_list<Value> parameters) = 0;
  template <class... Args>
  Rows query(const char* sql, const Args&... args) {
    return run(sql, {value(args)...});
  }
  // Tells every instance sharing the database of the change once the transaction commits
  // (MetadataStore::watch_changes). A database of one instance announces nothing.
  virtual void announce(const MetadataStore::MediaChange& change) = 0;
};

// The few statements the two dialects write differently.
struct Dialect {
  // Appended to a SELECT whose rows the transaction claims, so that concurrent claims by
  // other instances take other rows (PostgreSQL's FOR UPDATE SKIP LOCKED; SQLite has one
  // writer at a time and needs nothing).
  const char* claim_rows;
};

class Backend {
 public:
  // What a transaction does, which decides its isolation and durability:
  enum class Kind {
    // Reads. On PostgreSQL each statement is its own snapshot (no BEGIN and COMMIT round
    // trips on the download path): a read that needs one snapshot is one statement.
    read,
    // Reads and writes rows that concurrent transactions may change: serializable, and run
    // again after a conflict.
    write,
    // As write, for leases, which need not survive a crash (whoever holds a lease dies with
    // the process): the commit does not wait for the disk.
    lease,
    // Writes whose statements each stand alone (copying rows, moving timestamps forward,
    // removing expired rows): atomic, but not serializable, so they never conflict.
    plain_write,
  };

  virtual ~Backend() = default;
  virtual const Dialect& dialect() const = 0;
  // Runs body in one transaction of the kind and commits it; runs it again when the
  // database asks to (a conflict, a lost connection). A database failure is logged under
  // `operation` and returned as a 500 or, when the database is unreachable or busy, a 503.
  virtual Status transaction(const char* operation, Kind kind,
                             const std::function<void(Session&)>& body) = 0;
  // MetadataStore::watch_changes and stop_watching, for a database several instances share.
  virtual void watch_changes(std::function<void(const MetadataStore::MediaChange&)>) {}
  virtual void stop_watching() {}
};

}  // namespace mxcd::sql
