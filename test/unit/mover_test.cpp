// The postgres driver's move between servers (postgres/mover): the programs'
// connection strings and environment (a password only in the environment),
// a failing program's message, and the order of the steps on both servers.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/errors.hpp"
#include "postgres/mover.hpp"

using namespace envdb;

namespace {

const char* const kDb = "env-aaaaaaaaaaaaaaaaaaaaaaaaaa";

class MoveSession : public postgres::ServerSession {
 public:
  MoveSession(std::string who, std::vector<std::string>& log, std::string system_id)
      : who_(std::move(who)), log_(log), system_id_(std::move(system_id)) {}
  void exec(const std::string& sql) override {
    log_.push_back(who_ + " exec " + sql.substr(0, 60));
  }
  std::optional<std::string> query_value(const std::string& sql) override {
    if (sql.find("pg_control_system") != std::string::npos) return system_id_;
    log_.push_back(who_ + " query " + sql.substr(0, 60));
    if (sql.find("datdba") != std::string::npos) return std::string("owner");
    return std::nullopt;
  }
  void exec_top_level(const std::string& sql) override {
    log_.push_back(who_ + " top " + sql.substr(0, 60));
  }
  void exec_in_database(const std::string& db, const std::string& sql) override {
    log_.push_back(who_ + " in " + db + " " + sql.substr(0, 10));
  }
  std::string url(const std::string& db) override { return "postgresql://" + who_ + ":1/" + db; }

