// SQL-level benchmarks of the SQLite host: the built envdb.so loaded into a
// plain sqlite3 connection (sqlite3_load_extension), each envdb function
// called through a statement prepared once, against a hand-written baseline
// prepared once on the same connection. Prints RESULT/NOTE lines (common.hpp).
//
//   driver_sqlite --ext build-bench/envdb.so --work /dev/shm/dir --disk dir [options]
//
// --only provisioning | scale (default: both) runs one part. Two modes exist
// for profiling rather than measuring:
//   --only profile       1k environments, then --calls resolves and as many
//                        hand-written SELECTs in profile_envdb_loop and
//                        profile_baseline_loop, e.g.
//     valgrind --tool=callgrind --collect-atstart=no
//       --toggle-collect='*profile_envdb_loop*' driver_sqlite --only profile ...
//   --only files-envdb | files-baseline   one side of the sqlite-driver
//                        provisioning pairing (for strace -c or perf), the control
//                        database in --control-journal mode (wal, or delete)
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.hpp"
#include "core/json.hpp"

namespace fs = std::filesystem;
using bench::human;
using bench::note;
using bench::progress;
using bench::result;

namespace {

struct Options : bench::CommonOptions {
  Options() {
    calls = 2000;
    sample = 10000;
    prov = 500;
  }
  std::string ext, work, disk;
  int64_t files_tmpfs = 100;   // sqlite-driver provisionings per side per run (tmpfs)
  int64_t files_disk = 20;     // the same on disk (fsync)
  int64_t cache_kib = 262144;  // PRAGMA cache_size of the measuring connection
  int64_t mmap = 0;            // PRAGMA mmap_size
  // The provisioning control databases' journal_mode (--control-journal;
  // the sqlite-driver pairing also runs once with "delete").
  std::string control_journal = "wal";
};

class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &s_, nullptr) !=
        SQLITE_OK)
      throw std::runtime_error("prepare failed: " + std::string(sqlite3_errmsg(db)) + " in " + sql);
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind_blob(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  bool step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error(std::string("step failed: ") + sqlite3_errmsg(db_));
  }
  // Steps to the end (one row expected for envdb calls), then resets.
  void run() {
    while (step()) {
    }
    reset();
  }
  std::string text(int col) {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }
  int64_t integer(int col) { return sqlite3_column_int64(s_, col); }
  sqlite3_stmt* raw() { return s_; }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

class Connection {
 public:
  // journal: the control database's journal_mode, set before envdb_init()
  // ("" keeps SQLite's default, a rollback journal). "wal" is the setup
  // docs/reference.md recommends: WAL, and temp_store = MEMORY on the
  // connection (a call's savepoint copies the pages it changes, which SQLite
  // otherwise spills to a file in /var/tmp past 64 KiB).
  Connection(const std::string& path, const std::string& ext, bool control = true,
             const std::string& journal = "") {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK)
      throw std::runtime_error("cannot open " + path);
    if (!journal.empty() && value("PRAGMA journal_mode = " + journal) != journal)
      throw std::runtime_error("cannot set journal_mode " + journal + " on " + path);
    if (journal == "wal") value("PRAGMA temp_store = MEMORY");
    if (ext.empty()) return;
    sqlite3_db_config(db_, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, nullptr);
    char* err = nullptr;
    if (sqlite3_load_extension(db_, ext.c_str(), nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error("cannot load " + ext + ": " + m);
    }
    if (control) {
      value("SELECT envdb_init()");
      Stmt add(db_, "SELECT envdb_keyring_add(?1, ?2)");
      add.bind(1, std::string(bench::kKey1Id)).bind(2, std::string(bench::kKey1)).run();
    }
  }
  ~Connection() { sqlite3_close_v2(db_); }
  sqlite3* db() { return db_; }

  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error("exec failed: " + m + " in " + sql.substr(0, 200));
    }
  }
  std::string value(const std::string& sql, const std::vector<std::string>& args = {}) {
    Stmt s(db_, sql);
    for (size_t i = 0; i < args.size(); ++i) s.bind(static_cast<int>(i + 1), args[i]);
    std::string out = s.step() ? s.text(0) : std::string();
    s.reset();
    return out;
  }
  std::vector<std::string> column(const std::string& sql) {
    Stmt s(db_, sql);
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
  }
  bool has_function(const std::string& name) {
    return value("SELECT count(*) FROM pragma_function_list WHERE name = ?1", {name}) != "0";
  }

 private:
  sqlite3* db_ = nullptr;
};

envdb::Json parse(const std::string& s) { return envdb::Json::parse(s); }

// The data-plane DDL exactly as envdb left it in an environment file it
// initialized: every schema object of that file, in creation order.
std::string data_plane_ddl_of(const std::string& path) {
  Connection f(path, "", false);
  std::string ddl;
  for (auto& sql : f.column("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"))
    ddl += sql + ";\n";
  return ddl;
}

// ---------------------------------------------------------------- provisioning

// How a control database's journal mode reads in a note.
std::string journal_words(const std::string& journal) {
  if (journal == "wal")
    return "control database in WAL mode, temp_store = MEMORY, synchronous FULL";
  return "control database with a rollback journal, synchronous FULL";
}

