// PgConnection's deadlines. A listening socket that never answers stands for a frozen
// server (the kernel completes the TCP handshake, nothing reads); the statement bound on the
// server side needs a real PostgreSQL, named by MXCD_TEST_POSTGRES (a libpq conninfo).
#include "meta/postgres/pg_connection.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

namespace mxcd {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

// Accepts TCP connections into its backlog and never reads from them.
class SilentServer {
 public:
  SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(fd_, 8) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
    }
    port_ = ntohs(address.sin_port);
  }
  ~SilentServer() { ::close(fd_); }
  std::string conninfo() const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " user=mxcd dbname=mxcd";
  }

 private:
  int fd_ = -1;
  unsigned port_ = 0;
};

// The PgError that work throws; a test failure when it throws none.
template <class F>
PgError thrown_by(F work) {
  try {
    work();
  } catch (const PgError& e) {
    return e;
  }
  ADD_FAILURE() << "no PgError thrown";
  return PgError("none", "", false);
}

TEST(PgConnection, ConnectingToAServerThatNeverAnswersGivesUpAtTheDeadline) {
  SilentServer server;
  PgTimeouts timeouts;
  timeouts.connect = milliseconds(300);
  const auto started = steady_clock::now();
  PgError e = thrown_by([&] { PgConnection connection(server.conninfo(), timeouts); });
  EXPECT_TRUE(e.connection_lost);
  EXPECT_TRUE(e.unreachable) << "a retry would only wait again";
  EXPECT_NE(std::string(e.what()).find("did not answer within 300 ms"), std::string::npos)
      << e.what();
  // Generous: the deadline is 300 ms; without one, libpq waits forever.
  EXPECT_LT(steady_clock::now() - started, seconds(10));
}

TEST(PgConnection, ARefusedConnectionIsUnreachableAtOnce) {
  std::string conninfo;
  {
    SilentServer closed;  // its port, free again once closed
    conninfo = closed.conninfo();
  }
  PgError e = thrown_by([&] { PgConnection connection(conninfo, PgTimeouts{}); });
  EXPECT_TRUE(e.connection_lost);
  EXPECT_TRUE(e.unreachable);
}

TEST(PgConnection, TheServerStopsAStatementAtItsTimeoutAndTheConnectionStaysUsable) {
  const char* conninfo = std::getenv("MXCD_TEST_POSTGRES");
  if (!conninfo) GTEST_SKIP() << "MXCD_TEST_POSTGRES names no PostgreSQL database";
  PgTimeouts timeouts;
  timeouts.statement = milliseconds(200);
  PgConnection connection(conninfo, timeouts);
  const auto started = steady_clock::now();
  PgError e = thrown_by([&] { connection.exec("SELECT pg_sleep(30)"); });
  EXPECT_EQ(e.sqlstate, "57014") << e.what();  // query_canceled
  EXPECT_FALSE(e.connection_lost);
  EXPECT_LT(steady_clock::now() - started, seconds(10));
  ASSERT_TRUE(connection.usable());
  EXPECT_EQ(connection.query("SELECT $1::int + 1", 41).integer(0, 0), 42);
  // Several statements at once: the last result, as with PQexec.
  connection.exec("SELECT 1; SELECT 2");
}

TEST(PgConnection, WithoutAStatementBoundNothingIsCut) {
  const char* conninfo = std::getenv("MXCD_TEST_POSTGRES");
  if (!conninfo) GTEST_SKIP() << "MXCD_TEST_POSTGRES names no PostgreSQL database";
  PgConnection connection(conninfo, PgTimeouts{});  // statement: 0, unbounded
  EXPECT_EQ(connection.query("SELECT current_setting('statement_timeout')").text(0, 0), "0");
  connection.exec("SELECT pg_sleep(0.3)");
}

TEST(PgConnection, AFailingStatementAmongSeveralIsReported) {
  const char* conninfo = std::getenv("MXCD_TEST_POSTGRES");
  if (!conninfo) GTEST_SKIP() << "MXCD_TEST_POSTGRES names no PostgreSQL database";
  PgConnection connection(conninfo, PgTimeouts{.statement = seconds(5)});
  PgError e =
      thrown_by([&] { connection.exec("SELECT 1; SELECT * FROM no_such_table; SELECT 3"); });
  EXPECT_EQ(e.sqlstate, "42P01") << e.what();  // undefined_table
  EXPECT_FALSE(e.connection_lost);
  EXPECT_TRUE(connection.usable());
}

}  // namespace
}  // namespace mxcd
