#include "core/json_bounds.hpp"

#include "core/errors.hpp"

namespace envdb::json_bounds {

namespace {

constexpr size_t kMaxKeyEcho = 128;  // bytes of a top-level key kept for messages

std::string limit_words() { return "nested deeper than " + std::to_string(kMaxDepth) + " levels"; }

}  // namespace

std::optional<Excess> first_excess(std::string_view text, size_t limit) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  bool top_object = false;  // the outermost value is an object
  bool expect_key = false;  // the next string at depth 1 is a key
  bool reading_key = false;
  std::string key, last_key;
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (ch == '\\') {
        escaped = true;
      } else if (ch == '"') {
        in_string = false;
        if (reading_key) {
          last_key = key;
          reading_key = false;
        }
        continue;
      }
      if (reading_key && key.size() < kMaxKeyEcho) key += ch;
      continue;
    }
    switch (ch) {
      case '"':
        in_string = true;
        if (depth == 1 && top_object && expect_key) {
          reading_key = true;
          expect_key = false;
          key.clear();
        }
        break;
      case '{':
      case '[':
        if (depth == 0) top_object = ch == '{';
        if (++depth > limit) return Excess{i, top_object ? last_key : std::string()};
        if (depth == 1 && ch == '{') expect_key = true;
        break;
      case '}':
      case ']':
        if (depth > 0) --depth;
        break;
      case ',':
        if (depth == 1 && top_object) expect_key = true;
        break;
      default: break;
    }
  }
  return std::nullopt;
}

Json parse_input(std::string_view text, const std::string& field) {
  if (text.size() > kMaxBytes)
    fail(Code::invalid_parameter,
         field + " is longer than " + std::to_string(kMaxBytes) + " bytes of JSON");
  if (first_excess(text, kMaxDepth)) fail(Code::invalid_parameter, field + " is " + limit_words());
  return Json::parse(text, nullptr, false);
}

std::optional<Json> parse_stored(std::string_view text, const std::string& what) {
  if (text.size() > kMaxBytes)
    fail(Code::schema_mismatch, what + " holds more than " + std::to_string(kMaxBytes) +
                                    " bytes of JSON, which envdb never writes; check() reports it");
  if (first_excess(text, kMaxDepth))
    fail(Code::schema_mismatch,
         what + " is " + limit_words() + ", which envdb never writes; check() reports it");
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::optional<Json> parse_quiet(std::string_view text) {
  if (text.size() > kMaxBytes || first_excess(text, kMaxDepth)) return std::nullopt;
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

}  // namespace envdb::json_bounds
