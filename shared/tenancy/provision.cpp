#include "tenancy/provision.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "catalog/dataplane.hpp"
#include "catalog/dataplane_template.hpp"
#include "catalog/records.hpp"
#include "catalog/row_rules.hpp"
#include "catalog/settings.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/ids.hpp"
#include "jobs/queue.hpp"
#include "jobs/turso.hpp"
#include "postgres/hosts.hpp"
#include "secrets/crypto.hpp"
#include "secrets/vault.hpp"
#include "tenancy/lifecycle.hpp"

namespace envdb::provision {

namespace fs = std::filesystem;

namespace {

bool has_control_bytes(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

std::string hex(const std::string& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0x0f];
  }
  return out;
}

// A SQLite database file and the files SQLite may keep beside it.
void remove_database_file(const std::string& path) {
  std::error_code ec;
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) fs::remove(path + suffix, ec);
}

// Makes a rename durable: best effort, a failure here loses nothing already
// written by SQLite (which synced the file itself).
void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

fs::path data_directory(Host& host) {
  fs::path dir = settings::sqlite_data_dir(host);
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec))
      fail(Code::invalid_parameter,
           "sqlite_data_dir " + quote_value(dir.string()) + " is not a directory");
    return dir;
  }
  fs::create_directories(dir, ec);
  if (ec)
    fail(Code::invalid_parameter,
         "sqlite_data_dir " + quote_value(dir.string()) + " cannot be created: " + ec.message());
  // Environment databases are nobody else's business.
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  return dir;
}

}  // namespace

bool is_driver(const std::string& d) { return d == "sqlite" || d == "postgres" || d == "turso"; }

bool is_env_type(const std::string& t) {
  return t == "default" || t == "sandbox" || t == "development" || t == "production" ||
         t == "trial";
}

void require_driver(const std::string& field, const std::string& driver) {
  if (!is_driver(driver))
    fail(Code::invalid_parameter,
         field + " " + quote_value(driver) + " is not a driver (sqlite, postgres, turso)");
}

void require_region(const std::string& field, const std::string& region) {
  if (region.empty() || region.size() > kMaxRegion || has_control_bytes(region))
    fail(Code::invalid_parameter, field + " " + quote_value(region) + " must be 1 to " +
                                      std::to_string(kMaxRegion) +
                                      " characters without control characters");
}

void require_name(const std::string& field, const std::string& name) {
  if (name.empty() || name.size() > kMaxName || has_control_bytes(name))
    fail(Code::invalid_parameter, field + " " + quote_value(name) + " must be 1 to " +
                                      std::to_string(kMaxName) +
                                      " characters without control characters");
}

Undo::~Undo() {
  for (auto& f : files_) remove_database_file(f);
}

void Undo::keep() {
  for (auto& f : files_) host_.file_kept(f);
  files_.clear();
}

void require_key_for(Host& host, const std::string& driver) {
  if (driver != "turso") (void)host.keyring().active_key();
}

std::optional<Row> default_environment(Store& store, const std::string& organization_id) {
  return query_one(store,
                   std::string("SELECT ") + records::kEnvironmentColumns +
                       " FROM envdb.sys_environment WHERE organization_id = $1 AND is_default",
                   {organization_id});
}

std::optional<Row> environment_by_slug(Store& store, const std::string& organization_id,
                                       const std::string& slug) {
  return query_one(store,
                   std::string("SELECT ") + records::kEnvironmentColumns +
                       " FROM envdb.sys_environment WHERE organization_id = $1 AND slug = $2",
                   {organization_id, slug});
}

Json credential_brief(const Json& c) {
  Json out = Json::object();
  for (const char* key :
       {"id", "databaseId", "kmsKeyId", "scope", "status", "issuedAt", "expiresAt", "rotatedFrom"})
    out[key] = c.contains(key) ? c[key] : Json(nullptr);
  return out;
}

Json credentials_of(Store& store, const std::string& database_id, bool brief) {
  Json out = Json::array();
  for (auto& row : query(store,
                         std::string("SELECT ") + records::kCredentialColumns +
                             " FROM envdb.sys_database_credential WHERE database_id = $1 "
                             "ORDER BY issued_at, id",
                         {database_id})) {
    Json c = records::credential_json(row);
    out.push_back(brief ? credential_brief(c) : c);
  }
  return out;
}

Json job_brief(const std::optional<Row>& job) {
  if (!job) return nullptr;
  return Json{{"id", job->text("id")},
              {"kind", job->text("kind")},
              {"status", job->text("status")}};
}

