#include "server_session.hpp"

#include <cstring>
#include <optional>
#include <string>

#include "libpq-fe.h"
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

  // The server's primary message only: the statement may hold a verifier.
  void run(PGconn* conn, const std::string& sql, std::optional<std::string>* value) {
    PGresult* result = PQexec(conn, sql.c_str());
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
