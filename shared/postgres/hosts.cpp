#include "postgres/hosts.hpp"

#include <algorithm>

#include "catalog/audit.hpp"
#include "catalog/records.hpp"
#include "catalog/settings.hpp"
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
constexpr size_t kMaxErrorText = 500;
constexpr int64_t kContactRewriteMs = 60000;

// Live databases: those of the host not dropped (an archived environment's
// database still lives there until drop_environment_database).
const char* const kLoadSql =
    "(SELECT count(*) FROM envdb.sys_environment_database d WHERE d.host_id = h.id AND "
    "d.dropped_at IS NULL)";
// No failure recorded since the last successful contact (never tried counts).
const char* const kHealthySql =
    "(h.last_error_at IS NULL OR (h.last_contact_at IS NOT NULL AND h.last_contact_at >= "
    "h.last_error_at))";

struct Candidate {
  std::string id, name;
  bool drained = false, healthy = true;
  int64_t load = 0;
  std::optional<int64_t> capacity;
  std::optional<std::string> last_error_at;
  bool has_room() const { return !capacity || load < *capacity; }
  bool takes_new() const { return !drained && healthy && has_room(); }
  std::string why_not() const {
    if (drained) return quote_value(name) + " is drained";
    if (!healthy) return quote_value(name) + " failed its last contact at " + *last_error_at;
    return quote_value(name) + " is full (" + std::to_string(load) + " of " +
           std::to_string(*capacity) + ")";
  }
};

std::vector<Candidate> candidates(Store& store, const std::string& region) {
  std::vector<Candidate> out;
  for (const Row& r :
       query(store,
             std::string("SELECT h.id, h.name, h.drained, h.capacity, h.last_error_at, ") +
                 kHealthySql + " AS healthy, " + kLoadSql +
                 " AS live FROM envdb.sys_database_host h WHERE h.region = $1 ORDER BY live, "
                 "h.name",
             {region})) {
    Candidate c;
    c.id = r.text("id");
    c.name = r.text("name");
    c.drained = r.boolean("drained");
    c.healthy = r.boolean("healthy");
    c.load = r.integer("live");
    if (!is_null(r["capacity"])) c.capacity = r.integer("capacity");
    c.last_error_at = r.opt_text("last_error_at");
    out.push_back(std::move(c));
  }
  return out;
}

// Takes the host for one more database. A host with a capacity is locked and
// counted again (Postgres): a concurrent placement waits here and then sees
// this one's database once it commits.
bool take(Store& store, const Candidate& c) {
  if (!c.capacity || !is_postgres(store)) return c.takes_new();
  (void)query_one(store, "SELECT id FROM envdb.sys_database_host WHERE id = $1 FOR UPDATE", {c.id});
  auto r = query_one(store,
                     std::string("SELECT h.drained, h.capacity, ") + kHealthySql + " AS healthy, " +
                         kLoadSql + " AS live FROM envdb.sys_database_host h WHERE h.id = $1",
                     {c.id});
  return r && !r->boolean("drained") && r->boolean("healthy") &&
         (is_null((*r)["capacity"]) || r->integer("live") < r->integer("capacity"));
}

bool local_serves(Host& host, const std::string& region) {
  const std::string list = settings::setting(host, "local_server_regions");
  if (list == "*") return true;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    std::string item = list.substr(start, comma - start);
    const auto b = item.find_first_not_of(' ');
    const auto e = item.find_last_not_of(' ');
    if (b != std::string::npos && item.substr(b, e - b + 1) == region) return true;
    start = comma + 1;
  }
  return false;
}

}  // namespace

std::string host_aad(std::string_view host_id) {
  // The credential scheme with fields no credential can have.
  return crypto::credential_aad(host_id, "sys_database_host", "password");
}

std::optional<std::string> place(Host& host, const std::string& region) {
  Store& store = host.store();
  const std::vector<Candidate> all = candidates(store, region);
  if (all.empty()) {
    if (local_serves(host, region)) return std::nullopt;
    fail(Code::invalid_parameter,
         "region " + quote_value(region) +
             " has no database host for the postgres driver (register one with "
             "add_database_host, or name the region in the setting local_server_regions to "
             "place its databases on this server)");
  }
  for (const Candidate& c : all)
    if (c.takes_new() && take(store, c)) return c.id;
  std::string reasons;
  for (const Candidate& c : all) {
    const std::string why = c.takes_new() ? quote_value(c.name) + " filled up meanwhile"
                                          : c.why_not();
    reasons += (reasons.empty() ? "" : "; ") + why;
  }
  fail(Code::conflict, "region " + quote_value(region) +
                           " has no database host that takes a new database: " + reasons);
}

