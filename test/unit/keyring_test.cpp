#include "secrets/keyring.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "core/errors.hpp"
#include "test_host.hpp"

namespace envdb {
namespace {

using test::contains;
using test::error_of;

using crypto::SecretBytes;

SecretBytes bytes_of(char fill, size_t n = 32) { return SecretBytes(std::string(n, fill)); }
std::string b64(char fill, size_t n = 32) { return crypto::base64_encode(std::string(n, fill)); }

TEST(Keyring, ParsesCommentsBlanksCrlfAndActivatesTheLastKey) {
  std::string text = "# envdb keys\r\n\r\n  k1   " + b64('a') + "  \r\n\t# old key above\n" +
                     "k2\t" + b64('b') + "\n   \nk3 " + b64('c');
  Keyring ring = Keyring::parse(text, "test");
  EXPECT_EQ(ring.ids(), (std::vector<std::string>{"k1", "k2", "k3"}));
  EXPECT_EQ(ring.size(), 3u);
  EXPECT_EQ(ring.active_id(), "k3");
  EXPECT_EQ(ring.active_key().view(), std::string(32, 'c'));
  EXPECT_EQ(ring.key("k1").view(), std::string(32, 'a'));
  EXPECT_TRUE(ring.has("k2"));
  EXPECT_FALSE(ring.has("k4"));
  ring.use("k1");
  EXPECT_EQ(ring.active_key().view(), std::string(32, 'a'));
}

TEST(Keyring, UnpaddedBase64AndEmptyTextAreAccepted) {
  std::string unpadded = b64('z');
  unpadded.pop_back();  // 32 bytes encode with one '='
  EXPECT_EQ(Keyring::parse("kms:key.v1 " + unpadded, "test").size(), 1u);
  EXPECT_EQ(Keyring::parse("", "test").size(), 0u);
  EXPECT_EQ(Keyring::parse("# only a comment\n\n", "test").active_id(), "");
}

TEST(Keyring, BadLinesNameTheLineAndHideTheKeyText) {
  const std::string good = "ok " + b64('a') + "\n# comment\n";
  struct Case {
    std::string line;
    std::string secret;  // text that must not appear in the message
  };
  const Case cases[] = {
      {"lonely", "lonely"},
      {b64('s'), b64('s')},
      {"k2 " + b64('s').substr(0, 20) + "*" + b64('s').substr(21), b64('s').substr(0, 20)},
      {"k2 " + b64('s') + " extra", b64('s')},
      {"k2 " + b64('s', 31), b64('s', 31)},
      {"k2 " + b64('s', 33), b64('s', 33)},
      {"-bad " + b64('s'), b64('s')},
      {"bad/id " + b64('s'), b64('s')},
      {std::string(129, 'i') + " " + b64('s'), b64('s')},
      {"ok " + b64('s'), b64('s')},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.line);
    Error e = error_of([&] { Keyring::parse(good + c.line + "\n", "keys.txt"); });
    std::string message = e.what();
    EXPECT_EQ(e.code(), Code::invalid_parameter);
    EXPECT_TRUE(contains(message, "invalid_parameter: keys.txt line 3: ")) << message;
    EXPECT_FALSE(contains(message, c.secret)) << message;
  }
  EXPECT_TRUE(contains(error_of([&] { Keyring::parse(good + "k2 " + b64('s', 31), "f"); }).what(),
                       "got 31"));
  EXPECT_TRUE(contains(error_of([&] { Keyring::parse(good + "ok " + b64('a'), "f"); }).what(),
                       "'ok' is listed twice"));
}

TEST(Keyring, AddValidatesAndDetectsConflicts) {
  Keyring ring;
  EXPECT_EQ(ring.active_id(), "");
  ring.add("first", bytes_of('a'));
  ring.add("second", bytes_of('b'));
  EXPECT_EQ(ring.active_id(), "first");  // only the first key added becomes active
  ring.add("first", bytes_of('a'));      // same bytes again: accepted
  EXPECT_EQ(ring.size(), 2u);
  EXPECT_EQ(error_of([&] { ring.add("first", bytes_of('x')); }).code(), Code::conflict);
  EXPECT_EQ(ring.key("first").view(), std::string(32, 'a'));

  Error bad_id = error_of([&] { ring.add("", bytes_of('a')); });
  EXPECT_EQ(bad_id.code(), Code::invalid_parameter);
  EXPECT_TRUE(contains(bad_id.what(), "kms_key_id"));
  for (size_t n : {0, 16, 31, 33}) {
    Error bad_key = error_of([&] { ring.add("k", bytes_of('a', n)); });
    EXPECT_EQ(bad_key.code(), Code::invalid_parameter);
    EXPECT_TRUE(contains(bad_key.what(), "key must be exactly 32 bytes")) << bad_key.what();
  }
  ring.add(std::string(128, 'L'), bytes_of('c'));
  EXPECT_EQ(error_of([&] { ring.add(std::string(129, 'L'), bytes_of('c')); }).code(),
            Code::invalid_parameter);
}

TEST(Keyring, UnknownIdsAreKeyUnavailable) {
  Keyring ring;
  Error none = error_of([&] { ring.active_key(); });
  EXPECT_EQ(none.code(), Code::key_unavailable);
  EXPECT_TRUE(contains(none.what(), "no active key")) << none.what();
  ring.add("k1", bytes_of('a'));
  Error use = error_of([&] { ring.use("k9"); });
  EXPECT_EQ(use.code(), Code::key_unavailable);
  EXPECT_TRUE(contains(use.what(), "'k9'")) << use.what();
  EXPECT_EQ(ring.active_id(), "k1");
  Error lookup = error_of([&] { ring.key("k9"); });
  EXPECT_EQ(lookup.code(), Code::key_unavailable);
  EXPECT_TRUE(contains(lookup.what(), "'k9'")) << lookup.what();
  ring.clear();
  EXPECT_EQ(ring.size(), 0u);
  EXPECT_EQ(ring.active_id(), "");
  EXPECT_EQ(error_of([&] { ring.key("k1"); }).code(), Code::key_unavailable);
}

class KeyringFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/envdb_keyring_test_XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    for (const std::string& path : written_) unlink(path.c_str());
    rmdir(dir_.c_str());
  }
  std::string write(const std::string& name, const std::string& text, mode_t mode) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    chmod(path.c_str(), mode);
    written_.push_back(path);
    return path;
  }

  std::string dir_;
  std::vector<std::string> written_;
};

