#include "core/function.hpp"

#include <cmath>
#include <cstdio>
#include <limits>

#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/json_bounds.hpp"

namespace envdb::api {

namespace {

using T = Type;

bool valid_utf8(const std::string& s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xe  ? 3
                 : (c >> 3) == 0x1e ? 4
                                    : 0;
    if (len == 0 || i + len > n) return false;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    if (len == 2 && c < 0xc2) return false;  // overlong
    i += len;
  }
  return true;
}

const char* type_word(Type t) {
  switch (t) {
    case T::text: return "text";
    case T::integer: return "an integer";
    case T::boolean: return "a boolean";
    case T::json: return "a JSON object";
    case T::interval: return "a duration in seconds";
    case T::timestamp: return "a timestamp";
  }
  return "a value";
}

[[noreturn]] void wrong_type(const char* name, Type t) {
  fail(Code::invalid_parameter, std::string(name) + " must be " + type_word(t));
}

// Drivers bind numbers as they like: better-sqlite3 binds every JS number as
// a REAL, JSON has one number type. A REAL that is a whole number is that
// integer wherever an integer, a number of seconds or a boolean is expected;
// 1.5, NaN, an infinity or a value outside int64 is not. One rule, here, for
// every accessor.
std::optional<int64_t> whole_number(const Value& v) {
  if (auto i = std::get_if<int64_t>(&v)) return *i;
  if (auto d = std::get_if<double>(&v)) {
    // 2^63 itself is not representable as int64; the bounds are exact doubles.
    if (std::isfinite(*d) && std::trunc(*d) == *d && *d >= -9223372036854775808.0 &&
        *d < 9223372036854775808.0)
      return static_cast<int64_t>(*d);
  }
  return std::nullopt;
}

}  // namespace

std::string camel_case(const std::string& snake) {
  std::string out;
  bool upper = false;
  for (char c : snake) {
    if (c == '_') {
      upper = true;
      continue;
    }
    out += upper ? static_cast<char>(c - 'a' + 'A') : c;
    upper = false;
  }
  return out;
}

Value json_result(const Json& j) { return j.dump(); }

Call::Call(Host& h, const Function& f, std::vector<Value> args)
    : host(h), store(h.store()), fn(f), args_(std::move(args)) {
  args_.resize(fn.params.size());
}

const Value& Call::arg(const char* name) const {
  for (size_t i = 0; i < fn.params.size(); ++i)
    if (std::string(fn.params[i].name) == name) return args_[i];
  throw Error(Code::internal, std::string(fn.name) + " has no parameter " + name);
}

bool Call::given(const char* name) const { return !is_null(arg(name)); }

std::string Call::text(const char* name, size_t max_len) const {
  auto v = opt_text(name, max_len);
  if (!v) fail(Code::invalid_parameter, std::string(name) + " is required");
  return *v;
}

std::optional<std::string> Call::opt_text(const char* name, size_t max_len) const {
  const Value& v = arg(name);
  if (is_null(v)) return std::nullopt;
  const std::string* s = std::get_if<std::string>(&v);
  if (!s) wrong_type(name, T::text);
  if (s->find('\0') != std::string::npos)
    fail(Code::invalid_parameter, std::string(name) + " contains a NUL byte");
  if (!valid_utf8(*s)) fail(Code::invalid_parameter, std::string(name) + " is not valid UTF-8");
  if (s->size() > max_len)
    fail(Code::invalid_parameter,
         std::string(name) + " is longer than " + std::to_string(max_len) + " bytes");
  return *s;
}

std::optional<int64_t> Call::opt_integer(const char* name) const {
  const Value& v = arg(name);
  if (is_null(v)) return std::nullopt;
  if (auto i = whole_number(v)) return *i;
  wrong_type(name, T::integer);
}

std::optional<bool> Call::opt_boolean(const char* name) const {
  const Value& v = arg(name);
  if (is_null(v)) return std::nullopt;
  if (auto b = std::get_if<bool>(&v)) return *b;
  // SQLite has no boolean type: 0 and 1 (integer or real) are its false and true.
  if (auto i = whole_number(v); i && (*i == 0 || *i == 1)) return *i == 1;
  wrong_type(name, T::boolean);
}

std::optional<std::string> Call::opt_text_or_number(const char* name, size_t max_len) const {
  const Value& v = arg(name);
  if (auto i = whole_number(v)) return std::to_string(*i);
  // A fraction stays text, so the setting's own check names it.
  if (auto d = std::get_if<double>(&v)) {
    char out[32];
    std::snprintf(out, sizeof out, "%.17g", *d);
    return std::string(out);
  }
  return opt_text(name, max_len);
}

