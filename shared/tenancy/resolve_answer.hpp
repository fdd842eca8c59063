// resolve_environment's answer as JSON text, written directly rather than
// through a JSON tree: the tree and its serializer cost more than the rest of
// a resolve served from the session's cache together.
//
// The answer is cut around the token, the one value that changes from call to
// call: `head` (everything before the token's value) and `tail` (everything
// after it) depend only on the resolve row, the environment id and the scope,
// so the resolve cache keeps them with the row (resolve.cpp), and a cached
// resolve only opens the token and joins the three. The text is what
// nlohmann's dump() of the same members in the same order writes, byte for
// byte.
#pragma once
#include "core/cpp_only.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/value.hpp"

namespace envdb::resolve_answer {

// The answer's members in the contract's order; a Value is text or NULL (any
// other kind is written as null).
struct Fields {
  const std::string& environment_id;
  const Value& organization_id;
  const Value& env_type;
  const std::string& status;
  const Value& driver;
  const Value& database_name;
  const Value& database_url;
  const Value& region;
  std::optional<int64_t> max_page_count;
  const Value& credential_id;
  const std::string& scope;
  const Value& username;
  const Value& expires_at;
};

struct Parts {
  std::string head;  // {"environmentId":...,"credential":{...,"token":
  std::string tail;  // ,"expiresAt":...}}
};

Parts parts(const Fields& f);

// head, the token as a JSON string, tail: one buffer, sized once, so no copy
// of the token is left behind in memory a reallocation freed.
std::string join(std::string_view head, std::string_view token, std::string_view tail);

// Appends s as a JSON string (quotes included), escaped as nlohmann's dump()
// escapes it. Text with bytes beyond ASCII goes through nlohmann itself, which
// also refuses invalid UTF-8 as before.
void append_string(std::string& out, std::string_view s);

}  // namespace envdb::resolve_answer
