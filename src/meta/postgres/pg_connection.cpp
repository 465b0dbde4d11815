#include "meta/postgres/pg_connection.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>

namespace mxcd {

namespace {

std::string trimmed(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
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

bool PgResult::flag(int row, int column) const { return PQgetvalue(result_, row, column)[0] == 't'; }

std::optional<std::string> PgResult::optional_text(int row, int column) const {
  if (is_null(row, column)) return std::nullopt;
  return text(row, column);
}

std::optional<std::int64_t> PgResult::optional_integer(int row, int column) const {
  if (is_null(row, column)) return std::nullopt;
  return integer(row, column);
}

bool PgRow::is_null(int column) const { return result_.is_null(row_, column); }
std::string PgRow::text(int column) const { return result_.text(row_, column); }
std::int64_t PgRow::integer(int column) const { return result_.integer(row_, column); }
bool PgRow::flag(int column) const { return result_.flag(row_, column); }
std::optional<std::string> PgRow::optional_text(int column) const {
  return result_.optional_text(row_, column);
}
std::optional<std::int64_t> PgRow::optional_integer(int column) const {
  return result_.optional_integer(row_, column);
}

PgConnection::PgConnection(const std::string& conninfo, std::chrono::milliseconds connect_timeout) {
  // conninfo (a URL or "key=value" pairs) is expanded in place of dbname; its own settings
  // come after ours and so win over them.
  const std::string timeout =
      std::to_string(std::max<long long>(1, std::chrono::ceil<std::chrono::seconds>(connect_timeout).count()));
  const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {timeout.c_str(), "mxcd", conninfo.c_str(), nullptr};
  conn_ = PQconnectdbParams(keys, values, 1);
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    std::string message = conn_ ? trimmed(PQerrorMessage(conn_)) : "out of memory";
    PQfinish(conn_);
    conn_ = nullptr;
    throw PgError("cannot connect to PostgreSQL: " + message, "", true);
  }
}

PgConnection::~PgConnection() { PQfinish(conn_); }

bool PgConnection::usable() const { return PQstatus(conn_) == CONNECTION_OK; }

int PgConnection::socket() const { return PQsocket(conn_); }

PgResult PgConnection::check(pg_result* raw, const char* what) {
  PgResult result(raw);
  ExecStatusType status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
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
    check(PQprepare(conn_, name.c_str(), sql, 0, nullptr), "prepare");
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  return check(PQexecPrepared(conn_, it->second.c_str(), static_cast<int>(values.size()),
                              values.data(), nullptr, nullptr, 0),
               "query");
}

void PgConnection::exec(const char* sql) { check(PQexec(conn_, sql), "query"); }

}  // namespace mxcd
