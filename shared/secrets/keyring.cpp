#include "secrets/keyring.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <vector>

#include "core/errors.hpp"

// POSIX leaves declaring environ to the program (glibc declares it only
// under _GNU_SOURCE, which g++ happens to define).
extern char** environ;  // NOLINT(readability-redundant-declaration)

namespace envdb {

using crypto::SecretBytes;

namespace {

// Far more than any real keyring. Reading into one fixed buffer means it never
// reallocates and leaves unwiped copies of key text on the heap.
constexpr size_t kMaxKeyringBytes = 1 << 20;

constexpr char kIdRule[] =
    "kms_key_id must be 1 to 128 letters, digits, '_', '.', ':' or '-', starting with a letter "
    "or digit";

bool is_valid_kms_key_id(std::string_view id) {
  auto alnum = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  };
  if (id.empty() || id.size() > 128 || !alnum(id[0])) return false;
  for (char c : id.substr(1)) {
    if (!alnum(c) && c != '_' && c != '.' && c != ':' && c != '-') return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\f\v";
  size_t first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

// Reads until end of file or until the buffer is full; -1 (with errno) on error.
ssize_t read_all(int fd, SecretBytes& buffer) {
  size_t n = 0;
  while (n < buffer.size()) {
    ssize_t got = ::read(fd, buffer.data() + n, buffer.size() - n);
    if (got == 0) break;
    if (got < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    n += static_cast<size_t>(got);
  }
  return static_cast<ssize_t>(n);
}

}  // namespace

void Keyring::add(const std::string& kms_key_id, SecretBytes key) {
  if (!is_valid_kms_key_id(kms_key_id)) fail(Code::invalid_parameter, kIdRule);
  if (key.size() != crypto::kKeySize) {
    fail(Code::invalid_parameter,
         "key must be exactly 32 bytes, got " + std::to_string(key.size()));
  }
  if (const SecretBytes* existing = find(kms_key_id)) {
    if (crypto::constant_time_equal(existing->view(), key.view())) return;
    fail(Code::conflict,
         "kms_key_id " + quote_value(kms_key_id) + " is already loaded with a different key");
  }
  keys_.emplace_back(kms_key_id, std::move(key));
}

void Keyring::use(const std::string& kms_key_id) {
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i].first == kms_key_id) {
      active_ = i;
      return;
    }
  }
  fail(Code::key_unavailable,
       "kms_key_id " + quote_value(kms_key_id) + " is not loaded in the keyring");
}

const std::string& Keyring::active_id() const {
  static const std::string kNone;
  return keys_.empty() ? kNone : keys_[active_].first;
}

const SecretBytes& Keyring::key(const std::string& kms_key_id) const {
  if (const SecretBytes* found = find(kms_key_id)) return *found;
  fail(Code::key_unavailable,
       "kms_key_id " + quote_value(kms_key_id) + " is not loaded in the keyring");
}

const SecretBytes& Keyring::active_key() const {
  if (keys_.empty()) fail(Code::key_unavailable, "no active key: the keyring is empty");
  return keys_[active_].second;
}

std::vector<std::string> Keyring::ids() const {
  std::vector<std::string> out;
  out.reserve(keys_.size());
  for (const auto& entry : keys_) out.push_back(entry.first);
  return out;
}

void Keyring::clear() {
  keys_.clear();
  active_ = 0;
}

const SecretBytes* Keyring::find(const std::string& kms_key_id) const {
  for (const auto& entry : keys_) {
    if (entry.first == kms_key_id) return &entry.second;
  }
  return nullptr;
}

Keyring Keyring::parse(std::string_view text, const std::string& source_name) {
  Keyring ring;
  size_t line_no = 0;
  for (size_t start = 0; start < text.size();) {
    size_t end = std::min(text.find('\n', start), text.size());
    std::string_view line = trim(text.substr(start, end - start));
    start = end + 1;
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    auto bad = [&](const std::string& what) {
      fail(Code::invalid_parameter, source_name + " line " + std::to_string(line_no) + ": " + what);
    };
    // A field is quoted only once it is a valid id: on a malformed line it may be key text.
    size_t gap = line.find_first_of(" \t");
    if (gap == std::string_view::npos) bad("expected '<kms_key_id> <base64 key>', found one field");
    std::string id(line.substr(0, gap));
    if (!is_valid_kms_key_id(id)) bad(kIdRule);
    if (ring.has(id)) bad("kms_key_id " + quote_value(id) + " is listed twice");
    std::optional<std::string> decoded = crypto::base64_decode(trim(line.substr(gap)));
    if (!decoded) bad("key is not a single valid base64 field");
    SecretBytes key(std::move(*decoded));
    if (key.size() != crypto::kKeySize) {
      bad("key must decode to exactly 32 bytes, got " + std::to_string(key.size()));
    }
    ring.add(id, std::move(key));
  }
  if (!ring.keys_.empty()) ring.active_ = ring.keys_.size() - 1;
  return ring;
}

