// The postgres driver's copies (postgres/copier): the names beside a
// database, the hand-over script, and the order of the steps on a server.
#include <gtest/gtest.h>

#include "core/errors.hpp"
#include "postgres/copier.hpp"

using namespace envdb;

namespace {

const char* const kEnv = "0190a000-0000-7000-8000-000000000001";
const char* const kOrg = "0190a000-0000-7000-8000-000000000002";

// Records the steps; `exists` names the databases the server has, and the
// first `busy` CREATE DATABASE statements fail as a template in use does.
class CopySession : public postgres::ServerSession {
 public:
  void exec(const std::string& sql) override { log.push_back("exec " + sql); }
  std::optional<std::string> query_value(const std::string& sql) override {
    log.push_back("query " + sql);
    for (const std::string& name : exists)
      if (sql.find("datname = '" + name + "'") != std::string::npos &&
          sql.find("datdba") != std::string::npos)
        return std::string("someone");
    if (sql.find("pg_database_size") != std::string::npos) return std::string("12345");
    return std::nullopt;
  }
  void exec_top_level(const std::string& sql) override {
    log.push_back("top " + sql);
    if (sql.rfind("CREATE DATABASE", 0) == 0 && busy > 0) {
      --busy;
      throw Error(Code::internal, "source database \"x\" is being accessed by other users");
    }
  }
  void exec_in_database(const std::string& db, const std::string& sql) override {
    log.push_back("in " + db + " " + sql.substr(0, 40));
  }
  std::string url(const std::string& db) override { return "postgresql://h:1/" + db; }

  // The index of the first step starting with `prefix`, -1 when none.
  int find(const std::string& prefix) const {
    for (size_t i = 0; i < log.size(); ++i)
      if (log[i].rfind(prefix, 0) == 0) return static_cast<int>(i);
    return -1;
  }
  // The index of the first step holding `part`, -1 when none.
  int find_holding(const std::string& part) const {
    for (size_t i = 0; i < log.size(); ++i)
      if (log[i].find(part) != std::string::npos) return static_cast<int>(i);
    return -1;
  }
  std::vector<std::string> log;
  std::vector<std::string> exists;
  int busy = 0;
};

postgres::CopyPlan plan(const std::string& kind) {
  postgres::CopyPlan p;
  p.kind = kind;
  p.target = "env-tgt";
  p.environment_id = kEnv;
  p.organization_id = kOrg;
  if (kind == "copy_database") p.source = "env-src";
  if (kind == "backup_database" || kind == "restore_database" || kind == "delete_backup")
    p.backup = "env-tgt_b_x";
  return p;
}

}  // namespace

TEST(Copier, NamesBesideADatabaseShareItsPrefixAndFit) {
  const std::string name = "env-abcdefghijklmnopqrstuvwxyz";  // what database_name_for makes
  for (const std::string& n :
       {postgres::temp_database_name(name), postgres::retired_database_name(name),
        postgres::backup_database_name(name, kEnv)}) {
    EXPECT_EQ(n.rfind(name + "_", 0), 0u) << n;
    EXPECT_LE(n.size(), 63u) << n;
  }
  EXPECT_NE(postgres::backup_database_name(name, kEnv), postgres::backup_database_name(name, kOrg));
  EXPECT_THROW(postgres::temp_database_name("Bad Name"), Error);
  EXPECT_THROW(postgres::backup_database_name(name, "not-an-id"), Error);
}

TEST(Copier, HandOverMapsEveryRoleOfTheSourceAndStampsTheTarget) {
  const std::string full = postgres::hand_over_sql("env-src", "env-tgt", kEnv, kOrg, false);
  for (const char* part :
       {"REASSIGN OWNED", "DROP OWNED", "aclexplode(c.relacl)", "aclexplode(t.attacl)",
        "pg_default_acl", "ALTER POLICY", "'env-src_readwrite' THEN 'env-tgt_readwrite'",
        "ELSE 'env-tgt_admin'", "starts_with(r.rolname, 'env-src_')", "sys_environment_info",
        "still owns or is granted"})
    EXPECT_NE(full.find(part), std::string::npos) << part;
  EXPECT_EQ(full.find("TRUNCATE"), std::string::npos);
  const std::string schema = postgres::hand_over_sql("env-src", "env-tgt", kEnv, kOrg, true);
  EXPECT_NE(schema.find("TRUNCATE"), std::string::npos);
  EXPECT_NE(schema.find("lo_unlink"), std::string::npos);
  // The setup worker's script limit (8 KiB).
  EXPECT_LT(schema.size(), 8000u);
  EXPECT_THROW(postgres::hand_over_sql("env-src", "env-src", kEnv, kOrg, false), Error);
  EXPECT_THROW(postgres::hand_over_sql("env-src", "env-tgt", "no id!", kOrg, false), Error);
}

