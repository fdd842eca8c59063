// SQL-level benchmarks of the Postgres host, over libpq against the installed
// extension in a throwaway cluster (bench/run.sh runs this under
// pg_virtualenv). Every envdb call and every baseline goes through
// PQprepare/PQexecPrepared on the same connection, so both sides pay the same
// protocol round trip. Prints RESULT/NOTE lines (common.hpp).
//
//   driver_pg [--db envdb_bench] [--scales 1000,100000,1000000] [options]
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"
#include "core/json.hpp"

using bench::human;
using bench::note;
using bench::progress;
using bench::result;

namespace {

struct Options : bench::CommonOptions {
  std::string db = "envdb_bench";
  int64_t crypto_rows = 500;  // rows per SQL call in the pgcrypto pairings
};

class Result {
 public:
  explicit Result(PGresult* r) : r_(r) {}
  ~Result() { PQclear(r_); }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  int rows() const { return PQntuples(r_); }
  std::string get(int row, int col) const {
    return PQgetisnull(r_, row, col)
               ? std::string()
               : std::string(PQgetvalue(r_, row, col), PQgetlength(r_, row, col));
  }
  PGresult* raw() const { return r_; }

 private:
  PGresult* r_;
};

class Pg {
 public:
  explicit Pg(const std::string& conninfo) : c_(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(c_) != CONNECTION_OK)
      throw std::runtime_error("cannot connect (" + conninfo + "): " + PQerrorMessage(c_));
    PQsetNoticeProcessor(
        c_, [](void*, const char*) {}, nullptr);
  }
  ~Pg() { PQfinish(c_); }
  Pg(const Pg&) = delete;
  Pg& operator=(const Pg&) = delete;

  void check(PGresult* r, const std::string& what) {
    const auto st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      std::string m = PQresultErrorMessage(r);
      PQclear(r);
      throw std::runtime_error(what + ": " + m);
    }
  }
  void exec(const std::string& sql) { Result r(checked(PQexec(c_, sql.c_str()), sql)); }
  std::unique_ptr<Result> query(const std::string& sql, const std::vector<std::string>& args = {}) {
    std::vector<const char*> v;
    for (auto& a : args) v.push_back(a.c_str());
    return std::make_unique<Result>(
        checked(PQexecParams(c_, sql.c_str(), static_cast<int>(v.size()), nullptr, v.data(),
                             nullptr, nullptr, 0),
                sql));
  }
  std::string value(const std::string& sql, const std::vector<std::string>& args = {}) {
    auto r = query(sql, args);
    return r->rows() ? r->get(0, 0) : std::string();
  }
  std::vector<std::string> column(const std::string& sql) {
    auto r = query(sql);
    std::vector<std::string> out;
    out.reserve(r->rows());
    for (int i = 0; i < r->rows(); ++i) out.push_back(r->get(i, 0));
    return out;
  }
  void prepare(const std::string& name, const std::string& sql, int nparams) {
    Result r(checked(PQprepare(c_, name.c_str(), sql.c_str(), nparams, nullptr), sql));
  }
  // Runs a prepared statement; returns the bytes of the result (to keep the
  // work observable) and throws on error.
  size_t run(const std::string& name, const std::vector<const char*>& args) {
    PGresult* r = PQexecPrepared(c_, name.c_str(), static_cast<int>(args.size()), args.data(),
                                 nullptr, nullptr, 0);
    const auto st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
      std::string m = PQresultErrorMessage(r);
      PQclear(r);
      throw std::runtime_error(name + ": " + m);
    }
    size_t n = 0;
    for (int row = 0; row < PQntuples(r); ++row)
      for (int col = 0; col < PQnfields(r); ++col)
        n += static_cast<size_t>(PQgetlength(r, row, col));
    if (PQntuples(r) == 0 && st == PGRES_TUPLES_OK) {
      PQclear(r);
      throw std::runtime_error(name + ": no row");
    }
    PQclear(r);
    return n;
  }
  // How many rows a prepared INSERT/UPDATE/DELETE changed.
  int64_t run_changes(const std::string& name, const std::vector<const char*>& args) {
    Result r(checked(PQexecPrepared(c_, name.c_str(), static_cast<int>(args.size()), args.data(),
                                    nullptr, nullptr, 0),
                     name));
    return std::stoll(PQcmdTuples(r.raw()));
  }
  std::string run_value(const std::string& name, const std::vector<const char*>& args) {
    Result r(checked(PQexecPrepared(c_, name.c_str(), static_cast<int>(args.size()), args.data(),
                                    nullptr, nullptr, 0),
                     name));
    return r.rows() ? r.get(0, 0) : std::string();
  }
  // COPY ... FROM STDIN with rows already in text format.
  void copy_in(const std::string& sql, const std::string& data) {
    Result start(PQexec(c_, sql.c_str()));
    if (PQresultStatus(start.raw()) != PGRES_COPY_IN)
      throw std::runtime_error(sql + ": " + PQresultErrorMessage(start.raw()));
    const size_t chunk = 1 << 20;
    for (size_t off = 0; off < data.size(); off += chunk) {
      const size_t n = std::min(chunk, data.size() - off);
      if (PQputCopyData(c_, data.data() + off, static_cast<int>(n)) != 1)
        throw std::runtime_error("COPY data: " + std::string(PQerrorMessage(c_)));
    }
    if (PQputCopyEnd(c_, nullptr) != 1)
      throw std::runtime_error("COPY end: " + std::string(PQerrorMessage(c_)));
    for (PGresult* r; (r = PQgetResult(c_)) != nullptr;) {
      const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
      std::string m = PQresultErrorMessage(r);
      PQclear(r);
      if (!ok) throw std::runtime_error(sql + ": " + m);
    }
  }

 private:
  PGresult* checked(PGresult* r, const std::string& what) {
    check(r, what.substr(0, 300));
    return r;
  }
  PGconn* c_;
};