// Catalog-only provisioning (turso: rows + queued job, no file) against the
// same rows written by hand: environment, database, job and audit event in
// one transaction per environment.
void provisioning_catalog(const Options& o) {
  const std::string dir = o.work + "/prov-catalog";
  fs::create_directories(dir);
  Connection c(dir + "/control.db", o.ext, true, o.control_journal);
  const envdb::Json org =
      parse(c.value("SELECT envdb_provision_organization('bench-prov', 'Bench provisioning', NULL, "
                    "NULL, 'turso')"));
  const std::string org_id = org["organization"]["id"];

  Stmt call(c.db(),
            "SELECT envdb_provision_environment(?1, ?2, NULL, 'development', NULL, 'turso')");
  Stmt begin(c.db(), "BEGIN"), commit(c.db(), "COMMIT");
  Stmt ins_env(
      c.db(),
      "INSERT INTO sys_environment (id, organization_id, slug, name, env_type, region, "
      "is_default, is_protected, status, metadata, created_at, updated_at) VALUES (?1, ?2, "
      "?3, ?3, 'development', 'default', 0, 0, 'provisioning', '{}', ?4, ?4)");
  Stmt ins_db(c.db(),
              "INSERT INTO sys_environment_database (id, environment_id, database_name, driver, "
              "region, created_at, updated_at) VALUES (?1, ?2, ?3, 'turso', 'default', ?4, ?4)");
  Stmt ins_job(c.db(),
               "INSERT INTO sys_provisioning_job (id, environment_id, database_id, kind, driver, "
               "status, attempts, payload, created_at, updated_at) VALUES (?1, ?2, ?3, "
               "'create_database', 'turso', 'pending', 0, ?4, ?5, ?5)");
  Stmt ins_audit(c.db(),
                 "INSERT INTO sys_audit_event (id, occurred_at, actor, action, organization_id, "
                 "environment_id, subject_type, subject_id, detail) VALUES (?1, ?2, NULL, "
                 "'environment.provision', ?3, ?4, 'environment', ?4, ?5)");

  const int64_t n = o.prov;
  auto pair = bench::measure_pair(
      o.runs, n,
      [&](int r) {
        for (int64_t i = 0; i < n; ++i) {
          call.bind(1, org_id).bind(2, "p" + std::to_string(r) + "-" + std::to_string(i));
          call.run();
        }
      },
      [&](int r) {
        for (int64_t i = 0; i < n; ++i) {
          const std::string env = envdb::new_uuid_v7(), db = envdb::new_uuid_v7();
          const std::string name = envdb::database_name_for(db), now = envdb::now_iso();
          const std::string slug = "b" + std::to_string(r) + "-" + std::to_string(i);
          begin.run();
          ins_env.bind(1, env).bind(2, org_id).bind(3, slug).bind(4, now).run();
          ins_db.bind(1, db).bind(2, env).bind(3, name).bind(4, now).run();
          ins_job.bind(1, envdb::new_uuid_v7())
              .bind(2, env)
              .bind(3, db)
              .bind(4, "{\"databaseName\":\"" + name + "\",\"region\":\"default\"}")
              .bind(5, now)
              .run();
          ins_audit.bind(1, envdb::new_uuid_v7())
              .bind(2, now)
              .bind(3, org_id)
              .bind(4, env)
              .bind(5, "{\"slug\":\"" + slug + "\",\"driver\":\"turso\"}")
              .run();
          commit.run();
        }
      });
  result("Provisioning", "SQLite: catalog-only environment (turso, queued job), tmpfs",
         1e6 / pair.envdb_us, 1e6 / pair.baseline_us, "per_s", "-",
         "baseline: the same 4 rows (environment, database, job, audit) by hand, one transaction "
         "each, on the same control database (" +
             journal_words(o.control_journal) + "); " + human(n) + " per side per run");
}

int files_only_side = 0;  // 1: envdb side only, 2: baseline side only (profiling)