std::optional<std::string> place_again(Host& host, const std::string& region,
                                       const std::optional<std::string>& current) {
  if (!current) return current;
  Store& store = host.store();
  const std::vector<Candidate> all = candidates(store, region);
  for (const Candidate& c : all)
    if (c.id == *current && !c.drained && c.healthy &&
        (!c.capacity || c.load <= *c.capacity))  // its own database is counted already
      return current;
  for (const Candidate& c : all)
    if (c.id != *current && c.takes_new() && take(store, c)) return c.id;
  return current;
}

void record_contact(Store& store, const std::string& host_id, const std::string& error) {
  const int64_t now = now_ms();
  const std::string now_text = iso_from_ms(now);
  const std::string stale = iso_from_ms(now - kContactRewriteMs);
  if (error.empty()) {
    execute(store,
            "UPDATE envdb.sys_database_host SET last_contact_at = $2::timestamptz WHERE id = $1 "
            "AND (last_contact_at IS NULL OR last_contact_at < $3::timestamptz OR "
            "(last_error_at IS NOT NULL AND last_error_at >= last_contact_at))",
            {host_id, now_text, stale});
    return;
  }
  const std::string text = error.substr(0, kMaxErrorText);
  execute(store,
          "UPDATE envdb.sys_database_host SET last_error_at = $2::timestamptz, last_error = $4 "
          "WHERE id = $1 AND (last_error_at IS NULL OR last_error IS NULL OR last_error <> $4 OR "
          "last_error_at < $3::timestamptz OR (last_contact_at IS NOT NULL AND last_contact_at "
          ">= last_error_at))",
          {host_id, now_text, stale, text});
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
    "h.id, h.name, h.region, h.host, h.port, h.dbname, h.username, h.kms_key_id, h.created_at, "
    "h.updated_at, h.capacity, h.drained, h.last_contact_at, h.last_error_at, h.last_error";

std::string host_select() {
  return std::string("SELECT ") + kHostColumns + ", " + kLoadSql + " AS live, " + kHealthySql +
         " AS healthy FROM envdb.sys_database_host h";
}

Json host_json(const Row& r) {
  return Json{{"id", r.text("id")},
              {"name", r.text("name")},
              {"region", r.text("region")},
              {"host", r.text("host")},
              {"port", r.integer("port")},
              {"dbname", r.text("dbname")},
              {"username", r.text("username")},
              {"hasPassword", !is_null(r["kms_key_id"])},
              {"kmsKeyId", json_text(r.opt_text("kms_key_id"))},
              {"databases", r.integer("live")},
              {"capacity", is_null(r["capacity"]) ? Json(nullptr) : Json(r.integer("capacity"))},
              {"drained", r.boolean("drained")},
              {"healthy", r.boolean("healthy")},
              {"lastContactAt", json_text(r.opt_text("last_contact_at"))},
              {"lastErrorAt", json_text(r.opt_text("last_error_at"))},
              {"lastError", json_text(r.opt_text("last_error"))},
              {"createdAt", r.text("created_at")},
              {"updatedAt", r.text("updated_at")}};
}

std::optional<Row> host_by_name(Store& store, const std::string& name) {
  return query_one(store, host_select() + " WHERE h.name = $1", {name});
}

// A host by its id, or by its name (an id wins when a name looks like one).
Row find_host(Store& store, const char* field, const std::string& id_or_name) {
  auto row = query_one(store,
                       host_select() +
                           " WHERE h.id = $1 OR h.name = $1 ORDER BY CASE WHEN h.id = $1 THEN 0 "
                           "ELSE 1 END LIMIT 1",
                       {id_or_name});
  if (!row)
    fail(Code::not_found,
         std::string(field) + " " + quote_value(id_or_name) + " names no database host");
  return *row;
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

void require_port(int64_t port) {
  if (port < 1 || port > 65535)
    fail(Code::invalid_parameter, "port " + std::to_string(port) + " must be between 1 and 65535");
}

// capacity: a positive number of live databases; 0 (and NULL at add) means
// no limit.
Value capacity_value(int64_t capacity) {
  if (capacity < 0)
    fail(Code::invalid_parameter,
         "capacity " + std::to_string(capacity) + " must be a number of databases (0: no limit)");
  return capacity == 0 ? null_value() : Value(capacity);
}

std::optional<crypto::SecretBytes> password_arg(api::Call& c) {
  std::optional<crypto::SecretBytes> password;
  if (auto p = c.opt_text("password", kMaxPassword)) {
    if (p->empty()) fail(Code::invalid_parameter, "password must not be empty (omit it instead)");
    password.emplace(std::move(*p));
  }
  return password;
}

// Which field a failed login points at, from libpq's message.
const char* field_of(const std::string& reason) {
  if (reason.find("password") != std::string::npos) return "password";
  if (reason.find("role \"") != std::string::npos) return "username";
  if (reason.find("database \"") != std::string::npos) return "dbname";
  return "host";
}

// The connection test: log in to the maintenance database as the host's
// username, as the worker will, and check that the role may create databases
// and roles. A host that cannot connect out (SQLite, whose postgres jobs an
// external worker carries out) refuses the test rather than pretend it passed.
void verify(Host& host, const Server& server) {
  std::string where = quote_value(server.name) + " (" + server.host + ":" +
                      std::to_string(server.port) + ", username " + quote_value(server.username) +
                      ", dbname " + quote_value(server.dbname) + ")";
  std::unique_ptr<ServerSession> session;
  std::optional<std::string> can;
  try {
    session = host.connect_server(server);
    if (session)
      can = session->query_value(
          "SELECT (rolsuper OR (rolcreatedb AND rolcreaterole))::text FROM pg_catalog.pg_roles "
          "WHERE rolname = current_user");
  } catch (const Error& e) {
    std::string reason = e.what();
    // The session's own words after "database host '<name>': ", without the code word.
    const std::string marker = quote_value(server.name) + ": ";
    if (auto at = reason.find(marker); at != std::string::npos)
      reason = reason.substr(at + marker.size());
    // libpq never echoes a password; make sure of it.
    if (server.password && !server.password->empty())
      for (size_t at; (at = reason.find(server.password->view())) != std::string::npos;)
        reason.replace(at, server.password->view().size(), "***");
    const char* field = field_of(reason);
    fail(Code::invalid_parameter, std::string(field) + ": database host " + where +
                                      " failed the connection test: " + reason + " (fix the " +
                                      field + ", or pass verify => false to register it untested)");
  }
  if (!session)
    fail(Code::invalid_parameter,
         std::string("verify: the ") + host.name() +
             " host cannot connect to a Postgres server to test it; pass verify => false to "
             "register it untested (the worker that carries out its postgres jobs connects to "
             "it)");
  if (can != std::string("true"))
    fail(Code::invalid_parameter,
         "username: database host " + where +
             " accepts the login, but the role cannot create databases and roles (it needs "
             "CREATEDB and CREATEROLE, or superuser)");
}

Value add_database_host(api::Call& c) {
  const std::string name = c.text("name", 64);
  require_slug("name", name);
  const std::string region = c.text("region", 64);
  require_plain("region", region, 64);
  const std::string server = c.text("host", kMaxHostName);
  require_plain("host", server, kMaxHostName);
  const int64_t port = c.opt_integer("port").value_or(5432);
  require_port(port);
  const std::string username = c.opt_text("username", 63).value_or("postgres");
  require_plain("username", username, 63);
  const std::string dbname = c.opt_text("dbname", 63).value_or("postgres");
  require_plain("dbname", dbname, 63);
  std::optional<crypto::SecretBytes> password = password_arg(c);
  const Value capacity = capacity_value(c.opt_integer("capacity").value_or(0));
  const bool test = c.opt_boolean("verify").value_or(true);
  Store& store = c.store;
  if (host_by_name(store, name))
    fail(Code::already_exists, "name " + quote_value(name) + " already names a database host");
  Keyring& keyring = c.host.keyring();
  if (password) (void)keyring.active_key();  // key_unavailable before anything is written

  const std::string id = new_uuid_v7();
  if (test) {
    Server s{id, name, server, port, dbname, username, std::nullopt};
    if (password) s.password.emplace(std::string(password->view()));
    verify(c.host, s);
  }
  Atomic tx(store);
  const std::string now = now_iso();
  Value cipher = null_value();
  Value key_id = null_value();
  if (password) {
    cipher = Blob{crypto::seal(keyring.active_key(), password->view(), host_aad(id))};
    key_id = keyring.active_id();
  }
  execute(store,
          "INSERT INTO envdb.sys_database_host (id, name, region, host, port, dbname, username, "
          "password_cipher, kms_key_id, created_at, updated_at, capacity, last_contact_at) VALUES "
          "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::timestamptz, $10::timestamptz, $11::bigint, "
          "$12::timestamptz)",
          {id, name, region, server, port, dbname, username, cipher, key_id, now, capacity,
           test ? Value(now) : null_value()});
  audit::record(c.host, {"database_host.add", std::nullopt, std::nullopt, "database_host", id,
                         Json{{"name", name},
                              {"region", region},
                              {"host", server},
                              {"port", port},
                              {"hasPassword", password.has_value()},
                              {"verified", test}}});
  Json out = host_json(*host_by_name(store, name));
  tx.done();
  return api::json_result(Json{{"host", out}});
}

// update_database_host's url: postgresql://[username@]host[:port][/dbname],
// each part optional but the host. No password (it has its own argument, so
// it is sealed and never echoed), no query, no percent-encoding.
struct Address {
  std::string host;
  std::optional<int64_t> port;
  std::optional<std::string> username, dbname;
};

Address parse_url(const std::string& url) {
  auto bad = [&](const std::string& why) -> Address {
    fail(Code::invalid_parameter,
         "url must be postgresql://[username@]host[:port][/dbname] " + why);
  };
  std::string rest;
  for (const char* scheme : {"postgresql://", "postgres://"})
    if (url.rfind(scheme, 0) == 0) rest = url.substr(std::string(scheme).size());
  if (rest.empty()) return bad("(it does not start with postgresql://)");
  if (rest.find_first_of("?#%") != std::string::npos || has_control_bytes(rest))
    return bad("without a query, percent-encoding or control characters");
  Address a;
  if (const auto at = rest.rfind('@'); at != std::string::npos) {
    a.username = rest.substr(0, at);
    if (a.username->find(':') != std::string::npos)
      return bad("without a password (give it as password)");
    rest = rest.substr(at + 1);
  }
  if (const auto slash = rest.find('/'); slash != std::string::npos) {
    a.dbname = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  std::string port;
  if (!rest.empty() && rest[0] == '[') {  // [IPv6]
    const auto close = rest.find(']');
    if (close == std::string::npos) return bad("(an IPv6 address ends with ])");
    a.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return bad("(a port follows the host after :)");
      port = rest.substr(close + 2);
    }
  } else if (const auto colon = rest.find(':'); colon != std::string::npos) {
    a.host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  } else {
    a.host = rest;
  }
  if (!port.empty() || rest.find(':') != std::string::npos) {
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos)
      return bad("(its port must be a number)");
    a.port = std::stoll(port);
  }
  if (a.host.empty()) return bad("(it names no host)");
  return a;
}

Value update_database_host(api::Call& c) {
  const std::string which = c.text("name", 64);
  std::optional<std::string> server, username, dbname;
  std::optional<int64_t> port;
  if (auto url = c.opt_text("url", kMaxHostName + 200)) {
    Address a = parse_url(*url);
    require_plain("host", a.host, kMaxHostName);
    server = a.host;
    if (a.port) require_port(*a.port);
    port = a.port;
    if (a.username) require_plain("username", *a.username, 63);
    username = a.username;
    if (a.dbname) require_plain("dbname", *a.dbname, 63);
    dbname = a.dbname;
  }
  std::optional<crypto::SecretBytes> password = password_arg(c);
  std::optional<std::string> region = c.opt_text("region", 64);
  if (region) require_plain("region", *region, 64);
  std::optional<Value> capacity;
  if (auto n = c.opt_integer("capacity")) capacity = capacity_value(*n);
  const bool test = c.opt_boolean("verify").value_or(true);
  Store& store = c.store;
  const Row row = find_host(store, "name", which);
  const std::string id = row.text("id");
  const std::string name = row.text("name");
  if (!server && !password && !region && !capacity)
    fail(Code::invalid_parameter, "name " + quote_value(which) +
                                      ": nothing to change (give url, password, region or "
                                      "capacity)");
  const bool address = (server && *server != row.text("host")) ||
                       (port && *port != row.integer("port")) ||
                       (dbname && *dbname != row.text("dbname"));
  const bool moved_region = region && *region != row.text("region");
  if (address || moved_region) {
    // A provisioned database's URL names this address, and its row this
    // region: neither may change under it.
    auto n = query_one(store,
                       "SELECT count(*) AS n FROM envdb.sys_environment_database WHERE host_id = "
                       "$1 AND dropped_at IS NULL AND (database_url IS NOT NULL OR $2 = 1)",
                       {id, int64_t{moved_region ? 1 : 0}});
    if (n && n->integer("n") > 0)
      fail(Code::conflict, std::string(moved_region ? "region" : "host") + ": database host " +
                               quote_value(name) + " holds " + std::to_string(n->integer("n")) +
                               (moved_region ? " live" : " provisioned") +
                               " environment database(s) whose " +
                               (moved_region ? "region" : "URL") +
                               " would no longer match; it can change once none is there");
  }
  if (password) (void)c.host.keyring().active_key();

  const bool connection = server || port || username || dbname || password;
  if (test && connection) {
    Server s = load_server(c.host, id);
    if (server) s.host = *server;
    if (port) s.port = *port;
    if (username) s.username = *username;
    if (dbname) s.dbname = *dbname;
    if (password) s.password.emplace(std::string(password->view()));
    verify(c.host, s);
  }
  Atomic tx(store);
  const std::string now = now_iso();
  Json changed = Json::object();
  // One statement per column; numbers cast (a NULL is bound as text).
  auto set = [&](const char* column, const char* cast, const Value& v, const Json& shown) {
    execute(store,
            std::string("UPDATE envdb.sys_database_host SET ") + column + " = $2" + cast +
                ", updated_at = $3::timestamptz WHERE id = $1",
            {id, v, now});
    changed[column] = shown;
  };
  if (server) set("host", "", *server, *server);
  if (port) set("port", "::bigint", *port, *port);
  if (username) set("username", "", *username, *username);
  if (dbname) set("dbname", "", *dbname, *dbname);
  if (region) set("region", "", *region, *region);
  if (capacity)
    set("capacity", "::bigint", *capacity,
        is_null(*capacity) ? Json(nullptr) : Json(std::get<int64_t>(*capacity)));
  if (password) {
    // Sealed again under the active key, bound to the same row.
    Keyring& keyring = c.host.keyring();
    execute(store,
            "UPDATE envdb.sys_database_host SET password_cipher = $2, kms_key_id = $3, "
            "updated_at = $4::timestamptz WHERE id = $1",
            {id, Blob{crypto::seal(keyring.active_key(), password->view(), host_aad(id))},
             keyring.active_id(), now});
    changed["password"] = "changed";
  }
  if (test && connection)
    execute(store,
            "UPDATE envdb.sys_database_host SET last_contact_at = $2::timestamptz WHERE id = $1",
            {id, now});
  audit::record(c.host,
                {"database_host.update", std::nullopt, std::nullopt, "database_host", id,
                 Json{{"name", name}, {"changed", changed}, {"verified", test && connection}}});
  Json out = host_json(find_host(store, "name", id));
  tx.done();
  return api::json_result(Json{{"host", out}});
}

Value drain_database_host(api::Call& c) {
  const std::string which = c.text("name", 64);
  const bool drained = c.opt_boolean("drained").value_or(true);
  Store& store = c.store;
  const Row row = find_host(store, "name", which);
  const std::string id = row.text("id");
  Atomic tx(store);
  if (row.boolean("drained") != drained) {
    execute(store,
            "UPDATE envdb.sys_database_host SET drained = $2, updated_at = $3::timestamptz WHERE "
            "id = $1",
            {id, drained, now_iso()});
    audit::record(c.host, {"database_host.drain", std::nullopt, std::nullopt, "database_host", id,
                           Json{{"name", row.text("name")}, {"drained", drained}}});
  }
  Json out = host_json(find_host(store, "name", id));
  tx.done();
  return api::json_result(Json{{"host", out}});
}

Value list_database_hosts(api::Call& c) {
  Json out = Json::array();
  for (const Row& r : query(c.store, host_select() + " ORDER BY h.name"))
    out.push_back(host_json(r));
  return api::json_result(out);
}

Value remove_database_host(api::Call& c) {
  const std::string which = c.text("name", 64);
  Store& store = c.store;
  const Row row = find_host(store, "name", which);
  const std::string id = row.text("id");
  const std::string name = row.text("name");
  if (const int64_t live = row.integer("live"); live > 0)
    fail(Code::conflict, "name: database host " + quote_value(name) + " still holds " +
                             std::to_string(live) +
                             " environment database(s) not dropped; it can be removed once "
                             "none lives there (archive and drop_environment_database them)");
  // A move's old copy waiting there for its drop (tenancy/move): the worker
  // still has to reach the host to drop it.
  for (const Row& j : query(store,
                            "SELECT payload FROM envdb.sys_provisioning_job WHERE kind = "
                            "'retire_database' AND status IN ('pending', 'running')")) {
    const Json p = Json::parse(j.opt_text("payload").value_or("{}"), nullptr, false);
    if (p.is_object() && p.contains("hostId") && p["hostId"] == id)
      fail(Code::conflict, "name: database host " + quote_value(name) +
                               " still holds the old copy of a moved database, dropped once its "
                               "drop grace has passed; it can be removed after that");
  }
  Atomic tx(store);
  Json out = host_json(row);
  // The dropped databases placed there keep their rows (rows are never
  // deleted) but no longer point at the host; the event keeps where they were.
  Json detached = Json::array();
  for (const Row& d : query(store,
                            "SELECT id FROM envdb.sys_environment_database WHERE host_id = $1 "
                            "ORDER BY id",
                            {id}))
    detached.push_back(d.text("id"));
  execute(store,
          "UPDATE envdb.sys_environment_database SET host_id = NULL, updated_at = "
          "$2::timestamptz WHERE host_id = $1",
          {id, now_iso()});
  execute(store, "DELETE FROM envdb.sys_database_host WHERE id = $1", {id});
  audit::record(c.host, {"database_host.remove", std::nullopt, std::nullopt, "database_host", id,
                         Json{{"name", name}, {"droppedDatabases", detached}}});
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
        {"dbname", T::text, "'postgres'"},
        {"capacity", T::integer, "NULL"},
        {"verify", T::boolean, "true"}},
       T::json,
       add_database_host,
       api::kWrites | api::kRequestForm,
       api::kAdmin,
       "register a Postgres server for postgres-driver databases of a region; unless verify is "
       "false it is tested first (a login as username that can create databases and roles) and "
       "refused with the field and the server's reason when the test fails; capacity caps its "
       "live databases (NULL or 0: no limit); the password is sealed under the keyring's active "
       "key and never returned"},
      {"list_database_hosts",
       {},
       T::json,
       list_database_hosts,
       0,
       api::kAdmin,
       "the registered Postgres servers with their load (live environment databases), capacity, "
       "drained flag and health (last successful contact, last failure); no secrets"},
      {"remove_database_host",
       {{"name", T::text, nullptr}},
       T::json,
       remove_database_host,
       api::kWrites,
       api::kAdmin,
       "unregister a Postgres server (by name or id) on which no environment database lives "
       "(dropped databases do not count)"},
      {"update_database_host",
       {{"name", T::text, nullptr},
        {"url", T::text, "NULL"},
        {"password", T::text, "NULL"},
        {"region", T::text, "NULL"},
        {"capacity", T::integer, "NULL"},
        {"verify", T::boolean, "true"}},
       T::json,
       update_database_host,
       api::kWrites | api::kRequestForm,
       api::kAdmin,
       "change a registered Postgres server (by name or id): what is given changes, NULL keeps "
       "it; url is postgresql://[username@]host[:port][/dbname] (what it leaves out is kept); a "
       "new connection (url or password) is tested first unless verify is false; a new "
       "password is sealed under the active key; capacity 0 removes the limit; the address and "
       "region cannot change under provisioned databases"},
      {"drain_database_host",
       {{"name", T::text, nullptr}, {"drained", T::boolean, "true"}},
       T::json,
       drain_database_host,
       api::kWrites,
       api::kAdmin,
       "stop (or, with drained false, resume) placing new environment databases on a "
       "registered Postgres server; what lives there stays"},
  };
}

}  // namespace envdb::postgres
