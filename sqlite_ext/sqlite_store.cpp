#include "sqlite_store.hpp"

#ifdef ENVDB_SQLITE_LINKED
#include <sqlite3.h>
#else
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3
#endif

#include "sql_translate.hpp"

namespace envdb::sqlite {

namespace {

class SqliteStatement : public Statement {
 public:
  SqliteStatement(SqliteStore& store, std::string sql, sqlite3_stmt* stmt)
      : store_(store), sql_(std::move(sql)), stmt_(stmt) {}
  ~SqliteStatement() override { store_.give_back(sql_, stmt_); }

  void bind(int index, const Value& v) override {
    int rc = SQLITE_OK;
    if (is_null(v)) {
      rc = sqlite3_bind_null(stmt_, index);
    } else if (auto i = std::get_if<int64_t>(&v)) {
      rc = sqlite3_bind_int64(stmt_, index, *i);
    } else if (auto b = std::get_if<bool>(&v)) {
      rc = sqlite3_bind_int(stmt_, index, *b ? 1 : 0);
    } else if (auto d = std::get_if<double>(&v)) {
      rc = sqlite3_bind_double(stmt_, index, *d);
    } else if (auto s = std::get_if<std::string>(&v)) {
      rc = sqlite3_bind_text64(stmt_, index, s->data(), s->size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    } else if (auto blob = std::get_if<Blob>(&v)) {
      rc = sqlite3_bind_blob64(stmt_, index, blob->bytes.data(), blob->bytes.size(),
                               SQLITE_TRANSIENT);
    }
    if (rc != SQLITE_OK) store_.raise(rc);
  }

  bool step() override {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    store_.raise(rc);
  }

  int column_count() const override { return sqlite3_column_count(stmt_); }
  std::string column_name(int c) const override { return sqlite3_column_name(stmt_, c); }

  Value column(int c) const override {
    switch (sqlite3_column_type(stmt_, c)) {
      case SQLITE_INTEGER: return static_cast<int64_t>(sqlite3_column_int64(stmt_, c));
      case SQLITE_FLOAT: return sqlite3_column_double(stmt_, c);
      case SQLITE_TEXT: {
        auto p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
        return std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, c)));
      }
      case SQLITE_BLOB: {
        auto p = static_cast<const char*>(sqlite3_column_blob(stmt_, c));
        return Blob{std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(stmt_, c)))};
      }
      default: return null_value();
    }
  }

 private:
  SqliteStore& store_;
  std::string sql_;
  sqlite3_stmt* stmt_;
};

}  // namespace

SqliteStore::SqliteStore(sqlite3* db, bool owns) : db_(db), owns_(owns) {}

SqliteStore::~SqliteStore() {
  clear_cache();
  if (owns_) sqlite3_close_v2(db_);
}

void SqliteStore::clear_cache() {
  for (auto& [sql, stmts] : cache_)
    for (auto* s : stmts) sqlite3_finalize(s);
  cache_.clear();
  cached_ = 0;
  sqlite3_finalize(data_version_);  // a no-op on NULL
  data_version_ = nullptr;
}

std::optional<int64_t> SqliteStore::data_version() {
  if (!data_version_ &&
      sqlite3_prepare_v3(db_, "PRAGMA main.data_version", -1, SQLITE_PREPARE_PERSISTENT,
                         &data_version_, nullptr) != SQLITE_OK) {
    sqlite3_finalize(data_version_);
    data_version_ = nullptr;
    return std::nullopt;
  }
  std::optional<int64_t> version;
  if (sqlite3_step(data_version_) == SQLITE_ROW) version = sqlite3_column_int64(data_version_, 0);
  sqlite3_reset(data_version_);
  if (!keep_) {  // kept only while the owner finalizes kept statements (end_call)
    sqlite3_finalize(data_version_);
    data_version_ = nullptr;
  }
  return version;
}

void SqliteStore::end_call() {
  if (!keep_ || cached_ > kMaxCached) clear_cache();
}

void SqliteStore::keep_statements(bool keep) {
  keep_ = keep;
  if (!keep) clear_cache();
}