// Full sqlite-driver provisioning (catalog rows, two sealed credentials, the
// environment's own file written under a temporary name, data-plane schema,
// identity stamp, rename) against creating an empty SQLite file and running
// the same data-plane DDL by hand.
void provisioning_files(const Options& o, const std::string& root, const std::string& where,
                        int64_t n, int runs, const std::string& journal) {
  const std::string dir = root + "/prov-files";
  fs::remove_all(dir);
  fs::create_directories(dir + "/baseline");
  Connection c(dir + "/control.db", o.ext, true, journal);
  c.value("SELECT envdb_config('sqlite_data_dir', ?1)", {dir + "/envs"});
  const envdb::Json org = parse(c.value(
      "SELECT envdb_provision_organization('bench-files', 'Bench files', NULL, NULL, 'turso')"));
  const std::string org_id = org["organization"]["id"];
  Stmt call(c.db(),
            "SELECT envdb_provision_environment(?1, ?2, NULL, 'development', NULL, 'sqlite')");
  call.bind(1, org_id).bind(2, std::string("ddl-source"));
  if (!call.step()) throw std::runtime_error("provision_environment returned nothing");
  const std::string url = parse(call.text(0))["database"]["databaseUrl"];
  call.reset();
  const std::string ddl = "BEGIN;" + data_plane_ddl_of(url.substr(url.find(':') + 1)) + "COMMIT;";

  int pass = 0;  // slugs differ between the two pairings below
  const auto envdb_side = [&](int r) {
    if (files_only_side == 2) return;
    for (int64_t i = 0; i < n; ++i) {
      call.bind(1, org_id).bind(2, "f" + std::to_string(pass) + "-" + std::to_string(r) + "-" +
                                       std::to_string(i));
      call.run();
    }
  };
  auto pair = bench::measure_pair(runs, n, envdb_side, [&](int r) {
    if (files_only_side == 1) return;
    for (int64_t i = 0; i < n; ++i) {
      const std::string path =
          dir + "/baseline/b" + std::to_string(r) + "-" + std::to_string(i) + ".db";
      Connection f(path, "", false);
      f.exec(ddl);
    }
  });
  // The target row is the control database as docs/reference.md recommends
  // (WAL); the rollback-journal row shows what that choice is worth. Every
  // commit on either side is durable when it returns (synchronous FULL).
  const bool wal = journal == "wal";
  result("Provisioning",
         "SQLite: sqlite-driver environment (file + schema + credentials), " + where +
             (wal ? "" : ", rollback-journal control database"),
         1e6 / pair.envdb_us, 1e6 / pair.baseline_us, "per_s", wal ? "le:1.5" : "-",
         "baseline: create an empty file and run the same data-plane DDL (the schema objects of "
         "an envdb-initialized file) in one transaction, default journal; envdb: " +
             journal_words(journal) + "; " + human(n) + " per side per run, default synchronous");
  if (files_only_side == 0) {
    // The floor of any control plane doing this: the same file and DDL plus
    // the catalog rows envdb writes (environment, database with its URL,
    // three credentials with random bytes for ciphertext, the audit event),
    // by hand in one transaction on the same control database; no crypto,
    // no checks, no JSON.
    ++pass;
    fs::create_directories(dir + "/floor");
    Stmt begin(c.db(), "BEGIN IMMEDIATE"), commit(c.db(), "COMMIT");
    Stmt ins_env(c.db(),
                 "INSERT INTO sys_environment (id, organization_id, slug, name, env_type, region, "
                 "is_default, is_protected, status, metadata, created_at, updated_at) VALUES (?1, "
                 "?2, ?3, ?3, 'development', 'default', 0, 0, 'active', '{}', ?4, ?4)");
    Stmt ins_db(c.db(),
                "INSERT INTO sys_environment_database (id, environment_id, database_name, "
                "database_url, driver, region, provisioned_at, created_at, updated_at) VALUES (?1, "
                "?2, ?3, ?4, 'sqlite', 'default', ?5, ?5, ?5)");
    Stmt ins_cred(
        c.db(),
        "INSERT INTO sys_database_credential (id, database_id, token_cipher, kms_key_id, "
        "scope, status, issued_at) VALUES (?1, ?2, randomblob(72), ?3, ?4, 'active', ?5)");
    Stmt ins_audit(c.db(),
                   "INSERT INTO sys_audit_event (id, occurred_at, actor, action, organization_id, "
                   "environment_id, subject_type, subject_id, detail) VALUES (?1, ?2, NULL, "
                   "'environment.provision', ?3, ?4, 'environment', ?4, ?5)");
    auto floor = bench::measure_pair(runs, n, envdb_side, [&](int r) {
      for (int64_t i = 0; i < n; ++i) {
        const std::string env = envdb::new_uuid_v7(), db = envdb::new_uuid_v7();
        const std::string name = envdb::database_name_for(db), now = envdb::now_iso();
        const std::string path = dir + "/floor/" + name + ".db";
        const std::string slug = "h" + std::to_string(r) + "-" + std::to_string(i);
        begin.run();
        ins_env.bind(1, env).bind(2, org_id).bind(3, slug).bind(4, now).run();
        ins_db.bind(1, db).bind(2, env).bind(3, name).bind(4, "file:" + path).bind(5, now).run();
        for (const char* scope : {"admin", "readwrite", "readonly"})
          ins_cred.bind(1, envdb::new_uuid_v7())
              .bind(2, db)
              .bind(3, std::string(bench::kKey1Id))
              .bind(4, std::string(scope))
              .bind(5, now)
              .run();
        ins_audit.bind(1, envdb::new_uuid_v7())
            .bind(2, now)
            .bind(3, org_id)
            .bind(4, env)
            .bind(5, "{\"slug\":\"" + slug + "\",\"driver\":\"sqlite\"}")
            .run();
        {
          Connection f(path, "", false);
          f.exec(ddl);
        }
        commit.run();
      }
    });
    result(
        "Provisioning",
        "SQLite: sqlite-driver environment vs file + DDL + the same catalog rows by hand, " +
            where + (wal ? "" : ", rollback-journal control database"),
        1e6 / floor.envdb_us, 1e6 / floor.baseline_us, "per_s", "-",
        "baseline: the file and DDL above plus, in one transaction on the same control database, "
        "the rows envdb writes (environment, database, three credentials with random bytes "
        "for ciphertext, audit event); " +
            journal_words(journal) + "; " + human(n) + " per side per run");
  }
  fs::remove_all(dir);
}

// ---------------------------------------------------------------- scale, router

// The router's row by hand: the environment, its database and the active
// credential of the scope, token_cipher as stored (no decryption).
const char* const kHandWritten =
    "SELECT e.id, e.organization_id, e.env_type, e.status, d.driver, d.database_name, "
    "d.database_url, d.region, c.id, c.scope, c.username, c.token_cipher, c.expires_at "
    "FROM sys_environment e JOIN sys_environment_database d ON d.environment_id = e.id "
    "JOIN sys_database_credential c ON c.database_id = d.id AND c.scope = ?2 AND c.status = "
    "'active' "
    "WHERE e.id = ?1";

// Separate, never-inlined loops so that a profiler can be pointed at one side
// (valgrind --tool=callgrind --collect-atstart=no --toggle-collect=...).
__attribute__((noinline)) void profile_envdb_loop(Stmt& call, const std::vector<std::string>& ids,
                                                  int& sink) {
  for (auto& id : ids) {
    call.bind(1, id);
    if (call.step()) sink += sqlite3_column_bytes(call.raw(), 0);
    call.reset();
  }
}
__attribute__((noinline)) void profile_baseline_loop(Stmt& q, const std::vector<std::string>& ids,
                                                     int& sink) {
  for (auto& id : ids) {
    q.bind(1, id).bind(2, std::string("readwrite"));
    if (q.step())
      for (int col = 0; col < 13; ++col) sink += sqlite3_column_bytes(q.raw(), col);
    q.reset();
  }
}

