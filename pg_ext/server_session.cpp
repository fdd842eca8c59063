#include "server_session.hpp"

#include <string>

#include "core/errors.hpp"
#include "libpq-fe.h"
#include "postgres/statements.hpp"

namespace envdb::pg {

namespace {

std::string first_line(const char* text) {
  std::string s = text ? text : "";
  const size_t nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

class LibpqSession : public postgres::ServerSession {
 public:
  LibpqSession(const postgres::Server& server, PGconn* conn) : name_(server.name), conn_(conn) {}
  ~LibpqSession() override { PQfinish(conn_); }

  void exec(const std::string& sql) override { run(sql, nullptr); }
  std::optional<std::string> query_value(const std::string& sql) override {
    std::optional<std::string> value;
    run(sql, &value);
    return value;
  }
  void exec_top_level(const std::string& sql) override { run(sql, nullptr); }
  void exec_in_database(const std::string&, const std::string&) override {
    throw Error(Code::internal, "a check session runs in the maintenance database only");
  }
  std::string url(const std::string&) override {
    throw Error(Code::internal, "a check session makes no database URLs");
  }

 private:
  void run(const std::string& sql, std::optional<std::string>* value) {
    PGresult* result = PQexec(conn_, sql.c_str());
    const ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      const char* primary = result ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
      const std::string message = primary ? primary : first_line(PQerrorMessage(conn_));
      PQclear(result);
      throw Error(Code::internal, "database host " + quote_value(name_) + ": " + message);
    }
    if (value && status == PGRES_TUPLES_OK && PQntuples(result) > 0 && PQnfields(result) > 0 &&
        !PQgetisnull(result, 0, 0))
      *value = std::string(PQgetvalue(result, 0, 0));
    PQclear(result);
  }

  std::string name_;
  PGconn* conn_;
};

}  // namespace

std::unique_ptr<postgres::ServerSession> connect_registered_server(const postgres::Server& server) {
  const std::string port = std::to_string(server.port);
  const std::string password =
      server.password ? std::string(server.password->view()) : std::string();
  const char* keys[] = {"host",     "port",            "dbname",           "user",
                        "password", "connect_timeout", "application_name", nullptr};
  const char* values[] = {server.host.c_str(),
                          port.c_str(),
                          server.dbname.c_str(),
                          server.username.c_str(),
                          password.empty() ? nullptr : password.c_str(),
                          "5",
                          "envdb check",
                          nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 0);
  if (!conn) throw Error(Code::internal, "out of memory connecting to database host");
  if (PQstatus(conn) != CONNECTION_OK) {
    const std::string message = first_line(PQerrorMessage(conn));
    PQfinish(conn);
    throw Error(Code::internal,
                "cannot connect to database host " + quote_value(server.name) + ": " + message);
  }
  return std::make_unique<LibpqSession>(server, conn);
}

}  // namespace envdb::pg
