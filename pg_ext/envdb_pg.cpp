// The Postgres host. Every SQL function of the extension is declared (by the
// generated install script) with the C symbol envdb_fn; envdb_fn finds the
// core's function-table row by the SQL function's name and runs it through
// one boundary: C++ exceptions stop inside run_call(), and the Postgres ERROR
// is raised afterwards, in a frame that holds no C++ object.
extern "C" {
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

// The module builds with hidden visibility; Postgres 16 makes PGDLLEXPORT
// export symbols on every platform, 15 only on Windows.
#if PG_VERSION_NUM < 160000
#undef PGDLLEXPORT
#define PGDLLEXPORT __attribute__((visibility("default")))
#endif

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
PGDLLEXPORT Datum envdb_fn(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(envdb_fn);
}

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/version.hpp"
#include "datum.hpp"
#include "pg_guard.hpp"
#include "postgres/provisioner.hpp"
#include "resolve_cache.hpp"
#include "secrets/keyring.hpp"
#include "server_session.hpp"
#include "spi_store.hpp"
#include "surface/api.hpp"
#include "touch_log.hpp"
#include "worker.hpp"

namespace envdb::pg {

namespace {

// Settings (GUCs). The keyring ones are superuser-only: they name where keys
// come from, and keys never pass through SQL.
char* keyring_file = nullptr;
char* keyring_command = nullptr;
char* active_key_id = nullptr;
char* session_context = nullptr;  // envdb.context: set only through set_active_environment

// The backend's keyring, reloaded when a keyring setting changes (SET, or a
// configuration reload).
Keyring backend_keyring;
bool keyring_stale = true;

void mark_keyring_stale(const char*, void*) { keyring_stale = true; }

Keyring& current_keyring() {
  if (!keyring_stale) return backend_keyring;
  backend_keyring.clear();
  const std::string command = keyring_command ? keyring_command : "";
  const std::string file = keyring_file ? keyring_file : "";
  if (!command.empty())
    backend_keyring = Keyring::from_command(command);
  else if (!file.empty())
    backend_keyring = Keyring::load_file(file);
  if (active_key_id && *active_key_id) backend_keyring.use(active_key_id);
  keyring_stale = false;
  return backend_keyring;
}

class PgHost : public Host {
 public:
  const char* name() const override { return "postgres"; }
  Store& store() override { return store_; }
  std::optional<std::string> actor() override {
    // The role that called us, not the extension owner this SECURITY DEFINER
    // function runs as.
    const char* role = guarded([] { return GetUserNameFromId(GetOuterUserId(), true); });
    if (!role) return std::nullopt;
    return std::string(role);
  }
  void notice(const std::string& message) override {
    const char* text = message.c_str();
    guarded([&] { ereport(NOTICE, (errmsg("%s", text))); });
  }
  void warning(const std::string& message) override {
    const char* text = message.c_str();
    guarded([&] { ereport(WARNING, (errmsg("%s", text))); });
  }
  Json info() override {
    return Json{{"postgres", PG_VERSION}, {"serverVersionNum", PG_VERSION_NUM}};
  }
  Keyring& keyring() override { return current_keyring(); }
  std::optional<std::string> context() override {
    if (!session_context || !*session_context) return std::nullopt;
    return std::string(session_context);
  }
  void set_context(const std::optional<std::string>& context_json) override {
    const char* value = context_json ? context_json->c_str() : "";
    // GUC_ACTION_LOCAL: reverts at the end of the current transaction.
    guarded([&] {
      (void)set_config_option("envdb.context", value, PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
                              true, 0, false);
    });
  }
  // Outside a transaction block (autocommit) a context set with
  // GUC_ACTION_LOCAL would end with the statement that set it.
  bool context_outlives_statement() override {
    return guarded([] { return IsTransactionBlock(); });
  }
  bool caller_is_privileged() override {
    return guarded([] {
      const Oid caller = GetOuterUserId();
      const Oid admin = get_role_oid("envdb_admin", true);
      const Oid router = get_role_oid("envdb_router", true);
      return superuser_arg(caller) || (OidIsValid(admin) && has_privs_of_role(caller, admin)) ||
             (OidIsValid(router) && has_privs_of_role(caller, router));
    });
  }
  // A postgres-driver database of this server: in pg_database. A database
  // elsewhere (its URL names another host or port), or without a URL, cannot
  // be told from here.
  std::optional<bool> database_exists(const std::string& driver, const std::string& database_name,
                                      const std::optional<std::string>& database_url) override {
    if (driver != "postgres" || !database_url) return std::nullopt;
    const char* port = guarded([] { return GetConfigOption("port", true, false); });
    const auto name = postgres::local_database(*database_url, database_name, port ? port : "");
    if (!name) return std::nullopt;
    return query_one(store_, "SELECT 1 AS present FROM pg_catalog.pg_database WHERE datname = $1",
                     {*name})
        .has_value();
  }
  void jobs_queued(const std::string& driver) override {
    if (driver == "postgres") worker::note_job_queued();
  }
  std::unique_ptr<postgres::ServerSession> connect_server(const postgres::Server& server) override {
    return pg::connect_registered_server(server, kCheckConnection);
  }
  RowCache* resolve_cache() override { return resolve_cache::cache(); }
  std::optional<Generation> catalog_generation() override { return resolve_cache::generation(); }
  // With the preload, in shared memory for the database worker (touch_log.hpp);
  // also from a READ ONLY transaction, since the resolve itself writes nothing.
  bool defer_touch(const std::string& database_id, int64_t at_ms) override {
    return touch_log::record(database_id, at_ms);
  }
  std::unique_ptr<Store> open_database_file(const std::string&) override {
    throw Error(Code::invalid_parameter,
                "driver 'sqlite' needs the SQLite host; a Postgres control plane provisions "
                "drivers postgres and turso");
  }

 private:
  SpiStore store_;
};

struct CallInfo {
  const api::Function* fn;
  bool request_form;
};

// The extension that owns a function, and the version of its SQL objects.
struct OwningExtension {
  char* name = nullptr;
  char* version = nullptr;
};

OwningExtension owning_extension(Oid fn_oid) {
  return guarded([&] {
    OwningExtension r;
    const Oid ext = getExtensionOfObject(ProcedureRelationId, fn_oid);
    if (!OidIsValid(ext)) return r;
    Relation rel = table_open(ExtensionRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(ext));
    SysScanDesc scan = systable_beginscan(rel, ExtensionOidIndexId, true, nullptr, 1, &key);
    HeapTuple tup = systable_getnext(scan);
    if (HeapTupleIsValid(tup)) {
      r.name = pstrdup(NameStr(reinterpret_cast<Form_pg_extension>(GETSTRUCT(tup))->extname));
      bool isnull = true;
      const Datum d =
          heap_getattr(tup, Anum_pg_extension_extversion, RelationGetDescr(rel), &isnull);
      if (!isnull) r.version = text_to_cstring(DatumGetTextPP(d));
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return r;
  });
}

// The library serves one version of the control-plane catalog. After new
// binaries are installed and before ALTER EXTENSION envdb UPDATE, the SQL
// objects are older than the code that would run against them: refuse with
// what to do rather than fail half-way on a column the old catalog lacks.
// (envdb_data's functions manage their own versioned tables, so they work at
// any installed version.)
void require_current_catalog(Oid fn_oid) {
  const OwningExtension ext = owning_extension(fn_oid);
  if (!ext.name || !ext.version || std::strcmp(ext.name, "envdb") != 0 ||
      std::strcmp(ext.version, kVersion) == 0)
    return;
  throw Error(Code::schema_mismatch, std::string("extension envdb is installed at version ") +
                                         ext.version + " but its library is version " + kVersion +
                                         "; run ALTER EXTENSION envdb UPDATE");
}

const CallInfo& call_info(FunctionCallInfo fcinfo) {
  if (fcinfo->flinfo->fn_extra) return *static_cast<CallInfo*>(fcinfo->flinfo->fn_extra);
  const Oid fn_oid = fcinfo->flinfo->fn_oid;
  require_current_catalog(fn_oid);
  const char* name = guarded([&] { return get_func_name(fn_oid); });
  const api::Function* fn = name ? api::find(name) : nullptr;
  if (!fn || !api::available_in(*fn, "postgres"))
    throw Error(Code::internal, std::string("no envdb function is named ") + (name ? name : "?"));
  const bool request_form = (fn->flags & api::kRequestForm) && PG_NARGS() == 1 &&
                            guarded([&] { return get_fn_expr_argtype(fcinfo->flinfo, 0); }) ==
                                JSONBOID &&
                            (fn->params.empty() || fn->params[0].type != api::Type::json);
  MemoryContext mcxt = fcinfo->flinfo->fn_mcxt;
  auto* info =
      guarded([&] { return static_cast<CallInfo*>(MemoryContextAlloc(mcxt, sizeof(CallInfo))); });
  info->fn = fn;
  info->request_form = request_form;
  fcinfo->flinfo->fn_extra = info;
  return *info;
}

// The error that crosses into Postgres, copied out of the C++ world. A backend
// runs one call at a time, and the ERROR is raised before the next call.
char pending_message[2048];
char pending_state[6];

void keep_error(const char* message, const char* sqlstate) {
  std::snprintf(pending_message, sizeof pending_message, "%s", message);
  std::snprintf(pending_state, sizeof pending_state, "%s", sqlstate);
}

// Everything C++ happens here. Returns false with the error kept in
// pending_message / pending_state.
bool run_call(FunctionCallInfo fcinfo, Datum* result, bool* is_null) noexcept {
  try {
    const CallInfo& info = call_info(fcinfo);
    const api::Function& fn = *info.fn;
    std::vector<Value> args;
    std::string request;
    if (info.request_form) {
      if (PG_ARGISNULL(0)) throw Error(Code::invalid_parameter, "request is required");
      request = jsonb_text(PG_GETARG_DATUM(0));
    } else {
      for (int i = 0; i < PG_NARGS() && i < static_cast<int>(fn.params.size()); ++i)
        args.push_back(PG_ARGISNULL(i)
                           ? null_value()
                           : arg_value(PG_GETARG_DATUM(i), fn.params[static_cast<size_t>(i)].type));
    }
    spi_connect();
    Value value;
    {
      PgHost host;
      value = info.request_form ? api::invoke_request(host, fn, request)
                                : api::invoke(host, fn, std::move(args));
    }
    spi_finish();
    // After SPI_finish: the result must live in the caller's memory context.
    *result = result_datum(value, fn.returns, is_null);
    return true;
  } catch (const HostError& e) {
    keep_error(e.what(), e.sqlstate().c_str());
  } catch (const Error& e) {
    keep_error(e.what(), code_sqlstate(e.code()));
  } catch (const std::bad_alloc&) {
    keep_error("internal: out of memory", "53200");
  } catch (const std::exception& e) {
    keep_error((std::string("internal: ") + e.what()).c_str(), "XX000");
  } catch (...) {
    keep_error("internal: unexpected failure", "XX000");
  }
  return false;
}

}  // namespace

std::unique_ptr<Host> make_host() { return std::make_unique<PgHost>(); }

}  // namespace envdb::pg

extern "C" Datum envdb_fn(PG_FUNCTION_ARGS) {
  Datum result = (Datum)0;
  bool is_null = false;
  if (!envdb::pg::run_call(fcinfo, &result, &is_null)) {
    const char* s = envdb::pg::pending_state;
    ereport(ERROR, (errcode(MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4])),
                    errmsg("%s", envdb::pg::pending_message)));
  }
  if (is_null) PG_RETURN_NULL();
  return result;
}

