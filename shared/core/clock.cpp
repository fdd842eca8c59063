#include "core/clock.hpp"

#include <chrono>
#include <cstdio>
#include <cstring>

namespace envdb {

namespace {
// Howard Hinnant's civil-from-days / days-from-civil.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

bool digits(const char* s, int n, int& out) {
  out = 0;
  for (int i = 0; i < n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}
}  // namespace

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string iso_from_ms(int64_t unix_ms) {
  int64_t days = unix_ms / 86400000;
  int64_t rem = unix_ms % 86400000;
  if (rem < 0) {
    rem += 86400000;
    --days;
  }
  int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<long long>(y),
                m, d, static_cast<int>(rem / 3600000), static_cast<int>(rem / 60000 % 60),
                static_cast<int>(rem / 1000 % 60), static_cast<int>(rem % 1000));
  return buf;
}

std::optional<int64_t> ms_from_iso(const std::string& text) {
  const char* s = text.c_str();
  size_t n = text.size();
  int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
  if (n < 10 || !digits(s, 4, y) || s[4] != '-' || !digits(s + 5, 2, mo) || s[7] != '-' ||
      !digits(s + 8, 2, d))
    return std::nullopt;
  size_t i = 10;
  if (i < n && (s[i] == 'T' || s[i] == ' ')) {
    if (n < i + 9 || !digits(s + i + 1, 2, h) || s[i + 3] != ':' || !digits(s + i + 4, 2, mi) ||
        s[i + 6] != ':' || !digits(s + i + 7, 2, sec))
      return std::nullopt;
    i += 9;
    if (i < n && s[i] == '.') {
      ++i;
      int scale = 100;
      while (i < n && s[i] >= '0' && s[i] <= '9') {
        ms += (s[i] - '0') * scale;
        scale /= 10;
        ++i;
      }
    }
  }
  int offset_min = 0;
  if (i < n) {
    if (s[i] == 'Z' && i + 1 == n) {
      i = n;
    } else if (s[i] == '+' || s[i] == '-') {
      int oh = 0, om = 0;
      if (n < i + 3 || !digits(s + i + 1, 2, oh)) return std::nullopt;
      size_t j = i + 3;
      if (j < n && s[j] == ':') ++j;
      if (j < n) {
        if (n != j + 2 || !digits(s + j, 2, om)) return std::nullopt;
      }
      offset_min = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
      i = n;
    } else {
      return std::nullopt;
    }
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  return ((days * 24 + h) * 60 + mi - offset_min) * 60000LL + sec * 1000LL + ms;
}

}  // namespace envdb
