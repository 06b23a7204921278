#include "policy/path.h"

namespace hybrid_guard::policy {

namespace {
bool isPlainField(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c == '.' || c == '/' || c == '[' || c == ']' || c == '"' || c == ' ') return false;
  }
  return true;
}
}  // namespace

Path Path::parse(std::string_view dotted) {
  Path p;
  size_t start = 0;
  while (start <= dotted.size() && !dotted.empty()) {
    size_t dot = dotted.find('.', start);
    if (dot == std::string_view::npos) dot = dotted.size();
    p.segments_.emplace_back(std::string(dotted.substr(start, dot - start)));
    start = dot + 1;
  }
  return p;
}

Path Path::field(std::string_view name) const {
  Path p = *this;
  p.segments_.emplace_back(std::string(name));
  return p;
}

Path Path::index(size_t i) const {
  Path p = *this;
  p.segments_.emplace_back(i);
  return p;
}

std::string Path::str() const {
  std::string out;
  for (const auto& segment : segments_) {
    if (const auto* i = std::get_if<size_t>(&segment)) {
      out += '[';
      out += std::to_string(*i);
      out += ']';
      continue;
    }
    const auto& name = std::get<std::string>(segment);
    if (isPlainField(name)) {
      if (!out.empty()) out += '.';
      out += name;
    } else {
      out += "[\"";
      for (char c : name) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      out += "\"]";
    }
  }
  return out;
}

std::string Path::jsonPointer() const {
  std::string out;
  for (const auto& segment : segments_) {
    out += '/';
    if (const auto* i = std::get_if<size_t>(&segment)) {
      out += std::to_string(*i);
    } else {
      out += escapeJsonPointerToken(std::get<std::string>(segment));
    }
  }
  return out;
}

std::string escapeJsonPointerToken(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace hybrid_guard::policy
