#include "postgres/mover.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <sstream>

#include "core/errors.hpp"

namespace envdb::postgres {

namespace {

std::string move_ident(const std::string& name) { return quote_identifier(name); }

// A conninfo value: single-quoted, with \ and ' escaped.
std::string conninfo_value(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  return out + "'";
}

// One program of the stream: spawned with its own environment, its stderr
// into a file of its own (read back for the error).
class Program {
 public:
  Program(std::string what, std::string path) : what_(std::move(what)), path_(std::move(path)) {
    char name[] = "/tmp/envdb-move-XXXXXX";
    err_fd_ = ::mkostemp(name, O_CLOEXEC);
    if (err_fd_ < 0)
      throw Error(Code::internal,
                  "cannot make a file for the errors of " + what_ + ": " + std::strerror(errno));
    ::unlink(name);  // read back through the descriptor only
  }
  ~Program() {
    stop();
    if (err_fd_ >= 0) ::close(err_fd_);
  }

  // stdin/stdout: descriptors for the child (-1: /dev/null).
  void start(const std::vector<std::string>& args, int in_fd, int out_fd,
             const std::optional<crypto::SecretBytes>& password) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in_fd >= 0)
      posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    else
      posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (out_fd >= 0)
      posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    else
      posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, err_fd_, 2);
    // The environment is the program's own: no variable of the server's
    // (a PGPASSFILE, a PGSERVICE...) steers it, and the password is here only.
    std::vector<std::string> env = {"LC_ALL=C", "PGCONNECT_TIMEOUT=10", "PGAPPNAME=envdb move",
                                    "PGSSLMODE=prefer"};
    std::string secret;
    if (password && !password->empty()) secret = "PGPASSWORD=" + std::string(password->view());
    std::vector<char*> argv, envp;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (std::string& e : env) envp.push_back(e.data());
    if (!secret.empty()) envp.push_back(secret.data());
    envp.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, path_.c_str(), &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    std::fill(secret.begin(), secret.end(), '\0');
    if (rc != 0) {
      pid_ = -1;
      throw Error(Code::internal,
                  "cannot start " + path_ + " (the server's " + what_ + "): " + std::strerror(rc));
    }
  }

  // Whether it has ended (its status kept).
  bool done() {
    if (pid_ < 0) return true;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == 0) return false;
    status_ = r == pid_ ? status : -1;
    pid_ = -1;
    return true;
  }
  bool ok() const { return status_ == 0; }

  void stop() noexcept {
    if (pid_ < 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    (void)::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // "pg_dump failed (exit 1): <its last line>".
  std::string failure() const {
    std::string why = WIFEXITED(status_)     ? "exit " + std::to_string(WEXITSTATUS(status_))
                      : WIFSIGNALED(status_) ? "signal " + std::to_string(WTERMSIG(status_))
                                             : "unknown status";
    std::string text;
    if (err_fd_ >= 0 && ::lseek(err_fd_, 0, SEEK_SET) == 0) {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(err_fd_, buf, sizeof buf)) > 0 && text.size() < (1u << 20))
        text.append(buf, static_cast<size_t>(n));
    }
    // The first error line it wrote says what went wrong.
    std::string line;
    std::istringstream lines(text);
    for (std::string l; std::getline(lines, l);) {
      if (l.find("error:") != std::string::npos) {
        line = l;
        break;
      }
      if (line.empty() && !l.empty()) line = l;
    }
    return what_ + " failed (" + why + ")" + (line.empty() ? "" : ": " + line.substr(0, 500));
  }

 private:
  std::string what_, path_;
  int err_fd_ = -1;
  pid_t pid_ = -1;
  int status_ = -1;
};

std::string move_literal(const std::string& s) { return quote_literal(s); }

}  // namespace

Endpoint endpoint_of(const Server& server) {
  Endpoint e;
  e.host = server.host;
  e.port = server.port;
  e.user = server.username;
  if (server.password) e.password.emplace(server.password->view());
  return e;
}

std::string conninfo(const Endpoint& e, const std::string& dbname) {
  return "host=" + conninfo_value(e.host) + " port=" + std::to_string(e.port) +
         " user=" + conninfo_value(e.user) + " dbname=" + conninfo_value(dbname);
}