 private:
  std::string who_;
  std::vector<std::string>& log_;
  std::string system_id_;
};

bool any_starts(const std::vector<std::string>& log, const std::string& prefix) {
  for (const auto& l : log)
    if (l.rfind(prefix, 0) == 0) return true;
  return false;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A directory of stand-ins for pg_dump and pg_restore (shell builtins and
// absolute paths only: the programs get no PATH).
class FakeBin {
 public:
  FakeBin() {
    char tmpl[] = "/tmp/envdb-mover-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  ~FakeBin() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void program(const std::string& name, const std::string& body) {
    const auto path = dir_ / name;
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    ::chmod(path.c_str(), 0700);
  }
  std::string dir() const { return dir_.string(); }
  std::filesystem::path operator/(const std::string& f) const { return dir_ / f; }

 private:
  std::filesystem::path dir_;
};

postgres::Endpoint endpoint(const std::string& host, const char* password) {
  postgres::Endpoint e;
  e.host = host;
  e.port = 5433;
  e.user = "post'gres";
  if (password) e.password.emplace(std::string_view(password));
  return e;
}

}  // namespace

TEST(Mover, ConninfoQuotesValuesAndNeverHoldsAPassword) {
  const auto e = endpoint("a b\\c", "hunter2");
  const std::string c = postgres::conninfo(e, kDb);
  EXPECT_EQ(c, "host='a b\\\\c' port=5433 user='post\\'gres' dbname='" + std::string(kDb) + "'");
  EXPECT_EQ(c.find("hunter2"), std::string::npos);
  EXPECT_EQ(c.find("password"), std::string::npos);
}

TEST(Mover, PasswordsReachTheProgramsOnlyThroughTheirEnvironment) {
  FakeBin bin;
  bin.program("pg_dump", "printf '%s\\n' \"$@\" > " + (bin / "dump.args").string() +
                             "\nexport -p > " + (bin / "dump.env").string() + "\necho archive");
  bin.program("pg_restore", "printf '%s\\n' \"$@\" > " + (bin / "restore.args").string() +
                                "\nexport -p > " + (bin / "restore.env").string() +
                                "\n/bin/cat > " + (bin / "restore.in").string());
  postgres::stream_database(bin.dir(), endpoint("src", "source-secret"),
                            endpoint("dst", "target-secret"), kDb, [] { ::usleep(1000); });
  const std::string dump_args = slurp(bin / "dump.args"),
                    restore_args = slurp(bin / "restore.args");
  for (const std::string& args : {dump_args, restore_args}) {
    EXPECT_EQ(args.find("source-secret"), std::string::npos) << args;
    EXPECT_EQ(args.find("target-secret"), std::string::npos) << args;
    EXPECT_NE(args.find("--no-owner"), std::string::npos) << args;
  }
  EXPECT_NE(dump_args.find("host='src'"), std::string::npos) << dump_args;
  EXPECT_NE(restore_args.find("host='dst'"), std::string::npos) << restore_args;
  EXPECT_NE(restore_args.find("--exit-on-error"), std::string::npos);
  const std::string dump_env = slurp(bin / "dump.env"), restore_env = slurp(bin / "restore.env");
  EXPECT_NE(dump_env.find("PGPASSWORD='source-secret'"), std::string::npos) << dump_env;
  EXPECT_EQ(dump_env.find("target-secret"), std::string::npos);
  EXPECT_NE(restore_env.find("PGPASSWORD='target-secret'"), std::string::npos) << restore_env;
  EXPECT_EQ(restore_env.find("source-secret"), std::string::npos);
  // The dump's output is the restore's input.
  EXPECT_EQ(slurp(bin / "restore.in"), "archive\n");
}

TEST(Mover, AFailingProgramIsNamedWithItsErrorLineAndStopsTheOther) {
  FakeBin bin;
  bin.program("pg_dump", "echo 'pg_dump: error: connection to server failed' >&2\nexit 1");
  bin.program("pg_restore", "/bin/cat > /dev/null\nexit 0");
  try {
    postgres::stream_database(bin.dir(), endpoint("src", "pw1"), endpoint("dst", "pw2"), kDb,
                              [] { ::usleep(1000); });
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("pg_dump failed (exit 1): pg_dump: error: connection to server failed"),
              std::string::npos)
        << what;
    EXPECT_EQ(what.find("pw1"), std::string::npos);
  }
  // A restore that fails stops a dump that would write forever.
  bin.program("pg_dump", "while :; do echo x; done");
  bin.program("pg_restore", "echo 'pg_restore: error: could not execute query' >&2\nexit 1");
  EXPECT_THROW(postgres::stream_database(bin.dir(), endpoint("src", nullptr),
                                         endpoint("dst", nullptr), kDb, [] { ::usleep(1000); }),
               Error);
  // Only an environment database's name is streamed.
  EXPECT_THROW(postgres::stream_database(bin.dir(), endpoint("src", nullptr),
                                         endpoint("dst", nullptr), "postgres; drop", nullptr),
               Error);
}

TEST(Mover, StepsRunInOrderOnBothServers) {
  std::vector<std::string> log;
  MoveSession source("src", log, "111"), target("dst", log, "222");
  postgres::MovePlan plan{kDb, {}, false};
  postgres::Login live;
  live.name = std::string(kDb) + "_a_x";
  live.scope = "admin";
  live.live = true;
  live.verifier = "SCRAM-SHA-256$4096:x$y:z";
  plan.logins.push_back(live);
  bool streamed = false;
  const std::string url = postgres::carry_out_move(
      plan, source, target, [&] { streamed = (log.push_back("stream"), true); }, nullptr);
  EXPECT_TRUE(streamed);
  EXPECT_EQ(url, std::string("postgresql://dst:1/") + kDb);
  auto at = [&](const std::string& prefix) {
    for (size_t i = 0; i < log.size(); ++i)
      if (log[i].rfind(prefix, 0) == 0) return i;
    return log.size();
  };
  EXPECT_LT(at("dst top DROP DATABASE IF EXISTS"), at("dst top CREATE DATABASE"));
  EXPECT_LT(at("dst top CREATE DATABASE"), at("src exec"));  // the source closed after
  EXPECT_LT(at("src exec"), at("stream"));
  EXPECT_LT(at("stream"), at(std::string("dst in ") + kDb + " DO"));
  EXPECT_LT(at(std::string("dst in ") + kDb + " DO"), log.size());
  // The source's database is never dropped or changed, only closed.
  EXPECT_FALSE(any_starts(log, "src top"));
}

TEST(Mover, TheSameServerUnderTwoNamesIsRefusedBeforeAnythingChanges) {
  std::vector<std::string> log;
  MoveSession source("src", log, "777"), target("dst", log, "777");
  postgres::MovePlan plan{kDb, {}, false};
  try {
    postgres::carry_out_move(
        plan, source, target, [] {}, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::conflict);
  }
  EXPECT_FALSE(any_starts(log, "dst top"));
  EXPECT_FALSE(any_starts(log, "dst exec"));
}

TEST(Mover, AFailedStreamDropsWhatWasBuiltOnTheTarget) {
  std::vector<std::string> log;
  MoveSession source("src", log, "1"), target("dst", log, "2");
  postgres::MovePlan plan{kDb, {}, false};
  EXPECT_THROW(postgres::carry_out_move(
                   plan, source, target, [] { throw Error(Code::internal, "pg_restore failed"); },
                   nullptr),
               Error);
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back().rfind("dst top DROP DATABASE IF EXISTS", 0), 0u) << log.back();
}

TEST(Mover, TheHandOverChecksForForeignRoles) {
  const std::string sql = postgres::hand_over_moved_sql(kDb);
  EXPECT_NE(sql.find("ALTER SCHEMA public OWNER TO"), std::string::npos);
  EXPECT_NE(sql.find("pg_shdepend"), std::string::npos);
  EXPECT_NE(sql.find(std::string("\"") + kDb + "_admin\""), std::string::npos);
  EXPECT_THROW(postgres::hand_over_moved_sql("Robert'); drop table x; --"), Error);
}
