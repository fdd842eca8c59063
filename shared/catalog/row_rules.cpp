#include "catalog/row_rules.hpp"

#include <filesystem>

#include "catalog/settings.hpp"
#include "core/errors.hpp"

namespace envdb::row_rules {

namespace fs = std::filesystem;

namespace {

bool alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

[[noreturn]] void refuse(const std::string& database_id, const std::string& sentence) {
  fail(Code::schema_mismatch, "sys_environment_database row " + quote_value(database_id) + ": " +
                                  sentence + "; envdb does not act on it (check() reports it)");
}

}  // namespace

bool is_generated_database_name(const std::string& name) {
  if (name.size() != 30 || name.compare(0, 4, "env-") != 0) return false;
  for (size_t i = 4; i < name.size(); ++i) {
    const char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'))) return false;
  }
  return true;
}

bool is_legacy_database_name(const std::string& name) {
  if (name.empty() || name.size() > 255 || !alnum(name[0])) return false;
  for (char c : name)
    if (!alnum(c) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

std::optional<std::string> database_problem(const std::string& driver, const std::string& name,
                                            const std::optional<std::string>& url) {
  const bool ok_name = is_generated_database_name(name) ||
                       (driver == "turso" && is_legacy_database_name(name));
  if (!ok_name)
    return "database_name " + quote_value(name) + " is not a name envdb makes (env- and 26 " +
           "characters a-z2-7" +
           (driver == "turso" ? ", or a v4 name of letters, digits, ._-" : "") + ")";
  if (driver != "sqlite" || !url) return std::nullopt;
  const std::string suffix = "/" + name + ".db";
  bool ok_url = url->size() > 5 + suffix.size() && url->compare(0, 6, "file:/") == 0 &&
                url->compare(url->size() - suffix.size(), suffix.size(), suffix) == 0;
  if (ok_url) {
    const fs::path path(url->substr(5));
    for (const auto& part : path) ok_url = ok_url && part != "." && part != "..";
    for (unsigned char c : *url) ok_url = ok_url && c >= 0x20 && c != 0x7f;
  }
  if (!ok_url)
    return "database_url " + quote_value(*url) +
           " is not the file: URL of a sqlite database named " + quote_value(name) +
           " (file:<sqlite_data_dir>/" + name + ".db)";
  return std::nullopt;
}

void require_database(const std::string& database_id, const std::string& driver,
                      const std::string& name, const std::optional<std::string>& url) {
  if (auto problem = database_problem(driver, name, url)) refuse(database_id, *problem);
}

void require_database(const Row& row) {
  require_database(row.text("id"), row.text("driver"), row.text("database_name"),
                   row.opt_text("database_url"));
}

std::string sqlite_file(Host& host, const std::string& database_name,
                        const std::optional<std::string>& database_url) {
  if (!is_generated_database_name(database_name))
    fail(Code::schema_mismatch, "database_name " + quote_value(database_name) +
                                    " is not a name envdb makes (env- and 26 characters a-z2-7); "
                                    "envdb derives no file from it (check() reports the row)");
  // Absolute (a relative setting is resolved against the control database's
  // directory), then with its symlinks resolved.
  const std::string setting = settings::sqlite_data_dir(host);
  std::error_code ec;
  fs::path dir = fs::weakly_canonical(fs::path(setting), ec);
  if (ec)
    fail(Code::invalid_parameter,
         "sqlite_data_dir " + quote_value(setting) + " cannot be resolved: " + ec.message());
  const fs::path file = dir / (database_name + ".db");
  // The name holds no '/' or '..', so only a symlink can lead out: the file
  // and SQLite's files beside it must be plain files (or absent).
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) {
    const fs::path p = file.string() + suffix;
    const fs::file_status st = fs::symlink_status(p, ec);
    if (fs::is_symlink(st))
      fail(Code::schema_mismatch, "the file " + quote_value(p.string()) + " of database " +
                                      quote_value(database_name) +
                                      " is a symlink, which may lead out of sqlite_data_dir; envdb "
                                      "does not act on it (check() reports the row)");
  }
  if (database_url) {
    const bool is_file_url = database_url->compare(0, 5, "file:") == 0 && database_url->size() > 5;
    fs::path named;
    if (is_file_url) named = fs::weakly_canonical(fs::path(database_url->substr(5)), ec);
    if (!is_file_url || ec || named != file)
      fail(Code::schema_mismatch,
           "database_url " + quote_value(*database_url) + " of database " +
               quote_value(database_name) + " does not name its file " +
               quote_value(file.string()) +
               " inside sqlite_data_dir; envdb does not act on it (check() reports the row)");
  }
  return file.string();
}

}  // namespace envdb::row_rules
