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
      if (envdb_turn)
        envdb_side(r);
      else
        baseline_side(r);
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

inline void progress(const std::string& text) { std::fprintf(stderr, "  .. %s\n", text.c_str()); }

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
                  static_cast<unsigned long long>(ms_ >> 16),
                  static_cast<unsigned long long>(ms_ & 0xffff),
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
  struct Org {
    std::string id, slug, name;
  };
  struct Env {
    std::string id, org_id, slug, name, env_type;
    bool is_default;
  };
  struct Db {
    std::string id, env_id, name, url;
  };
  struct Cred {
    std::string id, db_id, cipher, scope;
  };

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
        b.orgs.push_back(
            {org_id, "bulk-" + std::to_string(o), "Bulk organization " + std::to_string(o)});
      }
      Env e{f.uuid(),
            org_id,
            j == 0 ? "default" : "env-" + std::to_string(j),
            "Environment " + std::to_string(i),
            j == 0 ? "default" : "development",
            j == 0};
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
        if (b.creds.empty() && envdb::crypto::open(key, c.cipher, aad).view() != token)
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

// ---------------------------------------------------------------- the drivers' shared run

// The options both drivers take; each driver's Options adds its own and sets
// its own defaults for the per-host sizes.
struct CommonOptions {
  std::vector<int64_t> scales{1000, 100000, 1000000};
  int runs = 5;
  int64_t calls = 1000;       // resolve calls per side per block
  int blocks = 15;            // interleaved blocks per side (median)
  int64_t sample = 5000;      // distinct random environments the blocks draw from
  int64_t prov = 300;         // catalog-only provisionings per side per run
  int64_t rotations = 10000;  // split over `runs` runs
  int rewrap_runs = 3;
  int64_t bulk_at = 50000;  // catalog size for rotations and rewraps
  std::string only = "all";
};

// Reads one `--key value` pair into `o`; false when the key is not a common one.
inline bool parse_common(const std::string& k, const std::string& v, CommonOptions& o) {
  if (k == "--scales")
    o.scales = parse_list(v);
  else if (k == "--runs")
    o.runs = std::stoi(v);
  else if (k == "--calls")
    o.calls = std::stoll(v);
  else if (k == "--blocks")
    o.blocks = std::stoi(v);
  else if (k == "--sample")
    o.sample = std::stoll(v);
  else if (k == "--prov")
    o.prov = std::stoll(v);
  else if (k == "--rotations")
    o.rotations = std::stoll(v);
  else if (k == "--rewrap-runs")
    o.rewrap_runs = std::stoi(v);
  else if (k == "--bulk-at")
    o.bulk_at = std::stoll(v);
  else if (k == "--only")
    o.only = v;
  else
    return false;
  return true;
}

// The argument loop of both drivers: common options first, then the driver's
// own (`own(k, v)` returns false for a key it does not know). False, with the
// key named on stderr, when a key is unknown.
template <class Own>
bool parse_options(int argc, char** argv, CommonOptions& o, Own own) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (!parse_common(k, v, o) && !own(k, v)) {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return false;
    }
  }
  return true;
}

// The resolve figure's timing, the same on both hosts: a correctness check
// is the driver's; here the sample `s` is cut into `blocks` blocks of `calls`
// ids, every distinct environment is resolved once first (the first resolve
// in a minute stamps last_accessed_at: timed apart, into `first_us` per
// call), both sides are warmed over the sample, and then the interleaved
// blocks are timed (measure_pair).
template <class EnvdbOne, class BaseOne>
Pair resolve_blocks(const std::vector<std::string>& s, int blocks, int64_t calls,
                    EnvdbOne envdb_one, BaseOne base_one, double& first_us) {
  std::vector<std::vector<std::string>> block;
  for (int b = 0; b < blocks; ++b) block.push_back(slice(s, b, calls));
  std::vector<std::string> distinct(s.begin(), s.end());
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  const auto tw = Clock::now();
  for (auto& id : distinct) envdb_one(id);
  first_us = seconds_since(tw) * 1e6 / static_cast<double>(distinct.size());
  for (auto& id : s) envdb_one(id), base_one(id);
  return measure_pair(
      blocks, calls,
      [&](int b) {
        for (auto& id : block[b]) envdb_one(id);
      },
      [&](int b) {
        for (auto& id : block[b]) base_one(id);
      });
}

