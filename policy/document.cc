#include "policy/document.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <optional>
#include <sstream>
#include <unordered_map>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <stdexcept>

#include "policy/path.h"

namespace hybrid_guard::policy {

namespace {

using nlohmann::json;

struct LimitExceeded : std::runtime_error {
  LimitExceeded(std::string message, int at) : std::runtime_error(std::move(message)), line(at) {}
  int line;
};

bool isOneOf(const std::string& s, std::initializer_list<const char*> options) {
  for (const char* o : options) {
    if (s == o) return true;
  }
  return false;
}

bool parseInteger(std::string_view digits, int base, bool negative, json& out) {
  if (digits.empty()) return false;
  unsigned long long value = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return false;
  if (negative) {
    if (value > static_cast<unsigned long long>(INT64_MAX) + 1ULL) return false;
    out = value == static_cast<unsigned long long>(INT64_MAX) + 1ULL ? INT64_MIN
                                                                     : -static_cast<int64_t>(value);
  } else if (value <= static_cast<unsigned long long>(INT64_MAX)) {
    out = static_cast<int64_t>(value);
  } else {
    out = value;
  }
  return true;
}

bool isFloatSyntax(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  size_t digitsBefore = 0, digitsAfter = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digitsBefore;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digitsAfter;
  }
  if (digitsBefore + digitsAfter == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exp = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++exp;
    if (exp == 0) return false;
  }
  return i == s.size();
}

// Builds JSON straight from yaml-cpp's parser events: no intermediate node tree, and every limit
// (depth, node count, duplicate keys) checked as the document streams in.
class YamlBuilder : public YAML::EventHandler {
 public:
  YamlBuilder(const ParseLimits& limits, std::vector<Document>& docs)
      : limits_(limits), docs_(docs) {}

  void OnDocumentStart(const YAML::Mark& mark) override {
    // yaml-cpp can stop advancing: on a stray ',' it starts one empty document after another at
    // the same place, forever. Documents start strictly one after another in valid YAML.
    if (lastDocumentStart_ && mark.pos <= *lastDocumentStart_) {
      throw LimitExceeded("malformed YAML: the parser cannot get past this point (a stray ','?)",
                          mark.line + 1);
    }
    lastDocumentStart_ = mark.pos;
    stack_.clear();
    anchors_.clear();
    current_ = Document();
    hasRoot_ = false;
  }