TEST(Copier, ACopyClonesBesideHandsOverSwapsThenDropsTheOld) {
  CopySession s;
  s.exists = {"env-src", "env-tgt"};
  s.busy = 1;  // a session of the source slipped in once
  const auto out = postgres::carry_out_copy(plan("copy_database"), s);
  EXPECT_EQ(out.attempts, 2);
  const int leftovers = s.find("top DROP DATABASE IF EXISTS \"env-tgt_copy\"");
  const int clone = s.find(
      "top CREATE DATABASE \"env-tgt_copy\" OWNER \"env-tgt_owner\" TEMPLATE "
      "\"env-src\"");
  const int revoke = s.find("exec REVOKE ALL ON DATABASE \"env-tgt_copy\" FROM PUBLIC");
  const int hand = s.find("in env-tgt_copy DO");
  const int swap = s.find_holding("RENAME TO");
  ASSERT_GE(leftovers, 0);
  EXPECT_LT(leftovers, clone);
  EXPECT_LT(clone, revoke);
  EXPECT_LT(revoke, hand);
  EXPECT_LT(hand, swap);
  // Last: the old content, swapped out, dropped.
  EXPECT_EQ(s.log.back(), "top DROP DATABASE IF EXISTS \"env-tgt_old\" WITH (FORCE)");
  const std::string& swap_sql = s.log[static_cast<size_t>(swap)];
  EXPECT_NE(swap_sql.find("\"env-tgt\" RENAME TO \"env-tgt_old\""), std::string::npos) << swap_sql;
  EXPECT_NE(swap_sql.find("\"env-tgt_copy\" RENAME TO \"env-tgt\""), std::string::npos);
  EXPECT_NE(swap_sql.find("GRANT CONNECT, TEMPORARY ON DATABASE"), std::string::npos);
  // Each clone attempt ends the source's sessions first.
  int ended = 0;
  for (const auto& l : s.log)
    if (l.find("pg_terminate_backend") != std::string::npos &&
        l.find("'env-src'") != std::string::npos)
      ++ended;
  EXPECT_EQ(ended, 2);
}

TEST(Copier, KeptOldContentIsNamedForTheCallerAndDroppedOnlyBesideItsTarget) {
  CopySession s;
  s.exists = {"env-src", "env-tgt"};
  auto p = plan("copy_database");
  p.keep_retired = true;
  const auto out = postgres::carry_out_copy(p, s);
  ASSERT_TRUE(out.retired.has_value());
  EXPECT_EQ(*out.retired, "env-tgt_old");
  EXPECT_EQ(out.drop_ms, 0);
  // Swapped, not dropped: the swap is the last step (an earlier attempt's
  // old content is dropped before the clone, as always).
  const int swap = s.find_holding("RENAME TO");
  EXPECT_GE(swap, 0);
  EXPECT_LT(s.find("top DROP DATABASE IF EXISTS \"env-tgt_old\""), swap);
  EXPECT_EQ(static_cast<size_t>(swap), s.log.size() - 1) << s.log.back();

  // Dropped afterwards, only while the target is in place.
  CopySession after;
  after.exists = {"env-tgt", "env-tgt_old"};
  EXPECT_TRUE(postgres::drop_retired(after, "env-tgt"));
  EXPECT_EQ(after.log.back(), "top DROP DATABASE IF EXISTS \"env-tgt_old\" WITH (FORCE)");
  CopySession missing;
  missing.exists = {"env-tgt_old"};
  EXPECT_FALSE(postgres::drop_retired(missing, "env-tgt"));
  EXPECT_EQ(missing.find("top DROP"), -1);
  CopySession gone;
  gone.exists = {"env-tgt"};
  EXPECT_FALSE(postgres::drop_retired(gone, "env-tgt"));
  EXPECT_EQ(gone.find("top DROP"), -1);

  // What a crash left: this catalog's local databases, not while a job works on them.
  const std::string sql = postgres::retired_leftovers_sql();
  for (const char* part : {"d.database_name || '_old'", "d.host_id IS NULL", "'pending', 'running'",
                           "t.datname = d.database_name"})
    EXPECT_NE(sql.find(part), std::string::npos) << part;
}

