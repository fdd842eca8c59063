// What the core needs from the host it runs in, beyond the store. Each host
// implements it once; no core file knows which host it is talking to.
#pragma once
#include "core/cpp_only.hpp"

#include <memory>
#include <optional>
#include <string>

#include "core/json.hpp"
#include "core/row_cache.hpp"
#include "core/store.hpp"
#include "secrets/keyring.hpp"

namespace envdb {

// The postgres driver's server session port (postgres/statements.hpp).
namespace postgres {
class ServerSession;
struct Server;
}  // namespace postgres

class Host {
 public:
  virtual ~Host() = default;
  virtual const char* name() const = 0;  // "postgres" | "sqlite"
  virtual Store& store() = 0;
  // Who is calling, for the audit trail (Postgres: the calling role).
  virtual std::optional<std::string> actor() = 0;
  virtual void notice(const std::string& message) = 0;
  virtual void warning(const std::string& message) = 0;
  // Host facts for build_info(): server or library versions.
  virtual Json info() = 0;
  // The keys that seal credentials (Postgres: loaded from the envdb.keyring_*
  // settings; SQLite: ENVDB_KEYRING and keyring_add, per connection).
  virtual Keyring& keyring() = 0;
  // Opens (creating) a SQLite database file as a store, for the sqlite
  // driver's environment files. Hosts that cannot throw invalid_parameter.
  virtual std::unique_ptr<Store> open_database_file(const std::string& path) = 0;
  // The session context set by set_active_environment, as JSON text (NULL:
  // none). Postgres binds it to the current transaction (like set_config(...,
  // true), safe behind transaction-mode poolers) in a setting only superusers
  // can change, so it cannot be forged with SET; SQLite keeps it per
  // connection.
  virtual std::optional<std::string> context() = 0;
  virtual void set_context(const std::optional<std::string>& context_json) = 0;
  // May the caller act without naming a user (set_active_environment without
  // user_id)? Postgres: members of envdb_admin or envdb_router; SQLite: the
  // connection owns its database, so yes.
  virtual bool caller_is_privileged() = 0;
  // Would a context set now outlive the current statement? Postgres: only
  // inside a transaction block (BEGIN, or several statements sent as one
  // query); in autocommit the context would end with the statement that set
  // it, and the next one would run with none. SQLite: yes (the connection).
  virtual bool context_outlives_statement() { return true; }
  // Does an environment's database exist where its driver keeps it? For the
  // invariant checker (check()). nullopt: this host cannot tell (the default;
  // e.g. turso, or a database on another server). SQLite host: the sqlite
  // driver's file; Postgres host: a postgres-driver database of this server
  // (pg_database).
  virtual std::optional<bool> database_exists(const std::string& /*driver*/,
                                              const std::string& /*database_name*/,
                                              const std::optional<std::string>& /*database_url*/) {
    return std::nullopt;
  }
  // The current call queued jobs of `driver`. Postgres: after the transaction
  // commits, the background worker is woken to carry out postgres jobs.
  // Hosts without a worker ignore it.
  virtual void jobs_queued(const std::string& driver) { (void)driver; }
  // The current call made a database file (a sqlite-driver environment's
  // file) and keeps it (provision::Undo::keep). The core removes the file
  // itself when the call fails; a host whose commit can still fail after the
  // core has returned (SQLite's own write transaction, whose COMMIT can be
  // busy) removes it then.
  virtual void file_kept(const std::string& path) { (void)path; }
  // The file of the control database, when it has one (SQLite: the main
  // database's file; empty or nullopt for an in-memory one). A relative
  // sqlite_data_dir is resolved against its directory (settings::sqlite_data_dir).
  virtual std::optional<std::string> control_database_path() { return std::nullopt; }
  // check(): a session on a registered Postgres server (sys_database_host),
  // for reading its roles and databases and repairing them. nullptr: this
  // host cannot reach servers (SQLite). Throws envdb::Error when the server
  // cannot be reached. (The local server is the store itself, when its
  // dialect is postgres.)
  // (Defined in servers.cpp, where ServerSession is complete.)
  virtual std::unique_ptr<postgres::ServerSession> connect_server(const postgres::Server& server);
  // The resolve cache of this session (Postgres: the backend; SQLite: the
  // connection) and the catalog generation it is valid for (core/row_cache.hpp).
  // nullptr, or a generation of nullopt for this call: no caching (the
  // default; also Postgres under REPEATABLE READ or SERIALIZABLE, whose
  // snapshot may be older than the generation, and SQLite inside a write
  // transaction, whose rows may still roll back).
  virtual RowCache* resolve_cache() { return nullptr; }
  virtual std::optional<Generation> catalog_generation() { return std::nullopt; }
  // A resolve of `database_id` at `at_ms` is due to stamp last_accessed_at:
  // may the host write it later, in a batch? False (the default): the core
  // writes it now where the store is writable (Postgres without the preload:
  // one UPDATE with SKIP LOCKED, in the caller's transaction). Postgres with
  // the preload: recorded in shared memory and written by the database
  // worker's next pass (pg_ext/touch_log.hpp), also from a READ ONLY
  // transaction, never on a standby. SQLite: kept in the connection's resolve
  // cache (RowCache::note_touch) and written in batches by
  // resolve::flush_touches, since a touch in its own write transaction costs
  // several resolves.
  virtual bool defer_touch(const std::string& database_id, int64_t at_ms) {
    (void)database_id;
    (void)at_ms;
    return false;
  }
};

}  // namespace envdb