  void OnDocumentEnd() override {
    if (hasRoot_ && !current_.value.is_null()) docs_.push_back(std::move(current_));
  }

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    place(mark, nullptr, anchor, 1);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) throw LimitExceeded("unknown alias", mark.line + 1);
    place(mark, json(it->second.value), 0, it->second.nodes);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    // "!" marks a quoted or block scalar: always a string.
    if (tag == "!" || tag == "tag:yaml.org,2002:str") {
      place(mark, value, anchor, 1);
    } else {
      place(mark, resolvePlainScalar(value), anchor, 1);
    }
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, json::array(), anchor);
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, json::object(), anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Frame {
    json* node;
    std::string pointer;  // only while within lineDepth
    std::string key;
    bool expectKey = true;
    YAML::anchor_t anchor = 0;
    size_t nodesAtStart = 0;
  };
  struct Anchored {
    json value;
    size_t nodes;
  };

  int depth() const { return static_cast<int>(stack_.size()); }

  // Puts a value where the parser is: the root, the next list item, or a map key or value.
  // Returns the placed node, or null when the value was a map key.
  json* place(const YAML::Mark& mark, json&& value, YAML::anchor_t anchor, size_t nodes) {
    nodes_ += nodes;
    if (nodes_ > limits_.maxNodes) {
      throw LimitExceeded("more than " + std::to_string(limits_.maxNodes) +
                              " nodes (aliases expanding without bound?)",
                          mark.line + 1);
    }
    json* placed;
    std::string pointer;
    if (stack_.empty()) {
      hasRoot_ = true;
      current_.value = std::move(value);
      current_.line = mark.line + 1;
      placed = &current_.value;
    } else {
      Frame& top = stack_.back();
      if (top.node->is_object() && top.expectKey) {
        if (!value.is_string() && !value.is_number() && !value.is_boolean()) {
          throw LimitExceeded("a mapping key must be a scalar", mark.line + 1);
        }
        top.key = value.is_string() ? value.get<std::string>() : value.dump();
        if (top.node->contains(top.key)) {
          throw LimitExceeded("duplicate key \"" + top.key + "\"", mark.line + 1);
        }
        top.expectKey = false;
        return nullptr;
      }
      bool track = depth() <= limits_.lineDepth;
      if (top.node->is_array()) {
        if (track) pointer = top.pointer + "/" + std::to_string(top.node->size());
        top.node->push_back(std::move(value));
        placed = &top.node->back();
      } else {
        if (track) pointer = top.pointer + "/" + escapeJsonPointerToken(top.key);
        placed = &((*top.node)[top.key] = std::move(value));
        top.expectKey = true;
      }
    }
    if (depth() <= limits_.lineDepth) current_.lines.emplace(pointer, mark.line + 1);
    if (anchor != 0 && !placed->is_structured()) anchors_[anchor] = {*placed, 1};
    lastPointer_ = std::move(pointer);
    return placed;
  }

  void open(const YAML::Mark& mark, json&& container, YAML::anchor_t anchor) {
    if (depth() >= limits_.maxDepth) {
      throw LimitExceeded("nesting deeper than " + std::to_string(limits_.maxDepth) + " levels",
                          mark.line + 1);
    }
    if (!stack_.empty() && stack_.back().node->is_object() && stack_.back().expectKey) {
      throw LimitExceeded("a mapping key must be a scalar", mark.line + 1);
    }
    size_t before = nodes_;
    json* node = place(mark, std::move(container), 0, 1);
    stack_.push_back({node,
                      depth() < limits_.lineDepth ? lastPointer_ : std::string(),
                      {},
                      true,
                      anchor,
                      before});
  }

  void close() {
    Frame top = std::move(stack_.back());
    stack_.pop_back();
    if (top.anchor != 0) anchors_[top.anchor] = {*top.node, nodes_ - top.nodesAtStart};
  }

  const ParseLimits& limits_;
  std::vector<Document>& docs_;
  Document current_;
  bool hasRoot_ = false;
  std::vector<Frame> stack_;
  std::unordered_map<YAML::anchor_t, Anchored> anchors_;
  std::string lastPointer_;
  size_t nodes_ = 0;
  std::optional<int> lastDocumentStart_;
};

// Counts newlines as nlohmann's lexer consumes characters, so SAX events know their line.
class CountingIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  CountingIterator() = default;
  CountingIterator(const char* p, int* line) : p_(p), line_(line) {}
  reference operator*() const { return *p_; }
  CountingIterator& operator++() {
    if (*p_ == '\n') ++*line_;
    ++p_;
    return *this;
  }
  CountingIterator operator++(int) {
    auto copy = *this;
    ++*this;
    return copy;
  }
  bool operator==(const CountingIterator& o) const { return p_ == o.p_; }
  bool operator!=(const CountingIterator& o) const { return p_ != o.p_; }

 private:
  const char* p_ = nullptr;
  int* line_ = nullptr;
};

// Builds the DOM like nlohmann's own parser, and also enforces limits, refuses duplicate keys
// and records lines.
class JsonSaxBuilder : public nlohmann::json_sax<json> {
 public:
  JsonSaxBuilder(const ParseLimits& limits, const int* line, LineIndex& lines)
      : limits_(limits), line_(line), lines_(lines) {}

  json result;
  std::string error;
  int errorLine = 0;

  bool null() override { return value(nullptr); }
  bool boolean(bool v) override { return value(v); }
  bool number_integer(number_integer_t v) override { return value(v); }
  bool number_unsigned(number_unsigned_t v) override { return value(v); }
  bool number_float(number_float_t v, const string_t&) override { return value(v); }
  bool string(string_t& v) override { return value(std::move(v)); }
  bool binary(binary_t&) override { return fail("binary values are not JSON"); }