std::optional<Json> Call::opt_object(const char* name) const {
  auto text_value = opt_text(name, json_bounds::kMaxBytes);
  if (!text_value) return std::nullopt;
  Json j = json_bounds::parse_input(*text_value, name);
  if (j.is_discarded() || !j.is_object()) wrong_type(name, T::json);
  return j;
}

std::optional<int64_t> Call::opt_seconds(const char* name) const {
  const Value& v = arg(name);
  if (is_null(v)) return std::nullopt;
  const auto i = whole_number(v);
  if (!i) wrong_type(name, T::interval);
  if (*i < 0) fail(Code::invalid_parameter, std::string(name) + " must not be negative");
  return *i;
}

std::optional<std::string> Call::opt_timestamp(const char* name) const {
  auto s = opt_text(name, 64);
  if (!s) return std::nullopt;
  auto ms = ms_from_iso(*s);
  if (!ms)
    fail(Code::invalid_parameter,
         std::string(name) + " " + quote_value(*s) + " is not an ISO-8601 timestamp");
  return iso_from_ms(*ms);
}

Value invoke(Host& host, const Function& fn, std::vector<Value> positional) {
  if (positional.size() > fn.params.size())
    fail(Code::invalid_parameter, std::string(fn.name) + " takes at most " +
                                      std::to_string(fn.params.size()) + " arguments, got " +
                                      std::to_string(positional.size()));
  for (size_t i = 0; i < fn.params.size(); ++i) {
    if (fn.params[i].pg_default == nullptr && (i >= positional.size() || is_null(positional[i])))
      fail(Code::invalid_parameter, std::string(fn.params[i].name) + " is required");
  }
  Call call(host, fn, std::move(positional));
  return fn.handler(call);
}

Value invoke_request(Host& host, const Function& fn, const std::string& request_json) {
  if (request_json.size() > json_bounds::kMaxRequestBytes)
    fail(Code::invalid_parameter, std::string("request for ") + fn.name + " is longer than " +
                                      std::to_string(json_bounds::kMaxRequestBytes) + " bytes");
  // The request is one level above its values: a parameter nested too deep
  // is named, before anything parses it.
  if (auto deep = json_bounds::first_excess(request_json, json_bounds::kMaxDepth + 1)) {
    for (const Param& p : fn.params)
      if (!deep->top_key.empty() && camel_case(p.name) == deep->top_key)
        fail(Code::invalid_parameter, std::string(p.name) + " is nested deeper than " +
                                          std::to_string(json_bounds::kMaxDepth) + " levels");
    fail(Code::invalid_parameter, std::string("request for ") + fn.name +
                                      " is nested deeper than " +
                                      std::to_string(json_bounds::kMaxDepth) + " levels");
  }
  Json request = Json::parse(request_json, nullptr, false);
  if (request.is_discarded() || !request.is_object())
    fail(Code::invalid_parameter, std::string("request for ") + fn.name + " must be a JSON object");
  std::vector<Value> args(fn.params.size());
  for (auto& [key, value] : request.items()) {
    size_t i = 0;
    while (i < fn.params.size() && camel_case(fn.params[i].name) != key) ++i;
    if (i == fn.params.size())
      fail(Code::invalid_parameter,
           "request key " + quote_value(key) + " is not a parameter of " + fn.name);
    const char* name = fn.params[i].name;
    const Type t = fn.params[i].type;
    if (value.is_null()) continue;
    switch (t) {
      case T::text:
      case T::timestamp:
        if (!value.is_string()) wrong_type(name, t);
        args[i] = value.get<std::string>();
        break;
      case T::integer:
      case T::interval:
      case T::boolean: {
        // Numbers and booleans go to the Call accessors as they are, which
        // apply the one rule for whole-number reals and 0/1 booleans. An
        // unsigned number past int64's range is wrong_type, like a string.
        constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
        const bool past_int64 = value.is_number_unsigned() && value.get<uint64_t>() > kMax;
        if (value.is_boolean() && t == T::boolean)
          args[i] = value.get<bool>();
        else if (value.is_number_integer() && !past_int64)
          args[i] = value.get<int64_t>();
        else if (value.is_number_float())
          args[i] = value.get<double>();
        else
          wrong_type(name, t);
        break;
      }
      case T::json:
        if (!value.is_object()) wrong_type(name, t);
        args[i] = value.dump();
        break;
    }
  }
  return invoke(host, fn, std::move(args));
}

}  // namespace envdb::api
