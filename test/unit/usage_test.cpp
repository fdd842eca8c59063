// usage.cpp's pure parts: the page limit resolve_environment hands a router,
// and the statements that withdraw and restore an environment database's
// write privileges (the worker runs them; test/pg/test_pg_policies.py shows
// them working on a server).
#include <gtest/gtest.h>

#include "core/errors.hpp"
#include "tenancy/usage.hpp"

namespace envdb {
namespace {

TEST(Usage, MaxPageCountIsTheSqliteLimitIn4096BytePages) {
  EXPECT_EQ(usage::max_page_count("sqlite", 1), 256);
  EXPECT_EQ(usage::max_page_count("sqlite", 10), 2560);
  EXPECT_FALSE(usage::max_page_count("sqlite", std::nullopt));
  EXPECT_FALSE(usage::max_page_count("postgres", 1));
  EXPECT_FALSE(usage::max_page_count("turso", 1));
}

TEST(Usage, ReadOnlyWithdrawsWritesFromReadwriteAndAdminAndWritableGrantsThemBack) {
  const std::string db = "env-abcdefghijklmnopqrstuvwxyz";
  const std::string off = usage::write_access_sql(db, true);
  EXPECT_NE(off.find(
                "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public FROM \"" +
                db + "_readwrite\", \"" + db + "_admin\""),
            std::string::npos)
      << off;
  EXPECT_NE(off.find("ALTER DEFAULT PRIVILEGES FOR ROLE \"" + db + "_admin\""), std::string::npos);
  EXPECT_EQ(off.find("GRANT "), std::string::npos);
  EXPECT_EQ(off.find("_readonly"), std::string::npos);  // reads are never touched
  const std::string on = usage::write_access_sql(db, false);
  EXPECT_NE(on.find("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \"" +
                    db + "_readwrite\""),
            std::string::npos)
      << on;
  EXPECT_EQ(on.find("REVOKE"), std::string::npos);
  // Not a name envdb makes: refused before any statement exists.
  EXPECT_THROW(usage::write_access_sql("x\"; DROP ROLE postgres; --", true), Error);
}

}  // namespace
}  // namespace envdb
