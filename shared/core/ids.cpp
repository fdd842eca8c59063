#include "core/ids.hpp"

#include <openssl/rand.h>

#include <cstdio>
#include <mutex>

#include "core/clock.hpp"
#include "core/errors.hpp"

namespace envdb {

namespace {
// RFC 9562 "fixed-length dedicated counter" (method 1): the 12 rand_a bits
// count up within one millisecond, so ids sort in creation order within a
// process; on overflow the timestamp borrows the next millisecond.
struct Clock {
  std::mutex mutex;
  uint64_t last_ms = 0;
  unsigned counter = 0;
};
Clock& id_clock() {
  static Clock clock;
  return clock;
}
}  // namespace

std::string new_uuid_v7() {
  unsigned char b[16];
  if (RAND_bytes(b + 6, 10) != 1) throw Error(Code::internal, "the random generator failed");
  uint64_t ms = static_cast<uint64_t>(now_ms());
  unsigned counter;
  {
    Clock& clock = id_clock();
    std::lock_guard<std::mutex> lock(clock.mutex);
    if (ms > clock.last_ms) {
      clock.last_ms = ms;
      clock.counter = (static_cast<unsigned>(b[6]) << 4 | (b[7] >> 4)) &
                      0x7ff;  // random start, room to count
    } else if (++clock.counter > 0xfff) {
      ++clock.last_ms;
      clock.counter = 0;
    }
    ms = clock.last_ms;
    counter = clock.counter;
  }
  b[6] = static_cast<unsigned char>(counter >> 8);
  b[7] = static_cast<unsigned char>(counter & 0xff);
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>(0x70 | (b[6] & 0x0f));
  b[8] = static_cast<unsigned char>(0x80 | (b[8] & 0x3f));
  char out[37];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

std::string database_name_for(const std::string& uuid_text) {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::string bits;
  unsigned char bytes[16];
  int n = 0;
  for (size_t i = 0; i + 1 < uuid_text.size() && n < 16;) {
    if (uuid_text[i] == '-') {
      ++i;
      continue;
    }
    unsigned v = 0;
    if (std::sscanf(uuid_text.c_str() + i, "%2x", &v) != 1)
      throw Error(Code::internal, "database_name_for needs a UUID");
    bytes[n++] = static_cast<unsigned char>(v);
    i += 2;
  }
  if (n != 16) throw Error(Code::internal, "database_name_for needs a UUID");
  std::string out = "env-";
  // 128 bits -> 26 groups of 5 bits (the last group padded with zeros).
  for (int group = 0; group < 26; ++group) {
    unsigned value = 0;
    for (int bit = 0; bit < 5; ++bit) {
      const int pos = group * 5 + bit;
      const unsigned b = pos < 128 ? (bytes[pos / 8] >> (7 - pos % 8)) & 1u : 0u;
      value = (value << 1) | b;
    }
    out += kAlphabet[value];
  }
  return out;
}

bool is_valid_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(id[0])) return false;
  for (char c : id)
    if (!alnum(c) && c != '_' && c != '.' && c != ':' && c != '-') return false;
  return true;
}

bool is_valid_slug(const std::string& slug) {
  if (slug.empty() || slug.size() > 63) return false;
  auto lower_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_digit(slug[0])) return false;
  for (char c : slug)
    if (!lower_digit(c) && c != '-') return false;
  return true;
}

void require_id(const std::string& field, const std::string& id) {
  if (!is_valid_id(id))
    fail(Code::invalid_parameter,
         field + " " + quote_value(id) +
             " is not a valid id (letters, digits and _.:- , at most 128, starting with a letter "
             "or digit)");
}

void require_slug(const std::string& field, const std::string& slug) {
  if (!is_valid_slug(slug))
    fail(Code::invalid_parameter,
         field + " " + quote_value(slug) +
             " is not a valid slug (lowercase letters, digits and '-', 1 to 63 characters, "
             "starting with a letter or digit)");
}

}  // namespace envdb
