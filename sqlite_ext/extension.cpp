// The SQLite host: sqlite3_envdb_init registers every entry of the core's
// function table as envdb_<name>, each routed through one guard. Built as the
// loadable extension (build/envdb.so, SQLite's routine table) and, with
// SQLITE_CORE, as the static library for programs that embed SQLite
// (build/libenvdb_sqlite.a, envdb_sqlite_register in envdb_sqlite.h).
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "catalog/upgrade.hpp"
#include "core/version.hpp"
#include "sqlite_store.hpp"
#include "surface/api.hpp"
#include "surface/invariants.hpp"
#include "tenancy/context.hpp"
#include "tenancy/provision.hpp"

namespace envdb::sqlite {

namespace {

// Per-connection state: hangs off each function's user data, never global.
class Connection : public Host {
 public:
  explicit Connection(sqlite3* db)
      : db_(db), store_(db, false), resolve_cache_(resolve_cache_entries()) {}
  const char* name() const override { return "sqlite"; }
  Store& store() override { return store_; }
  std::optional<std::string> actor() override { return std::nullopt; }
  void notice(const std::string& message) override {
    sqlite3_log(SQLITE_NOTICE, "envdb: %s", message.c_str());
  }
  void warning(const std::string& message) override {
    sqlite3_log(SQLITE_WARNING, "envdb: %s", message.c_str());
  }
  Json info() override { return Json{{"sqlite", sqlite3_libversion()}}; }
  // Ends a call. Until envdb_statements is connected (see below) the call's
  // statements are finalized here; trying to connect it costs one prepare.
  void end_call();
  // Files the current call kept (Host::file_kept); see dispatch.
  void file_kept(const std::string& path) override { call_files_.push_back(path); }
  void remove_call_files() noexcept {
    for (const std::string& path : call_files_) {
      try {
        provision::delete_database_file(path);
      } catch (...) {
        // Best effort: check() reports a file left behind.
      }
    }
    call_files_.clear();
  }
  SqliteStore& sqlite_store() { return store_; }
  Keyring& keyring() override { return keyring_; }
  std::optional<std::string> context() override { return context_; }
  void set_context(const std::optional<std::string>& c) override { context_ = c; }
  bool caller_is_privileged() override { return true; }
  // Refuses a call that needs the control-plane catalog on a database whose
  // catalog is missing or older than this envdb's (the core decides); once it
  // has passed, it holds for this connection, since a catalog never goes back.
  void require_current_catalog(const api::Function& fn) {
    if (catalog_current_ || !catalog::needs_catalog(fn)) return;
    catalog::require_current_catalog(store_);
    catalog_current_ = true;
  }
  std::unique_ptr<Store> open_database_file(const std::string& path) override {
    return SqliteStore::open(path);
  }
  // "" for an in-memory or temporary database.
  std::optional<std::string> control_database_path() override {
    const char* file = sqlite3_db_filename(db_, "main");
    if (!file || !*file) return std::nullopt;
    return std::string(file);
  }
  // The resolve cache of this connection. Its generation: PRAGMA
  // data_version (moves when another connection commits to the main
  // database) and the connection's own change count (data_version does not
  // move for its own writes, which sqlite3_total_changes counts at once,
  // committed or not). Inside a write transaction rows are not kept, since
  // a ROLLBACK (TO SAVEPOINT) would undo what they were read from without
  // moving either counter back.
  RowCache* resolve_cache() override {
    return resolve_cache_.capacity() ? &resolve_cache_ : nullptr;
  }
  // ENVDB_RESOLVE_CACHE_ENTRIES: rows kept per connection (0: no cache),
  // read when the connection loads envdb.
  static size_t resolve_cache_entries() {
    const char* v = std::getenv("ENVDB_RESOLVE_CACHE_ENTRIES");
    if (!v || !*v) return RowCache::kDefaultCapacity;
    char* end = nullptr;
    const unsigned long long n = std::strtoull(v, &end, 10);
    return end && *end == '\0' ? static_cast<size_t>(n) : RowCache::kDefaultCapacity;
  }
  std::optional<Generation> catalog_generation() override {
    Generation g;
    const std::optional<int64_t> version = store_.data_version();
    if (!version) return std::nullopt;
    g.a = static_cast<uint64_t>(*version);
    g.b = static_cast<uint64_t>(sqlite3_total_changes64(db_));
    g.fill = sqlite3_txn_state(db_, "main") != SQLITE_TXN_WRITE;
    return g;
  }
  bool defer_touch(const std::string& database_id, int64_t at_ms) override {
    if (!resolve_cache_.capacity()) return false;  // no cache: nothing would write it
    resolve_cache_.note_touch(database_id, at_ms);
    return true;
  }
  // The sqlite driver's file; other drivers' databases live elsewhere.
  std::optional<bool> database_exists(const std::string& driver, const std::string& database_name,
                                      const std::optional<std::string>& database_url) override {
    if (driver != "sqlite") return std::nullopt;
    return invariants::sqlite_file_exists(*this, database_name, database_url);
  }

