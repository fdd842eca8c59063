// login_verifier's row in the function table (a pooler's auth_query calls it in
// an environment database: Postgres only, envdb_auth only), and the grants the
// postgres driver gives inside each database it creates. The lookup itself
// reads pg_authid and is tested against a server (test/pg/test_pgbouncer.py).
#include <gtest/gtest.h>

#include <string>

#include "postgres/statements.hpp"
#include "surface/api.hpp"

namespace envdb {
namespace {

TEST(LoginLookup, RowIsDataPlanePostgresOnlyForEnvdbAuthAlone) {
  const api::Function* f = api::find("login_verifier");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->flags, api::kDataPlane | api::kPostgresOnly);
  EXPECT_EQ(f->roles, api::kAuth);
  EXPECT_EQ(f->returns, api::Type::text);
  ASSERT_EQ(f->params.size(), 1u);
  EXPECT_STREQ(f->params[0].name, "login");
  EXPECT_EQ(f->params[0].pg_default, nullptr);
  EXPECT_TRUE(api::available_in(*f, "postgres"));
  EXPECT_FALSE(api::available_in(*f, "sqlite"));
}

TEST(LoginLookup, DriverGrantsConnectToEnvdbAuthAndTheVersionToTheScopeRoles) {
  const std::string db = "env-abcdefghijklmnopqrstuvwxyz";
  const std::string sql = postgres::in_database_sql(postgres::roles_for(db), "env-1", "org-1", db);
  EXPECT_NE(sql.find("GRANT CONNECT ON DATABASE \"" + db + "\" TO envdb_auth"), std::string::npos)
      << sql;
  EXPECT_NE(sql.find("GRANT EXECUTE ON FUNCTION envdb.environment_schema_version() TO \"" + db +
                     "_admin\", \"" + db + "_readwrite\", \"" + db + "_readonly\""),
            std::string::npos)
      << sql;
  // After the extension that defines the function and the role.
  EXPECT_LT(sql.find("CREATE EXTENSION IF NOT EXISTS envdb_data"), sql.find("TO envdb_auth"));
}

}  // namespace
}  // namespace envdb
