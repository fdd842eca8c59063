#include "catalog/dataplane_template.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>

#include "catalog/dataplane.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/ids.hpp"

namespace envdb::dataplane_template {

namespace fs = std::filesystem;

namespace {

struct Image {
  int version = 0;
  std::string checksums;  // every migration's, in order
  std::string bytes;
  std::string fingerprint;
};

std::mutex image_mutex;
std::optional<Image> image;  // guarded by image_mutex

std::string current_checksums() {
  std::string out;
  for (const auto& m : dataplane::migrations()) out += dataplane::checksum(m) + ";";
  return out;
}

void remove_files(const std::string& path) {
  std::error_code ec;
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) fs::remove(path + suffix, ec);
}

std::optional<std::string> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return std::nullopt;
  return bytes;
}

// Builds the image in `path`, the new database's own temporary file, which
// then holds exactly the image's bytes; nullopt when it cannot (the caller
// removes the file and uses DDL, which reports any real problem itself).
std::optional<Image> build(Host& host, const std::string& path) {
  try {
    Image out;
    {
      auto store = open_unpublished(host, path);
      if (store->dialect() != Dialect::sqlite) return std::nullopt;
      dataplane::migrate_unstamped(*store);
      out.fingerprint = fingerprint(*store);
    }  // closed: the file is complete, no journal left
    auto bytes = read_all(path);
    // A SQLite database file starts with this header; anything else is not one.
    static const std::string kMagic("SQLite format 3\0", 16);
    if (!bytes || bytes->compare(0, kMagic.size(), kMagic) != 0) return std::nullopt;
    out.bytes = std::move(*bytes);
    out.version = dataplane::current_version();
    out.checksums = current_checksums();
    return out;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

enum class Written { ok, exists, failed };

Written write_new(const std::string& path, const std::string& bytes) {
  // O_EXCL: never over a file someone else put there (nor removed after).
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return errno == EEXIST ? Written::exists : Written::failed;
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return Written::failed;
    }
    done += static_cast<size_t>(n);
  }
  // No fsync here: the stamp's commit syncs this file (SQLite syncs the
  // database file at every commit, its journal kept in memory or not).
  return ::close(fd) == 0 ? Written::ok : Written::failed;
}

}  // namespace

std::unique_ptr<Store> open_unpublished(Host& host, const std::string& path) {
  auto store = host.open_database_file(path);
  // An in-memory journal still rolls a failed statement or transaction back;
  // the commit still syncs the database file. What it gives up (a file that
  // survives a crash in the middle of a commit) is moot for a file under a
  // temporary name: it is renamed into place only after its commit, and a
  // crash leaves it to check(), which deletes it. journal_mode = MEMORY is
  // the connection's, not the file's: the renamed file is an ordinary
  // rollback-journal database.
  if (store->dialect() == Dialect::sqlite) (void)query(*store, "PRAGMA journal_mode = MEMORY");
  return store;
}

std::string fingerprint(Store& store) {
  std::ostringstream out;
  for (const Row& r : query(store,
                            "SELECT type, name, tbl_name, sql FROM sqlite_master "
                            "ORDER BY type, name"))
    out << r.opt_text("type").value_or("") << '|' << r.opt_text("name").value_or("") << '|'
        << r.opt_text("tbl_name").value_or("") << '|' << r.opt_text("sql").value_or("") << '\n';
  for (const Row& r : query(store,
                            "SELECT version, checksum FROM envdb.sys_schema_migration "
                            "ORDER BY version"))
    out << "ledger|" << r.integer("version") << '|' << r.text("checksum") << '\n';
  // A template holds no identity stamp.
  out << "stamps|"
      << query_one(store, "SELECT count(*) AS n FROM envdb.sys_environment_info")->integer("n")
      << '\n';
  return out.str();
}

bool create(Host& host, const std::string& path, const std::string& environment_id,
            const std::optional<std::string>& organization_id,
            const std::optional<std::string>& database_name) {
  Image use;
  bool have = false;
  {
    std::lock_guard<std::mutex> lock(image_mutex);
    // An image of another data-plane version (a library reloaded with other
    // migrations) is not this build's.
    if (image &&
        (image->version != dataplane::current_version() || image->checksums != current_checksums()))
      image.reset();
    if (image) {
      use = *image;
      have = true;
    }
  }
  if (have) {
    switch (write_new(path, use.bytes)) {
      case Written::ok: break;
      case Written::exists: return false;
      case Written::failed: remove_files(path); return false;
    }
  } else {
    std::error_code ec;
    if (fs::exists(path, ec)) return false;  // never over someone else's file
    auto built = build(host, path);
    if (!built) {
      remove_files(path);
      return false;
    }
    use = *built;
    std::lock_guard<std::mutex> lock(image_mutex);
    image = std::move(built);
  }
  try {
    auto store = open_unpublished(host, path);
    Atomic tx(*store, "envdb_template");
    if (fingerprint(*store) != use.fingerprint)
      throw Error(Code::schema_mismatch, "the template image does not match its fingerprint");
    dataplane::initialize(*store, environment_id, organization_id, database_name);
    execute(*store, "UPDATE envdb.sys_schema_migration SET applied_at = $1::timestamptz",
            {now_iso()});
    tx.done();
  } catch (const std::exception&) {
    // A damaged image, or a file that could not take it: forget the image;
    // this database is built by DDL, which reports a real problem itself.
    remove_files(path);
    std::lock_guard<std::mutex> lock(image_mutex);
    image.reset();
    return false;
  }
  return true;
}

void forget() {
  std::lock_guard<std::mutex> lock(image_mutex);
  image.reset();
}

bool damage_for_test(const std::string& text) {
  std::lock_guard<std::mutex> lock(image_mutex);
  if (!image) return false;
  const size_t at = image->bytes.find(text);
  if (at == std::string::npos) return false;
  image->bytes[at] = image->bytes[at] == 'X' ? 'Y' : 'X';
  return true;
}

bool held() {
  std::lock_guard<std::mutex> lock(image_mutex);
  return image.has_value();
}

}  // namespace envdb::dataplane_template
