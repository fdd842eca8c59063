#include <gtest/gtest.h>

#include "core/failure_log.hpp"

using namespace envdb;

namespace {

constexpr int64_t kMinute = 60 * 1000;
const std::string kWhat = "converging the logins on database host eu-1";
const std::string kDown = "cannot connect to database host 'eu-1': connection refused";

}  // namespace

TEST(FailureLog, WritesTheFirstFailureThenAtMostOneLinePerIntervalWithTheCount) {
  failure_log::State s;
  const int64_t t0 = 1'000'000;
  auto first = failure_log::failure(s, kWhat, kDown, t0);
  ASSERT_TRUE(first);
  EXPECT_EQ(*first,
            kWhat + " failed (while it keeps failing, logged at most every 5 min): " + kDown);
  // A pass every 2 s for just under 5 minutes: nothing written.
  int written = 0;
  int64_t t = t0;
  for (t = t0 + 2000; t < t0 + 5 * kMinute; t += 2000)
    if (failure_log::failure(s, kWhat, kDown, t)) ++written;
  EXPECT_EQ(written, 0);
  EXPECT_EQ(s.unwritten, 149);
  // At 5 minutes: one line, with the failures it did not write.
  auto again = failure_log::failure(s, kWhat, kDown, t0 + 5 * kMinute);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, kWhat + " still fails (151 failures in 300 s, 149 not logged): " + kDown);
  EXPECT_FALSE(failure_log::failure(s, kWhat, kDown, t0 + 5 * kMinute + 2000));
  // The next line is 5 minutes after that one, not after the first.
  EXPECT_FALSE(failure_log::failure(s, kWhat, kDown, t0 + 10 * kMinute - 1));
  EXPECT_TRUE(failure_log::failure(s, kWhat, kDown, t0 + 10 * kMinute));
}

TEST(FailureLog, ADifferentErrorIsWrittenAtOnce) {
  failure_log::State s;
  ASSERT_TRUE(failure_log::failure(s, kWhat, kDown, 0));
  EXPECT_FALSE(failure_log::failure(s, kWhat, kDown, 2000));
  auto other = failure_log::failure(s, kWhat, "password authentication failed", 4000);
  ASSERT_TRUE(other);
  EXPECT_EQ(*other, kWhat +
                        " still fails (3 failures in 4 s, 1 not logged): "
                        "password authentication failed");
  EXPECT_FALSE(failure_log::failure(s, kWhat, "password authentication failed", 6000));
}

TEST(FailureLog, OneLineOnRecoveryThenTheNextFailureIsWrittenAgain) {
  failure_log::State s;
  EXPECT_FALSE(failure_log::success(s, kWhat, 0));  // never failed: nothing to say
  ASSERT_TRUE(failure_log::failure(s, kWhat, kDown, 1000));
  for (int64_t t = 3000; t <= 9000; t += 2000)
    EXPECT_FALSE(failure_log::failure(s, kWhat, kDown, t));
  auto back = failure_log::success(s, kWhat, 11000);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, kWhat + " works again after 5 failures in 10 s (4 not logged)");
  EXPECT_FALSE(s.failing);
  EXPECT_FALSE(failure_log::success(s, kWhat, 13000));
  EXPECT_TRUE(failure_log::failure(s, kWhat, kDown, 15000));
}

TEST(FailureLog, TheIntervalIsTheCallersAndASingleFailureReadsInTheSingular) {
  failure_log::State s;
  auto first = failure_log::failure(s, kWhat, kDown, 0, 30 * 1000);
  ASSERT_TRUE(first);
  EXPECT_NE(first->find("at most every 30 s"), std::string::npos);
  EXPECT_FALSE(failure_log::failure(s, kWhat, kDown, 29999, 30 * 1000));
  EXPECT_TRUE(failure_log::failure(s, kWhat, kDown, 30000, 30 * 1000));
  failure_log::State once;
  ASSERT_TRUE(failure_log::failure(once, kWhat, kDown, 0));
  EXPECT_EQ(*failure_log::success(once, kWhat, 2000),
            kWhat + " works again after 1 failure in 2 s (0 not logged)");
}