Keyring Keyring::load_file(const std::string& path, bool refuse_group_or_world_readable) {
  const std::string where = "keyring file " + quote_value(path);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(Code::key_unavailable, "cannot open " + where + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  // fstat on the open descriptor checks the file actually read, not one swapped in later.
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    fail(Code::key_unavailable, "cannot stat " + where + ": " + std::strerror(errno));
  }
  if (refuse_group_or_world_readable && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    fail(Code::permission_denied, where + " must not be accessible by group or others (chmod 600)");
  }
  SecretBytes buffer(kMaxKeyringBytes + 1);
  ssize_t n = read_all(fd, buffer);
  if (n < 0) fail(Code::key_unavailable, "cannot read " + where + ": " + std::strerror(errno));
  if (static_cast<size_t>(n) > kMaxKeyringBytes) {
    fail(Code::key_unavailable, where + " is larger than 1 MiB");
  }
  return parse(buffer.view().substr(0, static_cast<size_t>(n)), where);
}

Keyring Keyring::from_command(const std::string& command) {
  // The command text is never put in a message: it may carry a KMS credential.
  // Nor is it put in an argument vector, which every user of the machine can
  // read (ps, /proc/<pid>/cmdline): /bin/sh gets a fixed script, and the
  // command arrives in its environment (/proc/<pid>/environ is readable by
  // the same user and root only), which the script unsets before it runs the
  // command, so the programs the command starts do not inherit it.
  static const char kScript[] =
      "c=$ENVDB_KEYRING_COMMAND; unset ENVDB_KEYRING_COMMAND; eval \"$c\"";
  SecretBytes buffer(kMaxKeyringBytes + 1);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0)
    fail(Code::key_unavailable,
         std::string("cannot run the keyring command: ") + std::strerror(errno));
  std::string assignment = "ENVDB_KEYRING_COMMAND=" + command;
  assignment.push_back('\0');
  SecretBytes variable(std::move(assignment));
  std::vector<char*> env;
  for (char** e = environ; e && *e; ++e)
    if (std::strncmp(*e, "ENVDB_KEYRING_COMMAND=", 22) != 0) env.push_back(*e);
  env.push_back(reinterpret_cast<char*>(variable.data()));
  env.push_back(nullptr);
  char sh[] = "sh", dash_c[] = "-c";
  std::string script(kScript);
  char* argv[] = {sh, dash_c, script.data(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, "/bin/sh", &actions, nullptr, argv, env.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (spawned != 0) {
    ::close(out[0]);
    fail(Code::key_unavailable,
         std::string("cannot run the keyring command: ") + std::strerror(spawned));
  }
  ssize_t n = read_all(out[0], buffer);
  int read_errno = errno;
  ::close(out[0]);  // a command still writing past 1 MiB gets SIGPIPE, not a wait forever
  int status = 0;
  pid_t waited;
  do {
    waited = ::waitpid(pid, &status, 0);
  } while (waited < 0 && errno == EINTR);
  if (n < 0) {
    fail(Code::key_unavailable,
         std::string("cannot read the keyring command's output: ") + std::strerror(read_errno));
  }
  if (static_cast<size_t>(n) > kMaxKeyringBytes) {
    fail(Code::key_unavailable, "the keyring command printed more than 1 MiB");
  }
  if (waited < 0) {
    fail(Code::key_unavailable,
         std::string("cannot collect the keyring command's exit status: ") + std::strerror(errno));
  }
  if (WIFSIGNALED(status)) {
    fail(Code::key_unavailable,
         "the keyring command was killed by signal " + std::to_string(WTERMSIG(status)));
  }
  if (WEXITSTATUS(status) != 0) {
    fail(Code::key_unavailable,
         "the keyring command exited with status " + std::to_string(WEXITSTATUS(status)));
  }
  return parse(buffer.view().substr(0, static_cast<size_t>(n)), "keyring command output");
}

}  // namespace envdb