envdb::Json parse(const std::string& s) { return envdb::Json::parse(s); }

std::string keyring_command(bool both) {
  std::string lines = std::string(bench::kKey1Id) + " " + bench::kKey1 + "\\n";
  if (both) lines += std::string(bench::kKey2Id) + " " + bench::kKey2 + "\\n";
  return "printf '" + lines + "'";
}

void use_keys(Pg& pg, bool both) {
  pg.value("SELECT set_config('envdb.keyring_command', $1, false)", {keyring_command(both)});
  // The sealing key stays k1 either way; rewrap names its target key.
  pg.value("SELECT set_config('envdb.active_key_id', 'k1', false)");
}

// The router's row by hand: the environment, its database and the active
// credential of the scope, token_cipher as stored (no decryption).
const char* const kHandWritten =
    "SELECT e.id, e.organization_id, e.env_type, e.status, d.driver, d.database_name, "
    "d.database_url, d.region, c.id, c.scope, c.username, c.token_cipher, c.expires_at "
    "FROM envdb.sys_environment e JOIN envdb.sys_environment_database d ON d.environment_id = e.id "
    "JOIN envdb.sys_database_credential c ON c.database_id = d.id AND c.scope = $2 AND "
    "c.status = 'active' WHERE e.id = $1";

// The same lookup, then pgcrypto on a copy of the token kept beside the row
// (bench_pgc): decrypt() (AES-256-CBC, not authenticated) or pgp_sym_decrypt().
std::string hand_written_with(const std::string& decrypt_expr) {
  return "SELECT e.id, e.organization_id, e.env_type, e.status, d.driver, d.database_name, "
         "d.database_url, d.region, c.id, c.scope, c.username, " +
         decrypt_expr +
         ", c.expires_at FROM envdb.sys_environment e JOIN envdb.sys_environment_database d ON "
         "d.environment_id = e.id JOIN envdb.sys_database_credential c ON c.database_id = d.id "
         "AND c.scope = $2 AND c.status = 'active' JOIN public.bench_pgc p ON p.credential_id = "
         "c.id WHERE e.id = $1";
}

const char* const kAesKeyHex =
    "\\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const char* const kPassphrase = "bench-passphrase";

// ---------------------------------------------------------------- provisioning

void provisioning(Pg& pg, const Options& o) {
  progress("postgres: provisioning");
  const envdb::Json org =
      parse(pg.value("SELECT envdb.provision_organization('bench-prov', 'Bench provisioning', "
                     "NULL, NULL, 'turso')"));
  const std::string org_id = org["organization"]["id"];
  pg.prepare("prov",
             "SELECT envdb.provision_environment($1, $2, NULL, 'development', NULL, 'turso')", 2);
  // One statement, one round trip, one transaction: the same four rows.
  pg.prepare(
      "prov_base",
      "WITH e AS (INSERT INTO envdb.sys_environment (id, organization_id, slug, name, env_type, "
      "region, is_default, is_protected, status, metadata, created_at, updated_at) VALUES ($1, $2, "
      "$3, $3, 'development', 'default', false, false, 'provisioning', '{}', now(), now())), "
      "d AS (INSERT INTO envdb.sys_environment_database (id, environment_id, database_name, "
      "driver, "
      "region, created_at, updated_at) VALUES ($4, $1, $5, 'turso', 'default', now(), now())), "
      "j AS (INSERT INTO envdb.sys_provisioning_job (id, environment_id, database_id, kind, "
      "driver, "
      "status, attempts, payload, created_at, updated_at) VALUES ($6, $1, $4, 'create_database', "
      "'turso', 'pending', 0, $7::jsonb, now(), now())), "
      "a AS (INSERT INTO envdb.sys_audit_event (id, occurred_at, actor, action, organization_id, "
      "environment_id, subject_type, subject_id, detail) VALUES ($8, now(), current_user, "
      "'environment.provision', $2, $1, 'environment', $1, $9::jsonb)) SELECT 1",
      9);
  const int64_t n = o.prov;
  const auto pair = bench::measure_pair(
      o.runs, n,
      [&](int r) {
        for (int64_t i = 0; i < n; ++i) {
          const std::string slug = "p" + std::to_string(r) + "-" + std::to_string(i);
          pg.run("prov", {org_id.c_str(), slug.c_str()});
        }
      },
      [&](int r) {
        for (int64_t i = 0; i < n; ++i) {
          const std::string env = envdb::new_uuid_v7(), db = envdb::new_uuid_v7();
          const std::string job = envdb::new_uuid_v7(), audit = envdb::new_uuid_v7();
          const std::string name = envdb::database_name_for(db);
          const std::string slug = "b" + std::to_string(r) + "-" + std::to_string(i);
          const std::string payload = "{\"databaseName\":\"" + name + "\",\"region\":\"default\"}";
          const std::string detail = "{\"slug\":\"" + slug + "\",\"driver\":\"turso\"}";
          pg.run("prov_base", {env.c_str(), org_id.c_str(), slug.c_str(), db.c_str(), name.c_str(),
                               job.c_str(), payload.c_str(), audit.c_str(), detail.c_str()});
        }
      });
  result("Provisioning", "Postgres: catalog-only environment (turso, queued job)",
         1e6 / pair.envdb_us, 1e6 / pair.baseline_us, "per_s", "-",
         "baseline: the same 4 rows (environment, database, job, audit) in one prepared statement "
         "(writable CTEs); " +
             human(n) + " per side per run");
}