Json environment_bundle(Store& store, const std::string& environment_id) {
  Row env = records::load_environment(store, "environment_id", environment_id);
  auto db = records::database_of_environment(store, environment_id);
  auto job = query_one(store,
                       std::string("SELECT ") + records::kJobColumns +
                           " FROM envdb.sys_provisioning_job WHERE environment_id = $1 "
                           "ORDER BY created_at DESC, id DESC LIMIT 1",
                       {environment_id});
  return Json{{"environment", records::environment_json(env)},
              {"database", db ? records::database_json(*db) : Json(nullptr)},
              {"credentials", db ? credentials_of(store, db->text("id"), true) : Json::array()},
              {"job", job_brief(job)}};
}

namespace {

// Where a new sqlite database's file goes: the data directory (created when
// missing) and, inside it, the one way a catalog row becomes a path (the
// canonical directory, never through a symlink; a retry reads the name back).
struct SqliteTarget {
  fs::path dir;
  std::string path;
};

SqliteTarget sqlite_target(Host& host, const std::string& database_name) {
  fs::path dir = data_directory(host);
  return {std::move(dir), row_rules::sqlite_file(host, database_name, std::nullopt)};
}

std::string create_sqlite_file_at(Host& host, const SqliteTarget& target,
                                  const std::string& environment_id,
                                  const std::string& organization_id,
                                  const std::string& database_name, bool reuse_existing,
                                  Undo& undo) {
  const fs::path& dir = target.dir;
  const std::string& final_path = target.path;
  std::error_code ec;
  if (fs::exists(final_path, ec)) {
    if (!reuse_existing)
      fail(Code::conflict, "database file " + quote_value(final_path) +
                               " already exists; envdb never overwrites a database file");
    // A retry finds the file an earlier attempt left: make sure it is this
    // environment's and up to date (idempotent).
    auto store = host.open_database_file(final_path);
    dataplane::initialize(*store, environment_id, organization_id, database_name);
    return final_path;
  }

  const std::string temp_path = final_path + ".tmp-" + hex(crypto::random_bytes(8));
  try {
    // The template image's bytes and a stamp; DDL when no image is usable.
    if (!dataplane_template::create(host, temp_path, environment_id, organization_id,
                                    database_name)) {
      auto store = dataplane_template::open_unpublished(host, temp_path);
      dataplane::initialize(*store, environment_id, organization_id, database_name);
    }  // closed before it moves
    if (fs::exists(final_path, ec))
      fail(Code::conflict, "database file " + quote_value(final_path) +
                               " appeared while it was being created; envdb never overwrites a "
                               "database file");
    if (std::rename(temp_path.c_str(), final_path.c_str()) != 0)
      throw Error(Code::internal, "cannot rename " + quote_value(temp_path) + " to " +
                                      quote_value(final_path) + ": " + std::strerror(errno));
  } catch (...) {
    remove_database_file(temp_path);
    throw;
  }
  undo.add_file(final_path);
  sync_directory(dir);
  return final_path;
}

}  // namespace

std::string create_sqlite_file(Host& host, const std::string& environment_id,
                               const std::string& organization_id, const std::string& database_name,
                               bool reuse_existing, Undo& undo) {
  return create_sqlite_file_at(host, sqlite_target(host, database_name), environment_id,
                               organization_id, database_name, reuse_existing, undo);
}

std::string sqlite_database_path(Host& host, const std::string& database_name,
                                 const std::optional<std::string>& database_url) {
  return row_rules::sqlite_file(host, database_name, database_url);
}

void delete_database_file(const std::string& path) {
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) {
    const std::string file = path + suffix;
    std::error_code ec;
    fs::remove(file, ec);
    if (ec && ec != std::errc::no_such_file_or_directory)
      throw Error(Code::internal, "cannot delete " + quote_value(file) + ": " + ec.message());
  }
  sync_directory(fs::path(path).parent_path());
}

Row queue_create_job(Host& host, const Row& environment, const Row& database,
                     const Json& copy_from) {
  Json payload{{"databaseName", database.text("database_name")},
               {"region", database.text("region")},
               // The scopes the worker is asked to mint tokens for: every
               // scope a role can map to, as the other drivers get from the start.
               {"scopes", vault::initial_scopes()}};
  if (database.text("driver") == "turso") payload = turso::create_payload(environment, database);
  if (!copy_from.is_null()) payload["copyFrom"] = copy_from;
  return queue::enqueue(host, {environment.text("id"), database.text("id"), "create_database",
                               database.text("driver"), payload});
}