std::vector<std::pair<std::string, int>> SqliteStore::cached_statements() const {
  std::vector<std::pair<std::string, int>> out;
  for (const auto& [sql, stmts] : cache_)
    if (!stmts.empty()) out.emplace_back(sql, static_cast<int>(stmts.size()));
  if (data_version_) out.emplace_back("PRAGMA main.data_version", 1);
  return out;
}

std::unique_ptr<SqliteStore> SqliteStore::open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  auto store = std::make_unique<SqliteStore>(db, true);
  if (rc != SQLITE_OK) store->raise(rc);
  sqlite3_busy_timeout(db, 5000);
  return store;
}

std::unique_ptr<Statement> SqliteStore::prepare(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  auto it = cache_.find(sql);
  if (it != cache_.end() && !it->second.empty()) {
    stmt = it->second.back();
    it->second.pop_back();
    --cached_;
  } else {
    const std::string translated = translate_sql(sql);
    const int rc = sqlite3_prepare_v3(db_, translated.c_str(), static_cast<int>(translated.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) raise(rc);
  }
  return std::make_unique<SqliteStatement>(*this, sql, stmt);
}

void SqliteStore::give_back(const std::string& sql, sqlite3_stmt* stmt) {
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  auto& slot = cache_[sql];
  if (slot.size() < 2) {
    slot.push_back(stmt);
    ++cached_;
  } else
    sqlite3_finalize(stmt);
}

void SqliteStore::exec(const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, translate_sql(sql).c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string message = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    if (is_busy(rc)) throw Error(Code::conflict, busy_sentence(message));
    throw_host_error(Code::internal, message);
  }
}

bool SqliteStore::is_busy(int rc) {
  return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

std::string SqliteStore::busy_sentence(const std::string& message) {
  return "the database is locked by another connection (" + message +
         ") past the busy timeout; nothing was changed, retry the call";
}

void SqliteStore::savepoint(const std::string& name) {
  const std::string sql = "SAVEPOINT " + name;
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return;
  std::string message = err ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  // SQLite refuses a savepoint while an outer statement is writing. Going on
  // without one could leave half a change behind, so say what to do instead.
  if (message.find("SQL statements in progress") != std::string::npos)
    throw Error(Code::conflict,
                "envdb functions that change the catalog must be called from a SELECT statement, "
                "not inside INSERT, UPDATE, DELETE or CREATE TABLE ... AS (SQLite cannot open a "
                "savepoint there)");
  if (is_busy(rc)) throw Error(Code::conflict, busy_sentence(message));
  throw_host_error(Code::internal, message);
}

bool SqliteStore::begin_write() {
  if (!sqlite3_get_autocommit(db_)) return false;
  // Inside a writing statement (INSERT ... SELECT envdb_...) a transaction
  // could not commit; the savepoint then refuses the change (see savepoint()).
  for (sqlite3_stmt* s = sqlite3_next_stmt(db_, nullptr); s; s = sqlite3_next_stmt(db_, s))
    if (sqlite3_stmt_busy(s) && !sqlite3_stmt_readonly(s)) return false;
  exec("BEGIN IMMEDIATE");
  return true;
}

void SqliteStore::commit_write() {
  try {
    exec("COMMIT");
  } catch (...) {
    // A COMMIT that fails (busy past the timeout) leaves the transaction open.
    rollback_write();
    throw;
  }
}

void SqliteStore::rollback_write() noexcept {
  if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void SqliteStore::release(const std::string& name) { exec("RELEASE " + name); }
void SqliteStore::rollback_to(const std::string& name) { exec("ROLLBACK TO " + name); }

void SqliteStore::raise(int rc) const {
  const std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  const int ext = db_ ? sqlite3_extended_errcode(db_) : rc;
  switch (ext) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY: throw_host_error(Code::already_exists, message);
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL: throw_host_error(Code::invalid_parameter, message);
    case SQLITE_CONSTRAINT_FOREIGNKEY: throw_host_error(Code::not_found, message);
    case SQLITE_READONLY: throw_host_error(Code::permission_denied, message);
    default:
      // SQLITE_BUSY / SQLITE_LOCKED: another connection holds the lock longer
      // than the busy timeout, or a deferred transaction cannot be upgraded.
      if (is_busy(ext)) throw Error(Code::conflict, busy_sentence(message));
      throw_host_error(Code::internal, message);
  }
}

}  // namespace envdb::sqlite
