// The store port over the sqlite3 API. Compiled twice: into the loadable
// extension (through sqlite3ext.h's routine table) and, with
// ENVDB_SQLITE_LINKED, into the core's unit tests against a linked libsqlite3.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/store.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace envdb::sqlite {

class SqliteStore : public Store {
 public:
  // Borrows `db` (the extension's connection) unless `owns` is true.
  SqliteStore(sqlite3* db, bool owns);
  ~SqliteStore() override;
  static std::unique_ptr<SqliteStore> open(const std::string& path);  // owns the handle

  Dialect dialect() const override { return Dialect::sqlite; }
  std::unique_ptr<Statement> prepare(const std::string& sql) override;
  void exec(const std::string& sql) override;
  void savepoint(const std::string& name) override;
  void release(const std::string& name) override;
  void rollback_to(const std::string& name) override;
  sqlite3* handle() const { return db_; }
  // Finalizes the cached statements.
  void clear_cache();
  // The extension's end of a call. sqlite3_close() refuses a connection that
  // still has prepared statements, so the cache is cleared here unless the
  // owner keeps statements (keep_statements(true)): it then promises to clear
  // the cache itself before the connection closes. A cache grown past
  // kMaxCached statements is cleared either way.
  void end_call();
  void keep_statements(bool keep);
  bool keeps_statements() const { return keep_; }
  // The core SQL text of each cached statement and its number of copies.
  std::vector<std::pair<std::string, int>> cached_statements() const;
  static constexpr size_t kMaxCached = 256;

  // A call that changes the catalog runs in one write transaction of its own
  // when the caller has none open: BEGIN IMMEDIATE takes the write lock first
  // (waiting up to the busy timeout), so what the call reads cannot change
  // before it writes. Returns false when a transaction is already open (the
  // caller's; then only its savepoints apply).
  bool begin_write();
  void commit_write();
  void rollback_write() noexcept;

  // PRAGMA main.data_version, which the resolve cache reads on every resolve:
  // one statement kept (and finalized) with the cached ones, stepped without
  // a lookup by its text or a Statement object. nullopt when it cannot be read.
  std::optional<int64_t> data_version();

  [[noreturn]] void raise(int rc) const;  // throws the mapped envdb::Error
  static bool is_busy(int rc);            // SQLITE_BUSY or SQLITE_LOCKED, any extended code
  static std::string busy_sentence(const std::string& message);
  void give_back(const std::string& sql, sqlite3_stmt* stmt);

 private:
  sqlite3* db_;
  bool owns_;
  bool keep_ = false;
  size_t cached_ = 0;  // statements in cache_
  // Prepared statements by their core SQL text; a statement in use is taken
  // out and put back when done, so re-entrant use prepares a second copy.
  std::unordered_map<std::string, std::vector<sqlite3_stmt*>> cache_;
  sqlite3_stmt* data_version_ = nullptr;
};

}  // namespace envdb::sqlite