TEST_F(KeyringFile, PrivateFileLoads) {
  std::string path = write("keys", "a " + b64('a') + "\nb " + b64('b') + "\n", 0600);
  Keyring ring = Keyring::load_file(path);
  EXPECT_EQ(ring.ids(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ring.active_id(), "b");
}

TEST_F(KeyringFile, SharedFileIsRefused) {
  for (mode_t mode : {0644, 0640, 0604, 0620, 0602}) {
    std::string path = write("keys", "a " + b64('a') + "\n", mode);
    Error e = error_of([&] { Keyring::load_file(path); });
    EXPECT_EQ(e.code(), Code::permission_denied) << mode;
    EXPECT_TRUE(contains(e.what(), "must not be accessible by group or others (chmod 600)"));
    EXPECT_TRUE(contains(e.what(), path));
  }
  std::string path = write("keys", "a " + b64('a') + "\n", 0644);
  EXPECT_EQ(Keyring::load_file(path, false).size(), 1u);
}

TEST_F(KeyringFile, MissingFileIsKeyUnavailable) {
  Error e = error_of([&] { Keyring::load_file(dir_ + "/absent"); });
  EXPECT_EQ(e.code(), Code::key_unavailable);
  EXPECT_TRUE(contains(e.what(), "absent")) << e.what();
}

TEST_F(KeyringFile, ParseErrorsNameTheFile) {
  std::string path = write("keys", "a " + b64('a', 31) + "\n", 0600);
  Error e = error_of([&] { Keyring::load_file(path); });
  EXPECT_EQ(e.code(), Code::invalid_parameter);
  EXPECT_TRUE(contains(e.what(), path + "' line 1: ")) << e.what();
}

TEST_F(KeyringFile, CommandOutputIsParsed) {
  Keyring printed = Keyring::from_command("printf 'k1 " + b64('a') + "\\nk2 " + b64('b') + "\\n'");
  EXPECT_EQ(printed.ids(), (std::vector<std::string>{"k1", "k2"}));
  EXPECT_EQ(printed.active_id(), "k2");

  std::string path = write("keys", "# from cat\nc " + b64('c') + "\n", 0600);
  Keyring catted = Keyring::from_command("cat " + path);
  EXPECT_EQ(catted.key("c").view(), std::string(32, 'c'));
}

TEST(KeyringCommand, FailingCommandIsKeyUnavailable) {
  Error e = error_of([] { Keyring::from_command("false"); });
  EXPECT_EQ(e.code(), Code::key_unavailable);
  EXPECT_TRUE(contains(e.what(), "exited with status 1")) << e.what();

  std::string secret_output = b64('s');
  Error printed = error_of([&] { Keyring::from_command("echo k " + secret_output + "; exit 3"); });
  EXPECT_EQ(printed.code(), Code::key_unavailable);
  EXPECT_TRUE(contains(printed.what(), "exited with status 3")) << printed.what();
  EXPECT_FALSE(contains(printed.what(), secret_output));

  Error bad = error_of([] { Keyring::from_command("echo not-a-keyring-line"); });
  EXPECT_EQ(bad.code(), Code::invalid_parameter);
  EXPECT_TRUE(contains(bad.what(), "keyring command output line 1: ")) << bad.what();
}

}  // namespace
}  // namespace envdb