TEST(Copier, AMissingSourceOrBackupIsNotFoundAndBadModesRefused) {
  CopySession s;
  s.exists = {"env-tgt"};
  try {
    postgres::carry_out_copy(plan("copy_database"), s);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::not_found);
  }
  EXPECT_EQ(s.find("top CREATE DATABASE"), -1);
  auto bad = plan("copy_database");
  bad.mode = "half";
  CopySession t;
  t.exists = {"env-src", "env-tgt"};
  EXPECT_THROW(postgres::carry_out_copy(bad, t), Error);
  EXPECT_EQ(t.find("top CREATE DATABASE"), -1);
}

TEST(Copier, BackupsAreNotConnectableAndRestoresKeepTheRoles) {
  CopySession s;
  s.exists = {"env-tgt"};
  const auto out = postgres::carry_out_copy(plan("backup_database"), s);
  ASSERT_TRUE(out.size_bytes.has_value());
  EXPECT_EQ(*out.size_bytes, 12345);
  EXPECT_GE(s.find("top CREATE DATABASE \"env-tgt_b_x\" OWNER \"env-tgt_owner\" TEMPLATE "
                   "\"env-tgt\""),
            0);
  EXPECT_GE(s.find("exec ALTER DATABASE \"env-tgt_b_x\" ALLOW_CONNECTIONS false"), 0);

  CopySession r;
  r.exists = {"env-tgt", "env-tgt_b_x"};
  postgres::carry_out_copy(plan("restore_database"), r);
  EXPECT_GE(r.find("top CREATE DATABASE \"env-tgt_copy\" OWNER \"env-tgt_owner\" TEMPLATE "
                   "\"env-tgt_b_x\""),
            0);
  EXPECT_EQ(r.find("in "), -1);  // the environment's own content: no hand-over
  EXPECT_GE(r.find_holding("RENAME TO"), 0);

  CopySession d;
  postgres::carry_out_copy(plan("delete_backup"), d);
  EXPECT_EQ(d.log.size(), 1u);
  EXPECT_EQ(d.log[0], "top DROP DATABASE IF EXISTS \"env-tgt_b_x\" WITH (FORCE)");
}

TEST(Copier, AResetBuildsAFreshDataPlaneBeside) {
  CopySession s;
  s.exists = {"env-tgt"};
  postgres::carry_out_copy(plan("reset_database"), s);
  const int create = s.find(
      "top CREATE DATABASE \"env-tgt_copy\" OWNER \"env-tgt_owner\" TEMPLATE "
      "template0");
  ASSERT_GE(create, 0);
  EXPECT_GT(s.find("in env-tgt_copy ALTER SCHEMA public OWNER"), create);
  EXPECT_GT(s.find_holding("RENAME TO"), create);
}

namespace {

// Records which template each clone named to create_from_template.
class GuardedSession : public CopySession {
 public:
  void create_from_template(const std::string& sql, const std::string& template_db) override {
    templates.push_back(template_db);
    exec_top_level(sql);
  }
  std::vector<std::string> templates;
};

}  // namespace

TEST(Copier, ClonesClearTheirTemplateWhileTheyRun) {
  // Every clone goes through create_from_template with its template, so the
  // host can end a session of it that slipped in before the statement's lock.
  GuardedSession copy;
  copy.exists = {"env-src"};
  postgres::carry_out_copy(plan("copy_database"), copy);
  GuardedSession backup;
  backup.exists = {"env-tgt"};
  postgres::carry_out_copy(plan("backup_database"), backup);
  EXPECT_EQ(copy.templates, std::vector<std::string>{"env-src"});
  EXPECT_EQ(backup.templates, std::vector<std::string>{"env-tgt"});

  const std::string sql = postgres::clear_template_sql("env-src", 4242);
  // Only while the creating backend holds its lock on that template, never
  // the creator or the caller itself.
  for (const char* part : {"pg_terminate_backend(a.pid)", "a.datname = 'env-src'", "a.pid <> 4242",
                           "a.pid <> pg_catalog.pg_backend_pid()", "l.pid = 4242",
                           "l.locktype = 'object'", "l.granted", "WHERE d.datname = 'env-src'"})
    EXPECT_NE(sql.find(part), std::string::npos) << part;
  EXPECT_NE(postgres::clear_template_sql("it's", 1).find("'it''s'"), std::string::npos);
}
