#include "postgres/hosts.hpp"

#include "catalog/audit.hpp"
#include "catalog/records.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/function.hpp"
#include "core/ids.hpp"
#include "postgres/statements.hpp"

namespace envdb::postgres {

namespace {

using T = api::Type;

constexpr size_t kMaxHostName = 255;
constexpr size_t kMaxPassword = 1024;

}  // namespace

std::string host_aad(std::string_view host_id) {
  // The credential scheme with fields no credential can have.
  return crypto::credential_aad(host_id, "sys_database_host", "password");
}

std::optional<std::string> place(Store& store, const std::string& region) {
  auto row = query_one(store,
                       "SELECT h.id FROM envdb.sys_database_host h WHERE h.region = $1 ORDER BY "
                       "(SELECT count(*) FROM envdb.sys_environment_database d WHERE d.host_id = "
                       "h.id), h.name LIMIT 1",
                       {region});
  if (!row) return std::nullopt;
  return row->text("id");
}

Server load_server(Host& host, const std::string& host_id) {
  Store& store = host.store();
  auto h = query_one(store,
                     "SELECT id, name, host, port, dbname, username, kms_key_id, "
                     "password_cipher FROM envdb.sys_database_host WHERE id = $1",
                     {host_id});
  if (!h) fail(Code::not_found, "database host " + quote_value(host_id) + " is not registered");
  Server s;
  s.id = h->text("id");
  s.name = h->text("name");
  s.host = h->text("host");
  s.port = h->integer("port");
  s.dbname = h->text("dbname");
  s.username = h->text("username");
  if (auto key_id = h->opt_text("kms_key_id")) {
    Keyring& keyring = host.keyring();
    if (!keyring.has(*key_id))
      fail(Code::key_unavailable, "database host " + quote_value(s.name) + " is sealed under key " +
                                      quote_value(*key_id) + ", which is not loaded");
    const Value& cipher = (*h)["password_cipher"];
    const Blob* blob = std::get_if<Blob>(&cipher);
    if (!blob)
      fail(Code::decrypt_failed,
           "database host " + quote_value(s.name) + " has no password ciphertext");
    s.password = crypto::open(keyring.key(*key_id), blob->bytes, host_aad(s.id));
  }
  return s;
}

// ---- the host registry ----------------------------------------------------

namespace {

const char* const kHostColumns =
    "id, name, region, host, port, dbname, username, kms_key_id, created_at, updated_at";

Json host_json(Store& store, const Row& r) {
  auto n = query_one(store,
                     "SELECT count(*) AS n FROM envdb.sys_environment_database WHERE host_id = $1",
                     {r.text("id")});
  return Json{{"id", r.text("id")},
              {"name", r.text("name")},
              {"region", r.text("region")},
              {"host", r.text("host")},
              {"port", r.integer("port")},
              {"dbname", r.text("dbname")},
              {"username", r.text("username")},
              {"hasPassword", !is_null(r["kms_key_id"])},
              {"kmsKeyId", json_text(r.opt_text("kms_key_id"))},
              {"databases", n ? n->integer("n") : 0},
              {"createdAt", r.text("created_at")},
              {"updatedAt", r.text("updated_at")}};
}

std::optional<Row> host_by_name(Store& store, const std::string& name) {
  return query_one(store,
                   std::string("SELECT ") + kHostColumns +
                       " FROM envdb.sys_database_host WHERE name = $1",
                   {name});
}

bool has_control_bytes(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

void require_plain(const char* field, const std::string& v, size_t max) {
  if (v.empty() || v.size() > max || has_control_bytes(v))
    fail(Code::invalid_parameter, std::string(field) + " " + quote_value(v) + " must be 1 to " +
                                      std::to_string(max) +
                                      " characters without control characters");
}

Value add_database_host(api::Call& c) {
  const std::string name = c.text("name", 64);
  require_slug("name", name);
  const std::string region = c.text("region", 64);
  require_plain("region", region, 64);
  const std::string server = c.text("host", kMaxHostName);
  require_plain("host", server, kMaxHostName);
  const int64_t port = c.opt_integer("port").value_or(5432);
  if (port < 1 || port > 65535)
    fail(Code::invalid_parameter, "port " + std::to_string(port) + " must be between 1 and 65535");
  const std::string username = c.opt_text("username", 63).value_or("postgres");
  require_plain("username", username, 63);
  const std::string dbname = c.opt_text("dbname", 63).value_or("postgres");
  require_plain("dbname", dbname, 63);
  std::optional<crypto::SecretBytes> password;
  if (auto p = c.opt_text("password", kMaxPassword)) {
    if (p->empty()) fail(Code::invalid_parameter, "password must not be empty (omit it instead)");
    password.emplace(std::move(*p));
  }
  Store& store = c.store;
  if (host_by_name(store, name))
    fail(Code::already_exists, "name " + quote_value(name) + " already names a database host");
  Keyring& keyring = c.host.keyring();
  if (password) (void)keyring.active_key();  // key_unavailable before anything is written

  Atomic tx(store);
  const std::string id = new_uuid_v7();
  const std::string now = now_iso();
  Value cipher = null_value();
  Value key_id = null_value();
  if (password) {
    cipher = Blob{crypto::seal(keyring.active_key(), password->view(), host_aad(id))};
    key_id = keyring.active_id();
  }
  execute(store,
          "INSERT INTO envdb.sys_database_host (id, name, region, host, port, dbname, username, "
          "password_cipher, kms_key_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, "
          "$7, $8, $9, $10::timestamptz, $10::timestamptz)",
          {id, name, region, server, port, dbname, username, cipher, key_id, now});
  audit::record(c.host, {"database_host.add", std::nullopt, std::nullopt, "database_host", id,
                         Json{{"name", name},
                              {"region", region},
                              {"host", server},
                              {"port", port},
                              {"hasPassword", password.has_value()}}});
  Json out = host_json(store, *host_by_name(store, name));
  tx.done();
  return api::json_result(Json{{"host", out}});
}

Value list_database_hosts(api::Call& c) {
  Json out = Json::array();
  for (const Row& r : query(c.store, std::string("SELECT ") + kHostColumns +
                                         " FROM envdb.sys_database_host ORDER BY name"))
    out.push_back(host_json(c.store, r));
  return api::json_result(out);
}

Value remove_database_host(api::Call& c) {
  const std::string name = c.text("name", 64);
  Store& store = c.store;
  auto row = host_by_name(store, name);
  if (!row) fail(Code::not_found, "name " + quote_value(name) + " names no database host");
  const std::string id = row->text("id");
  auto n = query_one(store,
                     "SELECT count(*) AS n FROM envdb.sys_environment_database WHERE host_id = $1",
                     {id});
  if (n && n->integer("n") > 0)
    fail(Code::conflict, "database host " + quote_value(name) + " still holds " +
                             std::to_string(n->integer("n")) +
                             " environment database(s); it can be removed once none is placed "
                             "there");
  Atomic tx(store);
  Json out = host_json(store, *row);
  execute(store, "DELETE FROM envdb.sys_database_host WHERE id = $1", {id});
  audit::record(c.host, {"database_host.remove", std::nullopt, std::nullopt, "database_host", id,
                         Json{{"name", name}}});
  tx.done();
  return api::json_result(Json{{"host", out}});
}

}  // namespace

std::vector<api::Function> functions() {
  return {
      {"add_database_host",
       {{"name", T::text, nullptr},
        {"region", T::text, nullptr},
        {"host", T::text, nullptr},
        {"port", T::integer, "5432"},
        {"username", T::text, "'postgres'"},
        {"password", T::text, "NULL"},
        {"dbname", T::text, "'postgres'"}},
       T::json,
       add_database_host,
       api::kWrites | api::kRequestForm,
       api::kAdmin,
       "register a Postgres server for postgres-driver databases of a region; the password is "
       "sealed under the keyring's active key and never returned"},
      {"list_database_hosts",
       {},
       T::json,
       list_database_hosts,
       0,
       api::kAdmin,
       "the registered Postgres servers with how many environment databases each holds (no "
       "secrets)"},
      {"remove_database_host",
       {{"name", T::text, nullptr}},
       T::json,
       remove_database_host,
       api::kWrites,
       api::kAdmin,
       "unregister a Postgres server that holds no environment database"},
  };
}

}  // namespace envdb::postgres
