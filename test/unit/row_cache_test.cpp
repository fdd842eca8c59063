// The resolve cache (core/row_cache.hpp) and the deferred last_accessed_at
// touches (resolve::flush_touches).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "core/clock.hpp"
#include "core/row_cache.hpp"
#include "env_fixture.hpp"
#include "tenancy/resolve.hpp"

using namespace envdb;

namespace {

Generation gen(uint64_t a, uint64_t b = 0, bool fill = true) {
  Generation g;
  g.a = a;
  g.b = b;
  g.fill = fill;
  return g;
}

std::vector<Value> row_of(const std::string& text) { return {Value(text), Value(int64_t{1})}; }

}  // namespace

TEST(RowCache, ServesARowOnlyAtTheGenerationItWasReadAt) {
  RowCache cache;
  cache.put(gen(1), "a", row_of("x"));
  const auto* hit = cache.find(gen(1), "a");
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(std::get<std::string>((*hit)[0]), "x");
  EXPECT_EQ(cache.find(gen(1), "b"), nullptr);
  // Either number moving drops every row.
  EXPECT_EQ(cache.find(gen(1, 1), "a"), nullptr);
  EXPECT_EQ(cache.size(), 0u);
  cache.put(gen(1, 1), "a", row_of("y"));
  EXPECT_EQ(cache.find(gen(2, 1), "a"), nullptr);
  EXPECT_EQ(cache.hits(), 1u);
}

TEST(RowCache, KeepsNothingReadWhereItCouldStillRollBack) {
  RowCache cache;
  cache.put(gen(1, 0, false), "a", row_of("x"));
  EXPECT_EQ(cache.find(gen(1), "a"), nullptr);
  cache.put(gen(1), "a", row_of("x"));
  // Rows kept before are still served there while the generation holds.
  EXPECT_NE(cache.find(gen(1, 0, false), "a"), nullptr);
}

TEST(RowCache, IsBoundedAndDropsTheLeastRecentlyUsed) {
  RowCache cache(3);
  for (const char* k : {"a", "b", "c"}) cache.put(gen(1), k, row_of(k));
  EXPECT_NE(cache.find(gen(1), "a"), nullptr);  // a is now the most recent
  cache.put(gen(1), "d", row_of("d"));
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.find(gen(1), "b"), nullptr);
  EXPECT_NE(cache.find(gen(1), "a"), nullptr);
  EXPECT_GT(cache.bytes(), 0u);
  cache.set_capacity(1);
  EXPECT_EQ(cache.size(), 1u);
  cache.clear();
  EXPECT_EQ(cache.bytes(), 0u);
  RowCache off(0);
  off.put(gen(1), "a", row_of("a"));
  EXPECT_EQ(off.size(), 0u);
}

TEST(RowCache, RestampsOnlyFromTheGenerationItHolds) {
  RowCache cache;
  cache.put(gen(1, 5), "a", row_of("x"));
  cache.restamp(gen(1, 4), gen(1, 9));  // not the generation it holds: no effect
  EXPECT_EQ(cache.find(gen(1, 9), "a"), nullptr);
  cache.put(gen(1, 5), "a", row_of("x"));
  cache.restamp(gen(1, 5), gen(1, 6));
  EXPECT_NE(cache.find(gen(1, 6), "a"), nullptr);
}

TEST(RowCache, SetColumnChangesOneKeptRow) {
  RowCache cache;
  cache.put(gen(1), "a", row_of("x"));
  cache.set_column("a", 0, Value(std::string("y")));
  cache.set_column("missing", 0, Value(std::string("z")));
  cache.set_column("a", 7, Value(std::string("z")));  // past the row: ignored
  EXPECT_EQ(std::get<std::string>((*cache.find(gen(1), "a"))[0]), "y");
}