// The rotation figure: o.rotations credentials of the active databases `dbs`
// (drawn at random), rotated one call each (`rotate(database_id, token)`, the
// token Turso would have minted), against raw open+seal per row.
template <class Rotate>
void rotation_figure(const std::string& host, const CommonOptions& o, int64_t envs,
                     const std::vector<std::string>& dbs, std::mt19937_64& rng, Rotate rotate) {
  const int64_t per_run = o.rotations / o.runs;
  const auto pick = sample(dbs, static_cast<size_t>(per_run * o.runs), rng);
  std::vector<std::string> tokens;
  for (size_t i = 0; i < pick.size(); ++i) tokens.push_back(envdb::crypto::generate_token());
  const double us = measure_one(o.runs, per_run, [&](int r) {
    for (int64_t i = 0; i < per_run; ++i) {
      const auto k = static_cast<size_t>(r * per_run + i);
      rotate(pick[k], tokens[k]);
    }
  });
  const double raw = raw_rewrap_us_per_row(o.runs, 20000);
  result(
      "Bulk",
      host + ": rotate_credential, " + human(per_run * o.runs) + " credentials at " + human(envs) +
          " environments",
      1e6 / us, 1e6 / raw, "per_s", "-",
      "one call per credential (its own transaction); baseline: raw AES-256-GCM open+seal per row");
}

// The rewrap figure: o.rewrap_runs calls re-encrypting every credential,
// alternating the target key (k1->k2->k1...); `rewrap(target)` returns the
// rows the call rewrapped.
template <class Rewrap>
void rewrap_figure(const std::string& host, const CommonOptions& o, Rewrap rewrap) {
  std::vector<double> per_row;
  int64_t rows = 0;
  for (int r = 0; r < o.rewrap_runs; ++r) {
    const std::string target = r % 2 == 0 ? kKey2Id : kKey1Id;
    const auto t0 = Clock::now();
    rows = rewrap(target);
    per_row.push_back(seconds_since(t0) * 1e6 / static_cast<double>(rows));
  }
  const double raw = raw_rewrap_us_per_row(o.runs, 20000);
  result("Bulk", host + ": rewrap_credentials, " + human(rows) + " credentials in one call",
         1e6 / median(per_row), 1e6 / raw, "per_s", "-",
         "median of " + std::to_string(o.rewrap_runs) +
             " calls (k1->k2->k1...); baseline: raw AES-256-GCM open+seal per row");
}

// The scale run of both drivers, on a driver's Scale (envs, at, and
// provision_through_envdb, bulk_load, rotations, rewraps, measure): the first
// environments through envdb's own functions, then each scale in turn loaded
// in bulk and measured, with rotations and rewraps once on a catalog of
// o.bulk_at environments; `after_measure(i)` runs after scale i is measured.
// Ends with the figures comparing the largest scale to the smallest.
template <class Scale, class After>
void run_scales(const std::string& host, const CommonOptions& o, Scale& s, bool resolve,
                After after_measure) {
  const auto t0 = Clock::now();
  s.provision_through_envdb(std::min<int64_t>(1000, o.scales.front()));
  note("Scale", host + ": the first " + human(s.envs) +
                    " environments were provisioned through envdb (provision_organization, "
                    "provision_environment, claim/complete_provisioning_job) in " +
                    std::to_string(static_cast<int>(seconds_since(t0) * 1000)) + " ms");
  bool bulk_done = false;
  for (size_t i = 0; i < o.scales.size(); ++i) {
    if (!bulk_done && o.bulk_at <= o.scales[i]) {
      // Rotations and rewraps on a catalog of bulk_at environments.
      if (s.envs < o.bulk_at) s.bulk_load(o.bulk_at);
      if (o.rotations > 0) s.rotations();
      if (o.rewrap_runs > 0) s.rewraps();
      bulk_done = true;
    }
    if (s.envs < o.scales[i]) s.bulk_load(o.scales[i]);
    s.measure();
    after_measure(i);
  }
  if (resolve && o.scales.size() >= 2) {
    const int64_t lo = o.scales.front(), hi = o.scales.back();
    const auto a = s.at[lo], b = s.at[hi];
    result("Scale",
           host + ": resolve_environment at " + human(hi) + " vs " + human(lo) + " environments",
           b.envdb_us, a.envdb_us, "us", "le:1.3",
           "envdb column: per call at " + human(hi) + "; baseline column: per call at " +
               human(lo));
    result("Scale",
           host + ": hand-written SELECT at " + human(hi) + " vs " + human(lo) + " environments",
           b.baseline_us, a.baseline_us, "us", "-",
           "for reference: what the index probe alone does");
  }
}

}  // namespace bench
