// What the SQL-level benchmark drivers (driver_sqlite.cpp, driver_pg.cpp)
// share: timing with medians, the result lines bench/report.py turns into
// tables, raw AES-256-GCM (the baseline for the sealed envelope), and the
// generator of bulk catalog rows for the scale runs.
//
// Result lines on stdout, tab-separated:
//   RESULT <section> <figure> <envdb> <baseline> <unit> <target> <note>
//   unit   us (per call or per row, lower is better) | per_s (higher is better)
//   target le:X   envdb time / baseline time <= X
//          ge:X   baseline time / envdb time >= X (envdb X times faster)
//          -      reported, no target
//   NOTE <section> <text>
#pragma once

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "secrets/crypto.hpp"

namespace bench {

// "1000,100000" -> {1000, 100000}: the drivers' size lists.
inline std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t comma = s.find(',', pos);
    out.push_back(std::stoll(s.substr(pos, comma - pos)));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}


// The keys the tests use (test/parity/hosts.py): bytes 0..31 and 32..63.
inline const char* const kKey1Id = "k1";
inline const char* const kKey1 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
inline const char* const kKey2Id = "k2";
inline const char* const kKey2 = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

inline envdb::crypto::SecretBytes key_bytes(const char* base64) {
  return envdb::crypto::SecretBytes(*envdb::crypto::base64_decode(base64));
}

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Runs `runs` rounds of both sides, alternating which goes first, and returns
// the median per-operation time in microseconds of each side. Each side's
// function runs `ops` operations and is timed as a whole.
struct Pair {
  double envdb_us;
  double baseline_us;
};
inline Pair measure_pair(int runs, int64_t ops, const std::function<void(int run)>& envdb_side,
                         const std::function<void(int run)>& baseline_side) {
  std::vector<double> a, b;
  for (int r = 0; r < runs; ++r) {
    for (int half = 0; half < 2; ++half) {
      const bool envdb_turn = (half == 0) == (r % 2 == 0);
      const auto t0 = Clock::now();
      if (envdb_turn) envdb_side(r); else baseline_side(r);
      const double us = seconds_since(t0) * 1e6 / static_cast<double>(ops);
      (envdb_turn ? a : b).push_back(us);
    }
  }
  return {median(a), median(b)};
}

inline double measure_one(int runs, int64_t ops, const std::function<void(int run)>& side) {
  std::vector<double> a;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = Clock::now();
    side(r);
    a.push_back(seconds_since(t0) * 1e6 / static_cast<double>(ops));
  }
  return median(a);
}

inline void result(const std::string& section, const std::string& figure, double envdb,
                   double baseline, const std::string& unit, const std::string& target,
                   const std::string& note) {
  std::printf("RESULT\t%s\t%s\t%.6g\t%.6g\t%s\t%s\t%s\n", section.c_str(), figure.c_str(), envdb,
              baseline, unit.c_str(), target.c_str(), note.c_str());
  std::fflush(stdout);
}

inline void note(const std::string& section, const std::string& text) {
  std::printf("NOTE\t%s\t%s\n", section.c_str(), text.c_str());
  std::fflush(stdout);
}

inline void progress(const std::string& text) {
  std::fprintf(stderr, "  .. %s\n", text.c_str());
}

