// A Host over a SQLite database (in memory unless a path is given), for
// running the core in tests. Two hosts on one file share a catalog.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "postgres/statements.hpp"
#include "sqlite_store.hpp"
#include "surface/api.hpp"
#include "surface/invariants.hpp"

namespace envdb::test {

class MemoryHost : public Host {
 public:
  explicit MemoryHost(const std::string& path = ":memory:")
      : store_(sqlite::SqliteStore::open(path)) {}
  const char* name() const override { return "sqlite"; }
  Store& store() override { return *store_; }
  std::optional<std::string> actor() override { return std::string("test"); }
  void notice(const std::string& m) override { notices.push_back(m); }
  void warning(const std::string& m) override { warnings.push_back(m); }
  Json info() override { return Json::object(); }
  Keyring& keyring() override { return keyring_; }
  std::optional<std::string> context() override { return context_; }
  void set_context(const std::optional<std::string>& c) override { context_ = c; }
  bool caller_is_privileged() override { return true; }
  std::unique_ptr<Store> open_database_file(const std::string& path) override {
    return sqlite::SqliteStore::open(path);
  }
  // As the SQLite host: the sqlite driver's file.
  std::optional<bool> database_exists(const std::string& driver, const std::string& database_name,
                                      const std::optional<std::string>& database_url) override {
    if (driver != "sqlite") return std::nullopt;
    return invariants::sqlite_file_exists(*this, database_name, database_url);
  }

  // A session on a registered Postgres server, when a test provides one (the
  // SQLite host itself has none: nullptr).
  std::function<std::unique_ptr<postgres::ServerSession>(const postgres::Server&)> connect;
  std::unique_ptr<postgres::ServerSession> connect_server(const postgres::Server& s) override {
    return connect ? connect(s) : nullptr;
  }

  Value call(const std::string& fn, std::vector<Value> args = {}) {
    const api::Function* f = api::find(fn);
    if (!f) throw std::runtime_error("no function " + fn);
    return api::invoke(*this, *f, std::move(args));
  }
  std::string call_text(const std::string& fn, std::vector<Value> args = {}) {
    return std::get<std::string>(call(fn, std::move(args)));
  }

  std::vector<std::string> notices, warnings;

 private:
  std::unique_ptr<sqlite::SqliteStore> store_;
  Keyring keyring_;
  std::optional<std::string> context_;
};

// The envdb::Error an expression throws; fails the test when it throws none.
template <typename F>
Error error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no envdb::Error was thrown";
  return Error(Code::internal, "none");
}

// The SQLite store's table names, sorted.
inline std::vector<std::string> table_names(Store& store) {
  std::vector<std::string> out;
  for (auto& r : query(store, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"))
    out.push_back(r.text("name"));
  return out;
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Reads better where the file matters.
using FileHost = MemoryHost;

}  // namespace envdb::test