TEST(RowCache, BytesFollowAColumnThatGrows) {
  // resolve.cpp adds the answer's text to a kept row after the fact.
  RowCache cache;
  cache.put(gen(1), "a", row_of("x"));
  const size_t before = cache.bytes();
  cache.set_column("a", 0, Value(std::string(1000, 'y')));
  EXPECT_GE(cache.bytes(), before + 1000 - 16);  // "x" held a short string's 16 bytes
  cache.set_column("a", 0, Value(int64_t{2}));   // the text's buffer is freed
  EXPECT_LT(cache.bytes(), before);
}

class DeferredTouches : public test::EnvFixture {
 protected:
  std::optional<std::string> last_accessed(const std::string& db) {
    return query_one(host.store(),
                     "SELECT last_accessed_at FROM envdb.sys_environment_database WHERE id = $1",
                     {db})
        ->opt_text("last_accessed_at");
  }
};

TEST_F(DeferredTouches, AreWrittenOnceTheOldestIsAMinuteOldWithTheirOwnTimes) {
  const Json org = organization("acme");
  const std::string db = org["defaultEnvironment"]["database"]["id"].get<std::string>();
  RowCache cache;
  const int64_t at = now_ms() - 5000;
  cache.note_touch(db, at);
  EXPECT_EQ(cache.pending_touches(), 1u);
  resolve::flush_touches(host, cache, at + 1000, false);  // not due yet
  EXPECT_FALSE(last_accessed(db));
  EXPECT_EQ(cache.pending_touches(), 1u);
  resolve::flush_touches(host, cache, at + resolve::kTouchSeconds * 1000, false);
  EXPECT_EQ(cache.pending_touches(), 0u);
  ASSERT_TRUE(last_accessed(db));
  EXPECT_EQ(ms_from_iso(*last_accessed(db)), at);
  // A touch within the minute of the stored one changes nothing.
  cache.note_touch(db, at + 2000);
  resolve::flush_touches(host, cache, at, true);
  EXPECT_EQ(ms_from_iso(*last_accessed(db)), at);
}

TEST_F(DeferredTouches, AreWrittenAtOnceWhenManyArePending) {
  const Json org = organization("acme");
  const std::string db = org["defaultEnvironment"]["database"]["id"].get<std::string>();
  RowCache cache;
  const int64_t at = now_ms();
  cache.note_touch(db, at);
  for (size_t i = 1; i < resolve::kMaxPendingTouches; ++i)
    cache.note_touch("no-such-database-" + std::to_string(i), at);
  resolve::flush_touches(host, cache, at, false);
  EXPECT_EQ(cache.pending_touches(), 0u);
  EXPECT_EQ(ms_from_iso(last_accessed(db).value_or("")), at);
}

// Outside a transaction each UPDATE of the batch used to commit on its own
// (a journal write and sync per touch): the batch is one write transaction.
TEST_F(DeferredTouches, AreWrittenInOneTransaction) {
  std::vector<std::string> dbs;
  for (const char* slug : {"acme", "globex", "initech", "umbrella"})
    dbs.push_back(organization(slug)["defaultEnvironment"]["database"]["id"].get<std::string>());
  auto& store = static_cast<sqlite::SqliteStore&>(host.store());
  int commits = 0;
  sqlite3_commit_hook(
      store.handle(),
      [](void* n) {
        ++*static_cast<int*>(n);
        return 0;
      },
      &commits);
  RowCache cache;
  const int64_t at = now_ms();
  for (size_t i = 0; i < dbs.size(); ++i) cache.note_touch(dbs[i], at - static_cast<int64_t>(i));
  resolve::flush_touches(host, cache, at, true);
  sqlite3_commit_hook(store.handle(), nullptr, nullptr);
  EXPECT_EQ(commits, 1);
  for (size_t i = 0; i < dbs.size(); ++i)
    EXPECT_EQ(ms_from_iso(last_accessed(dbs[i]).value_or("")), at - static_cast<int64_t>(i));
}