struct Scale {
  Scale(Connection& conn, const Options& opts) : c(conn), o(opts) {}
  Connection& c;
  const Options& o;
  std::mt19937_64 rng{20240607};
  bool resolve = false;
  int64_t envs = 0;
  std::map<int64_t, bench::Pair> at;  // scale -> resolve / hand-written per call

  // The first environments through envdb's own functions: organizations with
  // a default environment each and 9 more, all turso (queued jobs), then the
  // jobs claimed and completed with their tokens, as a worker does.
  void provision_through_envdb(int64_t count) {
    Stmt org(c.db(), "SELECT envdb_provision_organization(?1, ?2, NULL, NULL, 'turso')");
    Stmt env(c.db(),
             "SELECT envdb_provision_environment(?1, ?2, NULL, 'development', NULL, 'turso')");
    Stmt claim(c.db(), "SELECT envdb_claim_provisioning_jobs('turso', 1000, 'bench')");
    Stmt done(c.db(), "SELECT envdb_complete_provisioning_job(?1, ?2, ?3)");
    c.exec("BEGIN");
    for (int64_t i = 0; i < count; i += 10) {
      org.bind(1, "scale-" + std::to_string(i / 10)).bind(2, "Scale org " + std::to_string(i / 10));
      if (!org.step()) throw std::runtime_error("provision_organization returned nothing");
      const std::string org_id = parse(org.text(0))["organization"]["id"];
      org.reset();
      for (int j = 1; j < 10 && i + j < count; ++j) {
        env.bind(1, org_id).bind(2, "env-" + std::to_string(j));
        env.run();
      }
    }
    c.exec("COMMIT");
    for (;;) {
      if (!claim.step()) break;
      const envdb::Json jobs = parse(claim.text(0));
      claim.reset();
      if (jobs.empty()) break;
      c.exec("BEGIN");
      for (const auto& job : jobs) {
        const std::string name = job["databaseName"];
        const envdb::Json tokens{{"admin", envdb::crypto::generate_token()},
                                 {"readwrite", envdb::crypto::generate_token()}};
        done.bind(1, job["id"].get<std::string>())
            .bind(2, "libsql://" + name + ".bench.turso.io")
            .bind(3, tokens.dump());
        done.run();
      }
      c.exec("COMMIT");
    }
    envs = count;
  }

  void bulk_load(int64_t target) {
    const auto key = bench::key_bytes(bench::kKey1);
    Stmt org(c.db(),
             "INSERT INTO sys_organization (id, slug, name, metadata, created_at, updated_at) "
             "VALUES (?1, ?2, ?3, '{}', ?4, ?4)");
    Stmt env(c.db(),
             "INSERT INTO sys_environment (id, organization_id, slug, name, env_type, region, "
             "is_default, is_protected, status, metadata, created_at, updated_at) VALUES (?1, ?2, "
             "?3, ?4, ?5, 'default', ?6, ?6, 'active', '{}', ?7, ?7)");
    Stmt db(
        c.db(),
        "INSERT INTO sys_environment_database (id, environment_id, database_name, database_url, "
        "driver, region, provisioned_at, metadata, created_at, updated_at) VALUES (?1, ?2, ?3, "
        "?4, 'turso', 'default', ?5, '{}', ?5, ?5)");
    Stmt cred(
        c.db(),
        "INSERT INTO sys_database_credential (id, database_id, token_cipher, kms_key_id, scope, "
        "status, issued_at) VALUES (?1, ?2, ?3, 'k1', ?4, 'active', ?5)");
    // Like a restore: the generated rows are consistent by construction, so
    // the triggers that check foreign keys on insert are dropped for the load
    // and envdb_init() (idempotent) puts them back afterwards.
    const auto triggers = c.column(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%\\_fk%\\_insert' "
        "ESCAPE '\\'");
    const std::string before = c.value("SELECT count(*) FROM sqlite_master");
    for (auto& t : triggers) c.exec("DROP TRIGGER " + t);
    c.exec("PRAGMA temp_store = MEMORY");
    const auto t0 = bench::Clock::now();
    double gen_s = 0;
    const int64_t chunk = 100000;
    while (envs < target) {
      const int64_t n = std::min(chunk, target - envs);
      const auto tg = bench::Clock::now();
      const bench::Bulk b = bench::Bulk::make(envs, n, key);
      gen_s += bench::seconds_since(tg);
      c.exec("BEGIN");
      for (auto& r : b.orgs) org.bind(1, r.id).bind(2, r.slug).bind(3, r.name).bind(4, b.now).run();
      for (auto& r : b.envs)
        env.bind(1, r.id)
            .bind(2, r.org_id)
            .bind(3, r.slug)
            .bind(4, r.name)
            .bind(5, r.env_type)
            .bind(6, int64_t(r.is_default))
            .bind(7, b.now)
            .run();
      for (auto& r : b.dbs)
        db.bind(1, r.id).bind(2, r.env_id).bind(3, r.name).bind(4, r.url).bind(5, b.now).run();
      for (auto& r : b.creds)
        cred.bind(1, r.id)
            .bind(2, r.db_id)
            .bind_blob(3, r.cipher)
            .bind(4, r.scope)
            .bind(5, b.now)
            .run();
      c.exec("COMMIT");
      envs += n;
    }
    c.exec("PRAGMA temp_store = DEFAULT");
    c.value("SELECT envdb_init()");
    if (c.value("SELECT count(*) FROM sqlite_master") != before)
      throw std::runtime_error("envdb_init() did not restore the catalog's triggers");
    note("Scale",
         "SQLite: bulk-loaded to " + human(target) + " environments in " +
             std::to_string(static_cast<int>(bench::seconds_since(t0))) +
             " s (generating and sealing the rows: " + std::to_string(static_cast<int>(gen_s)) +
             " s); the control database is now " +
             std::to_string(
                 std::stoll(c.value("SELECT page_count * page_size FROM pragma_page_count, "
                                    "pragma_page_size")) >>
                 20) +
             " MiB");
  }

