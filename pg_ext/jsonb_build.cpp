// The core's headers first: nlohmann-json before Postgres's snprintf macro.
#include "core/errors.hpp"

#include "jsonb_build.hpp"

extern "C" {
#include "fmgr.h"
#include "utils/fmgrprotos.h"
}

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <forward_list>
#include <string_view>
#include <vector>

#include "pg_guard.hpp"

namespace envdb::pg {

namespace {

constexpr int kMaxDepth = 64;

// Printable ASCII but the quote and the backslash: the bytes of a string the
// reader copies as they are.
constexpr std::array<bool, 256> kPlain = [] {
  std::array<bool, 256> t{};
  for (int b = 0x20; b < 0x80; ++b) t[b] = b != '"' && b != '\\';
  return t;
}();

struct Node {
  enum class Kind : uint8_t { null, yes, no, string, number, object, array };
  Kind kind = Kind::null;
  std::string_view bytes;          // a string's bytes, or a number's Numeric varlena
  std::vector<uint32_t> children;  // arrays: elements; objects: key, value, key, value...
};

// A recursive-descent reader of one JSON value. Any failure (`ok = false`)
// hands the text to jsonb_in.
class Reader {
 public:
  explicit Reader(const std::string& text) : s_(text) {}

  bool read(std::vector<Node>& nodes) {
    skip_space();
    if (i_ >= s_.size() || (s_[i_] != '{' && s_[i_] != '[')) return false;
    if (!value(nodes, 0)) return false;
    skip_space();
    return i_ == s_.size();
  }

 private:
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }

  bool literal(const char* word) {
    const size_t n = std::strlen(word);
    if (s_.compare(i_, n, word) != 0) return false;
    i_ += n;
    return true;
  }

  static bool plain(unsigned char c) { return kPlain[c]; }

  // A string's bytes, unescaped (simple escapes only).
  bool string(std::string_view& out) {
    ++i_;  // the opening quote
    const size_t start = i_;
    const char* const data = s_.data();
    const size_t size = s_.size();
    size_t i = i_;  // a local: the member would be reloaded after every char read
    bool escaped = false;
    for (;;) {
      while (i < size && plain(static_cast<unsigned char>(data[i]))) ++i;
      if (i >= size) return false;
      if (data[i] == '"') break;
      if (data[i] != '\\') return false;  // a control character, or beyond ASCII
      escaped = true;
      i += 2;  // the escaped character is judged below
    }
    i_ = i;
    out = std::string_view(s_).substr(start, i_ - start);
    ++i_;  // the closing quote
    if (!escaped) return true;
    std::string unescaped;
    unescaped.reserve(out.size());
    for (size_t k = 0; k < out.size(); ++k) {
      char c = out[k];
      if (c == '\\') {
        switch (out[++k]) {
          case '"': c = '"'; break;
          case '\\': c = '\\'; break;
          case '/': c = '/'; break;
          case 'b': c = '\b'; break;
          case 'f': c = '\f'; break;
          case 'n': c = '\n'; break;
          case 'r': c = '\r'; break;
          case 't': c = '\t'; break;
          default: return false;  // \u, or not JSON
        }
      }
      unescaped += c;
    }
    owned_.push_front(std::move(unescaped));
    out = owned_.front();
    return true;
  }

  static bool digit(char c) { return c >= '0' && c <= '9'; }

  // A number in JSON's grammar, converted as jsonb_in converts it.
  bool number(std::string_view& out) {
    const size_t start = i_;
    if (s_[i_] == '-') ++i_;
    if (i_ >= s_.size() || !digit(s_[i_])) return false;
    if (s_[i_] == '0') {
      ++i_;
    } else {
      while (i_ < s_.size() && digit(s_[i_])) ++i_;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (i_ >= s_.size() || !digit(s_[i_])) return false;
      while (i_ < s_.size() && digit(s_[i_])) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (i_ >= s_.size() || !digit(s_[i_])) return false;
      while (i_ < s_.size() && digit(s_[i_])) ++i_;
    }
    const std::string token = s_.substr(start, i_ - start);
    const char* cstr = token.c_str();
    const Datum d = guarded([&] {
      return DirectFunctionCall3(numeric_in, CStringGetDatum(cstr), ObjectIdGetDatum(InvalidOid),
                                 Int32GetDatum(-1));
    });
    const auto* bytes = reinterpret_cast<const char*>(DatumGetPointer(d));
    owned_.emplace_front(bytes, VARSIZE_ANY(bytes));
    out = owned_.front();
    return true;
  }

