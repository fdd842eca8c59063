#include "server_session.hpp"

extern "C" {
#include "postgres.h"

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/wait_event.h"
}

#include <cstring>
#include <functional>
#include <optional>
#include <string>

#include "libpq-fe.h"
#include "pg_guard.hpp"
#include "postgres/copier.hpp"
#include "secrets/crypto.hpp"

namespace envdb::pg {

namespace {

// libpq's messages end in a newline and may go on with hints and other
// addresses tried; the first line says what failed.
std::string first_line(const char* text) {
  std::string s = text ? text : "";
  const size_t nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

class LibpqSession : public postgres::ServerSession {
 public:
  LibpqSession(const postgres::Server& server, const ConnectOptions& options)
      : name_(server.name),
        host_(server.host),
        port_(server.port),
        dbname_(server.dbname),
        username_(server.username),
        options_(options) {
    if (server.password && !server.password->empty()) {
      // NUL-terminated for libpq, and wiped with the session.
      const std::string_view p = server.password->view();
      password_ = crypto::SecretBytes(p.size() + 1);
      std::memcpy(password_.data(), p.data(), p.size());
    }
    conn_ = connect(dbname_);
  }
  ~LibpqSession() override { PQfinish(conn_); }

  void exec(const std::string& sql) override { run(conn_, sql, nullptr); }
  std::optional<std::string> query_value(const std::string& sql) override {
    std::optional<std::string> value;
    run(conn_, sql, &value);
    return value;
  }
  // Each PQexec outside BEGIN is its own transaction, so CREATE DATABASE runs.
  void exec_top_level(const std::string& sql) override { run(conn_, sql, nullptr); }
  void exec_in_database(const std::string& database_name, const std::string& sql) override {
    PGconn* conn = connect(database_name);
    try {
      // One query string of several statements is one implicit transaction.
      run(conn, sql, nullptr);
    } catch (...) {
      PQfinish(conn);
      throw;
    }
    PQfinish(conn);
  }
  std::string url(const std::string& database_name) override {
    return postgres::database_url(host_, port_, database_name);
  }
  // The template's sessions in the statement's way are ended from a second
  // connection every 50 ms while it runs (without one, the statement alone).
  void create_from_template(const std::string& sql, const std::string& template_db) override {
    PGconn* side = nullptr;
    try {
      side = connect(dbname_);
    } catch (const Error&) {
      run(conn_, sql, nullptr);
      return;
    }
    const std::string clear = postgres::clear_template_sql(template_db, PQbackendPID(conn_));
    const std::function<void()> tick = [&] {
      try {
        run(side, clear, nullptr);
      } catch (const Error&) {
        // Best effort: the statement's own wait and retry remain.
      }
    };
    try {
      run(conn_, sql, nullptr, &tick);
    } catch (...) {
      PQfinish(side);
      throw;
    }
    PQfinish(side);
  }

 private:
  PGconn* connect(const std::string& dbname) {
    const std::string port = std::to_string(port_);
    const std::string timeout = std::to_string(options_.timeout_seconds);
    const char* keys[] = {
        "host", "port", "dbname", "user", "password", "connect_timeout", "application_name",
        nullptr};
    const char* values[] = {host_.c_str(),
                            port.c_str(),
                            dbname.c_str(),
                            username_.c_str(),
                            password_.empty() ? nullptr
                                              : reinterpret_cast<const char*>(password_.data()),
                            timeout.c_str(),
                            options_.application_name,
                            nullptr};
    PGconn* conn = PQconnectdbParams(keys, values, 0);
    if (!conn) throw Error(Code::internal, "out of memory connecting to database host");
    if (PQstatus(conn) != CONNECTION_OK) {
      const std::string message = first_line(PQerrorMessage(conn));
      PQfinish(conn);
      throw Transient(Code::internal,
                      "cannot connect to database host " + quote_value(name_) + ": " + message);
    }
    return conn;
  }

  // Sends the statement and waits for its results on this process's latch
  // and the socket, answering this server's interrupts meanwhile. A blocking
  // PQexec would not: when the host is the server envdb itself runs on, its
  // DROP DATABASE waits for every backend (this one too) to absorb a
  // ProcSignalBarrier, and a backend asleep in libpq never does.
  // `tick` (when given) runs every 50 ms while the statement does.
  PGresult* send_and_wait(PGconn* conn, const std::string& sql,
                          const std::function<void()>* tick = nullptr) {
    if (!PQsendQuery(conn, sql.c_str()))
      throw Error(Code::internal,
                  "database host " + quote_value(name_) + ": " + first_line(PQerrorMessage(conn)));
    bool latched = false;
    while (PQisBusy(conn)) {
      const pgsocket socket = PQsocket(conn);
      bool timed_out = false;
      guarded([&] {
        const int events = WaitLatchOrSocket(MyLatch,
                                             WL_LATCH_SET | WL_SOCKET_READABLE |
                                                 WL_EXIT_ON_PM_DEATH | (tick ? WL_TIMEOUT : 0),
                                             socket, tick ? 50L : -1L, PG_WAIT_EXTENSION);
        if (events & WL_LATCH_SET) {
          ResetLatch(MyLatch);
          latched = true;
        }
        timed_out = (events & WL_TIMEOUT) != 0;
        CHECK_FOR_INTERRUPTS();
      });
      if (timed_out) (*tick)();
      if (!PQconsumeInput(conn))
        throw Error(Code::internal, "database host " + quote_value(name_) + ": " +
                                        first_line(PQerrorMessage(conn)));
    }
    // A wake-up meant for the caller (the worker's next pass) is passed on.
    if (latched) SetLatch(MyLatch);
    // As PQexec: the last result, or the first that failed (one query string
    // of several statements stops at its first error).
    PGresult* kept = nullptr;
    while (PGresult* next = PQgetResult(conn)) {
      const ExecStatusType status = PQresultStatus(kept);
      if (kept && status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        PQclear(next);
        continue;
      }
      PQclear(kept);
      kept = next;
    }
    return kept;
  }

  // The server's primary message only: the statement may hold a verifier.
  void run(PGconn* conn, const std::string& sql, std::optional<std::string>* value,
           const std::function<void()>* tick = nullptr) {
    PGresult* result = send_and_wait(conn, sql, tick);
    const ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      const char* primary = result ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
      const std::string message = primary ? primary : first_line(PQerrorMessage(conn));
      PQclear(result);
      throw Error(Code::internal, "database host " + quote_value(name_) + ": " + message);
    }
    if (value && status == PGRES_TUPLES_OK && PQntuples(result) > 0 && PQnfields(result) > 0 &&
        !PQgetisnull(result, 0, 0))
      *value = std::string(PQgetvalue(result, 0, 0));
    PQclear(result);
  }

  std::string name_, host_;
  int64_t port_;
  std::string dbname_, username_;
  crypto::SecretBytes password_;  // NUL-terminated; empty: none
  ConnectOptions options_;
  PGconn* conn_ = nullptr;
};

}  // namespace

std::unique_ptr<postgres::ServerSession> connect_registered_server(const postgres::Server& server,
                                                                   const ConnectOptions& options) {
  return std::make_unique<LibpqSession>(server, options);
}

}  // namespace envdb::pg
