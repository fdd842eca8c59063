#include "surface/invariants.hpp"

#include <algorithm>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <set>

#include "catalog/audit.hpp"
#include "catalog/row_rules.hpp"
#include "catalog/schema.hpp"
#include "catalog/settings.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/function.hpp"
#include "core/json_bounds.hpp"
#include "postgres/provisioner.hpp"
#include "postgres/servers.hpp"
#include "postgres/statements.hpp"
#include "secrets/crypto.hpp"
#include "tenancy/backups.hpp"
#include "tenancy/copy.hpp"

namespace envdb::invariants {

namespace fs = std::filesystem;

namespace {

using T = api::Type;

// The kinds, in the order findings are listed.
const char* const kKinds[] = {"orphan_row",
                              "active_without_database",
                              "file_without_registry",
                              "credential_key_missing",
                              "stale_job",
                              "invalid_row",
                              "credential_unbound",
                              "server_unreachable",
                              "database_missing",
                              "database_not_dropped",
                              "database_unregistered",
                              "login_missing",
                              "login_mismatch",
                              "role_leftover",
                              "maintenance_without_job"};

struct Finding {
  std::string kind;
  std::string table;  // the catalog table concerned
  std::string id;     // a row id, or a file's path
  std::string detail;
  bool repaired = false;
  std::optional<std::string> organization_id, environment_id;  // for the audit event
};

int kind_rank(const std::string& kind) {
  for (size_t i = 0; i < std::size(kKinds); ++i)
    if (kind == kKinds[i]) return static_cast<int>(i);
  return static_cast<int>(std::size(kKinds));
}

int table_rank(const std::string& table) {
  const auto& tables = catalog::control_plane();
  for (size_t i = 0; i < tables.size(); ++i)
    if (tables[i].name == table) return static_cast<int>(i);
  return static_cast<int>(tables.size());
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

// One repair: the change, then its audit event. Catalog changes and events
// commit with the call's transaction, all or nothing. A file change cannot
// roll back, so it comes first and is audited only once done; a fix that
// returns false (a file could not be moved) changed nothing and records
// nothing.
void repair(Host& host, Finding& f, const std::string& action,
            const std::function<bool(std::string& why)>& fix) {
  std::string why;
  if (!fix(why)) {
    f.detail += "; not repaired: " + why;
    return;
  }
  audit::Event e;
  e.action = "check.repair";
  e.organization_id = f.organization_id;
  e.environment_id = f.environment_id;
  e.subject_type = f.table;
  e.subject_id = f.id;
  e.detail = Json{{"kind", f.kind},
                  {"table", f.table},
                  {"id", f.id},
                  {"action", action},
                  {"finding", f.detail}};
  audit::record(host, e);
  f.repaired = true;
  f.detail += "; repaired: " + action;
}

// ---------------------------------------------------------------- orphans

// A self-reference (sys_database_credential.rotated_from) is lineage, not
// ownership: a row whose predecessor is gone is still a good row, so the
// repair clears the reference instead of deleting the row.
bool is_lineage(const catalog::Table& t, const catalog::ForeignKey& fk) {
  return fk.table == t.name;
}

// The column of `fk` that refers to its parent's id (every catalog parent is
// keyed by id).
std::optional<std::string> id_column(const catalog::ForeignKey& fk) {
  for (size_t i = 0; i < fk.ref_columns.size(); ++i)
    if (fk.ref_columns[i] == "id") return fk.columns[i];
  return std::nullopt;
}

struct Orphans {
  std::map<std::string, std::set<std::string>> doomed;               // table -> ids to delete
  std::map<std::pair<std::string, std::string>, size_t> finding_of;  // (table, id) -> finding
  struct Clear {
    std::string table, column, id;
    size_t finding;
  };
  std::vector<Clear> clears;
  bool is_doomed(const std::string& table, const std::string& id) const {
    auto it = doomed.find(table);
    return it != doomed.end() && it->second.count(id) > 0;
  }
};

void find_orphans(Store& store, std::vector<Finding>& findings, Orphans& o) {
  const auto& tables = catalog::control_plane();
  std::deque<std::pair<std::string, std::string>> work;  // newly doomed (table, id)
  auto doom = [&](const std::string& table, const std::string& id, const std::string& detail) {
    auto key = std::make_pair(table, id);
    auto it = o.finding_of.find(key);
    if (it != o.finding_of.end()) {
      findings[it->second].detail += "; " + detail;
      return;
    }
    o.doomed[table].insert(id);
    o.finding_of[key] = findings.size();
    findings.push_back({"orphan_row", table, id, detail});
    work.push_back(key);
  };

  // Rows whose parent is missing.
  for (const auto& t : tables) {
    for (const auto& fk : t.foreign_keys) {
      std::vector<std::string> present, match, cols;
      for (size_t i = 0; i < fk.columns.size(); ++i) {
        present.push_back("c." + fk.columns[i] + " IS NOT NULL");
        match.push_back("p." + fk.ref_columns[i] + " = c." + fk.columns[i]);
        cols.push_back("c." + fk.columns[i] + " AS ref" + std::to_string(i));
      }
      const std::string sql = "SELECT c.id AS id, " + join(cols, ", ") + " FROM " +
                              catalog::qualified(t.name) + " c WHERE " + join(present, " AND ") +
                              " AND NOT EXISTS (SELECT 1 FROM " + catalog::qualified(fk.table) +
                              " p WHERE " + join(match, " AND ") + ") ORDER BY c.id";
      for (const Row& r : query(store, sql)) {
        std::vector<std::string> refs;
        for (size_t i = 0; i < fk.columns.size(); ++i)
          refs.push_back(fk.columns[i] + " " + quote_value(r.text("ref" + std::to_string(i))));
        const std::string detail = join(refs, ", ") + " names no row of " + fk.table;
        if (is_lineage(t, fk)) {
          o.clears.push_back({t.name, fk.columns[0], r.text("id"), findings.size()});
          findings.push_back({"orphan_row", t.name, r.text("id"), detail});
        } else {
          doom(t.name, r.text("id"), detail);
        }
      }
    }
  }
  // Rows that hang off an orphan go with it.
  while (!work.empty()) {
    const auto [parent_table, parent_id] = work.front();
    work.pop_front();
    for (const auto& t : tables) {
      for (const auto& fk : t.foreign_keys) {
        if (fk.table != parent_table || is_lineage(t, fk)) continue;
        const auto column = id_column(fk);
        if (!column) continue;
        for (const Row& r : query(store,
                                  "SELECT id FROM " + catalog::qualified(t.name) + " WHERE " +
                                      *column + " = $1 ORDER BY id",
                                  {parent_id}))
          doom(t.name, r.text("id"),
               "its " + *column + " " + quote_value(parent_id) + " is an orphan row of " +
                   parent_table);
      }
    }
  }
  // Lineage references to a row that is going: cleared, so the row can go.
  for (const auto& t : tables) {
    for (const auto& fk : t.foreign_keys) {
      if (!is_lineage(t, fk)) continue;
      auto it = o.doomed.find(t.name);
      if (it == o.doomed.end()) continue;
      for (const std::string& gone : it->second) {
        for (const Row& r : query(store,
                                  "SELECT id FROM " + catalog::qualified(t.name) + " WHERE " +
                                      fk.columns[0] + " = $1 ORDER BY id",
                                  {gone})) {
          if (o.is_doomed(t.name, r.text("id"))) continue;
          o.clears.push_back({t.name, fk.columns[0], r.text("id"), findings.size()});
          findings.push_back(
              {"orphan_row", t.name, r.text("id"),
               fk.columns[0] + " " + quote_value(gone) + " names an orphan row of " + fk.table});
        }
      }
    }
  }
}

void repair_orphans(Host& host, std::vector<Finding>& findings, const Orphans& o) {
  Store& store = host.store();
  for (const auto& c : o.clears)
    repair(host, findings[c.finding], "cleared " + c.column, [&](std::string&) {
      execute(store,
              "UPDATE " + catalog::qualified(c.table) + " SET " + c.column +
                  " = NULL WHERE id = $1",
              {c.id});
      return true;
    });
  const auto& tables = catalog::control_plane();
  // Lineage among the rows that go, then children before parents (the
  // catalog lists parents first).
  for (const auto& t : tables) {
    auto it = o.doomed.find(t.name);
    if (it == o.doomed.end()) continue;
    for (const auto& fk : t.foreign_keys)
      if (is_lineage(t, fk))
        for (const std::string& id : it->second)
          execute(store,
                  "UPDATE " + catalog::qualified(t.name) + " SET " + fk.columns[0] +
                      " = NULL WHERE id = $1",
                  {id});
  }
  for (auto t = tables.rbegin(); t != tables.rend(); ++t) {
    auto it = o.doomed.find(t->name);
    if (it == o.doomed.end()) continue;
    for (const std::string& id : it->second)
      repair(host, findings[o.finding_of.at({t->name, id})], "deleted the row", [&](std::string&) {
        execute(store, "DELETE FROM " + catalog::qualified(t->name) + " WHERE id = $1", {id});
        return true;
      });
  }
}

// ------------------------------------------------- active without database

void find_active_without_database(Host& host, std::vector<Finding>& findings, const Orphans& o,
                                  std::vector<size_t>& out) {
  for (const Row& r : query(host.store(),
                            "SELECT e.id, e.organization_id, d.id AS database_id, d.database_name, "
                            "d.database_url, d.driver FROM envdb.sys_environment e "
                            "LEFT JOIN envdb.sys_environment_database d ON d.environment_id = e.id "
                            "WHERE e.status = 'active' ORDER BY e.id")) {
    const std::string id = r.text("id");
    if (o.is_doomed("sys_environment", id)) continue;
    std::string detail;
    if (!r.opt_text("database_id")) {
      detail = "environment is active but has no sys_environment_database row";
    } else {
      const std::string driver = r.text("driver");
      const std::string name = r.text("database_name");
      const auto url = r.opt_text("database_url");
      const auto exists = host.database_exists(driver, name, url);
      if (!exists || *exists) continue;
      detail = "environment is active but its " + driver + " database " + quote_value(name) +
               (url ? " (" + *url + ")" : std::string()) + " does not exist";
    }
    Finding f{"active_without_database", "sys_environment", id, detail};
    f.organization_id = r.text("organization_id");
    f.environment_id = id;
    out.push_back(findings.size());
    findings.push_back(std::move(f));
  }
}

void repair_active_without_database(Host& host, std::vector<Finding>& findings,
                                    const std::vector<size_t>& which) {
  for (size_t i : which) {
    Finding& f = findings[i];
    repair(host, f, "marked the environment failed", [&](std::string&) {
      const std::string now = now_iso();
      execute(host.store(),
              "UPDATE envdb.sys_environment SET status = 'failed', updated_at = $2::timestamptz "
              "WHERE id = $1 AND status = 'active'",
              {f.id, now});
      return true;
    });
  }
}

// ------------------------------------------------------------------ files

bool base32_name(const std::string& s, size_t at) {  // env-<26 of a-z2-7>
  if (s.compare(at, 4, "env-") != 0 || s.size() < at + 30) return false;
  for (size_t i = at + 4; i < at + 30; ++i) {
    const char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'))) return false;
  }
  return true;
}

// What an envdb file name is: the database it belongs to, whether it is a
// temporary file, and its main file's name (without -journal/-wal/-shm).
struct FileName {
  std::string database_name;
  std::string main;
  bool temporary = false;
};

std::optional<FileName> parse_file_name(const std::string& name) {
  std::string main = name;
  for (const char* suffix : {"-journal", "-wal", "-shm"}) {
    const size_t n = std::strlen(suffix);
    if (main.size() > n && main.compare(main.size() - n, n, suffix) == 0) {
      main.resize(main.size() - n);
      break;
    }
  }
  if (!base32_name(main, 0)) return std::nullopt;
  FileName f{main.substr(0, 30), main};
  const std::string rest = main.substr(30);
  if (rest == ".db") return f;
  // <name>.db.tmp-<16 hex>: provision's file in the making.
  if (rest.size() != 3 + 5 + 16 || rest.compare(0, 8, ".db.tmp-") != 0) return std::nullopt;
  for (size_t i = 8; i < rest.size(); ++i) {
    const char c = rest[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  f.temporary = true;
  return f;
}

std::optional<fs::path> data_directory(Host& host) {
  std::error_code ec;
  fs::path dir = settings::sqlite_data_dir(host);
  if (!fs::is_directory(dir, ec)) return std::nullopt;
  return dir;
}

struct Stamp {
  std::string environment_id;
  std::optional<std::string> organization_id;
};

// The identity stamp of an environment file, if it has one.
std::optional<Stamp> read_stamp(Host& host, const std::string& path) {
  try {
    auto file = host.open_database_file(path);
    auto row =
        query_one(*file, "SELECT environment_id, organization_id FROM envdb.sys_environment_info");
    if (!row) return std::nullopt;
    return Stamp{row->text("environment_id"), row->opt_text("organization_id")};
  } catch (const Error&) {
    return std::nullopt;  // not a SQLite database, or no data-plane tables
  }
}

struct FileGroup {
  FileName name;
  std::vector<std::string> files;  // names in the directory, main file first
  bool has_main = false;
  bool ours = false;  // may be moved aside: it belongs to this catalog
};

void find_files(Host& host, std::vector<Finding>& findings, const Orphans& o,
                std::map<size_t, FileGroup>& out, fs::path& dir_out) {
  const auto dir = data_directory(host);
  if (!dir) return;
  dir_out = *dir;
  Store& store = host.store();
  std::set<std::string> registered, doomed_names;
  for (const Row& r :
       query(store, "SELECT id, database_name FROM envdb.sys_environment_database")) {
    if (o.is_doomed("sys_environment_database", r.text("id")))
      doomed_names.insert(r.text("database_name"));
    else
      registered.insert(r.text("database_name"));
  }

  std::map<std::string, FileGroup> groups;  // by main file name
  std::error_code ec;
  for (fs::directory_iterator it(*dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    const std::string name = it->path().filename().string();
    const auto parsed = parse_file_name(name);
    if (!parsed) continue;  // not envdb's
    if (!parsed->temporary && registered.count(parsed->database_name)) continue;
    FileGroup& g = groups[parsed->main];
    g.name = *parsed;
    if (name == parsed->main) {
      g.has_main = true;
      g.files.insert(g.files.begin(), name);
    } else {
      g.files.push_back(name);
    }
  }

  for (auto& [main, g] : groups) {
    std::sort(g.files.begin() + (g.has_main ? 1 : 0), g.files.end());
    const std::string path = (*dir / main).string();
    std::string detail;
    if (g.name.temporary) {
      detail =
          "temporary file of envdb (a provisioning that did not finish): " + join(g.files, ", ");
      g.ours = true;
    } else if (!g.has_main) {
      detail = "SQLite side files of a database file that is not there: " + join(g.files, ", ");
    } else if (doomed_names.count(g.name.database_name)) {
      detail = "environment file whose sys_environment_database row is an orphan row";
      g.ours = true;
    } else if (const auto stamp = read_stamp(host, path)) {
      const bool known_environment =
          query_one(store, "SELECT 1 AS present FROM envdb.sys_environment WHERE id = $1",
                    {stamp->environment_id})
              .has_value();
      const bool known_organization =
          stamp->organization_id &&
          query_one(store, "SELECT 1 AS present FROM envdb.sys_organization WHERE id = $1",
                    {*stamp->organization_id})
              .has_value();
      g.ours = known_environment || known_organization;
      detail = "environment file of environment " + quote_value(stamp->environment_id) +
               (stamp->organization_id
                    ? " (organization " + quote_value(*stamp->organization_id) + ")"
                    : std::string()) +
               " with no sys_environment_database row";
      if (!g.ours)
        detail +=
            "; that organization is not in this catalog: the file may belong to another "
            "control database sharing sqlite_data_dir, so it is left in place";
    } else {
      detail =
          "file named like an environment database but without an envdb identity stamp; "
          "left in place";
    }
    Finding f{"file_without_registry", "sys_environment_database", path, detail};
    out[findings.size()] = g;
    findings.push_back(std::move(f));
  }
}

void repair_files(Host& host, std::vector<Finding>& findings, std::map<size_t, FileGroup>& groups,
                  const fs::path& dir) {
  // Not a structured binding: C++17 lambdas cannot capture one (clang refuses).
  for (auto& entry : groups) {
    FileGroup& g = entry.second;
    if (!g.ours) continue;
    Finding& f = findings[entry.first];
    if (g.name.temporary) {
      repair(host, f, "deleted the temporary file", [&](std::string& why) {
        for (const std::string& name : g.files) {
          std::error_code ec;
          fs::remove(dir / name, ec);
          if (ec) {
            why = "cannot delete " + quote_value((dir / name).string()) + ": " + ec.message();
            return false;
          }
        }
        return true;
      });
      continue;
    }
    // Moved aside, never deleted: it may hold data someone wants.
    const fs::path aside = dir / "unregistered";
    std::string target = g.name.main;
    for (int n = 1; fs::exists(aside / target); ++n)
      target = g.name.database_name + "." + std::to_string(n) + ".db";
    repair(host, f, "moved to " + (aside / target).string(), [&](std::string& why) {
      std::error_code ec;
      fs::create_directories(aside, ec);
      fs::permissions(aside, fs::perms::owner_all, fs::perm_options::replace, ec);
      for (const std::string& name : g.files) {
        const std::string suffix = name.substr(g.name.main.size());
        fs::rename(dir / name, aside / (target + suffix), ec);
        if (ec) {
          why = "cannot move " + quote_value((dir / name).string()) + ": " + ec.message();
          if (&name != &g.files.front()) why += " (the files before it were moved)";
          return false;
        }
      }
      return true;
    });
  }
}

// ------------------------------------------------------------ credentials

void find_credentials_without_key(Host& host, std::vector<Finding>& findings, const Orphans& o) {
  const Keyring* keyring = nullptr;
  std::string unavailable;
  try {
    keyring = &host.keyring();
  } catch (const Error& e) {
    unavailable = e.what();  // the keyring could not be loaded: no key is there
  }
  for (const Row& r : query(host.store(),
                            "SELECT c.id, c.kms_key_id, d.environment_id, e.organization_id "
                            "FROM envdb.sys_database_credential c "
                            "LEFT JOIN envdb.sys_environment_database d ON d.id = c.database_id "
                            "LEFT JOIN envdb.sys_environment e ON e.id = d.environment_id "
                            "WHERE c.status <> 'revoked' ORDER BY c.id")) {
    const std::string id = r.text("id");
    const std::string key = r.text("kms_key_id");
    if (o.is_doomed("sys_database_credential", id)) continue;
    if (keyring && keyring->has(key)) continue;
    Finding f{"credential_key_missing", "sys_database_credential", id,
              "sealed under key " + quote_value(key) +
                  ", which the keyring does not hold: it cannot be opened or rewrapped until "
                  "that key is loaded (never repaired)"};
    if (!unavailable.empty()) f.detail += "; the keyring could not be loaded: " + unavailable;
    f.organization_id = r.opt_text("organization_id");
    f.environment_id = r.opt_text("environment_id");
    findings.push_back(std::move(f));
  }
}

// ------------------------------------------------------------ stale jobs

void find_stale_jobs(Host& host, std::vector<Finding>& findings, const Orphans& o,
                     std::vector<size_t>& out) {
  const int64_t timeout = settings::setting_seconds(host, "job_claim_timeout_seconds");
  if (timeout <= 0) return;
  const std::string cutoff = iso_from_ms(now_ms() - timeout * 1000);
  for (const Row& r :
       query(host.store(),
             "SELECT j.id, j.environment_id, j.worker, j.started_at, e.organization_id "
             "FROM envdb.sys_provisioning_job j "
             "LEFT JOIN envdb.sys_environment e ON e.id = j.environment_id "
             "WHERE j.status = 'running' AND (j.started_at IS NULL OR "
             "j.started_at < $1::timestamptz) ORDER BY j.id",
             {cutoff})) {
    const std::string id = r.text("id");
    if (o.is_doomed("sys_provisioning_job", id)) continue;
    const auto worker = r.opt_text("worker");
    const auto started = r.opt_text("started_at");
    std::string detail = "running job";
    if (worker) detail += " of worker " + quote_value(*worker);
    detail += started ? " claimed at " + *started + ", more than " + std::to_string(timeout) +
                            " s ago (job_claim_timeout_seconds)"
                      : std::string(" with no claim time");
    Finding f{"stale_job", "sys_provisioning_job", id, detail};
    f.organization_id = r.opt_text("organization_id");
    f.environment_id = r.opt_text("environment_id");
    out.push_back(findings.size());
    findings.push_back(std::move(f));
  }
}

void repair_stale_jobs(Host& host, std::vector<Finding>& findings,
                       const std::vector<size_t>& which) {
  for (size_t i : which) {
    Finding& f = findings[i];
    repair(host, f, "put the job back to pending", [&](std::string&) {
      execute(host.store(),
              "UPDATE envdb.sys_provisioning_job SET status = 'pending', worker = NULL, "
              "started_at = NULL, last_error = $2, updated_at = $3::timestamptz "
              "WHERE id = $1 AND status = 'running'",
              {f.id, std::string("requeued by check(): its claim was stale"), now_iso()});
      return true;
    });
  }
}

// ------------------------------------------------------- hostile rows
// Rows that break a rule envdb re-checks when it reads them back
// (row_rules, json_bounds): every function refuses them, so check() names
// them. Never repaired: such a row was written behind envdb's back, and
// which value was meant cannot be known.

void find_invalid_rows(Host& host, std::vector<Finding>& findings, const Orphans& o) {
  Store& store = host.store();
  const bool files = std::strcmp(host.name(), "sqlite") == 0;
  for (const Row& r :
       query(store,
             "SELECT d.id, d.driver, d.database_name, d.database_url, d.environment_id, "
             "e.organization_id FROM envdb.sys_environment_database d "
             "LEFT JOIN envdb.sys_environment e ON e.id = d.environment_id ORDER BY d.id")) {
    const std::string id = r.text("id");
    if (o.is_doomed("sys_environment_database", id)) continue;
    auto problem = row_rules::database_problem(r.text("driver"), r.text("database_name"),
                                               r.opt_text("database_url"));
    if (!problem && files && r.text("driver") == "sqlite") {
      try {
        (void)row_rules::sqlite_file(host, r.text("database_name"), r.opt_text("database_url"));
      } catch (const Error& e) {
        if (e.code() != Code::schema_mismatch) throw;
        const std::string what = e.what();
        problem = what.substr(std::strlen("schema_mismatch: "));
      }
    }
    if (!problem) continue;
    Finding f{"invalid_row", "sys_environment_database", id,
              *problem + "; every function refuses this row (never repaired)"};
    f.organization_id = r.opt_text("organization_id");
    f.environment_id = r.opt_text("environment_id");
    findings.push_back(std::move(f));
  }
  // JSON columns: bounded like every JSON value envdb reads. The audit trail
  // is append-only and never parsed by a function, so it is not scanned.
  for (const auto& t : catalog::control_plane()) {
    if (t.append_only) continue;
    for (const auto& c : t.columns) {
      if (c.type != catalog::Type::json) continue;
      for (const Row& r : query(store, "SELECT id, " + c.name + " AS value FROM " +
                                           catalog::qualified(t.name) + " ORDER BY id")) {
        const auto text = r.opt_text("value");
        if (!text || o.is_doomed(t.name, r.text("id"))) continue;
        std::string problem;
        if (text->size() > json_bounds::kMaxBytes)
          problem = "is longer than " + std::to_string(json_bounds::kMaxBytes) + " bytes";
        else if (json_bounds::first_excess(*text, json_bounds::kMaxDepth))
          problem = "is nested deeper than " + std::to_string(json_bounds::kMaxDepth) + " levels";
        if (problem.empty()) continue;
        findings.push_back({"invalid_row", t.name, r.text("id"),
                            c.name + " " + problem +
                                "; every function that reads it refuses it (never repaired)"});
      }
    }
  }
}

// ---------------------------------------------------------------- servers
// The Postgres servers envdb manages, as they really are (servers.hpp): the
// local server (the Postgres host's own, reached through the store) and every
// registered host (libpq, through Host::connect_server). The SQLite host
// reaches no server and checks none.

struct ServerVisit {
  std::string label;
  std::unique_ptr<postgres::ServerSession> remote;            // nullptr: the local server
  std::vector<std::pair<size_t, servers::Finding>> findings;  // index into findings
};

std::optional<std::string> server_value(Host& host, ServerVisit& v, const std::string& sql) {
  if (v.remote) return v.remote->query_value(sql);
  auto row = query_one(host.store(), "SELECT (" + sql + ")::text AS v");
  return row ? row->opt_text("v") : std::nullopt;
}

void server_exec(Host& host, ServerVisit& v, const std::string& sql) {
  if (v.remote)
    v.remote->exec(sql);
  else
    host.store().exec(sql);
}

void add_server_findings(Host& host, std::vector<Finding>& findings, ServerVisit& v,
                         const std::optional<std::string>& facts,
                         const std::optional<std::string>& host_id) {
  const servers::Observed observed = servers::parse_facts(facts.value_or(""));
  // The local server holds a database when its URL names this server (the
  // host can tell) and that database.
  auto here = [&](const std::string& name, const std::optional<std::string>& url) {
    return url && servers::url_database(*url) == name &&
           host.database_exists("postgres", name, url).has_value();
  };
  const servers::Expected expected =
      host_id ? servers::expected_for(host.store(), host_id, now_ms())
              : servers::expected_for(host.store(), std::nullopt, now_ms(), here);
  for (servers::Finding& sf : servers::compare(expected, observed, v.label)) {
    Finding f{sf.kind, sf.table, sf.id, sf.detail};
    f.organization_id = sf.organization_id;
    f.environment_id = sf.environment_id;
    v.findings.emplace_back(findings.size(), std::move(sf));
    findings.push_back(std::move(f));
  }
}

void find_servers(Host& host, std::vector<Finding>& findings, std::vector<ServerVisit>& visits) {
  Store& store = host.store();
  if (store.dialect() != Dialect::postgres) return;
  {
    ServerVisit local{"the local server", nullptr, {}};
    const auto facts = server_value(host, local, servers::kFactsSql);
    add_server_findings(host, findings, local, facts, std::nullopt);
    visits.push_back(std::move(local));
  }
  for (const Row& h : query(store,
                            "SELECT id, name, host, port, dbname, username, kms_key_id, "
                            "password_cipher FROM envdb.sys_database_host ORDER BY name")) {
    ServerVisit v{"database host " + quote_value(h.text("name")), nullptr, {}};
    std::optional<std::string> facts;
    std::string why;
    // Only the connection and the remote query are caught: an error of the
    // control plane's own store ends the call.
    try {
      const postgres::Server server = servers::load_server(host, h);
      v.remote = host.connect_server(server);
      if (!v.remote) return;  // this host reaches no server
      facts = v.remote->query_value(servers::kFactsSql);
    } catch (const Error& e) {
      why = e.what();
      v.remote.reset();
    }
    if (!v.remote) {
      Finding f{"server_unreachable", "sys_database_host", h.text("id"),
                v.label + " (" + h.text("host") + ":" + std::to_string(h.integer("port")) +
                    ") could not be checked: " + why};
      findings.push_back(std::move(f));
      continue;
    }
    add_server_findings(host, findings, v, facts, h.text("id"));
    visits.push_back(std::move(v));
  }
}

void repair_servers(Host& host, std::vector<Finding>& findings, std::vector<ServerVisit>& visits) {
  for (ServerVisit& v : visits) {
    for (auto& entry : v.findings) {
      // No structured binding: the lambdas below capture it (clang 14 refuses).
      Finding& f = findings[entry.first];
      servers::Finding& sf = entry.second;
      if (sf.kind == "login_missing" && sf.database_id) {
        repair(host, f, "queued a create_login job", [&](std::string& why) {
          if (postgres::queue_job(host, *sf.database_id, "create_login", sf.id)) return true;
          why = "the database is not provisioned";
          return false;
        });
        continue;
      }
      if (sf.statements.empty()) continue;
      repair(host, f, sf.action, [&](std::string& why) {
        try {
          for (const std::string& sql : sf.statements) server_exec(host, v, sql);
          if (!sf.verify_sql.empty() && server_value(host, v, sf.verify_sql)) {
            why = "role " + quote_value(sf.role) +
                  " still owns objects or holds privileges in some database (DROP OWNED BY it "
                  "there first)";
            return false;
          }
        } catch (const Error& e) {
          if (!v.remote) throw;  // the local server is the store: the call ends
          why = e.what();
          return false;
        }
        return true;
      });
    }
  }
}

// Credentials still sealed in envelope format 1 (before 0.3.0): they open,
// but are not bound to their database's name and URL until
// rewrap_credentials() (or SQLite's init() with the key loaded) re-seals them.
void find_unbound_credentials(Host& host, std::vector<Finding>& findings, const Orphans& o) {
  for (const Row& r :
       query(host.store(),
             "SELECT c.id, c.kms_key_id, c.token_cipher, d.environment_id, e.organization_id "
             "FROM envdb.sys_database_credential c "
             "LEFT JOIN envdb.sys_environment_database d ON d.id = c.database_id "
             "LEFT JOIN envdb.sys_environment e ON e.id = d.environment_id "
             "WHERE c.status <> 'revoked' ORDER BY c.id")) {
    const std::string id = r.text("id");
    if (o.is_doomed("sys_database_credential", id)) continue;
    const Blob* blob = std::get_if<Blob>(&r["token_cipher"]);
    if (!blob || crypto::envelope_version(blob->bytes) != crypto::kEnvelopeVersionUnbound) continue;
    Finding f{"credential_unbound", "sys_database_credential", id,
              "sealed under key " + quote_value(r.text("kms_key_id")) +
                  " in the envelope format before 0.3.0, not bound to its database's name and "
                  "URL; rewrap_credentials() re-seals it (never repaired by check)"};
    f.organization_id = r.opt_text("organization_id");
    f.environment_id = r.opt_text("environment_id");
    findings.push_back(std::move(f));
  }
}

Json finding_json(const Finding& f) {
  return Json{{"kind", f.kind},
              {"table", f.table},
              {"id", f.id},
              {"detail", f.detail},
              {"repaired", f.repaired}};
}

}  // namespace

std::optional<bool> sqlite_file_exists(Host& host, const std::string& database_name,
                                       const std::optional<std::string>& database_url) {
  fs::path path;
  try {
    path = row_rules::sqlite_file(host, database_name, database_url);
  } catch (const Error& e) {
    if (e.code() != Code::schema_mismatch) throw;
    return std::nullopt;  // a row envdb does not act on: reported as invalid_row instead
  }
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) return false;
  if (ec) return std::nullopt;
  return status.type() == fs::file_type::regular;
}

// ------------------------------------------------ maintenance without a job
// An environment in maintenance whose copy, reset or restore job is gone:
// nothing would ever give it its status back (tenancy/copy).

void find_stranded_maintenance(Host& host, std::vector<Finding>& findings, const Orphans& o,
                               std::vector<std::pair<size_t, copy::Stranded>>& out) {
  for (copy::Stranded& s : copy::stranded_in_maintenance(host.store())) {
    if (o.is_doomed("sys_environment", s.environment_id)) continue;
    Finding f{"maintenance_without_job", "sys_environment", s.environment_id,
              "environment in maintenance with no copy, reset or restore job pending or running "
              "to end it (its job's row is gone or was marked finished); the repair gives it "
              "status " +
                  s.release_to +
                  (s.job_id ? " (payload.previousStatus of job " + quote_value(*s.job_id) + ")"
                            : std::string(" (no job left names the status it had)"))};
    f.organization_id = s.organization_id;
    f.environment_id = s.environment_id;
    out.emplace_back(findings.size(), std::move(s));
    findings.push_back(std::move(f));
  }
}

void repair_stranded_maintenance(Host& host, std::vector<Finding>& findings,
                                 const std::vector<std::pair<size_t, copy::Stranded>>& which) {
  const std::string now = now_iso();
  for (const auto& entry : which) {
    const copy::Stranded& s = entry.second;
    repair(host, findings[entry.first], "gave it status " + s.release_to, [&](std::string& why) {
      if (copy::release_stranded(host, s, now)) return true;
      why = "a job was queued for it meanwhile, or it left maintenance";
      return false;
    });
  }
}

Value check(api::Call& c) {
  const bool fix = c.opt_boolean("repair").value_or(false);
  Host& host = c.host;
  Store& store = c.store;
  // Only the SQLite host makes environment files (the sqlite driver).
  const bool files = std::strcmp(host.name(), "sqlite") == 0;
  Atomic tx(store);
  if (files) {
    // Take the write lock first: no provisioning of this catalog is then
    // half-way, so a temporary or unregistered file is not one in the making.
    execute(store, "UPDATE envdb.sys_config SET value = value WHERE key IS NULL");
  }

  std::vector<Finding> findings;
  Orphans orphans;
  find_orphans(store, findings, orphans);
  std::vector<size_t> inactive, stale;
  find_active_without_database(host, findings, orphans, inactive);
  std::map<size_t, FileGroup> groups;
  fs::path dir;
  if (files) find_files(host, findings, orphans, groups, dir);
  std::vector<size_t> backup_files;
  if (files)
    for (auto& [path, why] : backups::stray_files(host)) {
      backup_files.push_back(findings.size());
      findings.push_back({"file_without_registry", "sys_environment_backup", path, why});
    }
  find_credentials_without_key(host, findings, orphans);
  find_stale_jobs(host, findings, orphans, stale);
  find_invalid_rows(host, findings, orphans);
  find_unbound_credentials(host, findings, orphans);
  std::vector<ServerVisit> visits;
  find_servers(host, findings, visits);
  std::vector<std::pair<size_t, copy::Stranded>> stranded;
  find_stranded_maintenance(host, findings, orphans, stranded);

  if (fix) {
    repair_orphans(host, findings, orphans);
    repair_active_without_database(host, findings, inactive);
    repair_stale_jobs(host, findings, stale);
    repair_stranded_maintenance(host, findings, stranded);
    // Remote server repairs cannot be rolled back with the catalog: after
    // every catalog repair, like files.
    repair_servers(host, findings, visits);
    // Last: a moved file cannot be rolled back with the catalog.
    repair_files(host, findings, groups, dir);
    for (size_t i : backup_files)
      repair(host, findings[i], "deleted the file", [&](std::string& why) {
        std::error_code ec;
        fs::remove(findings[i].id, ec);
        if (ec) why = ec.message();
        return !ec;
      });
  }
  tx.done();

  std::stable_sort(findings.begin(), findings.end(), [](const Finding& a, const Finding& b) {
    if (kind_rank(a.kind) != kind_rank(b.kind)) return kind_rank(a.kind) < kind_rank(b.kind);
    if (table_rank(a.table) != table_rank(b.table))
      return table_rank(a.table) < table_rank(b.table);
    return a.id < b.id;
  });
  Json list = Json::array();
  int64_t repaired = 0;
  bool ok = true;
  for (const Finding& f : findings) {
    list.push_back(finding_json(f));
    if (f.repaired)
      ++repaired;
    else
      ok = false;
  }
  return api::json_result(Json{{"ok", ok}, {"repaired", repaired}, {"findings", list}});
}

std::vector<api::Function> functions() {
  return {
      {"check",
       {{"repair", T::boolean, "false"}},
       T::json,
       check,
       api::kWrites,
       api::kAdmin,
       "report what the catalog's constraints cannot prevent: orphan rows, active environments "
       "without a database, envdb files without a registry row (SQLite), credentials under keys "
       "not in the keyring, stale running jobs, rows envdb refuses to act on (a database name or "
       "URL it never writes, JSON too deep or too large), credentials in the envelope format "
       "before 0.3.0; with repair, fix what is safe (never credentials or refused rows) and "
       "audit each fix"},
  };
}

}  // namespace envdb::invariants