// ---------------------------------------------------------------- scale, router

struct Scale {
  Scale(Pg& p, const Options& opts) : pg(p), o(opts) {}
  Pg& pg;
  const Options& o;
  std::mt19937_64 rng{20240607};
  int64_t envs = 0;
  std::map<int64_t, bench::Pair> at;
  int64_t sink = 0;

  void provision_through_envdb(int64_t count) {
    pg.prepare("s_org", "SELECT envdb.provision_organization($1, $2, NULL, NULL, 'turso')", 2);
    pg.prepare("s_env",
               "SELECT envdb.provision_environment($1, $2, NULL, 'development', NULL, 'turso')", 2);
    pg.prepare("s_claim", "SELECT envdb.claim_provisioning_jobs('turso', 1000, 'bench')", 0);
    pg.prepare("s_done", "SELECT envdb.complete_provisioning_job($1, $2, $3::jsonb)", 3);
    pg.exec("BEGIN");
    for (int64_t i = 0; i < count; i += 10) {
      const std::string slug = "scale-" + std::to_string(i / 10),
                        name = "Scale org " + std::to_string(i / 10);
      const std::string org_id =
          parse(pg.run_value("s_org", {slug.c_str(), name.c_str()}))["organization"]["id"];
      for (int j = 1; j < 10 && i + j < count; ++j) {
        const std::string s = "env-" + std::to_string(j);
        pg.run("s_env", {org_id.c_str(), s.c_str()});
      }
    }
    pg.exec("COMMIT");
    for (;;) {
      const envdb::Json jobs = parse(pg.run_value("s_claim", {}));
      if (jobs.empty()) break;
      pg.exec("BEGIN");
      for (const auto& job : jobs) {
        const std::string id = job["id"], name = job["databaseName"];
        const std::string url = "libsql://" + name + ".bench.turso.io";
        const std::string tokens = envdb::Json{{"admin", envdb::crypto::generate_token()},
                                               {"readwrite", envdb::crypto::generate_token()}}
                                       .dump();
        pg.run("s_done", {id.c_str(), url.c_str(), tokens.c_str()});
      }
      pg.exec("COMMIT");
    }
    envs = count;
    analyze();
  }

  // What autovacuum would soon do; done here so that every measurement sees
  // current statistics and visibility maps.
  void analyze() {
    for (const char* t : {"sys_organization", "sys_environment", "sys_environment_database",
                          "sys_database_credential"})
      pg.exec(std::string("VACUUM (ANALYZE) envdb.") + t);
  }

  static void field(std::string& out, const std::string& v) {
    out += v;  // generated values hold no tab, newline or backslash
    out += '\t';
  }
  static void end_row(std::string& out) { out.back() = '\n'; }

  void bulk_load(int64_t target) {
    progress("postgres: bulk load to " + human(target));
    const auto key = bench::key_bytes(bench::kKey1);
    const auto t0 = bench::Clock::now();
    double gen_s = 0;
    // Like pg_restore --disable-triggers: the generated rows are consistent by
    // construction, so the foreign-key triggers are off for the load.
    pg.exec("SET session_replication_role = replica");
    const int64_t chunk = 100000;
    while (envs < target) {
      const int64_t n = std::min(chunk, target - envs);
      const auto tg = bench::Clock::now();
      const bench::Bulk b = bench::Bulk::make(envs, n, key);
      std::string orgs, envrows, dbs, creds;
      for (auto& r : b.orgs) {
        field(orgs, r.id);
        field(orgs, r.slug);
        field(orgs, r.name);
        field(orgs, "{}");
        field(orgs, b.now);
        field(orgs, b.now);
        end_row(orgs);
      }
      for (auto& r : b.envs) {
        field(envrows, r.id);
        field(envrows, r.org_id);
        field(envrows, r.slug);
        field(envrows, r.name);
        field(envrows, r.env_type);
        field(envrows, "default");
        field(envrows, r.is_default ? "t" : "f");
        field(envrows, r.is_default ? "t" : "f");
        field(envrows, "active");
        field(envrows, "{}");
        field(envrows, b.now);
        field(envrows, b.now);
        end_row(envrows);
      }
      for (auto& r : b.dbs) {
        field(dbs, r.id);
        field(dbs, r.env_id);
        field(dbs, r.name);
        field(dbs, r.url);
        field(dbs, "turso");
        field(dbs, "default");
        field(dbs, b.now);
        field(dbs, "{}");
        field(dbs, b.now);
        field(dbs, b.now);
        end_row(dbs);
      }
      static const char kHex[] = "0123456789abcdef";
      for (auto& r : b.creds) {
        field(creds, r.id);
        field(creds, r.db_id);
        creds += "\\\\x";
        for (unsigned char ch : r.cipher) creds += kHex[ch >> 4], creds += kHex[ch & 15];
        creds += '\t';
        field(creds, "k1");
        field(creds, r.scope);
        field(creds, "active");
        field(creds, b.now);
        end_row(creds);
      }
      gen_s += bench::seconds_since(tg);
      pg.exec("BEGIN");
      pg.copy_in(
          "COPY envdb.sys_organization (id, slug, name, metadata, created_at, updated_at) FROM "
          "STDIN",
          orgs);
      pg.copy_in(
          "COPY envdb.sys_environment (id, organization_id, slug, name, env_type, region, "
          "is_default, "
          "is_protected, status, metadata, created_at, updated_at) FROM STDIN",
          envrows);
      pg.copy_in(
          "COPY envdb.sys_environment_database (id, environment_id, database_name, database_url, "
          "driver, "
          "region, provisioned_at, metadata, created_at, updated_at) FROM STDIN",
          dbs);
      pg.copy_in(
          "COPY envdb.sys_database_credential (id, database_id, token_cipher, kms_key_id, scope, "
          "status, "
          "issued_at) FROM STDIN",
          creds);
      pg.exec("COMMIT");
      envs += n;
    }
    pg.exec("RESET session_replication_role");
    const double load_s = bench::seconds_since(t0);
    const auto tv = bench::Clock::now();
    analyze();
    note("Scale",
         "Postgres: bulk-loaded to " + human(target) + " environments with COPY in " +
             std::to_string(static_cast<int>(load_s)) + " s (generating and sealing the rows: " +
             std::to_string(static_cast<int>(gen_s)) + " s), then VACUUM (ANALYZE) in " +
             std::to_string(static_cast<int>(bench::seconds_since(tv))) +
             " s; the database is now " +
             std::to_string(std::stoll(pg.value("SELECT pg_database_size(current_database())")) >>
                            20) +
             " MiB");
  }

