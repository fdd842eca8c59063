// resolve_environment's answer written directly (tenancy/resolve_answer) is,
// byte for byte, what nlohmann's dump() of the same members writes: escapes,
// control characters, text beyond ASCII, NULLs and numbers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/json.hpp"
#include "tenancy/resolve_answer.hpp"

namespace envdb {
namespace {

Json answer_json_of(const std::vector<Value>& v, const std::string& token,
                    std::optional<int64_t> pages) {
  auto j = [](const Value& x) {
    if (auto s = std::get_if<std::string>(&x)) return Json(*s);
    return Json(nullptr);
  };
  Json credential = Json::object();
  credential["id"] = j(v[6]);
  credential["scope"] = "readwrite";
  credential["username"] = j(v[7]);
  credential["token"] = token;
  credential["expiresAt"] = j(v[8]);
  Json out = Json::object();
  out["environmentId"] = "env-1";
  out["organizationId"] = j(v[0]);
  out["envType"] = j(v[1]);
  out["status"] = "active";
  out["driver"] = j(v[2]);
  out["databaseName"] = j(v[3]);
  out["databaseUrl"] = j(v[4]);
  out["region"] = j(v[5]);
  out["maxPageCount"] = pages ? Json(*pages) : Json(nullptr);
  out["credential"] = credential;
  return out;
}

std::string answer_text_of(const std::vector<Value>& v, const std::string& token,
                           std::optional<int64_t> pages) {
  const std::string environment_id = "env-1", status = "active", scope = "readwrite";
  const resolve_answer::Parts p = resolve_answer::parts(
      {environment_id, v[0], v[1], status, v[2], v[3], v[4], v[5], pages, v[6], scope, v[7], v[8]});
  return resolve_answer::join(p.head, token, p.tail);
}

TEST(ResolveAnswer, IsWhatTheJsonTreeDumps) {
  const std::vector<std::vector<Value>> rows = {
      {"org", "production", "turso", "env-abc", "libsql://x.turso.io", "aws-us-east-1", "cred",
       null_value(), null_value()},
      {"o\"q\\b/s", "t\b\f\n\r\t", std::string("c\x01\x1f\x7f", 4), "", null_value(),
       "caf\xc3\xa9 \xe2\x9c\x93", "id", "user", "2026-01-02T03:04:05.678Z"},
      {null_value(), int64_t{5}, 1.5, Blob{"x"}, true, null_value(), null_value(), null_value(),
       null_value()},
  };
  const std::vector<std::string> tokens = {"tok_EN-43-base64url", "a\"b\\c\n\x02",
                                           "\xc3\xa9t\xc3\xa9", ""};
  for (const auto& row : rows)
    for (const auto& token : tokens)
      for (const std::optional<int64_t> pages :
           {std::optional<int64_t>(), std::optional<int64_t>(2560)})
        EXPECT_EQ(answer_text_of(row, token, pages), answer_json_of(row, token, pages).dump());
}

TEST(ResolveAnswer, RefusesInvalidUtf8AsTheJsonTreeDoes) {
  const std::vector<Value> row = {
      "org", std::string("bad\xff"), "turso", "n", "u", "r", "c", "u", null_value()};
  EXPECT_THROW(answer_text_of(row, "t", std::nullopt), Json::type_error);
  EXPECT_THROW(answer_json_of(row, "t", std::nullopt).dump(), Json::type_error);
}

}  // namespace
}  // namespace envdb