void stream_database(const std::string& bindir, const Endpoint& source, const Endpoint& target,
                     const std::string& dbname, const std::function<void()>& pause) {
  (void)roles_for(dbname);  // an environment database's name, nothing else
  Program dump("pg_dump", bindir + "/pg_dump");
  Program restore("pg_restore", bindir + "/pg_restore");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw Error(Code::internal, std::string("cannot make a pipe: ") + std::strerror(errno));
  try {
    dump.start({"pg_dump", "--format=custom", "--no-owner", "--compress=0",
                "--dbname=" + conninfo(source, dbname)},
               -1, fds[1], source.password);
    ::close(fds[1]);
    fds[1] = -1;
    restore.start({"pg_restore", "--no-owner", "--exit-on-error", "--single-transaction",
                   "--dbname=" + conninfo(target, dbname)},
                  fds[0], -1, target.password);
    ::close(fds[0]);
    fds[0] = -1;
    bool dumped = false, restored = false;
    while (!(dumped && restored)) {
      if (!dumped && dump.done()) {
        dumped = true;
        // A dump that failed: the restore reads a truncated archive, stop it.
        if (!dump.ok()) restore.stop();
      }
      if (!restored && restore.done()) {
        restored = true;
        if (!restore.ok()) dump.stop();
      }
      if (!(dumped && restored) && pause) pause();
    }
    if (!dump.ok()) throw Error(Code::internal, "moving " + dbname + ": " + dump.failure());
    if (!restore.ok()) throw Error(Code::internal, "moving " + dbname + ": " + restore.failure());
  } catch (...) {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
    throw;
  }
}

std::string hand_over_moved_sql(const std::string& database_name) {
  const Roles r = roles_for(database_name);
  const std::string admin = move_ident(r.admin);
  // Objects of the environment's own schemas: not envdb's, not the system's,
  // not an extension's.
  const std::string own =
      "n.nspname NOT IN ('envdb', 'pg_catalog', 'information_schema') AND n.nspname !~ "
      "'^pg_(toast|temp)'";
  const std::string not_ext = [](const char* catalog, const char* oid) {
    return std::string("NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = '") + catalog +
           "'::regclass AND d.objid = " + oid + " AND d.deptype = 'e')";
  }("pg_class", "c.oid");
  std::string body =
      "DECLARE it record; me oid := (SELECT oid FROM pg_roles WHERE rolname = current_user);\n"
      "BEGIN\n"
      "  SET LOCAL search_path = pg_catalog, pg_temp;\n"
      "  EXECUTE 'ALTER SCHEMA public OWNER TO ' || " +
      move_literal(admin) +
      ";\n"
      "  FOR it IN SELECT n.nspname FROM pg_namespace n WHERE n.nspowner = me AND " +
      own +
      " AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND "
      "d.objid = n.oid AND d.deptype = 'e') LOOP\n"
      "    EXECUTE format('ALTER SCHEMA %I OWNER TO %s', it.nspname, " +
      move_literal(admin) +
      ");\n  END LOOP;\n"
      // A sequence a table owns (serial, identity) follows its table.
      "  FOR it IN SELECT c.oid::regclass::text AS s, CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN "
      "'m' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE "
      "'TABLE' END AS k FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
      "c.relowner = me AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND " +
      own + " AND " + not_ext +
      " AND NOT (c.relkind = 'S' AND EXISTS (SELECT FROM pg_depend d WHERE d.classid = "
      "'pg_class'::regclass AND d.objid = c.oid AND d.refobjsubid > 0 AND d.deptype IN ('a', "
      "'i'))) LOOP\n"
      "    EXECUTE format('ALTER %s %s OWNER TO %s', it.k, it.s, " +
      move_literal(admin) +
      ");\n  END LOOP;\n"
      "  FOR it IN SELECT p.oid::regprocedure::text AS s FROM pg_proc p JOIN pg_namespace n ON "
      "n.oid = p.pronamespace WHERE p.proowner = me AND " +
      own +
      " AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND "
      "d.objid = p.oid AND d.deptype = 'e') LOOP\n"
      "    EXECUTE format('ALTER ROUTINE %s OWNER TO %s', it.s, " +
      move_literal(admin) +
      ");\n  END LOOP;\n"
      // Types of their own (a table's row type and array types follow it).
      "  FOR it IN SELECT t.oid::regtype::text AS s FROM pg_type t JOIN pg_namespace n ON n.oid "
      "= t.typnamespace WHERE t.typowner = me AND " +
      own +
      " AND t.typtype IN ('b', 'c', 'd', 'e', 'r') AND t.typelem = 0 AND (t.typrelid = 0 OR "
      "(SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c') AND NOT EXISTS (SELECT FROM "
      "pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = "
      "'e') LOOP\n"
      "    EXECUTE format('ALTER TYPE %s OWNER TO %s', it.s, " +
      move_literal(admin) +
      ");\n  END LOOP;\n"
      "  FOR it IN SELECT oid FROM pg_largeobject_metadata WHERE lomowner = me LOOP\n"
      "    EXECUTE format('ALTER LARGE OBJECT %s OWNER TO %s', it.oid, " +
      move_literal(admin) +
      ");\n  END LOOP;\n"
      // No other role of either server holds anything here: only the
      // database's own roles, envdb's purpose roles, and the restoring user
      // (envdb's own schema, as provisioning leaves it).
      "  IF EXISTS (SELECT FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid WHERE "
      "d.refclassid = 'pg_authid'::regclass AND d.dbid = (SELECT oid FROM pg_database WHERE "
      "datname = current_database()) AND r.oid <> me AND NOT pg_catalog.starts_with(r.rolname, " +
      move_literal(database_name + "_") +
      ") AND r.rolname NOT IN ('envdb_admin', 'envdb_router', 'envdb_reader', 'envdb_auth')) "
      "THEN\n"
      "    RAISE EXCEPTION 'a role that is not the environment''s owns or is granted something "
      "in the moved database';\n  END IF;\nEND";
  return "DO " + dollar_quote(body) + " LANGUAGE plpgsql";
}