  bool start_object(std::size_t) override { return open(json::object()); }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(json::array()); }
  bool end_array() override { return close(); }

  bool key(string_t& k) override {
    json& obj = *stack_.back().node;
    if (obj.contains(k)) return fail("duplicate key \"" + k + "\"");
    stack_.back().key = k;
    return true;
  }

  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    if (error.empty()) {
      error = ex.what();
      // Drop nlohmann's "[json.exception.parse_error.101] " prefix: users need the reason.
      if (auto pos = error.find("] "); pos != std::string::npos) error = error.substr(pos + 2);
      errorLine = *line_;
    }
    return false;
  }

 private:
  struct Frame {
    json* node;
    std::string pointer;
    std::string key;
  };

  std::string childPointer() const {
    const Frame& top = stack_.back();
    if (top.node->is_array()) return top.pointer + "/" + std::to_string(top.node->size());
    return top.pointer + "/" + escapeJsonPointerToken(top.key);
  }

  json* place(json&& v, std::string& pointer) {
    if (++nodes_ > limits_.maxNodes) {
      fail("more than " + std::to_string(limits_.maxNodes) + " nodes");
      return nullptr;
    }
    if (stack_.empty()) {
      pointer.clear();
      result = std::move(v);
      if (limits_.lineDepth >= 0) lines_.emplace("", *line_);
      return &result;
    }
    pointer = childPointer();
    if (static_cast<int>(stack_.size()) <= limits_.lineDepth) lines_.emplace(pointer, *line_);
    json& parent = *stack_.back().node;
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    return &(parent[stack_.back().key] = std::move(v));
  }

  bool value(json&& v) {
    std::string pointer;
    return place(std::move(v), pointer) != nullptr;
  }

  bool open(json&& container) {
    if (static_cast<int>(stack_.size()) >= limits_.maxDepth) {
      return fail("nesting deeper than " + std::to_string(limits_.maxDepth) + " levels");
    }
    std::string pointer;
    json* node = place(std::move(container), pointer);
    if (!node) return false;
    stack_.push_back({node, std::move(pointer), {}});
    return true;
  }

  bool close() {
    stack_.pop_back();
    return true;
  }

  bool fail(std::string message) {
    if (error.empty()) {
      error = std::move(message);
      errorLine = *line_;
    }
    return false;
  }

  const ParseLimits& limits_;
  const int* line_;
  LineIndex& lines_;
  std::vector<Frame> stack_;
  size_t nodes_ = 0;
};

