// A thin layer over libpq: one connection, statements prepared once per connection and run
// with text parameters, results read by row and column, failures as PgError with the
// SQLSTATE so that callers can tell a serialization conflict from a lost connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

struct pg_conn;
struct pg_result;

namespace mxcd {

struct PgError : std::runtime_error {
  PgError(const std::string& message, std::string sqlstate, bool connection_lost)
      : std::runtime_error(message), sqlstate(std::move(sqlstate)), connection_lost(connection_lost) {}
  std::string sqlstate;  // empty when the server sent none
  bool connection_lost;  // the connection is unusable: open a new one

  // Another transaction got in the way (serialization failure or deadlock): run it again.
  bool conflict() const { return sqlstate == "40001" || sqlstate == "40P01"; }
};

// A parameter in text form; nullopt is SQL NULL.
using PgParam = std::optional<std::string>;

inline PgParam pg_param(const std::string& s) { return s; }
inline PgParam pg_param(const char* s) { return std::string(s); }
inline PgParam pg_param(std::int64_t n) { return std::to_string(n); }
inline PgParam pg_param(int n) { return std::to_string(n); }
inline PgParam pg_param(bool b) { return std::string(b ? "t" : "f"); }
template <class T>
PgParam pg_param(const std::optional<T>& v) {
  return v ? pg_param(*v) : std::nullopt;
}

class PgResult;

// One row of a result, read by column.
class PgRow {
 public:
  PgRow(const PgResult& result, int row) : result_(result), row_(row) {}
  bool is_null(int column) const;
  std::string text(int column) const;
  std::int64_t integer(int column) const;
  bool flag(int column) const;
  std::optional<std::string> optional_text(int column) const;
  std::optional<std::int64_t> optional_integer(int column) const;

 private:
  const PgResult& result_;
  int row_;
};

class PgResult {
 public:
  explicit PgResult(pg_result* result);
  ~PgResult();
  PgResult(PgResult&& other) noexcept;
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  PgResult& operator=(PgResult&&) = delete;

  int rows() const;
  int columns() const;
  std::int64_t affected() const;  // rows changed by INSERT, UPDATE or DELETE
  bool is_null(int row, int column) const;
  std::string text(int row, int column) const;
  std::int64_t integer(int row, int column) const;
  bool flag(int row, int column) const;  // a BOOLEAN column
  std::optional<std::string> optional_text(int row, int column) const;
  std::optional<std::int64_t> optional_integer(int row, int column) const;
  PgRow row(int index) const { return PgRow(*this, index); }

 private:
  pg_result* result_;
};

class PgConnection {
 public:
  // Throws PgError (connection_lost) when the server cannot be reached or refuses us.
  PgConnection(const std::string& conninfo, std::chrono::milliseconds connect_timeout);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs a statement with parameters, preparing it on first use on this connection.
  PgResult run(const char* sql, const std::vector<PgParam>& params = {});
  template <class... Args>
  PgResult query(const char* sql, const Args&... args) {
    return run(sql, {pg_param(args)...});
  }
  // Runs SQL without parameters and without preparing it (several statements allowed).
  void exec(const char* sql);

  bool usable() const;
  int socket() const;
  pg_conn* native() { return conn_; }

 private:
  PgResult check(pg_result* result, const char* what);

  pg_conn* conn_ = nullptr;
  std::unordered_map<std::string, std::string> prepared_;  // SQL text -> statement name
};

}  // namespace mxcd