std::string carry_out_move(const MovePlan& p, ServerSession& source, ServerSession& target,
                           const std::function<void()>& stream,
                           const std::function<void(const std::string&)>& progress) {
  auto step = [&](const std::string& what) {
    if (progress) progress(what);
  };
  const Roles r = roles_for(p.database_name);
  const std::string db = move_ident(p.database_name);
  if (!source.query_value(database_owner_sql(p.database_name)))
    fail(Code::not_found,
         "database " + quote_value(p.database_name) + " is not on the server it moves from");
  // Two registrations of one server (the local server registered as a host
  // too): the target's database is the source's, which step 1 would drop.
  const std::string system_id =
      "SELECT system_identifier::text FROM pg_catalog.pg_control_system()";
  const auto source_id = source.query_value(system_id);
  if (source_id && source_id == target.query_value(system_id))
    fail(Code::conflict,
         "host_id: the target is the server the database is on (system identifier " + *source_id +
             "), registered under another name; nothing was changed");
  step("creating the database on the target");
  for (const std::string& sql : ensure_roles_sql(r)) target.exec(sql);
  // What an earlier attempt left there (the catalog still names the source,
  // so nothing on the target is in use).
  target.exec_top_level("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
  try {
    target.exec_top_level(create_database_sql(p.database_name, r));
    target.exec("REVOKE ALL ON DATABASE " + db + " FROM PUBLIC");
    step("closing the source");
    for (const Login& l : p.logins) source.exec(disable_login_sql(l.name));
    (void)source.query_value(
        "SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity "
        "WHERE datname = " +
        move_literal(p.database_name) + " AND pid <> pg_catalog.pg_backend_pid()");
    step("streaming the content");
    stream();
    step("handing the content to the database's roles");
    target.exec_in_database(p.database_name, hand_over_moved_sql(p.database_name));
    for (const std::string& sql : database_grants_sql(p.database_name, r)) target.exec(sql);
    target.exec(
        "DO $g$ BEGIN IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'envdb_auth') "
        "THEN EXECUTE " +
        move_literal("GRANT CONNECT ON DATABASE " + db + " TO envdb_auth") + "; END IF; END $g$");
    if (p.restrict_connect) target.exec(restrict_connect_sql(p.database_name));
    step("creating the logins on the target");
    for (const Login& l : p.logins)
      if (l.live) target.exec(ensure_login_sql(l, r));
  } catch (const Error&) {
    // The source is untouched but for its closed logins (the next
    // convergence opens them again once the environment leaves maintenance).
    try {
      target.exec_top_level("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    } catch (const Error&) {
    }
    throw;
  }
  return target.url(p.database_name);
}

}  // namespace envdb::postgres
