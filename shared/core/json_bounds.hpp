// Bounds on every JSON value envdb parses: a size limit and a nesting-depth
// limit, checked by a scan of the text before any parser or serialiser sees
// it. nlohmann's serialiser (and a host's JSON code) recurse once per level,
// so an unchecked value a hundred thousand levels deep ends the process;
// a value that passed here has at most kMaxDepth levels, and every JSON
// envdb builds around such values stays a few levels deeper.
#pragma once
#include "core/cpp_only.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "core/json.hpp"

namespace envdb::json_bounds {

constexpr size_t kMaxDepth = 64;              // levels of arrays and objects
constexpr size_t kMaxBytes = 1 << 20;         // one JSON value (metadata, tokens, ...)
constexpr size_t kMaxRequestBytes = 2 << 20;  // a whole request object

// Where a text first nests deeper than a limit: the byte offset, and the
// top-level key of the object it sits in (empty when the text is not an
// object, or the key is not known). Found by counting brackets outside
// strings, without recursion; the text need not be valid JSON.
struct Excess {
  size_t offset = 0;
  std::string top_key;
};
std::optional<Excess> first_excess(std::string_view text, size_t limit);

// A JSON value a caller passed as parameter `field`: invalid_parameter naming
// the field when it is longer than kMaxBytes or nested deeper than kMaxDepth.
// Returns the parsed value, or a discarded value when the text is not JSON
// (the caller words that error).
Json parse_input(std::string_view text, const std::string& field);

// A JSON value read back from a catalog row (`what` names the column and
// row): schema_mismatch when it is longer than kMaxBytes or nested deeper than
// kMaxDepth, since such a value was never written by envdb. nullopt when the
// text is not JSON.
std::optional<Json> parse_stored(std::string_view text, const std::string& what);

// The same bounds without an error: nullopt for a value that is too large,
// too deep or not JSON (the session context, say, where absent is the safe
// reading).
std::optional<Json> parse_quiet(std::string_view text);

}  // namespace envdb::json_bounds
