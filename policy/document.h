#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/expected.h"

namespace hybrid_guard::policy {

// Source lines (1-based) of the nodes of one document, keyed by JSON Pointer ("" = the root).
using LineIndex = std::unordered_map<std::string, int>;

struct ParseLimits {
  size_t maxBytes = 16 * 1024 * 1024;  // far above the API server's 1.5 MiB object limit
  int maxDepth = 200;                  // Kubernetes objects nest a few dozen levels at most
  size_t maxNodes = 4'000'000;         // stops alias ("billion laughs") expansion
  int lineDepth = 2;                   // record lines of nodes up to this depth
};

struct Document {
  nlohmann::json value;
  int line = 1;  // where the document's root node starts
  LineIndex lines;
};

struct ParseError {
  int line = 0;  // 0 when unknown
  std::string message;
};

// Which parts of a JSON document to build (parseJsonKeeping). All: the value whole. Object: of a
// JSON object, only the members named, each read by its own schema. Array: of a JSON array, every
// element, each read by `element`. A value of another JSON type than the schema's is built whole.
struct KeepSchema {
  enum class Kind { All, Object, Array };
  struct Member;
  Kind kind = Kind::All;
  std::vector<Member> members;      // Object
  std::vector<KeepSchema> element;  // Array: exactly one

  static KeepSchema all();
  static KeepSchema object(std::vector<Member> members);
  static KeepSchema array(KeepSchema element);
  const KeepSchema* member(std::string_view key) const;  // null when not named
};

struct KeepSchema::Member {
  std::string name;
  KeepSchema schema;
};

// One JSON document with only the parts `keep` names built: for a reader that looks at nothing
// else, the same document as parseDocuments gives (lines not recorded). What is not built is still
// read and checked as parseDocuments checks it (syntax, UTF-8, duplicate keys, depth and node
// limits), so the same texts are refused, with the same errors.
Expected<nlohmann::json, ParseError> parseJsonKeeping(std::string_view text, const KeepSchema& keep,
                                                      const ParseLimits& limits = {});

// Reads YAML (multi-document, YAML 1.1 scalars as kubectl reads them) or JSON (when the text
// starts with `{` or `[`). Empty YAML documents are skipped. Duplicate keys are errors.
Expected<std::vector<Document>, ParseError> parseDocuments(std::string_view text,
                                                           const ParseLimits& limits = {});

// One JSON document read by nlohmann's parser (after the UTF-8 text check), with the lines of
// its nodes up to limits.lineDepth deep: what parseDocuments falls back to for the exact error when
// its single-pass reader gives up, and the reference that reader is tested against.
Expected<std::vector<Document>, ParseError> parseJsonWithNlohmann(std::string_view text,
                                                                  const ParseLimits& limits = {});

// Frees a tree bottom-up, leaving `document` null. nlohmann's own destructor flattens every tree
// onto a heap-allocated stack first (so that no depth can overflow the call stack); for the
// depth-limited documents read here plain recursion frees the same nodes for less. Nodes deeper
// than a bound are left to nlohmann's destructor.
void releaseDocument(nlohmann::json& document);

// The length of the well-formed UTF-8 sequence that `rest` starts with (1 for ASCII), 0 when it
// starts with a malformed one (stray continuation byte, overlong form, surrogate, above U+10FFFF,
// cut short) or is empty. The one definition every reader and writer here checks text with.
size_t utf8SequenceLength(std::string_view rest);

// Reads one YAML scalar's text as kubectl would for a plain (unquoted) scalar.
nlohmann::json resolvePlainScalar(const std::string& text);

}  // namespace hybrid_guard::policy
