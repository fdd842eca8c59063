// Provisioning: creating an environment with its database row, its first
// credentials and, per driver, its database file (sqlite) or its outbox job
// (postgres, turso). Shared by provision_organization, provision_environment,
// retry_environment, the outbox and the v4 shim, so an environment comes into
// being one way only.
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>
#include <vector>

#include "core/host.hpp"
#include "core/json.hpp"
#include "core/store.hpp"

namespace envdb::provision {

// Field limits (bytes) shared by every function that takes these values.
constexpr size_t kMaxName = 200;
constexpr size_t kMaxDescription = 2000;
constexpr size_t kMaxRegion = 64;
constexpr size_t kMaxCreatedBy = 256;
constexpr size_t kMaxReason = 1000;

bool is_driver(const std::string& driver);
bool is_env_type(const std::string& t);
// invalid_parameter naming `field` unless valid.
void require_driver(const std::string& field, const std::string& driver);
void require_region(const std::string& field, const std::string& region);
void require_name(const std::string& field, const std::string& name);

// What a new environment is made of, validated by the caller.
struct Spec {
  std::string organization_id;
  std::string slug;
  std::string name;
  std::optional<std::string> description;
  std::string env_type;
  std::string region;
  std::string driver;
  bool is_default = false;
  bool is_protected = false;
  std::optional<int64_t> storage_limit_mb;
  std::optional<std::string> created_by;
  Json metadata = Json::object();
  // provision_environment's copy_from (copy::copy_from_source), or null.
  Json copy_from = nullptr;
};

// Files a call created outside the catalog. If the call fails after creating
// them (the catalog rolls back), the destructor removes them. keep() once the
// catalog change is written: the files pass to the host (Host::file_kept),
// whose commit may still come after the call returns.
class Undo {
 public:
  explicit Undo(Host& host) : host_(host) {}
  Undo(const Undo&) = delete;
  Undo& operator=(const Undo&) = delete;
  ~Undo();
  void add_file(const std::string& path) { files_.push_back(path); }
  void keep();

 private:
  Host& host_;
  std::vector<std::string> files_;
};

// key_unavailable now, before anything is written, when `driver` needs
// generated credentials and the keyring has no active key.
void require_key_for(Host& host, const std::string& driver);

// Inserts the environment, its database row and (sqlite, postgres) its first
// credentials; then creates the sqlite file and activates the environment, or
// queues a create_database job. Runs inside the caller's Atomic and writes no
// audit event (the caller does). Returns {environment, database, credentials,
// job} with the contract's shapes.
Json create_environment(Host& host, const Spec& spec, Undo& undo);

// {environment, database, credentials, job} of an existing environment as
// the provisioning response shows it (job: its latest, or null).
Json environment_bundle(Store& store, const std::string& environment_id);

// The contract's credential shape in provisioning responses (no secrets).
Json credential_brief(const Json& credential);
Json credentials_of(Store& store, const std::string& database_id, bool brief);
// {id, kind, status} of a job row, or null.
Json job_brief(const std::optional<Row>& job);

// Creates `<sqlite_data_dir>/<database_name>.db`: written under a temporary
// name, schema-initialized, renamed into place. conflict when the final file
// exists, unless `reuse_existing` (a retry), which initializes it in place (a
// foreign identity stamp is schema_mismatch). The temporary file never
// survives a failure. Returns the absolute path; registers it with `undo`.
std::string create_sqlite_file(Host& host, const std::string& environment_id,
                               const std::string& organization_id, const std::string& database_name,
                               bool reuse_existing, Undo& undo);

// Where a sqlite-driver database lives: <sqlite_data_dir>/<database_name>.db,
// which a database_url, when set, must name (row_rules::sqlite_file:
// schema_mismatch for a row pointing anywhere else).
std::string sqlite_database_path(Host& host, const std::string& database_name,
                                 const std::optional<std::string>& database_url);

// Deletes a SQLite database file and its -journal, -wal and -shm files; a
// file already gone is fine, any other failure is an error (internal).
void delete_database_file(const std::string& path);

// Queues a create_database job for a postgres or turso database. Returns the row.
// `copy_from`: the payload's copyFrom when not null (a new environment as a copy).
Row queue_create_job(Host& host, const Row& environment, const Row& database,
                     const Json& copy_from = nullptr);

// Marks the database provisioned (and its URL, when given) and moves the
// environment from its current status to active through the state machine.
void activate(Host& host, const std::string& environment_id, const std::string& from_status,
              const std::string& database_id, const std::optional<std::string>& database_url);

// Pending jobs of an environment become failed with `why` (cancelled work).
void cancel_pending_jobs(Store& store, const std::string& environment_id, const std::string& why);

std::optional<Row> default_environment(Store& store, const std::string& organization_id);
std::optional<Row> environment_by_slug(Store& store, const std::string& organization_id,
                                       const std::string& slug);

}  // namespace envdb::provision