  bool value(std::vector<Node>& nodes, int depth) {
    skip_space();
    if (i_ >= s_.size()) return false;
    const auto at = static_cast<uint32_t>(nodes.size());
    nodes.emplace_back();
    const char c = s_[i_];
    if (c == '{' || c == '[') {
      if (depth >= kMaxDepth) return false;
      const bool object = c == '{';
      const char close = object ? '}' : ']';
      nodes[at].kind = object ? Node::Kind::object : Node::Kind::array;
      nodes[at].children.reserve(object ? 32 : 8);
      ++i_;
      skip_space();
      if (i_ < s_.size() && s_[i_] == close) {
        ++i_;
        return true;
      }
      for (;;) {
        if (object) {
          skip_space();
          if (i_ >= s_.size() || s_[i_] != '"') return false;
          const auto key = static_cast<uint32_t>(nodes.size());
          nodes.emplace_back();
          nodes[key].kind = Node::Kind::string;
          std::string_view bytes;
          if (!string(bytes)) return false;
          nodes[key].bytes = bytes;
          nodes[at].children.push_back(key);
          skip_space();
          if (i_ >= s_.size() || s_[i_] != ':') return false;
          ++i_;
        }
        nodes[at].children.push_back(static_cast<uint32_t>(nodes.size()));
        if (!value(nodes, depth + 1)) return false;
        skip_space();
        if (i_ >= s_.size()) return false;
        if (s_[i_] == close) {
          ++i_;
          return true;
        }
        if (s_[i_] != ',') return false;
        ++i_;
      }
    }
    Node::Kind kind = Node::Kind::null;
    std::string_view bytes;
    if (c == '"') {
      kind = Node::Kind::string;
      if (!string(bytes)) return false;
    } else if (c == '-' || digit(c)) {
      kind = Node::Kind::number;
      if (!number(bytes)) return false;
    } else if (literal("null")) {
      kind = Node::Kind::null;
    } else if (literal("true")) {
      kind = Node::Kind::yes;
    } else if (literal("false")) {
      kind = Node::Kind::no;
    } else {
      return false;
    }
    nodes[at].kind = kind;
    nodes[at].bytes = bytes;
    return true;
  }

  const std::string& s_;
  size_t i_ = 0;
  // Unescaped strings and Numerics, at stable addresses (and no allocation
  // while there are none, the usual case).
  std::forward_list<std::string> owned_;
};

// The binary form, laid out as PostgreSQL's convertJsonbValue lays it out:
// every container starts int-aligned (the padding counts as its data), its
// header, then one JEntry per child (an object: all keys, then all values),
// then the children's data; every 32nd JEntry holds an end offset, the others
// a length.
class Writer {
 public:
  explicit Writer(const std::vector<Node>& nodes) : nodes_(nodes) {}

  bool write(std::string& out) {
    out.assign(VARHDRSZ, '\0');  // the varlena header, set by the caller
    uint32_t root = 0;
    return container(out, nodes_[0], root);
  }

 private:
  static void put(std::string& buf, size_t at, uint32_t v) { std::memcpy(&buf[at], &v, sizeof v); }

  static uint32_t pad(std::string& buf) {
    const size_t n = (4 - buf.size() % 4) % 4;
    buf.append(n, '\0');
    return static_cast<uint32_t>(n);
  }