  std::vector<std::string> sample_ids(size_t n) {
    const auto ids = pg.column("SELECT id FROM envdb.sys_environment WHERE status = 'active'");
    return bench::sample(ids, n, rng);
  }

  void measure() {
    const std::string label = human(envs);
    progress("postgres: resolve at " + label + " environments");
    const auto s = sample_ids(static_cast<size_t>(o.sample));
    pg.prepare("resolve_" + label, "SELECT envdb.resolve_environment($1, 'readwrite')", 1);
    pg.prepare("hand_" + label, kHandWritten, 2);
    auto envdb_one = [&](const std::string& id) {
      sink += pg.run("resolve_" + label, {id.c_str()});
    };
    auto base_one = [&](const std::string& id) {
      sink += pg.run("hand_" + label, {id.c_str(), "readwrite"});
    };
    const envdb::Json r = parse(pg.run_value("resolve_" + label, {s[0].c_str()}));
    if (r["credential"]["token"].get<std::string>().size() != 43)
      throw std::runtime_error("resolve returned no token: " + r.dump());
    double first_us = 0;
    const bench::Pair p =
        bench::resolve_blocks(s, o.blocks, o.calls, envdb_one, base_one, first_us);
    note("Router", "Postgres at " + label +
                       ": first resolve of an environment in a minute (a resolve cache miss "
                       "that also stamps last_accessed_at): " +
                       bench::fixed(first_us) + " µs per call");
    at[envs] = p;
    result("Router",
           "Postgres: resolve_environment vs hand-written SELECT, " + label + " environments",
           p.envdb_us, p.baseline_us, "us", "le:1.5",
           "per call over libpq (TCP to localhost), both prepared (PQprepare/PQexecPrepared), "
           "random ids "
           "of " +
               human(o.sample) + " environments; median of " + std::to_string(o.blocks) +
               " interleaved blocks of " + human(o.calls) + " calls");
    result("Router", "Postgres: first resolve of an environment in a minute vs a resolve, " + label,
           first_us, p.envdb_us, "us", "-",
           "every environment of the sample resolved once (a cache miss, and last_accessed_at "
           "recorded for the database worker with the preload, else written by the resolve) "
           "against the steady per-call figure above, which the cache answers: mostly the cost "
           "of a miss; what the touch itself adds is the next row");
    touch_pair(s, label, envdb_one);
    hostname_figure(s, label, envdb_one);
    in_server(s, label);
  }