  void measure() {
    const std::string label = human(envs);
    progress("sqlite: resolve at " + label + " environments");
    const auto ids = c.column("SELECT id FROM sys_environment WHERE status = 'active'");
    const auto s = bench::sample(ids, static_cast<size_t>(o.sample), rng);
    Stmt handwritten(c.db(), kHandWritten);
    auto base_one = [&](const std::string& id) {
      handwritten.bind(1, id).bind(2, std::string("readwrite"));
      if (!handwritten.step())
        throw std::runtime_error("hand-written SELECT found no row for " + id);
      for (int col = 0; col < 13; ++col)
        benchmark_sink += col == 11 ? sqlite3_column_bytes(handwritten.raw(), col)
                                    : static_cast<int>(handwritten.text(col).size());
      handwritten.reset();
    };
    if (!resolve) {
      for (auto& id : s) base_one(id);
      std::vector<std::vector<std::string>> block;
      for (int b = 0; b < o.blocks; ++b) block.push_back(bench::slice(s, b, o.calls));
      const double us = bench::measure_one(o.blocks, o.calls, [&](int b) {
        for (auto& id : block[b]) base_one(id);
      });
      at[envs] = {0, us};
      note("Router",
           "SQLite: envdb_resolve_environment is not in this build; hand-written SELECT at " +
               label + ": " + std::to_string(us) + " us");
      return;
    }
    Stmt call(c.db(), "SELECT envdb_resolve_environment(?1, 'readwrite')");
    auto envdb_one = [&](const std::string& id) {
      call.bind(1, id);
      if (!call.step()) throw std::runtime_error("resolve returned no row");
      benchmark_sink += sqlite3_column_bytes(call.raw(), 0);
      call.reset();
    };
    // Correctness once; bench::resolve_blocks warms both sides up.
    call.bind(1, s[0]);
    call.step();
    const envdb::Json r = parse(call.text(0));
    call.reset();
    if (r["credential"]["token"].get<std::string>().size() != 43)
      throw std::runtime_error("resolve returned no token: " + r.dump());
    double first_us = 0;
    const bench::Pair p =
        bench::resolve_blocks(s, o.blocks, o.calls, envdb_one, base_one, first_us);
    note("Router", "SQLite at " + label +
                       ": first resolve of an environment in a minute (a resolve cache miss "
                       "that also records the last_accessed_at touch): " +
                       bench::fixed(first_us) + " µs per call");
    at[envs] = p;
    result("Router",
           "SQLite: resolve_environment vs hand-written SELECT, " + label + " environments",
           p.envdb_us, p.baseline_us, "us", "le:2.0",
           "per call; both statements prepared once on one connection (page cache " +
               human(o.cache_kib / 1024) + " MiB) and stepped with random ids of " +
               human(o.sample) + " environments; median of " + std::to_string(o.blocks) +
               " interleaved blocks of " + human(o.calls) + " calls");
    result("Router", "SQLite: first resolve of an environment in a minute vs a resolve, " + label,
           first_us, p.envdb_us, "us", "-",
           "every environment of the sample resolved once (a cache miss, and last_accessed_at "
           "recorded for the connection's next batch) against the steady per-call figure above, "
           "which the cache answers: mostly the cost of a miss; what the touch itself adds is "
           "the next row");
    touch_pair(s, label);
    hostname_figure(s, label, envdb_one);
    in_server(s, label);
  }

  // What the touch adds to a resolve, on equal terms: the sample's
  // environments split in two alternate halves, the first with a
  // last_accessed_at long past (the resolve records an access), the second
  // stamped now (nothing to record), then one resolve of each, alternating,
  // on a new connection (an empty resolve cache, and no accesses of this one
  // waiting to be written): both are cache misses on the same pages, and only
  // the first touches, its batches written in the timed calls.
  void touch_pair(const std::vector<std::string>& s, const std::string& label) {
    std::vector<std::string> distinct(s.begin(), s.end());
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    std::vector<std::string> stale, fresh;
    for (size_t i = 0; i < distinct.size(); ++i) (i % 2 ? fresh : stale).push_back(distinct[i]);
    {
      Stmt set(c.db(),
               "UPDATE sys_environment_database SET last_accessed_at = ?2 WHERE environment_id "
               "= ?1");
      const std::string now = envdb::now_iso();
      c.exec("BEGIN");
      for (size_t i = 0; i < distinct.size(); ++i) {
        set.bind(1, distinct[i]).bind(2, i % 2 ? now : std::string("2000-01-01T00:00:00.000Z"));
        set.run();
      }
      c.exec("COMMIT");
    }
    Connection other(sqlite3_db_filename(c.db(), "main"), o.ext);
    {
      // The rewraps move credentials between k1 and k2: this connection needs both.
      Stmt add(other.db(), "SELECT envdb_keyring_add(?1, ?2)");
      add.bind(1, std::string(bench::kKey2Id)).bind(2, std::string(bench::kKey2)).run();
    }
    other.exec("PRAGMA cache_size = -" + std::to_string(o.cache_kib));
    Stmt call(other.db(), "SELECT envdb_resolve_environment(?1, 'readwrite')");
    auto one = [&](const std::string& id) {
      call.bind(1, id);
      if (!call.step()) throw std::runtime_error("resolve returned no row");
      benchmark_sink += sqlite3_column_bytes(call.raw(), 0);
      call.reset();
    };
    double touch_s = 0, plain_s = 0;
    const size_t n = std::min(stale.size(), fresh.size());
    for (size_t i = 0; i < n; ++i) {
      const auto t0 = bench::Clock::now();
      one(stale[i]);
      const auto t1 = bench::Clock::now();
      one(fresh[i]);
      touch_s += std::chrono::duration<double>(t1 - t0).count();
      plain_s += bench::seconds_since(t1);
    }
    result("Router",
           "SQLite: a resolve that touches last_accessed_at vs one that does not, " + label,
           touch_s * 1e6 / static_cast<double>(n), plain_s * 1e6 / static_cast<double>(n), "us",
           "le:2.0",
           "goal 2, the touch path: both cache misses on a new connection, alternating over "
           "two halves of the sample (" +
               human(static_cast<int64_t>(n)) +
               " each): the first half's last_accessed_at long past (recorded, and written in "
               "batches of 1,000 by the timed calls), the second's stamped now");
  }