// A single-pass reader for the common case: valid JSON. It builds the same DOM as JsonSaxBuilder
// over nlohmann's parser (integers as int64 when negative, uint64 otherwise, floats by strtod,
// duplicate keys and limits refused) but accepts only what that path accepts and what checkText
// passes: anything else, or anything unusual (an integer that overflows, a very long number),
// makes it give up, and the full path reads the text again to report the error exactly as it
// always has. It never produces a document the full path would not. Lines, when wanted, are those
// of the nodes' first characters.
class FastJsonReader {
 public:
  FastJsonReader(std::string_view text, const ParseLimits& limits)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()), limits_(limits) {}

  // `keep` null: the whole document. No lines are recorded.
  bool read(json& out, const KeepSchema* keep = nullptr) {
    skipSpace();
    if (!value(out, 0, keep)) return false;
    skipSpace();
    return p_ == end_;
  }

  // The whole document, and the lines of its nodes up to limits.lineDepth deep.
  bool read(Document& doc) {
    lineDepth_ = limits_.lineDepth;
    if (!read(doc.value)) return false;
    // The marks come in the text's order: count the newlines between them once.
    int line = 1;
    const char* at = begin_;
    for (auto& [pointer, offset] : marks_) {
      const char* target = begin_ + offset;
      while (const void* nl = std::memchr(at, '\n', static_cast<size_t>(target - at))) {
        ++line;
        at = static_cast<const char*>(nl) + 1;
      }
      at = target;
      doc.lines.emplace(std::move(pointer), line);
    }
    auto root = doc.lines.find("");
    doc.line = root == doc.lines.end() ? 1 : root->second;
    return true;
  }

 private:
  // The index, in memory order, of the first byte of a word loaded little-endian that has a bit
  // set in `mask`.
  static size_t firstFlaggedByte(std::uint64_t mask) {
    return static_cast<size_t>(std::countr_zero(mask)) / 8;
  }
  static constexpr bool kLittleEndian = std::endian::native == std::endian::little;

  void skipSpace() {
    if (p_ != end_ && static_cast<unsigned char>(*p_) > ' ') return;
    if (end_ - p_ >= 2 && p_[0] == ' ' && static_cast<unsigned char>(p_[1]) > ' ') {
      ++p_;  // ": " and ", " in indented JSON
      return;
    }
    // Indentation comes in runs of spaces: pass them eight at a time.
    while (kLittleEndian && end_ - p_ >= 8) {
      std::uint64_t word;
      std::memcpy(&word, p_, 8);
      std::uint64_t notSpace = word ^ 0x2020202020202020ULL;
      if (notSpace == 0) {
        p_ += 8;
        continue;
      }
      p_ += firstFlaggedByte(notSpace);
      if (*p_ != '\n' && *p_ != '\r' && *p_ != '\t') return;
      ++p_;
    }
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  bool literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word)
      return false;
    p_ += word.size();
    return true;
  }

  // A schema that does not fit the value (a map named where a list is) keeps the value whole.
  static const KeepSchema* fitting(const KeepSchema* keep, KeepSchema::Kind kind) {
    return keep && keep->kind == kind ? keep : nullptr;
  }

  bool value(json& out, int depth, const KeepSchema* keep = nullptr) {
    if (++nodes_ > limits_.maxNodes || p_ == end_) return false;
    if (depth <= lineDepth_) marks_.emplace_back(pointer_, static_cast<size_t>(p_ - begin_));
    switch (*p_) {
      case '{':
        return object(out, depth, fitting(keep, KeepSchema::Kind::Object));
      case '[':
        return array(out, depth, fitting(keep, KeepSchema::Kind::Array));
      case '"': {
        out = json::string_t();
        return string(out.get_ref<json::string_t&>());
      }
      case 't':
        out = true;
        return literal("true");
      case 'f':
        out = false;
        return literal("false");
      case 'n':
        out = nullptr;
        return literal("null");
      default:
        return number(out);
    }
  }

  // `keep`: the members to build (null: all). Those not named are read by skipValue, their keys
  // kept aside to refuse duplicates as the built ones are.
  bool object(json& out, int depth, const KeepSchema* keep) {
    Open open = opening('}', depth);
    if (open == Open::Bad) return false;
    out = json::object();
    if (open == Open::Empty) return true;
    auto& members = out.get_ref<json::object_t&>();
    std::string key;
    size_t skippedFrom = skippedKeys_.size();
    while (true) {
      if (p_ == end_ || *p_ != '"') return false;
      if (keep) {
        std::string_view raw;
        if (!rawKey(raw)) return false;
        const KeepSchema* child = keep->member(raw);
        if (!child) {
          skippedKeys_.push_back(raw);
          if (!colon()) return false;
          if (!skipValue(depth + 1)) return false;
          Next next = afterItem('}');
          if (next == Next::More) continue;
          return next == Next::Done && uniqueKeys(skippedFrom);
        }
        key.assign(raw);
        if (!colon()) return false;
        size_t before = members.size();
        auto it = members.emplace_hint(members.end(), std::move(key), nullptr);
        if (members.size() == before) return false;
        if (!value(it->second, depth + 1, child)) return false;
        Next next = afterItem('}');
        if (next == Next::More) continue;
        return next == Next::Done && uniqueKeys(skippedFrom);
      }
      key.clear();
      if (!string(key)) return false;
      if (!colon()) return false;
      // Keys often arrive sorted (Go marshals maps so): a hint at the end makes those inserts
      // cheap, and a key already present leaves the size unchanged.
      size_t before = members.size();
      auto it = members.emplace_hint(members.end(), std::move(key), nullptr);
      if (members.size() == before) return false;
      if (depth < lineDepth_) {
        size_t length = pointer_.size();
        pointer_ += '/';
        pointer_ += escapeJsonPointerToken(it->first);
        bool ok = value(it->second, depth + 1);
        pointer_.resize(length);
        if (!ok) return false;
      } else if (!value(it->second, depth + 1)) {
        return false;
      }
      Next next = afterItem('}');
      if (next == Next::More) continue;
      return next == Next::Done;
    }
  }

  bool array(json& out, int depth, const KeepSchema* keep) {
    Open open = opening(']', depth);
    if (open == Open::Bad) return false;
    out = json::array();
    if (open == Open::Empty) return true;
    auto& items = out.get_ref<json::array_t&>();
    const KeepSchema* element = keep && !keep->element.empty() ? &keep->element.front() : nullptr;
    while (true) {
      items.emplace_back();
      if (depth < lineDepth_) {
        size_t length = pointer_.size();
        pointer_ += '/';
        pointer_ += std::to_string(items.size() - 1);
        bool ok = value(items.back(), depth + 1, element);
        pointer_.resize(length);
        if (!ok) return false;
      } else if (!value(items.back(), depth + 1, element)) {
        return false;
      }
      Next next = afterItem(']');
      if (next == Next::More) continue;
      return next == Next::Done;
    }
  }

  // At an object's `{` or an array's `[`: past it and the space after it; Empty when `close`
  // follows at once (then past that too), Bad past the depth limit.
  enum class Open { Bad, Empty, Items };
  Open opening(char close, int depth) {
    if (depth >= limits_.maxDepth) return Open::Bad;
    ++p_;
    skipSpace();
    if (p_ != end_ && *p_ == close) {
      ++p_;
      return Open::Empty;
    }
    return Open::Items;
  }

  // After a key: past its `:` and the space around it.
  bool colon() {
    skipSpace();
    if (p_ == end_ || *p_ != ':') return false;
    ++p_;
    skipSpace();
    return true;
  }

  // After an item of an object or array: past its `,` (More) or the closing `close` (Done).
  enum class Next { More, Done, Bad };
  Next afterItem(char close) {
    skipSpace();
    if (p_ == end_) return Next::Bad;
    if (*p_ == ',') {
      ++p_;
      skipSpace();
      return Next::More;
    }
    if (*p_ != close) return Next::Bad;
    ++p_;
    return Next::Done;
  }

  // At a key's opening quote: the key's text as written, when it has no escape and no byte that
  // string() would look at twice (anything else gives up, and the full reader takes over). A
  // plain key's text is its decoded value, so keys compare as the built ones do.
  bool rawKey(std::string_view& out) {
    const char* start = ++p_;
    while (p_ != end_) {
      auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        out = std::string_view(start, static_cast<size_t>(p_ - start));
        ++p_;
        return true;
      }
      if (c < 0x20 || c == '\\' || c >= 0x7F) return false;
      ++p_;
    }
    return false;
  }

  // Duplicates among the keys skipped since `from` (the built ones are refused as inserted).
  bool uniqueKeys(size_t from) {
    auto first = skippedKeys_.begin() + static_cast<std::ptrdiff_t>(from);
    size_t count = skippedKeys_.size() - from;
    bool unique = true;
    if (count > 1 && count <= 16) {
      for (auto i = first; unique && i != skippedKeys_.end(); ++i) {
        for (auto j = i + 1; j != skippedKeys_.end(); ++j) {
          if (*i == *j) {
            unique = false;
            break;
          }
        }
      }
    } else if (count > 16) {
      std::sort(first, skippedKeys_.end());
      unique = std::adjacent_find(first, skippedKeys_.end()) == skippedKeys_.end();
    }
    skippedKeys_.resize(from);
    return unique;
  }

  // Reads a value as value() does, with the same checks and limits, and builds nothing. Scalars
  // go through the same code as built ones.
  bool skipValue(int depth) {
    if (++nodes_ > limits_.maxNodes || p_ == end_) return false;
    switch (*p_) {
      case '{':
        return skipObject(depth);
      case '[':
        return skipArray(depth);
      case '"':
        return skipString();
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default: {
        json number;
        return this->number(number);
      }
    }
  }

  bool skipObject(int depth) {
    Open open = opening('}', depth);
    if (open != Open::Items) return open == Open::Empty;
    size_t from = skippedKeys_.size();
    while (true) {
      if (p_ == end_ || *p_ != '"') return false;
      std::string_view raw;
      if (!rawKey(raw)) return false;
      skippedKeys_.push_back(raw);
      if (!colon()) return false;
      if (!skipValue(depth + 1)) return false;
      Next next = afterItem('}');
      if (next == Next::More) continue;
      return next == Next::Done && uniqueKeys(from);
    }
  }

  bool skipArray(int depth) {
    Open open = opening(']', depth);
    if (open != Open::Items) return open == Open::Empty;
    while (true) {
      if (!skipValue(depth + 1)) return false;
      Next next = afterItem(']');
      if (next == Next::More) continue;
      return next == Next::Done;
    }
  }

  // A string as string() reads it (same checks), its text dropped.
  bool skipString() {
    ++p_;
    while (true) {
      skipPlainText();
      if (p_ == end_) return false;
      auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c == '\\') {
        scratch_.clear();
        if (!escape(scratch_)) return false;
        continue;
      }
      if (c < 0x80) return false;
      size_t length = utf8Sequence();
      if (length == 0) return false;
      p_ += length;
    }
  }

  static int hexDigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  bool hex4(unsigned& out) {
    if (end_ - p_ < 4) return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      int d = hexDigit(p_[i]);
      if (d < 0) return false;
      out = out << 4 | static_cast<unsigned>(d);
    }
    p_ += 4;
    return true;
  }

  static void appendUtf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // A well-formed UTF-8 sequence as checkText accepts it; returns its length, 0 if malformed.
  size_t utf8Sequence() const {
    return utf8SequenceLength(std::string_view(p_, static_cast<size_t>(end_ - p_)));
  }

  // Bit 7 set in each byte of the 8 that is a quote, a backslash, below 0x20 or at least 0x7F:
  // a byte that ends a plain run of string text ("Bit Twiddling Hacks", haszero/hasless). Bytes
  // above a flagged one may be flagged wrongly; the lowest flagged byte is always right.
  static std::uint64_t specialBytes(std::uint64_t w) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
    auto zeroBytes = [](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
    std::uint64_t quote = zeroBytes(w ^ (kOnes * '"'));
    std::uint64_t backslash = zeroBytes(w ^ (kOnes * '\\'));
    std::uint64_t control = (w - kOnes * 0x20) & ~w & kHigh;
    std::uint64_t del = zeroBytes(w ^ (kOnes * 0x7F));
    return quote | backslash | control | del | (w & kHigh);
  }

  // Past a run of string text that needs no look: up to a quote, a backslash, a control
  // character, or a byte of 0x7F and above (or the end).
  void skipPlainText() {
    while (kLittleEndian && end_ - p_ >= 8) {
      std::uint64_t word;
      std::memcpy(&word, p_, 8);
      if (std::uint64_t special = specialBytes(word)) {
        p_ += firstFlaggedByte(special);
        return;
      }
      p_ += 8;
    }
    while (p_ != end_) {
      auto c = static_cast<unsigned char>(*p_);
      if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7F) return;
      ++p_;
    }
  }

  // At the opening quote; appends the decoded text to `out`.
  bool string(std::string& out) {
    ++p_;
    while (true) {
      const char* run = p_;
      skipPlainText();
      out.append(run, p_);
      if (p_ == end_) return false;
      auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c == '\\') {
        if (!escape(out)) return false;
        continue;
      }
      if (c < 0x80) return false;  // a control character or DEL
      size_t length = utf8Sequence();
      if (length == 0) return false;
      out.append(p_, length);
      p_ += length;
    }
  }

  bool escape(std::string& out) {
    ++p_;
    if (p_ == end_) return false;
    char c = *p_++;
    switch (c) {
      case '"':
      case '\\':
      case '/':
        out += c;
        return true;
      case 'b':
        out += '\b';
        return true;
      case 'f':
        out += '\f';
        return true;
      case 'n':
        out += '\n';
        return true;
      case 'r':
        out += '\r';
        return true;
      case 't':
        out += '\t';
        return true;
      case 'u': {
        unsigned cp = 0;
        if (!hex4(cp)) return false;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return false;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          unsigned low = 0;
          if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
          p_ += 2;
          if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        appendUtf8(out, cp);
        return true;
      }
      default:
        return false;
    }
  }

  // JSON's number grammar, read as nlohmann reads it.
  bool number(json& out) {
    const char* start = p_;
    bool negative = false;
    if (*p_ == '-') {
      negative = true;
      ++p_;
    }
    auto digit = [this] { return p_ != end_ && *p_ >= '0' && *p_ <= '9'; };
    if (!digit()) return false;
    if (*p_ == '0') {
      ++p_;
    } else {
      while (digit()) ++p_;
    }
    bool integer = true;
    if (p_ != end_ && *p_ == '.') {
      integer = false;
      ++p_;
      if (!digit()) return false;
      while (digit()) ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      integer = false;
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digit()) return false;
      while (digit()) ++p_;
    }
    if (integer) {
      if (negative) {
        std::int64_t v = 0;
        auto [ptr, ec] = std::from_chars(start, p_, v);
        if (ec != std::errc() || ptr != p_) return false;  // overflow: let nlohmann decide
        out = v;
      } else {
        std::uint64_t v = 0;
        auto [ptr, ec] = std::from_chars(start, p_, v);
        if (ec != std::errc() || ptr != p_) return false;
        out = v;
      }
      return true;
    }
    char buffer[64];
    auto length = static_cast<size_t>(p_ - start);
    if (length >= sizeof buffer) return false;
    std::memcpy(buffer, start, length);
    buffer[length] = '\0';
    char* parsedEnd = nullptr;
    double v = std::strtod(buffer, &parsedEnd);
    if (parsedEnd != buffer + length || !std::isfinite(v)) return false;  // nlohmann refuses inf
    out = v;
    return true;
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  const ParseLimits& limits_;
  size_t nodes_ = 0;
  int lineDepth_ = -1;                                 // record lines of nodes this deep
  std::string pointer_;                                // of the node being read, when recorded
  std::vector<std::pair<std::string, size_t>> marks_;  // JSON Pointer, offset
  std::vector<std::string_view> skippedKeys_;          // a stack: the skipped keys of open objects
  std::string scratch_;                                // an escape's text, when skipped
};

