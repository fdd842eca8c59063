#include "sql_translate.hpp"

namespace envdb::sqlite {

namespace {
bool ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
}  // namespace

std::string translate_sql(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  const size_t n = in.size();
  for (size_t i = 0; i < n;) {
    const char c = in[i];
    if (c == '\'' || c == '"') {  // copy quoted text untouched ('' escapes stay inside)
      size_t j = i + 1;
      while (j < n && in[j] != c) ++j;
      out.append(in, i, j + 1 - i);
      i = j + 1;
    } else if (c == '$' && i + 1 < n && in[i + 1] >= '0' && in[i + 1] <= '9') {
      out += '?';
      ++i;
    } else if (c == ':' && i + 1 < n && in[i + 1] == ':') {
      i += 2;
      while (i < n && (ident_char(in[i]) || in[i] == '[' || in[i] == ']')) ++i;
    } else if (c == 'e' && in.compare(i, 6, "envdb.") == 0 && (i == 0 || !ident_char(in[i - 1]))) {
      i += 6;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

}  // namespace envdb::sqlite
