// One SQL function as envdb describes it: its parameters (with Postgres types
// and defaults), what it returns, how it behaves and who may call it; the
// arguments of one call with their validating accessors; and invoking a
// function with positional arguments or one JSON request. Every module
// describes its own functions with these; the table of them all is
// surface/api.hpp.
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>
#include <vector>

#include "core/host.hpp"
#include "core/json.hpp"
#include "core/value.hpp"

namespace envdb::api {

enum class Type { text, integer, boolean, json, interval, timestamp };

enum Flag : unsigned {
  kPure = 1u << 0,    // same inputs, same result, no side effects
  kWrites = 1u << 1,  // changes the catalog
  kSqliteOnly = 1u << 2,
  kPostgresOnly = 1u << 3,
  kRequestForm = 1u << 4,  // also callable with one JSON request object
  kDataPlane = 1u << 5,    // runs inside an environment database
};

// Postgres roles allowed to execute a function. PUBLIC never is: it has no
// USAGE on schema envdb at all.
enum Role : unsigned {
  kAdmin = 1u << 0,
  kRouter = 1u << 1,
  kReader = 1u << 2,
  kAuth = 1u << 3,  // envdb_auth: a connection pooler's auth_user (login_lookup.hpp)
};

struct Param {
  const char* name;
  Type type;
  const char* pg_default;  // nullptr: required
};

class Call;
using Handler = Value (*)(Call&);

struct Function {
  const char* name;
  std::vector<Param> params;
  Type returns;
  Handler handler;
  unsigned flags;
  unsigned roles;
  const char* summary;
};

// The arguments of one call, aligned with the function's parameters, and the
// typed accessors handlers use. Accessors validate: a wrong type, a NUL byte,
// bad UTF-8 or an over-long text is invalid_parameter naming the parameter.
class Call {
 public:
  Call(Host& host, const Function& fn, std::vector<Value> args);
  Host& host;
  Store& store;
  const Function& fn;

  bool given(const char* name) const;                               // present and not NULL
  std::string text(const char* name, size_t max_len = 1024) const;  // required
  std::optional<std::string> opt_text(const char* name, size_t max_len = 1024) const;
  // Integers, seconds and booleans also accept a REAL that is a whole number
  // (drivers such as better-sqlite3 bind every number as REAL); booleans are
  // true, false, 0 or 1.
  std::optional<int64_t> opt_integer(const char* name) const;
  std::optional<bool> opt_boolean(const char* name) const;
  std::optional<Json> opt_object(const char* name) const;  // a JSON object
  // Text, or a number written as decimal text (a whole-number REAL without
  // its ".0"), for settings whose values are numbers.
  std::optional<std::string> opt_text_or_number(const char* name, size_t max_len = 1024) const;
  std::optional<int64_t> opt_seconds(const char* name) const;        // interval, >= 0
  std::optional<std::string> opt_timestamp(const char* name) const;  // normalised ISO

 private:
  const Value& arg(const char* name) const;
  std::vector<Value> args_;
};

// Positional arguments (as SQL passed them) -> one call. Too many arguments or
// a missing required one is invalid_parameter.
Value invoke(Host& host, const Function& fn, std::vector<Value> positional);
// The request form: one JSON object whose camelCase keys name parameters.
Value invoke_request(Host& host, const Function& fn, const std::string& request_json);

std::string camel_case(const std::string& snake);
Value json_result(const Json& j);

}  // namespace envdb::api