// Manifests are UTF-8 text: a control character (other than tab, LF, CR) or a malformed UTF-8
// sequence means the input is not a manifest at all, so it is refused with its line.
std::optional<ParseError> checkText(std::string_view text) {
  int line = 1;
  size_t i = 0;
  auto hex = [](unsigned char c) {
    static constexpr char digits[] = "0123456789ABCDEF";
    return std::string("0x") + digits[c >> 4] + digits[c & 15];
  };
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c == '\n') {
        ++line;
      } else if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7F) {
        return ParseError{line,
                          "control character " + hex(c) + " in the input; expected UTF-8 text"};
      }
      ++i;
      continue;
    }
    size_t length = utf8SequenceLength(text.substr(i));
    if (length == 0) {
      return ParseError{line, "invalid UTF-8 (byte " + hex(c) + "); expected UTF-8 text"};
    }
    i += length;
  }
  return std::nullopt;
}

bool looksLikeJson(std::string_view text) {
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    return c == '{' || c == '[';
  }
  return false;
}

}  // namespace

Expected<std::vector<Document>, ParseError> parseJsonWithNlohmann(std::string_view text,
                                                                  const ParseLimits& limits) {
  if (auto bad = checkText(text)) {
    return Expected<std::vector<Document>, ParseError>::failure(std::move(*bad));
  }
  int line = 1;
  Document doc;
  JsonSaxBuilder builder(limits, &line, doc.lines);
  CountingIterator begin(text.data(), &line), end(text.data() + text.size(), &line);
  bool ok = json::sax_parse(begin, end, &builder);
  if (!ok || !builder.error.empty()) {
    return Expected<std::vector<Document>, ParseError>::failure(
        {builder.errorLine, builder.error.empty() ? "malformed JSON" : builder.error});
  }
  doc.value = std::move(builder.result);
  auto root = doc.lines.find("");
  doc.line = root == doc.lines.end() ? 1 : root->second;
  std::vector<Document> docs;
  docs.push_back(std::move(doc));
  return docs;
}