inline std::string human(int64_t n) {
  if (n >= 1000000 && n % 1000000 == 0) return std::to_string(n / 1000000) + "M";
  if (n >= 1000 && n % 1000 == 0) return std::to_string(n / 1000) + "k";
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

inline std::string fixed(double v, int decimals = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Raw AES-256-GCM with a fresh EVP context per call, in envdb's envelope
// layout (version ‖ nonce ‖ ciphertext ‖ tag): the baseline of what sealing
// and opening one token must cost.
inline bool raw_seal(const envdb::crypto::SecretBytes& key, const std::string& plain,
                     const std::string& aad, std::string& out) {
  out.assign(1 + 12 + plain.size() + 16, '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  p[0] = 1;
  if (RAND_bytes(p + 1, 12) != 1) return false;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  const auto* a = reinterpret_cast<const unsigned char*>(aad.data());
  const auto* m = reinterpret_cast<const unsigned char*>(plain.data());
  bool ok = ctx != nullptr &&
            EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.data(), p + 1) == 1 &&
            EVP_EncryptUpdate(ctx, nullptr, &len, a, static_cast<int>(aad.size())) == 1 &&
            EVP_EncryptUpdate(ctx, p + 13, &len, m, static_cast<int>(plain.size())) == 1 &&
            EVP_EncryptFinal_ex(ctx, p + 13 + len, &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, p + 13 + plain.size()) == 1;
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

inline bool raw_open(const envdb::crypto::SecretBytes& key, const std::string& envelope,
                     const std::string& aad, std::string& out) {
  if (envelope.size() < 29) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(envelope.data());
  const size_t n = envelope.size() - 29;
  out.assign(n, '\0');
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  const auto* a = reinterpret_cast<const unsigned char*>(aad.data());
  bool ok = ctx != nullptr && p[0] == 1 &&
            EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.data(), p + 1) == 1 &&
            EVP_DecryptUpdate(ctx, nullptr, &len, a, static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len, p + 13,
                              static_cast<int>(n)) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16,
                                const_cast<unsigned char*>(p + 13 + n)) == 1 &&
            EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + len, &len) == 1;
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

// The baseline of a bulk re-encryption: per row, open under the old key and
// seal under the new one with raw EVP. Returns microseconds per row (median).
inline double raw_rewrap_us_per_row(int runs, int rows) {
  const auto k1 = key_bytes(kKey1), k2 = key_bytes(kKey2);
  std::vector<std::string> envelopes(static_cast<size_t>(rows));
  std::vector<std::string> aads(static_cast<size_t>(rows));
  for (int i = 0; i < rows; ++i) {
    const std::string id = envdb::new_uuid_v7(), db = envdb::new_uuid_v7();
    aads[i] = envdb::crypto::credential_aad(id, db, "readwrite");
    raw_seal(k1, envdb::crypto::generate_token(), aads[i], envelopes[i]);
  }
  std::string plain, sealed;
  return measure_one(runs, rows, [&](int) {
    for (int i = 0; i < rows; ++i) {
      if (!raw_open(k1, envelopes[i], aads[i], plain) || !raw_seal(k2, plain, aads[i], sealed))
        throw std::runtime_error("raw rewrap failed");
    }
  });
}

// Ids, tokens and envelopes for bulk rows, made without a system call per
// value: on this kind of VM OpenSSL's RAND_bytes costs a getpid() each time,
// which would make loading a million environments take minutes. Ids are
// UUIDv7 text (48-bit millisecond time, then a counter and random bits);
// envelopes use envdb's layout (0x01 ‖ 12-byte nonce ‖ ciphertext ‖ tag) with
// a unique counter nonce per envelope and envdb's own associated data, and
// are checked against envdb::crypto::open.
class FastRows {
 public:
  explicit FastRows(const envdb::crypto::SecretBytes& key)
      : key_(key), rng_(std::random_device{}()), ctx_(EVP_CIPHER_CTX_new()) {
    seq_ = rng_() >> 4;
    nonce_prefix_ = static_cast<uint32_t>(rng_());
    ms_ = static_cast<uint64_t>(envdb::now_ms());
    if (EVP_EncryptInit_ex(ctx_, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1)
      throw std::runtime_error("EVP init failed");
  }
  ~FastRows() { EVP_CIPHER_CTX_free(ctx_); }
  FastRows(const FastRows&) = delete;
  FastRows& operator=(const FastRows&) = delete;

  std::string uuid() {
    const uint64_t s = ++seq_;
    const uint64_t r = rng_();
    char buf[48];
    std::snprintf(buf, sizeof buf, "%08llx-%04llx-7%03llx-%04llx-%012llx",
                  static_cast<unsigned long long>(ms_ >> 16), static_cast<unsigned long long>(ms_ & 0xffff),
                  static_cast<unsigned long long>((s >> 46) & 0xfff),
                  static_cast<unsigned long long>(0x8000 | ((s >> 32) & 0x3fff)),
                  static_cast<unsigned long long>(((s & 0xffffffffULL) << 16) | (r & 0xffff)));
    return buf;
  }

  std::string token() {
    static const char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string t(43, 'A');
    uint64_t bits = 0;
    int left = 0;
    for (char& ch : t) {
      if (left < 6) bits = rng_(), left = 64;
      ch = kAlphabet[bits & 63];
      bits >>= 6;
      left -= 6;
    }
    return t;
  }

  std::string seal(const std::string& plain, const std::string& aad) {
    std::string out(1 + 12 + plain.size() + 16, '\0');
    auto* p = reinterpret_cast<unsigned char*>(out.data());
    p[0] = envdb::crypto::kEnvelopeVersion;
    const uint64_t n = ++nonce_counter_;
    std::memcpy(p + 1, &nonce_prefix_, 4);
    std::memcpy(p + 5, &n, 8);
    int len = 0;
    if (EVP_EncryptInit_ex(ctx_, nullptr, nullptr, key_.data(), p + 1) != 1 ||
        EVP_EncryptUpdate(ctx_, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                          static_cast<int>(aad.size())) != 1 ||
        EVP_EncryptUpdate(ctx_, p + 13, &len, reinterpret_cast<const unsigned char*>(plain.data()),
                          static_cast<int>(plain.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx_, p + 13 + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_GET_TAG, 16, p + 13 + plain.size()) != 1)
      throw std::runtime_error("bulk seal failed");
    return out;
  }

 private:
  const envdb::crypto::SecretBytes& key_;
  std::mt19937_64 rng_;
  EVP_CIPHER_CTX* ctx_;
  uint64_t seq_ = 0, ms_ = 0, nonce_counter_ = 0;
  uint32_t nonce_prefix_ = 0;
};

// Bulk catalog rows shaped like what provisioning and complete_provisioning_job
// leave behind for an active turso environment: an organization per 10
// environments (the first one its default), the database row, and an active
// admin and readwrite credential whose token_cipher opens under k1 with the
// core's credential_aad(id, database_id, scope), like one envdb wrote.
struct Bulk {
  struct Org { std::string id, slug, name; };
  struct Env { std::string id, org_id, slug, name, env_type; bool is_default; };
  struct Db { std::string id, env_id, name, url; };
  struct Cred { std::string id, db_id, cipher, scope; };

  std::vector<Org> orgs;
  std::vector<Env> envs;
  std::vector<Db> dbs;
  std::vector<Cred> creds;
  std::string now;

  // Environments number `first` .. `first + count - 1` (the numbers name slugs).
  static Bulk make(int64_t first, int64_t count, const envdb::crypto::SecretBytes& key) {
    FastRows f(key);
    Bulk b;
    b.now = envdb::now_iso();
    b.envs.reserve(count);
    b.dbs.reserve(count);
    b.creds.reserve(count * 2);
    std::string org_id;
    for (int64_t i = first; i < first + count; ++i) {
      const int64_t o = i / 10, j = i % 10;
      if (j == 0 || org_id.empty()) {
        org_id = f.uuid();
        b.orgs.push_back({org_id, "bulk-" + std::to_string(o), "Bulk organization " + std::to_string(o)});
      }
      Env e{f.uuid(), org_id, j == 0 ? "default" : "env-" + std::to_string(j),
            "Environment " + std::to_string(i), j == 0 ? "default" : "development", j == 0};
      Db d;
      d.id = f.uuid();
      d.env_id = e.id;
      d.name = envdb::database_name_for(d.id);
      d.url = "libsql://" + d.name + ".bench.turso.io";
      for (const char* scope : {"admin", "readwrite"}) {
        Cred c;
        c.id = f.uuid();
        c.db_id = d.id;
        c.scope = scope;
        const std::string token = f.token();
        const std::string aad = envdb::crypto::credential_aad(c.id, c.db_id, c.scope);
        c.cipher = f.seal(token, aad);
        if (b.creds.empty() &&
            envdb::crypto::open(key, c.cipher, aad).view() != token)
          throw std::runtime_error("a bulk envelope does not open with envdb::crypto::open");
        b.creds.push_back(std::move(c));
      }
      b.envs.push_back(std::move(e));
      b.dbs.push_back(std::move(d));
    }
    return b;
  }
};

// Block b's slice of a sample: `calls` ids starting at b * calls, wrapping.
inline std::vector<std::string> slice(const std::vector<std::string>& s, int b, int64_t calls) {
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(calls));
  for (int64_t i = 0; i < calls; ++i)
    out.push_back(s[static_cast<size_t>((b * calls + i) % static_cast<int64_t>(s.size()))]);
  return out;
}

// `n` ids drawn uniformly (with replacement when n > ids.size()), shuffled.
inline std::vector<std::string> sample(const std::vector<std::string>& ids, size_t n,
                                       std::mt19937_64& rng) {
  std::vector<std::string> out;
  out.reserve(n);
  if (n <= ids.size()) {
    std::vector<size_t> idx(ids.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    for (size_t i = 0; i < n; ++i) {
      std::uniform_int_distribution<size_t> d(i, idx.size() - 1);
      std::swap(idx[i], idx[d(rng)]);
      out.push_back(ids[idx[i]]);
    }
  } else {
    std::uniform_int_distribution<size_t> d(0, ids.size() - 1);
    for (size_t i = 0; i < n; ++i) out.push_back(ids[d(rng)]);
  }
  return out;
}

}  // namespace bench
