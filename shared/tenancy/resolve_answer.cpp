#include "tenancy/resolve_answer.hpp"

#include <openssl/crypto.h>

#include "core/json.hpp"

namespace envdb::resolve_answer {

namespace {

void append_member(std::string& out, const char* key_and_colon, const Value& v) {
  out += key_and_colon;
  if (auto s = std::get_if<std::string>(&v))
    append_string(out, *s);
  else
    out += "null";
}

}  // namespace

void append_string(std::string& out, std::string_view s) {
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x80) continue;
    // Beyond ASCII: nlohmann validates the UTF-8 (throwing on a bad
    // sequence) and writes it. Its copies are wiped, a token's included.
    Json j = std::string(s);
    std::string text = j.dump();
    out += text;
    OPENSSL_cleanse(text.data(), text.size());
    std::string& inner = j.get_ref<std::string&>();
    OPENSSL_cleanse(inner.data(), inner.size());
    return;
  }
  out += '"';
  size_t run = 0;  // start of the bytes not yet copied
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        static const char kHex[] = "0123456789abcdef";
        const char escape[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        out.append(escape, sizeof escape);
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

Parts parts(const Fields& f) {
  Parts p;
  p.head.reserve(512);
  p.head += "{\"environmentId\":";
  append_string(p.head, f.environment_id);
  append_member(p.head, ",\"organizationId\":", f.organization_id);
  append_member(p.head, ",\"envType\":", f.env_type);
  p.head += ",\"status\":";
  append_string(p.head, f.status);
  append_member(p.head, ",\"driver\":", f.driver);
  append_member(p.head, ",\"databaseName\":", f.database_name);
  append_member(p.head, ",\"databaseUrl\":", f.database_url);
  append_member(p.head, ",\"region\":", f.region);
  p.head += ",\"maxPageCount\":";
  p.head += f.max_page_count ? std::to_string(*f.max_page_count) : std::string("null");
  append_member(p.head, R"(,"credential":{"id":)", f.credential_id);
  p.head += ",\"scope\":";
  append_string(p.head, f.scope);
  append_member(p.head, ",\"username\":", f.username);
  p.head += ",\"token\":";
  append_member(p.tail, ",\"expiresAt\":", f.expires_at);
  p.tail += "}}";
  return p;
}

std::string join(std::string_view head, std::string_view token, std::string_view tail) {
  std::string out;
  // A token is escaped to at most six bytes per byte (\u00XX).
  out.reserve(head.size() + token.size() * 6 + 2 + tail.size());
  out += head;
  append_string(out, token);
  out += tail;
  return out;
}

}  // namespace envdb::resolve_answer