namespace {

Expected<std::vector<Document>, ParseError> parseYaml(std::string_view text,
                                                      const ParseLimits& limits) {
  std::vector<Document> docs;
  try {
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    YamlBuilder builder(limits, docs);
    while (parser.HandleNextDocument(builder)) {
    }
  } catch (const LimitExceeded& e) {
    return Expected<std::vector<Document>, ParseError>::failure({e.line, e.what()});
  } catch (const YAML::Exception& e) {
    return Expected<std::vector<Document>, ParseError>::failure(
        {e.mark.is_null() ? 0 : e.mark.line + 1, e.msg});
  } catch (const std::exception& e) {
    return Expected<std::vector<Document>, ParseError>::failure({0, e.what()});
  }
  return docs;
}

}  // namespace

json resolvePlainScalar(const std::string& text) {
  if (text.empty() || isOneOf(text, {"~", "null", "Null", "NULL"})) return nullptr;
  if (isOneOf(text, {"true", "True", "TRUE", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON"}))
    return true;
  if (isOneOf(text, {"false", "False", "FALSE", "n", "N", "no", "No", "NO", "off", "Off", "OFF"}))
    return false;
  std::string_view s = text;
  bool negative = false;
  std::string_view body = s;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  json number;
  if (body.size() > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X')) {
    if (parseInteger(body.substr(2), 16, negative, number)) return number;
  } else if (body.size() > 2 && body[0] == '0' && body[1] == 'o') {
    if (parseInteger(body.substr(2), 8, negative, number)) return number;
  } else if (!body.empty() && std::isdigit(static_cast<unsigned char>(body[0]))) {
    bool allDigits = body.find_first_not_of("0123456789") == std::string_view::npos;
    if (allDigits) {
      // YAML 1.1 (kubectl): a leading 0 means octal.
      if (body.size() > 1 && body[0] == '0') {
        if (parseInteger(body.substr(1), 8, negative, number)) return number;
      } else if (parseInteger(body, 10, negative, number)) {
        return number;
      }
    }
  }
  if (isFloatSyntax(s)) {
    try {
      double d = std::stod(text);
      if (std::isfinite(d)) return d;
    } catch (const std::exception&) {
    }
  }
  return text;
}

namespace {

void releaseChildren(json& node, int depth) {
  if (depth > 256) return;  // far deeper than ParseLimits allow; nlohmann's destructor copes
  if (node.is_object()) {
    auto& members = node.get_ref<json::object_t&>();
    for (auto& member : members) releaseChildren(member.second, depth + 1);
    members.clear();
  } else if (node.is_array()) {
    auto& items = node.get_ref<json::array_t&>();
    for (auto& item : items) releaseChildren(item, depth + 1);
    items.clear();
  }
}

}  // namespace

void releaseDocument(json& document) {
  releaseChildren(document, 0);
  document = nullptr;
}

KeepSchema KeepSchema::all() {
  return KeepSchema();
}

KeepSchema KeepSchema::object(std::vector<Member> members) {
  KeepSchema schema;
  schema.kind = Kind::Object;
  schema.members = std::move(members);
  return schema;
}

KeepSchema KeepSchema::array(KeepSchema element) {
  KeepSchema schema;
  schema.kind = Kind::Array;
  schema.element.push_back(std::move(element));
  return schema;
}

const KeepSchema* KeepSchema::member(std::string_view key) const {
  for (const auto& m : members) {
    if (m.name == key) return &m.schema;
  }
  return nullptr;
}

Expected<json, ParseError> parseJsonKeeping(std::string_view text, const KeepSchema& keep,
                                            const ParseLimits& limits) {
  if (text.size() <= limits.maxBytes && looksLikeJson(text)) {
    json value;
    if (FastJsonReader(text, limits).read(value, &keep)) return value;
  }
  // Refused, or unusual (an escaped key, a very long number): read whole, for the exact error.
  ParseLimits whole = limits;
  whole.lineDepth = -1;
  auto docs = parseDocuments(text, whole);
  if (!docs) return Expected<json, ParseError>::failure(std::move(docs.error()));
  if (docs->size() != 1) {  // not JSON: empty, or YAML with no or several documents
    return Expected<json, ParseError>::failure(
        ParseError{1, "expected one JSON document, found " + std::to_string(docs->size())});
  }
  return std::move(docs->front().value);
}

Expected<std::vector<Document>, ParseError> parseDocuments(std::string_view text,
                                                           const ParseLimits& limits) {
  if (text.size() > limits.maxBytes) {
    return Expected<std::vector<Document>, ParseError>::failure(
        {0, "input of " + std::to_string(text.size()) + " bytes is over the limit of " +
                std::to_string(limits.maxBytes) + " bytes"});
  }
  if (looksLikeJson(text)) {
    // The fast reader accepts only text that parseJsonWithNlohmann accepts too, and builds the
    // same document; whatever it gives up on is read again below, for the exact error.
    Document doc;
    if (FastJsonReader(text, limits).read(doc)) {
      std::vector<Document> docs;
      docs.push_back(std::move(doc));
      return docs;
    }
  }
  if (looksLikeJson(text)) return parseJsonWithNlohmann(text, limits);
  if (auto bad = checkText(text)) {
    return Expected<std::vector<Document>, ParseError>::failure(std::move(*bad));
  }
  return parseYaml(text, limits);
}

size_t utf8SequenceLength(std::string_view rest) {
  if (rest.empty()) return 0;
  auto c = static_cast<unsigned char>(rest[0]);
  if (c < 0x80) return 1;
  size_t length = c >= 0xF5 ? 0 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
  if (length == 0 || rest.size() < length) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((static_cast<unsigned char>(rest[k]) & 0xC0) != 0x80) return 0;
  }
  auto c1 = static_cast<unsigned char>(rest[1]);
  if (length == 3 && ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0))) return 0;
  if (length == 4 && ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90))) return 0;
  return length;  // (E0 < A0 and F0 < 90: overlong; ED >= A0: a surrogate; F4 >= 90: > U+10FFFF)
}

}  // namespace hybrid_guard::policy