  // The in-server pair: one statement resolving every environment of
  // the sample (per row), against the bare join of the same rows with the
  // ciphertext as hex; then the same resolve on a connection without the
  // resolve cache (ENVDB_RESOLVE_CACHE_ENTRIES=0), the cost of a miss.
  void in_server(const std::vector<std::string>& s, const std::string& label) {
    c.exec("DROP TABLE IF EXISTS temp.bench_ids");
    c.exec("CREATE TEMP TABLE bench_ids (id TEXT PRIMARY KEY)");
    {
      Stmt ins(c.db(), "INSERT OR IGNORE INTO temp.bench_ids (id) VALUES (?1)");
      c.exec("BEGIN");
      for (auto& id : s) {
        ins.bind(1, id);
        ins.run();
      }
      c.exec("COMMIT");
    }
    const int64_t n = std::stoll(c.value("SELECT count(*) FROM temp.bench_ids"));
    const std::string resolve_sql =
        "SELECT count(envdb_resolve_environment(b.id, 'readwrite')) FROM temp.bench_ids b";
    const std::string join_sql =
        "SELECT count((SELECT d.database_url || hex(c.token_cipher) FROM sys_environment e JOIN "
        "sys_environment_database d ON d.environment_id = e.id JOIN sys_database_credential c ON "
        "c.database_id = d.id AND c.scope = 'readwrite' AND c.status = 'active' WHERE e.id = b.id "
        "AND e.status = 'active')) FROM temp.bench_ids b";
    Stmt all(c.db(), resolve_sql);
    Stmt bare(c.db(), join_sql);
    auto run_count = [&](Stmt& st) {
      if (!st.step()) throw std::runtime_error("count returned no row");
      if (st.integer(0) != n) throw std::runtime_error("count is not the sample size");
      st.reset();
    };
    run_count(all);
    run_count(bare);
    const bench::Pair p = bench::measure_pair(
        o.blocks, n, [&](int) { run_count(all); }, [&](int) { run_count(bare); });
    result("Router",
           "SQLite: in-server per row, resolve_environment vs the bare join, " + label +
               " environments",
           p.envdb_us, p.baseline_us, "us", "le:2.0",
           "per row of SELECT count(f(id)) over " + human(n) +
               " environments (the resolve cache holds them), against SELECT count((SELECT "
               "d.database_url || hex(c.token_cipher) ...)) over the same rows; median of " +
               std::to_string(o.blocks) + " interleaved statements");
    // The same statement on a connection whose resolve cache is off.
    const std::string path = sqlite3_db_filename(c.db(), "main");
    setenv("ENVDB_RESOLVE_CACHE_ENTRIES", "0", 1);
    Connection off(path, o.ext);
    unsetenv("ENVDB_RESOLVE_CACHE_ENTRIES");
    {
      // The rewraps move credentials between k1 and k2: this connection needs both.
      Stmt add(off.db(), "SELECT envdb_keyring_add(?1, ?2)");
      add.bind(1, std::string(bench::kKey2Id)).bind(2, std::string(bench::kKey2)).run();
    }
    off.exec("PRAGMA cache_size = -" + std::to_string(o.cache_kib));
    off.exec("CREATE TEMP TABLE bench_ids AS SELECT id FROM main.sys_environment WHERE 0");
    {
      Stmt ins(off.db(), "INSERT INTO temp.bench_ids (id) VALUES (?1)");
      Stmt ids(c.db(), "SELECT id FROM temp.bench_ids");
      off.exec("BEGIN");
      while (ids.step()) {
        ins.bind(1, ids.text(0));
        ins.run();
      }
      ids.reset();
      off.exec("COMMIT");
    }
    Stmt cold(off.db(), resolve_sql);
    Stmt cold_bare(off.db(), join_sql);
    run_count(cold);
    run_count(cold_bare);
    const bench::Pair q = bench::measure_pair(
        o.blocks, n, [&](int) { run_count(cold); }, [&](int) { run_count(cold_bare); });
    result("Router",
           "SQLite: in-server per row without the resolve cache (a miss) vs the bare join, " +
               label + " environments",
           q.envdb_us, q.baseline_us, "us", "-",
           "as above on a connection opened with ENVDB_RESOLVE_CACHE_ENTRIES=0: what a resolve "
           "costs when its row is not cached (the figure before the cache)");
  }