  // What the touch adds to a resolve, on equal terms: the sample's
  // environments split in two alternate halves, the first with a
  // last_accessed_at long past (the resolve records an access), the second
  // stamped now (nothing to record), the backend's cache emptied (a statement
  // on a table the cache watches sends its invalidation), then one resolve of
  // each, alternating between the halves: both are cache misses on the same
  // pages, and only the first touches. The accesses of the timed-touch path
  // above are written first (by the database worker with the preload), so
  // none lands on the halves afterwards.
  template <class One>
  void touch_pair(const std::vector<std::string>& s, const std::string& label, One envdb_one) {
    std::vector<std::string> distinct(s.begin(), s.end());
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    std::vector<std::string> stale, fresh;
    for (size_t i = 0; i < distinct.size(); ++i) (i % 2 ? fresh : stale).push_back(distinct[i]);
    auto array = [](const std::vector<std::string>& ids) {
      std::string a = "{";
      for (auto& id : ids) a += (a.size() > 1 ? "," : "") + id;
      return a + "}";
    };
    const std::string all = array(distinct);
    const auto deadline = bench::Clock::now() + std::chrono::seconds(60);
    const std::string waiting =
        "SELECT count(*) FROM envdb.sys_environment_database WHERE environment_id = "
        "ANY($1::text[]) AND last_accessed_at IS NULL";
    while (pg.value(waiting, {all}) != "0" && bench::Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    pg.value(
        "UPDATE envdb.sys_environment_database SET last_accessed_at = CASE WHEN environment_id "
        "= ANY($1::text[]) THEN '2000-01-01'::timestamptz ELSE now() END WHERE environment_id = "
        "ANY($2::text[])",
        {array(stale), all});
    pg.exec("UPDATE envdb.sys_environment SET updated_at = updated_at WHERE false");
    double touch_s = 0, plain_s = 0;
    const size_t n = std::min(stale.size(), fresh.size());
    for (size_t i = 0; i < n; ++i) {
      const auto t0 = bench::Clock::now();
      envdb_one(stale[i]);
      const auto t1 = bench::Clock::now();
      envdb_one(fresh[i]);
      touch_s += std::chrono::duration<double>(t1 - t0).count();
      plain_s += bench::seconds_since(t1);
    }
    result("Router",
           "Postgres: a resolve that touches last_accessed_at vs one that does not, " + label,
           touch_s * 1e6 / static_cast<double>(n), plain_s * 1e6 / static_cast<double>(n), "us",
           "le:2.0",
           "goal 2, the touch path: both cache misses, alternating over two halves of the "
           "sample (" +
               human(n) +
               " each): the first half's last_accessed_at long past (the access is recorded for "
               "the database worker with the preload, else written by the resolve), the "
               "second's stamped now");
  }

  // The in-server pair: one statement resolving every environment of
  // the sample (per row), against the bare join of the same rows with the
  // ciphertext as hex; then the same with the resolve cache off
  // (envdb.resolve_cache_entries = 0), the cost of a miss.
  void in_server(const std::vector<std::string>& s, const std::string& label) {
    pg.exec("DROP TABLE IF EXISTS public.bench_ids");
    pg.exec("CREATE TABLE public.bench_ids (id text PRIMARY KEY)");
    {
      std::string rows;
      for (auto& id : s) rows += id + "\n";
      pg.exec("BEGIN");
      pg.exec("CREATE TEMP TABLE bench_ids_load (id text) ON COMMIT DROP");
      pg.copy_in("COPY bench_ids_load (id) FROM STDIN", rows);
      pg.exec("INSERT INTO public.bench_ids SELECT DISTINCT id FROM bench_ids_load");
      pg.exec("COMMIT");
    }
    pg.exec("ANALYZE public.bench_ids");
    const int64_t n = std::stoll(pg.value("SELECT count(*) FROM public.bench_ids"));
    const std::string tag = label;
    pg.prepare("srv_resolve_" + tag,
               "SELECT count(envdb.resolve_environment(b.id, 'readwrite')) FROM public.bench_ids b",
               0);
    pg.prepare("srv_join_" + tag,
               "SELECT count((SELECT d.database_url || encode(c.token_cipher, 'hex') FROM "
               "envdb.sys_environment e JOIN envdb.sys_environment_database d ON d.environment_id "
               "= e.id JOIN envdb.sys_database_credential c ON c.database_id = d.id AND c.scope = "
               "'readwrite' AND c.status = 'active' WHERE e.id = b.id AND e.status = 'active')) "
               "FROM public.bench_ids b",
               0);
    auto count_of = [&](const std::string& name) {
      if (std::stoll(pg.run_value(name, {})) != n)
        throw std::runtime_error(name + ": the count is not the sample size");
    };
    count_of("srv_resolve_" + tag);
    count_of("srv_join_" + tag);
    const bench::Pair p = bench::measure_pair(
        o.blocks, n, [&](int) { count_of("srv_resolve_" + tag); },
        [&](int) { count_of("srv_join_" + tag); });
    result("Router",
           "Postgres: in-server per row, resolve_environment vs the bare join, " + label +
               " environments",
           p.envdb_us, p.baseline_us, "us", "le:1.5",
           "per row of SELECT count(f(id)) over " + human(n) +
               " environments (the backend's resolve cache holds them), against SELECT "
               "count((SELECT d.database_url || encode(c.token_cipher, 'hex') ...)) over the "
               "same rows; median of " +
               std::to_string(o.blocks) + " interleaved statements");
    pg.exec("SET envdb.resolve_cache_entries = 0");
    count_of("srv_resolve_" + tag);
    const bench::Pair q = bench::measure_pair(
        o.blocks, n, [&](int) { count_of("srv_resolve_" + tag); },
        [&](int) { count_of("srv_join_" + tag); });
    pg.exec("RESET envdb.resolve_cache_entries");
    result("Router",
           "Postgres: in-server per row without the resolve cache (a miss) vs the bare join, " +
               label + " environments",
           q.envdb_us, q.baseline_us, "us", "-",
           "as above with envdb.resolve_cache_entries = 0: what a resolve costs when its row is "
           "not cached (the figure before the cache)");
  }

  // resolve_hostname next to resolve_environment on the same sample: the
  // hostname lookup is the only difference. Each sampled environment gets
  // the hostname <its id>.bench.example (adding it again is a no-op).
  template <class ById>
  void hostname_figure(const std::vector<std::string>& s, const std::string& label, ById by_id) {
    if (pg.value("SELECT count(*) FROM pg_proc WHERE proname = 'resolve_hostname'") == "0") return;
    progress("postgres: resolve_hostname at " + label + " environments");
    for (auto& id : s)
      pg.value("SELECT envdb.add_environment_hostname($1, $2)", {id, id + ".bench.example"});
    pg.prepare("host_" + label, "SELECT envdb.resolve_hostname($1, 'readwrite')", 1);
    std::map<std::string, std::string> name_of;
    for (auto& id : s) name_of[id] = id + ".bench.example";
    auto by_name = [&](const std::string& id) {
      sink += pg.run("host_" + label, {name_of[id].c_str()});
    };
    double first_us = 0;
    const bench::Pair p = bench::resolve_blocks(s, o.blocks, o.calls, by_name, by_id, first_us);
    result("Router",
           "Postgres: resolve_hostname vs resolve_environment, " + label + " environments",
           p.envdb_us, p.baseline_us, "us", "le:1.2",
           "per call over libpq, both prepared, the same sample; median of " +
               std::to_string(o.blocks) + " interleaved blocks of " + human(o.calls) + " calls");
  }

  // pgcrypto in the same server, on the same kind of 43-character token.
  void pgcrypto() {
    progress("postgres: pgcrypto pairings");
    const int64_t n = o.crypto_rows;
    // Tokens and their pgcrypto ciphertexts, made once.
    pg.exec("DROP TABLE IF EXISTS public.bench_tok");
    pg.exec(
        "CREATE TABLE public.bench_tok AS SELECT i, encode(gen_random_bytes(32), 'base64') AS "
        "token "
        "FROM generate_series(1, " +
        std::to_string(n) + ") i");
    pg.exec("ALTER TABLE public.bench_tok ADD COLUMN c_pgp bytea, ADD COLUMN c_aes bytea");
    pg.exec(std::string("UPDATE public.bench_tok SET c_pgp = pgp_sym_encrypt(token, '") +
            kPassphrase + "'), c_aes = encrypt(convert_to(token, 'UTF8'), '" + kAesKeyHex +
            "'::bytea, 'aes')");
    // The environments whose tokens envdb opens: n active ones.
    const auto ids = sample_ids(static_cast<size_t>(n));
    pg.exec("DROP TABLE IF EXISTS public.bench_env");
    pg.exec("CREATE TABLE public.bench_env (id text PRIMARY KEY)");
    {
      std::string rows;
      for (auto& id : ids) rows += id + "\n";
      pg.copy_in("COPY public.bench_env (id) FROM STDIN", rows);
    }
    pg.exec("ANALYZE public.bench_tok");
    pg.exec("ANALYZE public.bench_env");
    pg.prepare("open_envdb",
               "SELECT count(envdb.resolve_environment(id, 'readwrite')) FROM public.bench_env", 0);
    pg.prepare("open_pgp",
               std::string("SELECT count(pgp_sym_decrypt(c_pgp, '") + kPassphrase +
                   "')) FROM public.bench_tok",
               0);
    pg.run("open_envdb", {});  // also stamps last_accessed_at
    auto p = bench::measure_pair(
        o.blocks, n, [&](int) { pg.run("open_envdb", {}); }, [&](int) { pg.run("open_pgp", {}); });
    result("Sealing",
           "Postgres: open one token in SQL: envdb.resolve_environment vs pgp_sym_decrypt",
           p.envdb_us, p.baseline_us, "us", "ge:50",
           "per row of SELECT count(f(x)) over " + human(n) + " rows, median of " +
               std::to_string(o.blocks) +
               " calls; envdb's row also does the indexed lookup and builds the JSON");

    // reveal_credential: the function whose job is to open one token (it
    // also appends its audit event).
    pg.exec("DROP TABLE IF EXISTS public.bench_cred");
    pg.exec(
        "CREATE TABLE public.bench_cred AS SELECT c.id FROM public.bench_env b JOIN "
        "envdb.sys_environment_database d ON d.environment_id = b.id JOIN "
        "envdb.sys_database_credential c "
        "ON c.database_id = d.id AND c.scope = 'readwrite' AND c.status = 'active'");
    pg.exec("ANALYZE public.bench_cred");
    pg.prepare("reveal_envdb", "SELECT count(envdb.reveal_credential(id)) FROM public.bench_cred",
               0);
    pg.run("reveal_envdb", {});
    p = bench::measure_pair(
        o.blocks, n, [&](int) { pg.run("reveal_envdb", {}); },
        [&](int) { pg.run("open_pgp", {}); });
    result("Sealing", "Postgres: open one token in SQL: envdb.reveal_credential vs pgp_sym_decrypt",
           p.envdb_us, p.baseline_us, "us", "ge:50",
           "per row of SELECT count(f(x)) over " + human(n) + " rows, median of " +
               std::to_string(o.blocks) +
               " calls; envdb's row also looks the credential up and appends its audit event");

    pg.prepare("open_aes",
               std::string("SELECT count(decrypt(c_aes, '") + kAesKeyHex +
                   "'::bytea, 'aes')) FROM public.bench_tok",
               0);
    p = bench::measure_pair(
        o.blocks, n, [&](int) { pg.run("open_envdb", {}); }, [&](int) { pg.run("open_aes", {}); });
    result("Sealing",
           "Postgres: open one token in SQL: envdb.resolve_environment vs pgcrypto decrypt(aes)",
           p.envdb_us, p.baseline_us, "us", "le:1.5",
           "per row of SELECT count(f(x)) over " + human(n) + " rows, median of " +
               std::to_string(o.blocks) +
               " calls; decrypt() is bare AES-256-CBC (no authentication, no lookup), envdb's row "
               "does the indexed lookup, the AES-256-GCM open bound to the row and the JSON");

    // Sealing: issue_credential seals a new token and stores it (with its
    // audit row); fresh databases each run, since a scope has one active one.
    auto dbs = pg.column(
        "SELECT d.id FROM envdb.sys_environment_database d JOIN envdb.sys_environment e ON e.id = "
        "d.environment_id LEFT JOIN envdb.sys_database_credential c ON c.database_id = d.id AND "
        "c.scope = 'readonly' WHERE e.status = 'active' AND c.id IS NULL");
    const auto pick = bench::sample(dbs, static_cast<size_t>(n * o.runs), rng);
    pg.exec("DROP TABLE IF EXISTS public.bench_issue");
    pg.exec("CREATE TABLE public.bench_issue (run int, database_id text, token text)");
    {
      std::string rows;
      for (size_t i = 0; i < pick.size(); ++i)
        rows += std::to_string(i / static_cast<size_t>(n)) + "\t" + pick[i] + "\t" +
                envdb::crypto::generate_token() + "\n";
      pg.copy_in("COPY public.bench_issue (run, database_id, token) FROM STDIN", rows);
    }
    pg.exec("CREATE INDEX ON public.bench_issue (run)");
    pg.exec("ANALYZE public.bench_issue");
    pg.prepare("seal_envdb",
               "SELECT count(envdb.issue_credential(database_id, 'readonly', token)) FROM "
               "public.bench_issue WHERE run = $1::int",
               1);
    pg.prepare("seal_pgp",
               std::string("SELECT count(pgp_sym_encrypt(token, '") + kPassphrase +
                   "')) FROM public.bench_tok",
               0);
    p = bench::measure_pair(
        o.runs, n,
        [&](int r) {
          const std::string run = std::to_string(r);
          pg.run("seal_envdb", {run.c_str()});
        },
        [&](int) { pg.run("seal_pgp", {}); });
    result("Sealing", "Postgres: seal one token in SQL: envdb.issue_credential vs pgp_sym_encrypt",
           p.envdb_us, p.baseline_us, "us", "ge:50",
           "per row of SELECT count(f(x)) over " + human(n) + " rows, median of " +
               std::to_string(o.runs) +
               " calls (fresh databases each); envdb's row also inserts the credential "
               "and its audit event");

    // The router's call with pgcrypto instead of envdb: the hand-written
    // lookup plus decrypt() (AES-256-CBC, unauthenticated) or pgp_sym_decrypt
    // of a copy of the token kept beside the credential.
    const auto s = sample_ids(static_cast<size_t>(std::min<int64_t>(o.calls, 2000)));
    pg.exec("DROP TABLE IF EXISTS public.bench_pgc");
    pg.exec(
        "CREATE TABLE public.bench_pgc (credential_id text PRIMARY KEY, c_aes bytea, c_pgp bytea)");
    {
      std::string rows;
      for (auto& id : s) rows += id + "\n";
      pg.exec("CREATE TEMP TABLE bench_sample (id text)");
      pg.copy_in("COPY bench_sample (id) FROM STDIN", rows);
    }
    pg.exec(std::string(
                "INSERT INTO public.bench_pgc SELECT DISTINCT c.id, encrypt(convert_to(t.token, "
                "'UTF8'), '") +
            kAesKeyHex +
            "'::bytea, 'aes'), NULL::bytea FROM bench_sample s JOIN "
            "envdb.sys_environment_database d ON d.environment_id = s.id JOIN "
            "envdb.sys_database_credential c "
            "ON c.database_id = d.id AND c.scope = 'readwrite' AND c.status = 'active' "
            "CROSS JOIN (SELECT token FROM public.bench_tok LIMIT 1) t");
    pg.exec("ANALYZE public.bench_pgc");
    pg.prepare("router_envdb", "SELECT envdb.resolve_environment($1, 'readwrite')", 1);
    pg.prepare("router_aes",
               hand_written_with(std::string("convert_from(decrypt(p.c_aes, '") + kAesKeyHex +
                                 "'::bytea, 'aes'), 'UTF8')"),
               2);
    for (auto& id : s)
      pg.run("router_envdb", {id.c_str()}), pg.run("router_aes", {id.c_str(), "readwrite"});
    p = bench::measure_pair(
        o.runs, static_cast<int64_t>(s.size()),
        [&](int) {
          for (auto& id : s) sink += pg.run("router_envdb", {id.c_str()});
        },
        [&](int) {
          for (auto& id : s) sink += pg.run("router_aes", {id.c_str(), "readwrite"});
        });
    result("Sealing",
           "Postgres: router call: envdb.resolve_environment vs hand-written SELECT + pgcrypto "
           "decrypt(aes)",
           p.envdb_us, p.baseline_us, "us", "le:1.5",
           "per call over libpq, both prepared; decrypt() is AES-256-CBC without authentication, "
           "envdb's open is AES-256-GCM bound to the row");
    pg.exec("DROP TABLE bench_sample");
  }

  void rotations() {
    progress("postgres: rotations");
    auto dbs = pg.column(
        "SELECT d.id FROM envdb.sys_environment_database d JOIN envdb.sys_environment e ON e.id = "
        "d.environment_id WHERE e.status = 'active'");
    pg.prepare("rotate", "SELECT envdb.rotate_credential($1, 'readwrite', NULL, $2)", 2);
    bench::rotation_figure("Postgres", o, envs, dbs, rng,
                           [&](const std::string& db, const std::string& token) {
                             pg.run("rotate", {db.c_str(), token.c_str()});
                           });
  }

  void rewraps() {
    progress("postgres: rewrap");
    use_keys(pg, true);
    bench::rewrap_figure("Postgres", o, [&](const std::string& target) {
      return std::stoll(pg.value("SELECT envdb.rewrap_credentials($1)", {target}));
    });
    analyze();
  }
};

// rewrap_credentials as the catalog grows, against a hand-written UPDATE that
// rewrites the same column of the same rows: a copy of the credential table
// with the same indexes (LIKE ... INCLUDING ALL), token_cipher replaced by
// random bytes of the same length and kms_key_id set, in one statement and one
// transaction (no decryption, no sealing). As driver_sqlite's rewrap-scale;
// both tables are vacuumed before each timed pair, so neither side pays for
// the other's dead rows.
std::vector<int64_t> rewrap_scales;

void rewrap_at_scale(Pg& pg, const Options& o) {
  Scale s(pg, o);
  s.provision_through_envdb(std::min<int64_t>(1000, rewrap_scales.front()));
  use_keys(pg, true);
  std::map<int64_t, double> envdb_per_row;
  for (int64_t scale : rewrap_scales) {
    if (s.envs < scale) s.bulk_load(scale);
    progress("postgres: rewrap at " + human(s.envs) + " environments");
    pg.exec("DROP TABLE IF EXISTS bench_credential_copy");
    pg.exec(
        "CREATE TABLE bench_credential_copy (LIKE envdb.sys_database_credential INCLUDING ALL)");
    pg.exec("INSERT INTO bench_credential_copy SELECT * FROM envdb.sys_database_credential");
    pg.prepare("copy_update",
               "UPDATE bench_credential_copy SET token_cipher = "
               "gen_random_bytes(length(token_cipher)), kms_key_id = $1 "
               "WHERE status <> 'revoked' AND kms_key_id <> $1",
               1);
    std::vector<double> e_us, b_us;
    int64_t rows = 0;
    const int runs = std::max(1, o.rewrap_runs);
    for (int r = 0; r < runs; ++r) {
      const std::string target = r % 2 == 0 ? bench::kKey2Id : bench::kKey1Id;
      s.analyze();
      pg.exec("VACUUM (ANALYZE) bench_credential_copy");
      auto t0 = bench::Clock::now();
      rows = std::stoll(pg.value("SELECT envdb.rewrap_credentials($1)", {target}));
      e_us.push_back(bench::seconds_since(t0) * 1e6 / static_cast<double>(rows));
      t0 = bench::Clock::now();
      const auto changed = pg.run_changes("copy_update", {target.c_str()});
      b_us.push_back(bench::seconds_since(t0) * 1e6 / static_cast<double>(changed));
      if (changed != rows)
        throw std::runtime_error("the hand-written UPDATE changed " + std::to_string(changed) +
                                 " rows, rewrap " + std::to_string(rows));
    }
    pg.exec("DEALLOCATE copy_update");
    pg.exec("DROP TABLE bench_credential_copy");
    if (runs % 2 == 1) pg.value("SELECT envdb.rewrap_credentials($1)", {bench::kKey1Id});
    s.analyze();
    envdb_per_row[rows] = bench::median(e_us);
    result("Rotation at scale",
           "Postgres: rewrap_credentials vs hand-written UPDATE, " + human(rows) + " credentials",
           bench::median(e_us), bench::median(b_us), "us", "le:2",
           "per row, one call each (median of " + std::to_string(runs) +
               ", k1->k2->k1...); envdb opens and re-seals every token under the new key, the "
               "UPDATE writes random bytes of the same length (gen_random_bytes, no crypto) into "
               "a copy of the table with the same indexes; both tables vacuumed before each pair");
  }
  if (envdb_per_row.size() >= 2) {
    const auto lo = *envdb_per_row.begin(), hi = *envdb_per_row.rbegin();
    result("Rotation at scale",
           "Postgres: rewrap_credentials per row at " + human(hi.first) + " vs " + human(lo.first) +
               " credentials",
           hi.second, lo.second, "us", "le:1.3", "the cost per row must not grow with the catalog");
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  const bool known =
      bench::parse_options(argc, argv, o, [&](const std::string& k, const std::string& v) {
        if (k == "--db")
          o.db = v;
        else if (k == "--crypto-rows")
          o.crypto_rows = std::stoll(v);
        else if (k == "--rewrap-scales")
          rewrap_scales = bench::parse_list(v);
        else
          return false;
        return true;
      });
  if (!known) return 2;
  const std::string& only = o.only;
  try {
    {
      Pg admin("dbname=postgres");
      admin.exec("DROP DATABASE IF EXISTS " + o.db);
      admin.exec("CREATE DATABASE " + o.db);
      note("Machine", "PostgreSQL " + admin.value("SHOW server_version") + " (shared_buffers " +
                          admin.value("SHOW shared_buffers") + ")");
    }
    Pg pg("dbname=" + o.db);
    pg.exec("CREATE EXTENSION envdb");
    pg.exec("CREATE EXTENSION pgcrypto");
    // Commits do not wait for the WAL flush (an fsync costs ~4 ms on this
    // VM): the same for envdb and every baseline.
    pg.exec("SET synchronous_commit = off");
    use_keys(pg, false);
    if (only == "all" || only == "provisioning") provisioning(pg, o);
    if (only == "rewrap-scale" && !rewrap_scales.empty()) rewrap_at_scale(pg, o);
    if (only == "all" || only == "scale") {
      Scale s(pg, o);
      // The pgcrypto pairings once, at the second scale (or the only one).
      bench::run_scales("Postgres", o, s, true, [&](size_t i) {
        if (i == 1 || o.scales.size() == 1) s.pgcrypto();
      });
    }
    { pg.exec("RESET synchronous_commit"); }
  } catch (const std::exception& e) {
    std::cerr << "driver_pg: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
