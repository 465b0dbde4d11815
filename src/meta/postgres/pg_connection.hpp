// A thin layer over libpq: one connection, statements prepared once per connection and run
// with text parameters, results read by row and column, failures as PgError with the
// SQLSTATE so that callers can tell a serialization conflict from a lost connection.
// Nothing waits on the server without a deadline: libpq is driven through its asynchronous
// API and poll(2), because a server that is frozen or cut off (a stopped process, a network
// partition) keeps the TCP connection open and never answers, which no libpq setting and no
// server-side timeout can bound.
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
  PgError(const std::string& message, std::string sqlstate, bool connection_lost,
          bool unreachable = false)
      : std::runtime_error(message),
        sqlstate(std::move(sqlstate)),
        connection_lost(connection_lost),
        unreachable(unreachable) {}
  std::string sqlstate;  // empty when the server sent none
  bool connection_lost;  // the connection is unusable: open a new one
  // The server did not answer in time or could not be connected to: trying again at once
  // would only wait again.
  bool unreachable;

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
  std::optional<std::string> optional_text(int row, int column) const;

 private:
  pg_result* result_;
};

// How long a connection waits on the server.
struct PgTimeouts {
  // Connecting, TLS and authentication included.
  std::chrono::milliseconds connect = std::chrono::seconds(5);
  // One statement. The server is asked to stop a statement after this long (statement_timeout,
  // the connection stays usable); when even that answer does not come a moment later
  // (kServerAnswerGrace), the server is frozen or cut off and the connection is closed.
  // Zero: no bound, for work that may take long (migrations, an importer's reads).
  std::chrono::milliseconds statement{0};
  // TCP keepalive and TCP_USER_TIMEOUT: the kernel drops a connection whose peer host stopped
  // acknowledging for about this long. Not used on Unix sockets.
  std::chrono::milliseconds network = std::chrono::seconds(10);
};

class PgConnection {
 public:
  // How long after its statement_timeout the server's answer is still awaited.
  static constexpr std::chrono::milliseconds kServerAnswerGrace{1000};

  // Throws PgError (connection_lost, unreachable) when the server cannot be reached in time
  // or refuses us. conninfo's own settings (keepalives_idle=... in it) win over timeouts'.
  PgConnection(const std::string& conninfo, const PgTimeouts& timeouts);
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
  using Deadline = std::chrono::steady_clock::time_point;
  void connect(const std::string& conninfo);
  // Sends what libpq has queued and reads until the statement's last result; throws on a
  // lost connection or at the statement's deadline.
  pg_result* await_result(const char* what);
  // The poll(2) events that came; at the deadline (limit after it was set) the connection
  // is closed and PgError (unreachable) thrown.
  short wait_for_socket(short events, Deadline deadline, const char* what,
                        std::chrono::milliseconds limit);
  void sent(int accepted, const char* what);  // a PQsend* call's answer
  [[noreturn]] void lost(const char* what);   // libpq reports the connection broken
  [[noreturn]] void close_and_throw(const std::string& message, bool unreachable);
  PgResult check(pg_result* result, const char* what);

  const PgTimeouts timeouts_;
  pg_conn* conn_ = nullptr;
  std::unordered_map<std::string, std::string> prepared_;  // SQL text -> statement name
};

}  // namespace mxcd