  // resolve_hostname next to resolve_environment on the same sample: the
  // hostname lookup is the only difference. Each sampled environment gets
  // the hostname <its id>.bench.example (adding it again is a no-op).
  template <class ById>
  void hostname_figure(const std::vector<std::string>& s, const std::string& label, ById by_id) {
    if (!c.has_function("envdb_resolve_hostname")) return;
    progress("sqlite: resolve_hostname at " + label + " environments");
    for (auto& id : s)
      c.value("SELECT envdb_add_environment_hostname(?1, ?2)", {id, id + ".bench.example"});
    Stmt call(c.db(), "SELECT envdb_resolve_hostname(?1, 'readwrite')");
    auto by_name = [&](const std::string& id) {
      call.bind(1, id + ".bench.example");
      if (!call.step()) throw std::runtime_error("resolve_hostname returned no row");
      benchmark_sink += sqlite3_column_bytes(call.raw(), 0);
      call.reset();
    };
    double first_us = 0;
    const bench::Pair p = bench::resolve_blocks(s, o.blocks, o.calls, by_name, by_id, first_us);
    result("Router", "SQLite: resolve_hostname vs resolve_environment, " + label + " environments",
           p.envdb_us, p.baseline_us, "us", "le:1.2",
           "per call; the same sample, both prepared once on one connection; median of " +
               std::to_string(o.blocks) + " interleaved blocks of " + human(o.calls) + " calls");
  }

  void rotations() {
    progress("sqlite: rotations");
    auto dbs = c.column(
        "SELECT d.id FROM sys_environment_database d JOIN sys_environment e ON e.id = "
        "d.environment_id WHERE e.status = 'active'");
    // Turso databases rotate to the token Turso minted: the caller passes it.
    Stmt rotate(c.db(), "SELECT envdb_rotate_credential(?1, 'readwrite', NULL, ?2)");
    bench::rotation_figure("SQLite", o, envs, dbs, rng,
                           [&](const std::string& db, const std::string& token) {
                             rotate.bind(1, db).bind(2, token);
                             rotate.run();
                           });
  }

  void rewraps() {
    progress("sqlite: rewrap");
    c.value("SELECT envdb_keyring_add(?1, ?2)", {bench::kKey2Id, bench::kKey2});
    bench::rewrap_figure("SQLite", o, [&](const std::string& target) {
      return std::stoll(c.value("SELECT envdb_rewrap_credentials(?1)", {target}));
    });
  }

  int benchmark_sink = 0;
};

void scale_and_router(const Options& o) {
  const std::string dir = o.work + "/scale";
  fs::remove_all(dir);
  fs::create_directories(dir);
  Connection c(dir + "/control.db", o.ext);
  // Both statements share this connection and its page cache.
  c.exec("PRAGMA cache_size = -" + std::to_string(o.cache_kib));
  if (o.mmap) c.exec("PRAGMA mmap_size = " + std::to_string(o.mmap));
  Scale s(c, o);
  s.resolve = c.has_function("envdb_resolve_environment");
  if (!s.resolve) note("Router", "SQLite: this build has no envdb_resolve_environment");
  bench::run_scales("SQLite", o, s, s.resolve, [](size_t) {});
  fs::remove_all(dir);
}

// 1k environments through envdb, then `calls` resolves and as many
// hand-written SELECTs in the two profile loops.
void profile(const Options& o) {
  const std::string dir = o.work + "/profile";
  fs::remove_all(dir);
  fs::create_directories(dir);
  Connection c(dir + "/control.db", o.ext);
  c.exec("PRAGMA cache_size = -262144");
  Scale s(c, o);
  s.provision_through_envdb(1000);
  const auto ids = c.column("SELECT id FROM sys_environment WHERE status = 'active'");
  std::mt19937_64 rng(1);
  const auto sample = bench::sample(ids, static_cast<size_t>(o.calls), rng);
  Stmt call(c.db(), "SELECT envdb_resolve_environment(?1, 'readwrite')");
  Stmt q(c.db(), kHandWritten);
  int sink = 0;
  for (auto& id : ids) {  // first resolves stamp last_accessed_at: not profiled
    call.bind(1, id);
    call.run();
  }
  profile_envdb_loop(call, sample, sink);
  profile_baseline_loop(q, sample, sink);
  std::cerr << "profile done " << sink << "\n";
  fs::remove_all(dir);
}

// rewrap_credentials as the catalog grows, against a hand-written UPDATE that
// rewrites the same column of the same rows: a copy of the credential table
// with the same indexes, token_cipher replaced by random bytes of the same
// length and kms_key_id set, in one statement and one transaction (no
// decryption, no sealing). Each scale is a number of environments with two
// credentials each; one envdb call and one UPDATE per scale and direction.
std::vector<int64_t> rewrap_scales;