  bool scalar(std::string& buf, const Node& n, uint32_t& entry) {
    switch (n.kind) {
      case Node::Kind::null: entry = JENTRY_ISNULL; return true;
      case Node::Kind::yes: entry = JENTRY_ISBOOL_TRUE; return true;
      case Node::Kind::no: entry = JENTRY_ISBOOL_FALSE; return true;
      case Node::Kind::string:
        if (n.bytes.size() > JENTRY_OFFLENMASK) return false;
        buf.append(n.bytes);
        entry = static_cast<uint32_t>(n.bytes.size());
        return true;
      case Node::Kind::number: {
        const uint32_t padding = pad(buf);
        buf.append(n.bytes);
        entry = JENTRY_ISNUMERIC | (padding + static_cast<uint32_t>(n.bytes.size()));
        return true;
      }
      default: return container(buf, n, entry);
    }
  }

  // One child's JEntry into the slot at `slot`; index counts keys and values.
  static bool entry(std::string& buf, size_t slot, size_t index, uint32_t meta, uint32_t& total) {
    total += meta & JENTRY_OFFLENMASK;
    if (total > JENTRY_OFFLENMASK) return false;
    if (index % JB_OFFSET_STRIDE == 0) meta = (meta & JENTRY_TYPEMASK) | total | JENTRY_HAS_OFF;
    put(buf, slot, meta);
    return true;
  }

  bool container(std::string& buf, const Node& n, uint32_t& header) {
    const size_t base = buf.size();
    pad(buf);
    const bool object = n.kind == Node::Kind::object;
    const size_t count = object ? n.children.size() / 2 : n.children.size();
    if (count > JB_CMASK) return false;
    const size_t at = buf.size();
    buf.append(4 + 4 * n.children.size(), '\0');
    put(buf, at, static_cast<uint32_t>(count) | (object ? JB_FOBJECT : JB_FARRAY));
    size_t slot = at + 4;
    uint32_t total = 0;
    if (object) {
      // Keys by length, then bytes; a repeated key goes to jsonb_in (which
      // keeps the last value).
      std::vector<uint32_t> order(count);
      for (size_t k = 0; k < count; ++k) order[k] = static_cast<uint32_t>(k);
      auto key = [&](uint32_t k) { return nodes_[n.children[2 * k]].bytes; };
      auto before = [&](uint32_t a, uint32_t b) {
        const std::string_view x = key(a), y = key(b);
        return x.size() != y.size() ? x.size() < y.size() : x < y;
      };
      std::sort(order.begin(), order.end(), before);
      for (size_t k = 1; k < count; ++k)
        if (key(order[k - 1]) == key(order[k])) return false;
      for (size_t k = 0; k < count; ++k, slot += 4) {
        uint32_t meta = 0;
        if (!scalar(buf, nodes_[n.children[2 * order[k]]], meta) ||
            !entry(buf, slot, k, meta, total))
          return false;
      }
      for (size_t k = 0; k < count; ++k, slot += 4) {
        uint32_t meta = 0;
        if (!scalar(buf, nodes_[n.children[2 * order[k] + 1]], meta) ||
            !entry(buf, slot, k + count, meta, total))
          return false;
      }
    } else {
      for (size_t k = 0; k < count; ++k, slot += 4) {
        uint32_t meta = 0;
        if (!scalar(buf, nodes_[n.children[k]], meta) || !entry(buf, slot, k, meta, total))
          return false;
      }
    }
    const size_t length = buf.size() - base;
    if (length > JENTRY_OFFLENMASK) return false;
    header = JENTRY_ISCONTAINER | static_cast<uint32_t>(length);
    return true;
  }

  const std::vector<Node>& nodes_;
};

}  // namespace

Jsonb* jsonb_from_text(const std::string& text) {
  std::vector<Node> nodes;
  nodes.reserve(32);
  std::string binary;
  {
    Reader reader(text);
    if (!reader.read(nodes)) return nullptr;
    binary.reserve(text.size() + 8 * nodes.size() + 16);
    if (!Writer(nodes).write(binary)) return nullptr;
  }  // the reader owns the unescaped strings and Numerics the writer copied
  const char* data = binary.data();
  const size_t size = binary.size();
  return guarded([&] {
    auto* jb = static_cast<Jsonb*>(palloc(size));
    std::memcpy(jb, data, size);
    SET_VARSIZE(jb, size);
    return jb;
  });
}

}  // namespace envdb::pg
