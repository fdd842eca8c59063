#include "catalog/settings.hpp"

#include <cstring>
#include <filesystem>

#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/function.hpp"

namespace envdb::settings {

namespace {

using T = api::Type;

struct Setting {
  const char* key;
  const char* sqlite_default;
  const char* postgres_default;
  bool seconds;  // a non-negative integer number of seconds
};

const Setting kSettings[] = {
    {"default_driver", "sqlite", "postgres", false},
    {"default_region", "default", "default", false},
    {"sqlite_data_dir", "envdb_environments", "envdb_environments", false},
    {"rotation_grace_seconds", "86400", "86400", true},
    {"credential_ttl_seconds", "0", "0", true},
    // check() calls a running job stale when it was claimed longer ago (0: never).
    {"job_claim_timeout_seconds", "3600", "3600", true},
    // drop_environment_database waits this long after the archive (0: no wait).
    {"drop_grace_seconds", "604800", "604800", true},
    // postgres driver: on which servers environment logins may connect only to
    // their own database (hosts: registered database hosts; all: the local
    // server too; off: never).
    {"restrict_server_connect", "hosts", "hosts", false},
    // reveal_credential where no audit event can be written (a hot standby):
    // refused unless this is on.
    {"allow_unaudited_reveal", "off", "off", false},
    // Backups kept per environment (tenancy/backups): the newest this many
    // ready ones (0: no limit), none older than this many seconds (0: no limit).
    {"backup_retention_count", "0", "0", true},
    {"backup_retention_seconds", "0", "0", true},
};

const Setting& find_setting(const std::string& key) {
  for (auto& s : kSettings)
    if (key == s.key) return s;
  std::string known;
  for (auto& s : kSettings) known += std::string(known.empty() ? "" : ", ") + s.key;
  fail(Code::invalid_parameter,
       "key " + quote_value(key) + " is not a setting (one of " + known + ")");
}

void validate(const Setting& s, const std::string& value) {
  if (s.seconds && std::strcmp(s.key, "backup_retention_count") == 0) {
    bool digits = !value.empty() && value.size() <= 12;
    for (char c : value) digits = digits && c >= '0' && c <= '9';
    if (!digits)
      fail(Code::invalid_parameter,
           "value for backup_retention_count must be a whole number of backups, got " +
               quote_value(value));
  } else if (s.seconds) {
    bool digits = !value.empty() && value.size() <= 12;
    for (char c : value) digits = digits && c >= '0' && c <= '9';
    if (!digits)
      fail(Code::invalid_parameter, std::string("value for ") + s.key +
                                        " must be a whole number of seconds, got " +
                                        quote_value(value));
  } else if (std::strcmp(s.key, "default_driver") == 0) {
    if (value != "sqlite" && value != "postgres" && value != "turso")
      fail(Code::invalid_parameter,
           "value for default_driver must be sqlite, postgres or turso, got " + quote_value(value));
  } else if (std::strcmp(s.key, "restrict_server_connect") == 0) {
    if (value != "hosts" && value != "all" && value != "off")
      fail(Code::invalid_parameter,
           "value for restrict_server_connect must be hosts, all or off, got " +
               quote_value(value));
  } else if (std::strcmp(s.key, "allow_unaudited_reveal") == 0) {
    if (value != "on" && value != "off")
      fail(Code::invalid_parameter,
           "value for allow_unaudited_reveal must be on or off, got " + quote_value(value));
  } else if (value.empty()) {
    fail(Code::invalid_parameter, std::string("value for ") + s.key + " must not be empty");
  }
}

Value config(api::Call& call) {
  const std::string key = call.text("key", 64);
  const Setting& s = find_setting(key);
  if (!call.given("value")) return setting(call.host, key);
  // A number of seconds may come as a number (better-sqlite3 binds 3600 as
  // REAL 3600.0); every other setting is text.
  const std::string value = s.seconds ? *call.opt_text_or_number("value", 4096)
                                      : call.text("value", 4096);
  validate(s, value);
  Atomic tx(call.store);
  execute(
      call.store,
      "INSERT INTO envdb.sys_config (key, value, updated_at) VALUES ($1, $2, $3::timestamptz) "
      "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
      {key, value, now_iso()});
  tx.done();
  return value;
}

}  // namespace

std::string setting(Host& host, const std::string& key) {
  const Setting& s = find_setting(key);
  auto row = query_one(host.store(), "SELECT value FROM envdb.sys_config WHERE key = $1", {key});
  if (row && row->opt_text("value")) return row->text("value");
  return std::strcmp(host.name(), "postgres") == 0 ? s.postgres_default : s.sqlite_default;
}

int64_t setting_seconds(Host& host, const std::string& key) {
  return std::stoll(setting(host, key));
}

std::string sqlite_data_dir(Host& host) {
  namespace fs = std::filesystem;
  const std::string value = setting(host, "sqlite_data_dir");
  fs::path dir(value);
  std::error_code ec;
  if (dir.is_relative()) {
    const auto control = host.control_database_path();
    if (control && !control->empty()) {
      const fs::path base = fs::absolute(fs::path(*control), ec).parent_path();
      if (!ec) return (base / dir).lexically_normal().string();
    }
  }
  dir = fs::absolute(dir, ec);
  if (ec)
    fail(Code::invalid_parameter,
         "sqlite_data_dir " + quote_value(value) + " cannot be resolved: " + ec.message());
  return dir.lexically_normal().string();
}

std::vector<api::Function> functions() {
  return {
      {"config",
       {{"key", T::text, nullptr}, {"value", T::text, "NULL"}},
       T::text,
       config,
       api::kWrites,
       api::kAdmin,
       "read a setting, or set it when a value is given"},
  };
}

}  // namespace envdb::settings
