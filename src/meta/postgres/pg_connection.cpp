#include "meta/postgres/pg_connection.hpp"

#include <libpq-fe.h>

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace mxcd {

namespace {

std::string trimmed(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool succeeded(const pg_result* result) {
  ExecStatusType status = PQresultStatus(result);
  return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

}  // namespace

PgResult::PgResult(pg_result* result) : result_(result) {}
PgResult::~PgResult() { PQclear(result_); }
PgResult::PgResult(PgResult&& other) noexcept : result_(other.result_) { other.result_ = nullptr; }

int PgResult::rows() const { return PQntuples(result_); }
int PgResult::columns() const { return PQnfields(result_); }

std::int64_t PgResult::affected() const {
  const char* n = PQcmdTuples(result_);
  return n && *n ? std::strtoll(n, nullptr, 10) : 0;
}

bool PgResult::is_null(int row, int column) const { return PQgetisnull(result_, row, column) == 1; }

std::string PgResult::text(int row, int column) const {
  return std::string(PQgetvalue(result_, row, column),
                     static_cast<std::size_t>(PQgetlength(result_, row, column)));
}

std::int64_t PgResult::integer(int row, int column) const {
  return std::strtoll(PQgetvalue(result_, row, column), nullptr, 10);
}

std::optional<std::string> PgResult::optional_text(int row, int column) const {
  if (is_null(row, column)) return std::nullopt;
  return text(row, column);
}

PgConnection::PgConnection(const std::string& conninfo, const PgTimeouts& timeouts)
    : timeouts_(timeouts) {
  connect(conninfo);
  try {
    // Sends never block either: what the socket cannot take yet waits in libpq's buffer.
    if (PQsetnonblocking(conn_, 1) != 0) lost("cannot connect to PostgreSQL");
    if (timeouts_.statement.count() > 0) {
      const std::string limit =
          "SET statement_timeout = " + std::to_string(timeouts_.statement.count());
      exec(limit.c_str());
    }
  } catch (...) {
    PQfinish(conn_);
    conn_ = nullptr;
    throw;
  }
}

void PgConnection::connect(const std::string& conninfo) {
  const Deadline deadline = std::chrono::steady_clock::now() + timeouts_.connect;
  // Keepalive probes after a third of the network timeout of silence, two more a third apart:
  // a dead peer is noticed after about the whole of it, as with TCP_USER_TIMEOUT for data
  // that is never acknowledged.
  const std::string probe_interval = std::to_string(std::max<long long>(
      1, std::chrono::floor<std::chrono::seconds>(timeouts_.network).count() / 3));
  const std::string user_timeout = std::to_string(timeouts_.network.count());
  // conninfo (a URL or "key=value" pairs) is expanded in place of dbname; its own settings
  // come after ours and so win over them.
  const char* keys[] = {
      "application_name", "keepalives",       "keepalives_idle", "keepalives_interval",
      "keepalives_count", "tcp_user_timeout", "dbname",          nullptr};
  const char* values[] = {"mxcd",
                          "1",
                          probe_interval.c_str(),
                          probe_interval.c_str(),
                          "2",
                          user_timeout.c_str(),
                          conninfo.c_str(),
                          nullptr};
  conn_ = PQconnectStartParams(keys, values, 1);
  if (!conn_) throw PgError("cannot connect to PostgreSQL: out of memory", "", true, true);
  constexpr const char* kWhat = "cannot connect to PostgreSQL";
  // libpq's own connect_timeout applies to blocking connects only: this loop is ours.
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  while (state != PGRES_POLLING_OK) {
    if (state == PGRES_POLLING_FAILED || PQstatus(conn_) == CONNECTION_BAD) {
      close_and_throw(std::string(kWhat) + ": " + trimmed(PQerrorMessage(conn_)), true);
    }
    wait_for_socket(state == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline, kWhat,
                    timeouts_.connect);
    state = PQconnectPoll(conn_);
  }
}

PgConnection::~PgConnection() { PQfinish(conn_); }

bool PgConnection::usable() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

int PgConnection::socket() const { return PQsocket(conn_); }

void PgConnection::close_and_throw(const std::string& message, bool unreachable) {
  PQfinish(conn_);
  conn_ = nullptr;
  throw PgError(message, "", true, unreachable);
}

void PgConnection::lost(const char* what) {
  close_and_throw(std::string(what) + ": " + trimmed(PQerrorMessage(conn_)), false);
}

short PgConnection::wait_for_socket(short events, Deadline deadline, const char* what,
                                    std::chrono::milliseconds limit) {
  while (true) {
    int timeout_ms = -1;  // no deadline
    if (deadline != Deadline::max()) {
      auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        // The server may be frozen mid-statement: this connection's state is unknown, and a
        // cancel request would wait on the same server. Closing is the one way out; the
        // server rolls the transaction back when it notices.
        close_and_throw(std::string(what) + ": PostgreSQL did not answer within " +
                            std::to_string(limit.count()) + " ms",
                        true);
      }
      timeout_ms = static_cast<int>(std::min<long long>(left.count(), 60'000));
    }
    pollfd p{PQsocket(conn_), events, 0};
    if (p.fd < 0) lost(what);
    int ready = ::poll(&p, 1, timeout_ms);
    if (ready > 0) return p.revents;
    if (ready < 0 && errno != EINTR) lost(what);
  }
}

pg_result* PgConnection::await_result(const char* what) {
  Deadline deadline = Deadline::max();
  std::chrono::milliseconds limit{0};
  if (timeouts_.statement.count() > 0) {
    limit = timeouts_.statement + kServerAnswerGrace;
    deadline = std::chrono::steady_clock::now() + limit;
  }
  // What a non-blocking send left in libpq's buffer. Input is read meanwhile, as libpq asks,
  // so that a server waiting to send cannot deadlock with us.
  while (int unsent = PQflush(conn_)) {
    if (unsent < 0) lost(what);
    short ready = wait_for_socket(POLLIN | POLLOUT, deadline, what, limit);
    if ((ready & POLLIN) && !PQconsumeInput(conn_)) lost(what);
  }
  // Several statements give several results: keep the first failure, else the last, as
  // PQexec does.
  pg_result* kept = nullptr;
  try {
    while (true) {
      while (PQisBusy(conn_)) {
        wait_for_socket(POLLIN, deadline, what, limit);
        if (!PQconsumeInput(conn_)) lost(what);
      }
      pg_result* next = PQgetResult(conn_);
      if (!next) break;
      if (kept && !succeeded(kept)) {
        PQclear(next);
      } else {
        PQclear(kept);
        kept = next;
      }
    }
  } catch (...) {
    PQclear(kept);
    throw;
  }
  return kept;
}

void PgConnection::sent(int accepted, const char* what) {
  if (!accepted) lost(what);
}

PgResult PgConnection::check(pg_result* raw, const char* what) {
  PgResult result(raw);
  if (raw && succeeded(raw)) return result;
  const char* state = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
  std::string message = raw ? trimmed(PQresultErrorMessage(raw)) : "";
  if (message.empty()) message = trimmed(PQerrorMessage(conn_));
  throw PgError(std::string(what) + ": " + message, state ? state : "", !usable());
}

PgResult PgConnection::run(const char* sql, const std::vector<PgParam>& params) {
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    // Built by append: GCC 12 warns (falsely, -Wrestrict) about "s" + std::string.
    std::string name = "s";
    name += std::to_string(prepared_.size());
    sent(PQsendPrepare(conn_, name.c_str(), sql, 0, nullptr), "prepare");
    check(await_result("prepare"), "prepare");
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  sent(PQsendQueryPrepared(conn_, it->second.c_str(), static_cast<int>(values.size()),
                           values.data(), nullptr, nullptr, 0),
       "query");
  return check(await_result("query"), "query");
}

void PgConnection::exec(const char* sql) {
  sent(PQsendQuery(conn_, sql), "query");
  check(await_result("query"), "query");
}

}  // namespace mxcd
