#include "policy/document.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <optional>
#include <sstream>
#include <unordered_map>

#include <charconv>
#include <cmath>
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
    size_t length = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
    if (c >= 0xF5) length = 0;
    bool valid = length > 0 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) {
      valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    }
    if (valid && length == 3) {
      auto c1 = static_cast<unsigned char>(text[i + 1]);
      valid = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);  // overlong, surrogates
    }
    if (valid && length == 4) {
      auto c1 = static_cast<unsigned char>(text[i + 1]);
      valid = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    if (!valid) return ParseError{line, "invalid UTF-8 (byte " + hex(c) + "); expected UTF-8 text"};
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

Expected<std::vector<Document>, ParseError> parseJson(std::string_view text,
                                                      const ParseLimits& limits) {
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

Expected<std::vector<Document>, ParseError> parseDocuments(std::string_view text,
                                                           const ParseLimits& limits) {
  if (text.size() > limits.maxBytes) {
    return Expected<std::vector<Document>, ParseError>::failure(
        {0, "input of " + std::to_string(text.size()) + " bytes is over the limit of " +
                std::to_string(limits.maxBytes) + " bytes"});
  }
  if (auto bad = checkText(text)) {
    return Expected<std::vector<Document>, ParseError>::failure(std::move(*bad));
  }
  if (looksLikeJson(text)) return parseJson(text, limits);
  return parseYaml(text, limits);
}

}  // namespace hybrid_guard::policy
