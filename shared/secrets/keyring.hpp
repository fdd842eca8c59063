// The keyring: named 32-byte key-encryption keys that live outside the
// database (a key file, a key command, or keys added per connection), and the
// active key new ciphertexts are sealed with. Key bytes never leave it except
// through key()/active_key(), and are wiped when it is cleared or destroyed.
#pragma once
#include "core/cpp_only.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "secrets/crypto.hpp"

namespace envdb {

class Keyring {
 public:
  Keyring() = default;
  Keyring(Keyring&&) = default;
  Keyring& operator=(Keyring&&) = default;
  Keyring(const Keyring&) = delete;
  Keyring& operator=(const Keyring&) = delete;

  // Throws invalid_parameter for an id not matching ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$
  // or a key that is not 32 bytes, and conflict when the id is already loaded
  // with different bytes (the same bytes again are accepted). The first key
  // added to an empty keyring becomes active; later ones need use().
  void add(const std::string& kms_key_id, crypto::SecretBytes key);
  // Throws key_unavailable when the id is not loaded.
  void use(const std::string& kms_key_id);

  const std::string& active_id() const;  // empty when no key is loaded
  // Throw key_unavailable, naming the id that is not loaded / when the keyring is empty.
  const crypto::SecretBytes& key(const std::string& kms_key_id) const;
  const crypto::SecretBytes& active_key() const;

  bool has(const std::string& kms_key_id) const { return find(kms_key_id) != nullptr; }
  std::vector<std::string> ids() const;  // in load order
  size_t size() const { return keys_.size(); }
  void clear();

  // Lines of `<kms_key_id> <base64 of 32 bytes>`; `#` comment lines and blank
  // lines are skipped, whitespace and CR around them ignored. The last key
  // listed is active. Errors are invalid_parameter "<source_name> line N: ...",
  // and never quote the key text.
  static Keyring parse(std::string_view text, const std::string& source_name);
  // Throws key_unavailable when the file cannot be read and, unless told
  // otherwise, permission_denied when group or others have any access to it.
  static Keyring load_file(const std::string& path, bool refuse_group_or_world_readable = true);
  // Runs the command with the shell and parses what it prints. Throws
  // key_unavailable when it does not exit with status 0.
  static Keyring from_command(const std::string& command);

 private:
  const crypto::SecretBytes* find(const std::string& kms_key_id) const;

  // A keyring holds a handful of keys, where a scan is as fast as a hash.
  std::vector<std::pair<std::string, crypto::SecretBytes>> keys_;
  size_t active_ = 0;  // index into keys_, meaningful when keys_ is not empty
};

}  // namespace envdb