void rewrap_at_scale(const Options& o) {
  const std::string dir = o.work + "/rewrap-scale";
  fs::remove_all(dir);
  fs::create_directories(dir);
  Connection c(dir + "/control.db", o.ext);
  c.exec("PRAGMA cache_size = -" + std::to_string(o.cache_kib));
  Scale s(c, o);
  s.provision_through_envdb(std::min<int64_t>(1000, rewrap_scales.front()));
  c.value("SELECT envdb_keyring_add(?1, ?2)", {bench::kKey2Id, bench::kKey2});
  std::map<int64_t, double> envdb_per_row;
  for (int64_t scale : rewrap_scales) {
    if (s.envs < scale) s.bulk_load(scale);
    progress("sqlite: rewrap at " + human(s.envs) + " environments");
    c.exec("DROP TABLE IF EXISTS bench_credential_copy");
    c.exec("CREATE TABLE bench_credential_copy AS SELECT * FROM sys_database_credential");
    c.exec("CREATE INDEX bench_copy_db_status ON bench_credential_copy (database_id, status)");
    c.exec("CREATE INDEX bench_copy_expires ON bench_credential_copy (expires_at)");
    c.exec("CREATE INDEX bench_copy_kms ON bench_credential_copy (kms_key_id, id)");
    c.exec("CREATE UNIQUE INDEX bench_copy_pk ON bench_credential_copy (id)");
    c.exec(
        "CREATE UNIQUE INDEX bench_copy_one_active ON bench_credential_copy (database_id, "
        "scope) WHERE status = 'active'");
    Stmt update(c.db(),
                "UPDATE bench_credential_copy SET token_cipher = randomblob(length(token_cipher)), "
                "kms_key_id = ?1 WHERE status <> 'revoked' AND kms_key_id <> ?1");
    std::vector<double> e_us, b_us;
    int64_t rows = 0;
    // Bulk rows are sealed under k1: every run moves every credential
    // (k1 -> k2 -> k1 ...), and the scale ends with all of them under k1.
    const int runs = std::max(1, o.rewrap_runs);
    for (int r = 0; r < runs; ++r) {
      const std::string target = r % 2 == 0 ? bench::kKey2Id : bench::kKey1Id;
      auto t0 = bench::Clock::now();
      rows = std::stoll(c.value("SELECT envdb_rewrap_credentials(?1)", {target}));
      e_us.push_back(bench::seconds_since(t0) * 1e6 / static_cast<double>(rows));
      t0 = bench::Clock::now();
      c.exec("BEGIN");
      update.bind(1, target);
      update.run();
      const int64_t changed = sqlite3_changes(c.db());
      c.exec("COMMIT");
      b_us.push_back(bench::seconds_since(t0) * 1e6 / static_cast<double>(changed));
      if (changed != rows)
        throw std::runtime_error("the hand-written UPDATE changed " + std::to_string(changed) +
                                 " rows, rewrap " + std::to_string(rows));
    }
    c.exec("DROP TABLE bench_credential_copy");
    if (runs % 2 == 1) c.value("SELECT envdb_rewrap_credentials(?1)", {bench::kKey1Id});
    envdb_per_row[rows] = bench::median(e_us);
    result("Rotation at scale",
           "SQLite: rewrap_credentials vs hand-written UPDATE, " + human(rows) + " credentials",
           bench::median(e_us), bench::median(b_us), "us", "le:2",
           "per row, one call each (median of " + std::to_string(std::max(1, o.rewrap_runs)) +
               ", k1->k2->k1...); envdb opens and re-seals every token under the new key, the "
               "UPDATE writes random bytes of the same length (no crypto) into a copy of the "
               "table with the same indexes");
  }
  if (envdb_per_row.size() >= 2) {
    const auto lo = *envdb_per_row.begin(), hi = *envdb_per_row.rbegin();
    result("Rotation at scale",
           "SQLite: rewrap_credentials per row at " + human(hi.first) + " vs " + human(lo.first) +
               " credentials",
           hi.second, lo.second, "us", "le:1.3", "the cost per row must not grow with the catalog");
  }
  fs::remove_all(dir);
}
}  // namespace

int main(int argc, char** argv) {
  Options o;
  const bool known =
      bench::parse_options(argc, argv, o, [&](const std::string& k, const std::string& v) {
        if (k == "--ext")
          o.ext = v;
        else if (k == "--work")
          o.work = v;
        else if (k == "--disk")
          o.disk = v;
        else if (k == "--files-tmpfs")
          o.files_tmpfs = std::stoll(v);
        else if (k == "--files-disk")
          o.files_disk = std::stoll(v);
        else if (k == "--cache-kib")
          o.cache_kib = std::stoll(v);
        else if (k == "--mmap")
          o.mmap = std::stoll(v);
        else if (k == "--control-journal")
          o.control_journal = v;
        else if (k == "--rewrap-scales")
          rewrap_scales = bench::parse_list(v);
        else
          return false;
        return true;
      });
  if (!known) return 2;
  const std::string& only = o.only;
  if (o.ext.empty() || o.work.empty()) {
    std::cerr << "usage: driver_sqlite --ext envdb.so --work DIR [--disk DIR] ...\n";
    return 2;
  }
  try {
    note("Machine", std::string("SQLite ") + sqlite3_libversion());
    if (only == "all" || only == "provisioning") {
      progress("sqlite: provisioning");
      provisioning_catalog(o);
      for (const char* journal : {"wal", "delete"}) {
        provisioning_files(o, o.work, "tmpfs", o.files_tmpfs, o.runs, journal);
        if (!o.disk.empty()) provisioning_files(o, o.disk, "disk", o.files_disk, 3, journal);
      }
    }
    if (only == "files-envdb" || only == "files-baseline") {
      // One side only, for strace or a profiler.
      Options one = o;
      one.runs = 1;
      files_only_side = only == "files-envdb" ? 1 : 2;
      provisioning_files(one, o.work, "tmpfs", o.files_tmpfs, 1, o.control_journal);
    }
    if (only == "all" || only == "scale") scale_and_router(o);
    if (only == "profile") profile(o);
    if (only == "rewrap-scale" && !rewrap_scales.empty()) rewrap_at_scale(o);
  } catch (const std::exception& e) {
    std::cerr << "driver_sqlite: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
