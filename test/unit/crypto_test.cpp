#include "secrets/crypto.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/errors.hpp"

namespace envdb::crypto {
namespace {

std::string from_hex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return out;
}

std::string to_hex(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

SecretBytes test_key(char fill) { return SecretBytes(std::string(kKeySize, fill)); }

// Runs open and checks it fails with decrypt_failed and a message that gives
// nothing away.
void expect_decrypt_failed(const SecretBytes& key, std::string_view envelope, std::string_view aad,
                           std::string_view plaintext) {
  try {
    open(key, envelope, aad);
    ADD_FAILURE() << "open succeeded";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_EQ(e.code(), Code::decrypt_failed);
    EXPECT_EQ(message.rfind("decrypt_failed: ", 0), 0u) << message;
    EXPECT_EQ(message.find(key.view()), std::string::npos);
    EXPECT_EQ(message.find(to_hex(key.view())), std::string::npos);
    if (!plaintext.empty()) {
      EXPECT_EQ(message.find(plaintext), std::string::npos);
    }
    if (envelope.size() >= 8) {  // shorter hex could match the message by chance
      EXPECT_EQ(message.find(to_hex(envelope)), std::string::npos);
    }
  }
}

// McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", AES-256 test cases.
struct GcmVector {
  const char* name;
  const char* key;
  const char* iv;
  const char* plaintext;
  const char* aad;
  const char* ciphertext;
  const char* tag;
};

const char kKey1516[] = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
const char kPlain15[] =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
const char kCipher15[] =
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";

const GcmVector kVectors[] = {
    {"13", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"14", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "00000000000000000000000000000000", "",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"15", kKey1516, "cafebabefacedbaddecaf888", kPlain15, "", kCipher15,
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"16", kKey1516, "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

TEST(Aes256Gcm, KnownAnswerVectors) {
  for (const GcmVector& v : kVectors) {
    SCOPED_TRACE(std::string("GCM test case ") + v.name);
    SecretBytes key(from_hex(v.key));
    std::string iv = from_hex(v.iv);
    std::string plaintext = from_hex(v.plaintext);
    std::string aad = from_hex(v.aad);
    std::string sealed = aes256gcm_encrypt(key, iv, plaintext, aad);
    ASSERT_EQ(sealed.size(), plaintext.size() + kTagSize);
    EXPECT_EQ(to_hex(sealed.substr(0, plaintext.size())), v.ciphertext);
    EXPECT_EQ(to_hex(sealed.substr(plaintext.size())), v.tag);
    EXPECT_EQ(aes256gcm_decrypt(key, iv, sealed, aad).view(), plaintext);
  }
}

TEST(Aes256Gcm, BadTagAndShortInputFail) {
  SecretBytes key(from_hex(kKey1516));
  std::string iv = from_hex("cafebabefacedbaddecaf888");
  std::string sealed = aes256gcm_encrypt(key, iv, "plain", "aad");
  sealed.back() ^= 1;
  EXPECT_THROW(aes256gcm_decrypt(key, iv, sealed, "aad"), Error);
  EXPECT_THROW(aes256gcm_decrypt(key, iv, "short", "aad"), Error);
}

TEST(Aes256Gcm, WrongSizedKeyOrNonceIsInternal) {
  SecretBytes short_key(std::string(31, 'k'));
  try {
    aes256gcm_encrypt(short_key, std::string(12, 'n'), "p", "");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::internal);
  }
  try {
    aes256gcm_encrypt(test_key('k'), std::string(11, 'n'), "p", "");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::internal);
  }
}

TEST(Envelope, RoundTripAndLayout) {
  SecretBytes key = test_key('k');
  std::string aad = credential_aad("cred-1", "db-1", "readwrite");
  for (std::string plaintext :
       {std::string(), std::string("x"), generate_token(), std::string(1000, 'p')}) {
    std::string envelope = seal(key, plaintext, aad);
    ASSERT_EQ(envelope.size(), kEnvelopeOverhead + plaintext.size());
    EXPECT_EQ(static_cast<unsigned char>(envelope[0]), kEnvelopeVersion);
    EXPECT_EQ(open(key, envelope, aad).view(), plaintext);
  }
}

TEST(Envelope, FreshNonceEverySeal) {
  SecretBytes key = test_key('k');
  std::string a = seal(key, "same token", "aad");
  std::string b = seal(key, "same token", "aad");
  EXPECT_NE(a, b);
  EXPECT_NE(a.substr(1, kNonceSize), b.substr(1, kNonceSize));
}

// Nonces come from a per-thread pool filled 255 at a time: no nonce repeats
// across refills, and a forked child (a Postgres backend) never draws the
// nonces its parent holds next.
TEST(Envelope, NoNonceRepeatsAcrossPoolRefills) {
  SecretBytes key = test_key('k');
  std::set<std::string> nonces;
  for (int i = 0; i < 1000; ++i) nonces.insert(seal(key, "t", "aad").substr(1, kNonceSize));
  EXPECT_EQ(nonces.size(), 1000U);
}

TEST(Envelope, AForkedChildNeverRepeatsItsParentsNonces) {
  SecretBytes key = test_key('k');
  seal(key, "t", "aad");  // the parent's pool now holds its next nonces
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string nonces;
    for (int i = 0; i < 3; ++i) nonces += seal(key, "t", "aad").substr(1, kNonceSize);
    ssize_t n = write(fds[1], nonces.data(), nonces.size());
    _exit(n == static_cast<ssize_t>(nonces.size()) ? 0 : 1);
  }
  close(fds[1]);
  std::string from_child(3 * kNonceSize, '\0');
  size_t got = 0;
  while (got < from_child.size()) {
    ssize_t n = read(fds[0], from_child.data() + got, from_child.size() - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_EQ(got, from_child.size());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::set<std::string> ours;
  for (int i = 0; i < 3; ++i) ours.insert(seal(key, "t", "aad").substr(1, kNonceSize));
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(ours.count(from_child.substr(i * kNonceSize, kNonceSize)), 0U);
}

// Each direction's context remembers its key: alternating keys, as a rewrap
// does, must seal and open under the right one every time.
TEST(Envelope, AlternatingKeysSealAndOpenUnderTheirOwn) {
  SecretBytes k1 = test_key('a');
  SecretBytes k2 = test_key('b');
  for (int i = 0; i < 4; ++i) {
    std::string e1 = seal(k1, "one", "aad");
    std::string e2 = seal(k2, "two", "aad");
    EXPECT_EQ(open(k1, e1, "aad").view(), "one");
    expect_decrypt_failed(k1, e2, "aad", "two");
    EXPECT_EQ(open(k2, e2, "aad").view(), "two");
    expect_decrypt_failed(k2, e1, "aad", "one");
  }
}

TEST(Envelope, WrongKeyFails) {
  std::string token = generate_token();
  std::string envelope = seal(test_key('k'), token, "aad");
  expect_decrypt_failed(test_key('K'), envelope, "aad", token);
}

TEST(Envelope, EachAadFieldIsBound) {
  SecretBytes key = test_key('k');
  std::string token = generate_token();
  std::string envelope = seal(key, token, credential_aad("cred-1", "db-1", "admin"));
  expect_decrypt_failed(key, envelope, credential_aad("cred-2", "db-1", "admin"), token);
  expect_decrypt_failed(key, envelope, credential_aad("cred-1", "db-2", "admin"), token);
  expect_decrypt_failed(key, envelope, credential_aad("cred-1", "db-1", "readonly"), token);
  expect_decrypt_failed(key, envelope, "", token);
}

TEST(Envelope, AadFieldsCannotBeShifted) {
  EXPECT_NE(credential_aad("ab", "c", "d"), credential_aad("a", "bc", "d"));
  EXPECT_NE(credential_aad("a", "", "b"), credential_aad("a", "b", ""));
  EXPECT_EQ(credential_aad("a", "bc", ""),
            std::string("envdb-credential-v1") + std::string("\0\0\0\1a", 5) +
                std::string("\0\0\0\2bc", 6) + std::string("\0\0\0\0", 4));
}

TEST(Envelope, EveryFlippedBitPositionFails) {
  SecretBytes key = test_key('k');
  std::string token = generate_token();
  const std::string envelope = seal(key, token, "aad");
  for (size_t i = 0; i < envelope.size(); ++i) {
    for (int bit : {0, 7}) {
      std::string tampered = envelope;
      tampered[i] = static_cast<char>(tampered[i] ^ (1 << bit));
      SCOPED_TRACE("byte " + std::to_string(i) + " bit " + std::to_string(bit));
      expect_decrypt_failed(key, tampered, "aad", token);
    }
  }
}

TEST(Envelope, EveryTruncationFails) {
  SecretBytes key = test_key('k');
  std::string token = generate_token();
  const std::string envelope = seal(key, token, "aad");
  for (size_t len = 0; len < envelope.size(); ++len) {
    SCOPED_TRACE("length " + std::to_string(len));
    expect_decrypt_failed(key, envelope.substr(0, len), "aad", token);
  }
}

TEST(Envelope, UnknownVersionFails) {
  SecretBytes key = test_key('k');
  std::string envelope = seal(key, "token", "aad");
  envelope[0] = 0x02;
  expect_decrypt_failed(key, envelope, "aad", "token");
}

TEST(Envelope, ThreadsShareNothing) {
  SecretBytes key = test_key('k');
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        std::string token = generate_token();
        std::string aad = credential_aad(std::to_string(t), std::to_string(i), "admin");
        if (open(key, seal(key, token, aad), aad).view() != token) ++failures[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

TEST(SecretBytesTest, OwnsAndMoves) {
  std::string source = "secret";
  SecretBytes a(std::move(source));
  EXPECT_EQ(a.view(), "secret");
  SecretBytes b(std::move(a));
  EXPECT_EQ(b.view(), "secret");
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is defined as empty
  SecretBytes c(std::string_view("other"));
  c = std::move(b);
  EXPECT_EQ(c.view(), "secret");
  EXPECT_EQ(SecretBytes(size_t{4}).view(), std::string(4, '\0'));
}

TEST(Base64, KnownValuesAndRoundTrips) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("\xfb\xff"), "+/8=");
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(base64_decode("Zg==").value(), "f");
  EXPECT_EQ(base64_decode("Zg").value(), "f");
  EXPECT_EQ(base64_decode("Zm8").value(), "fo");
  EXPECT_EQ(base64_decode("Zm9vYg").value(), "foob");
  EXPECT_EQ(base64_decode("").value(), "");
  for (size_t n = 0; n < 70; ++n) {
    std::string bytes = random_bytes(n);
    std::string text = base64_encode(bytes);
    EXPECT_EQ(base64_decode(text).value(), bytes);
    while (!text.empty() && text.back() == '=') text.pop_back();
    EXPECT_EQ(base64_decode(text).value(), bytes);
  }
}

TEST(Base64, BadInputIsRejected) {
  for (const char* bad : {"Z", "Zg=", "Zg===", "Z===", "=", "==", "Zm9v=", "Zm 9v", " Zm9v",
                          "Zm9v ", "Zm9v\n", "Zm-_", "Zg==Zg==", "Zm=v", "Zm9v\xff", "!!!!"}) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
  EXPECT_FALSE(base64_decode(std::string_view("Zm\0v", 4)).has_value());
}

TEST(Token, Is43Base64UrlCharacters) {
  std::string a = generate_token();
  EXPECT_EQ(a.size(), 43u);
  EXPECT_EQ(a.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
  EXPECT_NE(a, generate_token());
  EXPECT_EQ(random_bytes(0), "");
  EXPECT_EQ(random_bytes(33).size(), 33u);
}

// Verifiers printed by PostgreSQL 15 for `create role ... password` with
// password_encryption = 'scram-sha-256'.
TEST(Scram, MatchesPostgres) {
  const std::string pg_pw =
      "SCRAM-SHA-256$4096:35qYKgHhM+QAysVoPgYpHA==$nipSRFPiLYMiOd3GKSdWIjzQ/ofCCD+YxDt6qW+rUj0=:"
      "HDxTUvdF5jMGOrMpcP7yuTR+enK3PoyfbhGrJPXDWwk=";
  EXPECT_EQ(scram_sha256_verifier("pw", base64_decode("35qYKgHhM+QAysVoPgYpHA==").value()), pg_pw);
  const std::string pg_phrase =
      "SCRAM-SHA-256$4096:eKRY0/D+ez6/ahDV9c5LVQ==$ZTGwFz4BKoFhYXfUJHzBKJH4H3Uf8JEEbZlSEdSMe8Q=:"
      "yLes+I6KEjNSHeWaCoM9t7D85tMRdd6pgnic6o0nzzE=";
  EXPECT_EQ(scram_sha256_verifier("correct horse battery staple",
                                  base64_decode("eKRY0/D+ez6/ahDV9c5LVQ==").value(), 4096),
            pg_phrase);
  EXPECT_THROW(scram_sha256_verifier("pw", "salt", 0), Error);
}

TEST(ConstantTimeEqual, ComparesBytesAndLengths) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
}

}  // namespace
}  // namespace envdb::crypto
