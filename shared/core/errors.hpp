// The contract's error vocabulary. Every error that leaves envdb is an
// envdb::Error whose message starts with a stable code word, the same in both
// hosts: "<code>: <sentence naming the field and value>". Never put a secret
// in the sentence.
#pragma once
#include "core/cpp_only.hpp"

#include <stdexcept>
#include <string>

namespace envdb {

enum class Code {
  invalid_parameter,
  not_found,
  already_exists,
  invalid_transition,
  permission_denied,
  key_unavailable,
  decrypt_failed,
  schema_mismatch,
  conflict,
  internal,  // a host or store failure that is not the caller's fault
};

const char* code_word(Code code) noexcept;
// Postgres SQLSTATE (five characters) that goes with each code.
const char* code_sqlstate(Code code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(Code code, const std::string& sentence)
      : std::runtime_error(std::string(code_word(code)) + ": " + sentence), code_(code) {}
  Code code() const noexcept { return code_; }

 private:
  Code code_;
};

[[noreturn]] inline void fail(Code code, const std::string& sentence) {
  throw Error(code, sentence);
}

// Quote a caller-supplied value for an error sentence: truncated, with control
// and non-printable bytes escaped, so messages stay one readable line.
std::string quote_value(const std::string& value);

}  // namespace envdb

namespace envdb {
// An error reported by the host database while the core was running. When the
// host's message already starts with a code word (envdb's own triggers raise
// such messages) that code is kept; otherwise `fallback` is used. `sqlstate`
// keeps the host's own SQLSTATE for errors that are not the contract's
// (a cancelled statement, say), so the Postgres boundary can re-raise it.
class HostError : public Error {
 public:
  HostError(Code code, const std::string& sentence, std::string sqlstate)
      : Error(code, sentence), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const noexcept { return sqlstate_; }

 private:
  std::string sqlstate_;
};

[[noreturn]] void throw_host_error(Code fallback, const std::string& message,
                                   const std::string& sqlstate = "");
}  // namespace envdb