 private:
  sqlite3* db_;
  SqliteStore store_;
  Keyring keyring_;
  std::optional<std::string> context_;
  bool catalog_current_ = false;
  std::vector<std::string> call_files_;
  RowCache resolve_cache_;
};

struct Entry {
  std::shared_ptr<Connection> connection;
  const api::Function* fn;
};

// ---- Statements kept between calls ----------------------------------------
// Preparing the router's join costs more than running it, so statements stay
// prepared from one call to the next. They must be finalized before the
// connection closes: sqlite3_close() refuses a connection that still has
// statements, and SQLite has no close hook for an extension. It does
// disconnect every virtual table, eponymous ones included, before that check.
// So the cache hangs off the eponymous, read-only table envdb_statements (one
// row per kept statement: its SQL text and copies): the first call connects
// it, and its xDisconnect (at close, or when the extension is loaded again)
// finalizes every kept statement. If it cannot be connected (a user table of
// that name, say), statements are finalized after every call instead.
constexpr const char* kStatementsTable = "envdb_statements";

struct StatementsTable {
  sqlite3_vtab base;  // first: SQLite sees a sqlite3_vtab*
  std::shared_ptr<Connection> connection;
};

struct StatementsCursor {
  sqlite3_vtab_cursor base;
  std::vector<std::pair<std::string, int>> rows;
  size_t at = 0;
};

int statements_connect(sqlite3* db, void* aux, int, const char* const*, sqlite3_vtab** out,
                       char**) {
  const int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(sql TEXT, copies INTEGER)");
  if (rc != SQLITE_OK) return rc;
  sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  auto* table = new (std::nothrow) StatementsTable{};
  if (!table) return SQLITE_NOMEM;
  table->connection = *static_cast<std::shared_ptr<Connection>*>(aux);
  table->connection->sqlite_store().keep_statements(true);
  *out = &table->base;
  return SQLITE_OK;
}

int statements_disconnect(sqlite3_vtab* vtab) {
  auto* table = reinterpret_cast<StatementsTable*>(vtab);
  table->connection->sqlite_store().keep_statements(false);  // finalizes them
  delete table;
  return SQLITE_OK;
}

int statements_best_index(sqlite3_vtab*, sqlite3_index_info* info) {
  info->estimatedCost = 10;
  info->estimatedRows = 10;
  return SQLITE_OK;
}

int statements_open(sqlite3_vtab* vtab, sqlite3_vtab_cursor** out) {
  auto* cursor = new (std::nothrow) StatementsCursor{};
  if (!cursor) return SQLITE_NOMEM;
  cursor->rows =
      reinterpret_cast<StatementsTable*>(vtab)->connection->sqlite_store().cached_statements();
  *out = &cursor->base;
  return SQLITE_OK;
}

StatementsCursor& cursor_of(sqlite3_vtab_cursor* c) {
  return *reinterpret_cast<StatementsCursor*>(c);
}

int statements_close(sqlite3_vtab_cursor* c) {
  delete &cursor_of(c);
  return SQLITE_OK;
}

int statements_filter(sqlite3_vtab_cursor* c, int, const char*, int, sqlite3_value**) {
  cursor_of(c).at = 0;
  return SQLITE_OK;
}

int statements_next(sqlite3_vtab_cursor* c) {
  ++cursor_of(c).at;
  return SQLITE_OK;
}

int statements_eof(sqlite3_vtab_cursor* c) {
  return cursor_of(c).at >= cursor_of(c).rows.size() ? 1 : 0;
}

int statements_column(sqlite3_vtab_cursor* c, sqlite3_context* ctx, int column) {
  const auto& row = cursor_of(c).rows[cursor_of(c).at];
  if (column == 0)
    sqlite3_result_text64(ctx, row.first.data(), row.first.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  else
    sqlite3_result_int(ctx, row.second);
  return SQLITE_OK;
}

int statements_rowid(sqlite3_vtab_cursor* c, sqlite3_int64* rowid) {
  *rowid = static_cast<sqlite3_int64>(cursor_of(c).at) + 1;
  return SQLITE_OK;
}

sqlite3_module statements_module() {
  sqlite3_module m{};
  m.xCreate = nullptr;  // eponymous only: no CREATE VIRTUAL TABLE
  m.xConnect = statements_connect;
  m.xBestIndex = statements_best_index;
  m.xDisconnect = statements_disconnect;
  m.xOpen = statements_open;
  m.xClose = statements_close;
  m.xFilter = statements_filter;
  m.xNext = statements_next;
  m.xEof = statements_eof;
  m.xColumn = statements_column;
  m.xRowid = statements_rowid;
  return m;
}
const sqlite3_module kStatementsModule = statements_module();

void destroy_module_aux(void* p) { delete static_cast<std::shared_ptr<Connection>*>(p); }

void Connection::end_call() {
  call_files_.clear();
  store_.end_call();
  if (store_.keeps_statements()) return;
  // Connects envdb_statements (its xConnect turns keeping on); a failure
  // leaves things as they were, and the next call tries again.
  sqlite3_stmt* anchor = nullptr;
  sqlite3_prepare_v2(db_, "SELECT 1 FROM envdb_statements LIMIT 0", -1, &anchor, nullptr);
  sqlite3_finalize(anchor);
}

Value to_value(sqlite3_value* v) {
  switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER: return static_cast<int64_t>(sqlite3_value_int64(v));
    case SQLITE_FLOAT: return sqlite3_value_double(v);
    case SQLITE_TEXT: {
      auto p = reinterpret_cast<const char*>(sqlite3_value_text(v));
      return std::string(p, static_cast<size_t>(sqlite3_value_bytes(v)));
    }
    case SQLITE_BLOB: {
      auto p = static_cast<const char*>(sqlite3_value_blob(v));
      return Blob{std::string(p ? p : "", static_cast<size_t>(sqlite3_value_bytes(v)))};
    }
    default: return null_value();
  }
}

void set_result(sqlite3_context* ctx, const Value& r) {
  if (is_null(r)) {
    sqlite3_result_null(ctx);
  } else if (auto s = std::get_if<std::string>(&r)) {
    sqlite3_result_text64(ctx, s->data(), s->size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  } else if (auto i = std::get_if<int64_t>(&r)) {
    sqlite3_result_int64(ctx, *i);
  } else if (auto b = std::get_if<bool>(&r)) {
    sqlite3_result_int(ctx, *b ? 1 : 0);
  } else if (auto d = std::get_if<double>(&r)) {
    sqlite3_result_double(ctx, *d);
  } else if (auto blob = std::get_if<Blob>(&r)) {
    sqlite3_result_blob64(ctx, blob->bytes.data(), blob->bytes.size(), SQLITE_TRANSIENT);
  }
}

// The one guard every envdb_* function goes through: the core's exceptions
// stop here and become sqlite3_result_error.
void dispatch(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  auto* entry = static_cast<Entry*>(sqlite3_user_data(ctx));
  std::string error;
  // A call that fails changes nothing, files included: the files it kept
  // (Host::file_kept) go when its write transaction does not commit or when
  // anything after the core's keep() fails.
  struct EndCall {
    Connection& c;
    bool succeeded = false;
    ~EndCall() {
      if (!succeeded) c.remove_call_files();
      c.end_call();
    }
  } end_call{*entry->connection};
  try {
    const api::Function& fn = *entry->fn;
    Value result;
    // The connection's context outlives the catalog changes made since it
    // was set (a member removed, a role changed, the environment suspended
    // or archived): every call sees it as the catalog has it now.
    if (entry->connection->context()) context::refresh(*entry->connection);
    // Writing functions run in a write transaction of their own (see
    // SqliteStore::begin_write): two processes on one control database then
    // serialise, and a lock held past the busy timeout is `conflict`.
    struct WriteTransaction {
      SqliteStore& store;
      bool open;
      ~WriteTransaction() {
        if (open) store.rollback_write();
      }
    } write{entry->connection->sqlite_store(),
            (fn.flags & api::kWrites) != 0 && entry->connection->sqlite_store().begin_write()};
    entry->connection->require_current_catalog(fn);
    if ((fn.flags & api::kRequestForm) && argc == 1 && sqlite3_value_type(argv[0]) == SQLITE_TEXT &&
        sqlite3_value_bytes(argv[0]) > 0 &&
        reinterpret_cast<const char*>(sqlite3_value_text(argv[0]))[0] == '{') {
      result =
          api::invoke_request(*entry->connection, fn, std::get<std::string>(to_value(argv[0])));
    } else {
      std::vector<Value> args;
      args.reserve(static_cast<size_t>(argc));
      for (int i = 0; i < argc; ++i) args.push_back(to_value(argv[i]));
      result = api::invoke(*entry->connection, fn, std::move(args));
    }
    if (write.open) {
      write.open = false;
      write.store.commit_write();  // rolls back when it fails
    }
    end_call.succeeded = true;
    set_result(ctx, result);
    return;
  } catch (const Error& e) {
    error = e.what();
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "internal: unexpected failure";
  }
  sqlite3_result_error(ctx, error.c_str(), static_cast<int>(error.size()));
}

void destroy_entry(void* p) { delete static_cast<Entry*>(p); }

}  // namespace

int register_functions(sqlite3* db, char** error_message) {
  auto connection = std::make_shared<Connection>(db);
  {
    // On failure sqlite3_create_module_v2 calls destroy_module_aux itself.
    const int rc = sqlite3_create_module_v2(db, kStatementsTable, &kStatementsModule,
                                            new std::shared_ptr<Connection>(connection),
                                            destroy_module_aux);
    if (rc != SQLITE_OK) {
      *error_message =
          sqlite3_mprintf("envdb: cannot register %s: %s", kStatementsTable, sqlite3_errmsg(db));
      return rc;
    }
  }
  // ENVDB_KEYRING names a key file (`<kms_key_id> <base64 key>` lines, mode
  // 0600) loaded into this connection's keyring. A file that cannot be used
  // fails the load with the reason, rather than leaving a keyring that
  // silently cannot open credentials.
  if (const char* keyring_file = std::getenv("ENVDB_KEYRING"); keyring_file && *keyring_file) {
    try {
      connection->keyring() = Keyring::load_file(keyring_file);
    } catch (const std::exception& e) {
      *error_message = sqlite3_mprintf("envdb: ENVDB_KEYRING: %s", e.what());
      return SQLITE_ERROR;
    }
  }
  for (const api::Function& fn : api::functions()) {
    if (!api::available_in(fn, "sqlite")) continue;
    // Pure functions may be used anywhere; everything else reads or changes
    // the catalog or returns secrets, so only top-level SQL may call it.
    const int flags =
        SQLITE_UTF8 |
        ((fn.flags & api::kPure) ? SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS : SQLITE_DIRECTONLY);
    const std::string name = std::string("envdb_") + fn.name;
    auto* entry = new Entry{connection, &fn};
    // On failure sqlite3_create_function_v2 calls destroy_entry itself.
    const int rc = sqlite3_create_function_v2(db, name.c_str(), -1, flags, entry, dispatch, nullptr,
                                              nullptr, destroy_entry);
    if (rc != SQLITE_OK) {
      *error_message =
          sqlite3_mprintf("envdb: cannot register %s: %s", name.c_str(), sqlite3_errmsg(db));
      return rc;
    }
  }
  return SQLITE_OK;
}

}  // namespace envdb::sqlite

extern "C" {
__attribute__((visibility("default"))) int sqlite3_envdb_init(sqlite3* db, char** error_message,
                                                              const sqlite3_api_routines* api) {
  SQLITE_EXTENSION_INIT2(api);
  (void)api;  // unused when linked (SQLITE_CORE)
  try {
    return envdb::sqlite::register_functions(db, error_message);
  } catch (const std::exception& e) {
    *error_message = sqlite3_mprintf("envdb: %s", e.what());
    return SQLITE_ERROR;
  }
}

#ifdef SQLITE_CORE
// Linked into a program: every connection it opens from now on gets envdb.
__attribute__((visibility("default"))) int envdb_sqlite_register(void) {
  return sqlite3_auto_extension(reinterpret_cast<void (*)(void)>(sqlite3_envdb_init));
}
#endif
}
