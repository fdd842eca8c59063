// The Call accessors' one rule for numbers: a whole-number REAL is an
// integer, a number of seconds, or (0/1) a boolean; a fraction, NaN, an
// infinity or a value outside int64 is invalid_parameter naming the argument.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/function.hpp"
#include "env_fixture.hpp"
#include "test_host.hpp"

namespace envdb {
namespace {

using test::code_of;
using test::message_of;

struct Seen {
  std::optional<int64_t> integer, seconds;
  std::optional<bool> boolean;
  std::optional<std::string> setting;
} seen;

Value record(api::Call& c) {
  seen.integer = c.opt_integer("n");
  seen.seconds = c.opt_seconds("grace");
  seen.boolean = c.opt_boolean("flag");
  seen.setting = c.opt_text_or_number("value");
  return int64_t{0};
}

const api::Function kFn{"probe",
                        {{"n", api::Type::integer, "NULL"},
                         {"grace", api::Type::interval, "NULL"},
                         {"flag", api::Type::boolean, "NULL"},
                         {"value", api::Type::text, "NULL"}},
                        api::Type::integer,
                        record,
                        api::kRequestForm,
                        api::kAdmin,
                        "test"};

void probe(std::vector<Value> args) {
  seen = Seen{};
  test::MemoryHost host;
  api::invoke(host, kFn, std::move(args));
}

void probe_request(const std::string& json) {
  seen = Seen{};
  test::MemoryHost host;
  api::invoke_request(host, kFn, json);
}

TEST(Accessors, WholeNumberRealsAreIntegersSecondsAndBooleans) {
  probe({10.0, 60.0, 1.0, 3600.0});
  EXPECT_EQ(seen.integer, 10);
  EXPECT_EQ(seen.seconds, 60);
  EXPECT_EQ(seen.boolean, true);
  EXPECT_EQ(seen.setting, "3600");
  probe({int64_t{-3}, int64_t{0}, 0.0, int64_t{7}});
  EXPECT_EQ(seen.integer, -3);
  EXPECT_EQ(seen.seconds, 0);
  EXPECT_EQ(seen.boolean, false);
  EXPECT_EQ(seen.setting, "7");
  probe({-0.0, null_value(), int64_t{1}, std::string("eu")});
  EXPECT_EQ(seen.integer, 0);
  EXPECT_EQ(seen.seconds, std::nullopt);
  EXPECT_EQ(seen.boolean, true);
  EXPECT_EQ(seen.setting, "eu");
}

TEST(Accessors, FractionsAndOutOfRangeRealsAreRefusedByName) {
  const double inf = std::numeric_limits<double>::infinity();
  for (double bad : {1.5, -0.25, inf, -inf, std::nan(""), 9.3e18, -9.3e18, 1e300}) {
    EXPECT_EQ(code_of([&] { probe({bad}); }), Code::invalid_parameter) << bad;
    EXPECT_NE(message_of([&] { probe({bad}); }).find("n must be an integer"), std::string::npos);
    EXPECT_NE(message_of([&] {
                probe({null_value(), bad});
              }).find("grace must be a duration"),
              std::string::npos);
  }
  EXPECT_NE(message_of([&] {
              probe({null_value(), -60.0});
            }).find("grace must not be negative"),
            std::string::npos);
  for (Value bad : {Value(2.0), Value(0.5), Value(int64_t{2}), Value(int64_t{-1}), Value("true")})
    EXPECT_NE(message_of([&] {
                probe({null_value(), null_value(), bad});
              }).find("flag must be a boolean"),
              std::string::npos);
  // Text for an integer stays refused: only numbers are numbers.
  EXPECT_NE(message_of([&] { probe({std::string("10")}); }).find("n must be an integer"),
            std::string::npos);
  // A fraction for a setting is passed on as text, for the setting's own check to name.
  probe({null_value(), null_value(), null_value(), 1.5});
  EXPECT_EQ(seen.setting, "1.5");
}

TEST(Accessors, TheRequestFormFollowsTheSameRule) {
  probe_request(R"({"n": 10.0, "grace": 60, "flag": 1})");
  EXPECT_EQ(seen.integer, 10);
  EXPECT_EQ(seen.seconds, 60);
  EXPECT_EQ(seen.boolean, true);
  probe_request(R"({"flag": false})");
  EXPECT_EQ(seen.boolean, false);
  EXPECT_EQ(code_of([] { probe_request(R"({"n": 1.5})"); }), Code::invalid_parameter);
  EXPECT_EQ(code_of([] { probe_request(R"({"n": true})"); }), Code::invalid_parameter);
  EXPECT_EQ(code_of([] { probe_request(R"({"n": "10"})"); }), Code::invalid_parameter);
  EXPECT_EQ(code_of([] { probe_request(R"({"n": 18446744073709551615})"); }),
            Code::invalid_parameter);
  EXPECT_EQ(code_of([] { probe_request(R"({"flag": 2})"); }), Code::invalid_parameter);
}

}  // namespace
}  // namespace envdb