extern "C" void _PG_init(void) {
  DefineCustomStringVariable(
      "envdb.keyring_file",
      "File of sealing keys, one '<kms_key_id> <base64 32 bytes>' per line; mode 0600.", nullptr,
      &envdb::pg::keyring_file, "", PGC_SUSET, GUC_SUPERUSER_ONLY, nullptr,
      envdb::pg::mark_keyring_stale, nullptr);
  DefineCustomStringVariable(
      "envdb.keyring_command",
      "Command that prints the keyring (same format as envdb.keyring_file), for an external KMS.",
      nullptr, &envdb::pg::keyring_command, "", PGC_SUSET, GUC_SUPERUSER_ONLY, nullptr,
      envdb::pg::mark_keyring_stale, nullptr);
  DefineCustomStringVariable("envdb.active_key_id",
                             "Key that seals new credentials (default: the last key listed).",
                             nullptr, &envdb::pg::active_key_id, "", PGC_SUSET, 0, nullptr,
                             envdb::pg::mark_keyring_stale, nullptr);
  DefineCustomStringVariable(
      "envdb.context",
      "The active environment of this transaction (set by set_active_environment).", nullptr,
      &envdb::pg::session_context, "", PGC_SUSET,
      GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE | GUC_SUPERUSER_ONLY, nullptr,
      nullptr, nullptr);
  MarkGUCPrefixReserved("envdb");
  // The postgres driver: a commit that queued a postgres job wakes the
  // launcher; with the preload, the launcher and its shared memory exist.
  envdb::pg::worker::register_commit_hook();
  envdb::pg::resolve_cache::register_callback();
  envdb::pg::touch_log::define_setting();
  if (process_shared_preload_libraries_in_progress) {
    envdb::pg::worker::register_preloaded();
    envdb::pg::touch_log::register_preloaded();
  }
}