void activate(Host& host, const std::string& environment_id, const std::string& from_status,
              const std::string& database_id, const std::optional<std::string>& database_url) {
  lifecycle::require(environment_id, from_status, "active");
  const std::string now = now_iso();
  // The URL is part of what the credentials are bound to: they are re-sealed with it.
  if (database_url) vault::set_database_url(host, database_id, *database_url);
  execute(host.store(),
          "UPDATE envdb.sys_environment_database SET provisioned_at = $2::timestamptz, "
          "updated_at = $2::timestamptz WHERE id = $1",
          {database_id, now});
  execute(host.store(),
          "UPDATE envdb.sys_environment SET status = 'active', updated_at = $2::timestamptz "
          "WHERE id = $1",
          {environment_id, now});
}

void cancel_pending_jobs(Store& store, const std::string& environment_id, const std::string& why) {
  const std::string now = now_iso();
  execute(store,
          "UPDATE envdb.sys_provisioning_job SET status = 'failed', last_error = $2, "
          "finished_at = $3::timestamptz, updated_at = $3::timestamptz "
          "WHERE environment_id = $1 AND status = 'pending' AND kind <> 'retire_database'",
          {environment_id, why, now});
}

Json create_environment(Host& host, const Spec& s, Undo& undo) {
  Store& store = host.store();
  const std::string environment_id = new_uuid_v7();
  const std::string database_id = new_uuid_v7();
  const std::string database_name = database_name_for(database_id);
  const std::string now = now_iso();

  // Callers check the slug and the default flag first, but a concurrent call
  // can take either in between: ON CONFLICT makes that race give the same
  // answer as the check rather than a unique-violation message from the host.
  if (query(store,
            "INSERT INTO envdb.sys_environment (id, organization_id, slug, name, description, "
            "env_type, region, is_default, is_protected, status, created_by, metadata, "
            "created_at, updated_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
            "'provisioning', $10, $11::jsonb, $12::timestamptz, $12::timestamptz, "
            "$13::timestamptz) ON CONFLICT DO NOTHING RETURNING id",
            {environment_id, s.organization_id, s.slug, s.name, optional_value(s.description),
             s.env_type, s.region, s.is_default, s.is_protected, optional_value(s.created_by),
             s.metadata.dump(), now, optional_value(s.expires_at)})
          .empty()) {
    if (environment_by_slug(store, s.organization_id, s.slug))
      fail(Code::already_exists, "slug " + quote_value(s.slug) +
                                     " already names an environment of organization " +
                                     quote_value(s.organization_id));
    fail(Code::conflict, "organization " + quote_value(s.organization_id) +
                             " got a default environment from a concurrent call; use "
                             "set_default_environment to move the flag");
  }
  // A postgres database goes to a registered server of its region
  // (postgres/hosts.hpp: placement and the local_server_regions fallback).
  const std::optional<std::string> host_id =
      s.driver == "postgres" ? postgres::place(host, s.region) : std::nullopt;
  // A sqlite database's file follows from its name, so the row carries its
  // URL from the start and the credentials below are sealed once, bound to
  // it (activate() then finds the URL in place and re-seals nothing). The
  // transaction that writes it also creates the file, or writes nothing.
  std::optional<SqliteTarget> file;
  std::optional<std::string> url;
  if (s.driver == "sqlite") {
    file = sqlite_target(host, database_name);
    url = "file:" + file->path;
  }
  execute(store,
          "INSERT INTO envdb.sys_environment_database (id, environment_id, database_name, driver, "
          "region, storage_limit_mb, host_id, database_url, created_at, updated_at) VALUES ($1, "
          "$2, $3, $4, $5, $6::bigint, $7, $8, $9::timestamptz, $9::timestamptz)",
          {database_id, environment_id, database_name, s.driver, s.region,
           s.storage_limit_mb ? Value(*s.storage_limit_mb) : null_value(), optional_value(host_id),
           optional_value(url), now});

  // envdb generates the tokens of sqlite and postgres databases; a turso
  // database gets Turso's when its job completes.
  if (s.driver != "turso") vault::issue_initial(host, database_id);

  if (s.driver == "sqlite") {
    const std::string path = create_sqlite_file_at(host, *file, environment_id, s.organization_id,
                                                   database_name, false, undo);
    activate(host, environment_id, "provisioning", database_id, "file:" + path);
  } else {
    queue_create_job(host, records::load_environment(store, "environment_id", environment_id),
                     records::load_database(store, "database_id", database_id), s.copy_from);
  }
  return environment_bundle(store, environment_id);
}

}  // namespace envdb::provision
