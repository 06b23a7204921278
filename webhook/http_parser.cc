#include "webhook/http_parser.h"

namespace hybrid_guard::webhook {
namespace {

constexpr std::size_t kMaxChunkSizeLine = 1024;
constexpr std::size_t kMaxTrailerBytes = 8 * 1024;

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// RFC 9110 §5.6.2 tchar.
bool isTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!isTokenChar(c)) return false;
  }
  return true;
}

// VCHAR, obs-text, space and tab: no control characters (CR, LF and NUL among them).
bool isFieldValue(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

bool isTarget(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
  }
  return true;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

RequestHeadParser::Outcome invalid(int status, std::string reason) {
  return {RequestHeadParser::State::Invalid, 0, status, std::move(reason)};
}

}  // namespace

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trimWhitespace(std::string_view s) {
  auto isSpace = [](char c) { return c == ' ' || c == '\t'; };
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::optional<std::string_view> RequestHead::field(std::string_view name) const {
  for (const HttpField& f : fields) {
    if (equalsIgnoringCase(f.name, name)) return f.value;
  }
  return std::nullopt;
}

std::size_t RequestHead::count(std::string_view name) const {
  std::size_t n = 0;
  for (const HttpField& f : fields) n += equalsIgnoringCase(f.name, name) ? 1 : 0;
  return n;
}

bool RequestHead::hasToken(std::string_view name, std::string_view token) const {
  for (const HttpField& f : fields) {
    if (!equalsIgnoringCase(f.name, name)) continue;
    std::string_view rest = f.value;
    while (!rest.empty()) {
      std::size_t comma = rest.find(',');
      if (equalsIgnoringCase(trimWhitespace(rest.substr(0, comma)), token)) return true;
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  return false;
}

void RequestHeadParser::reset() {
  scanned_ = lineStart_ = headStart_ = lines_ = 0;
}

RequestHeadParser::Outcome RequestHeadParser::parse(std::string_view input, RequestHead& head) {
  // Search only the new bytes for line ends, so a head trickled in byte by byte costs no more
  // than one sent at once.
  for (; scanned_ < input.size(); ++scanned_) {
    if (input[scanned_] != '\n') continue;
    if (scanned_ == 0 || input[scanned_ - 1] != '\r') return invalid(400, "line without CRLF");
    std::size_t lineLength = scanned_ - 1 - lineStart_;
    lineStart_ = scanned_ + 1;
    if (lineLength > 0) {
      if (lines_ == 0 && lineLength > limits_.maxRequestLine) {
        return invalid(414, "request line too long");
      }
      if (++lines_ > limits_.maxFields + 1) return invalid(431, "too many header fields");
      continue;
    }
    if (lines_ == 0) {
      headStart_ = lineStart_;  // an empty line before the request line is allowed
      continue;
    }
    std::size_t size = scanned_ + 1;
    if (size > limits_.maxBytes) return invalid(431, "request header fields too large");
    Outcome outcome = parseLines(input.substr(headStart_, size - headStart_), head);
    outcome.size = size;
    return outcome;
  }
  if (lines_ == 0 && input.size() - headStart_ > limits_.maxRequestLine) {
    return invalid(414, "request line too long");
  }
  if (input.size() > limits_.maxBytes) return invalid(431, "request header fields too large");
  return {};
}

RequestHeadParser::Outcome RequestHeadParser::parseLines(std::string_view text,
                                                         RequestHead& head) const {
  head.fields.clear();
  std::size_t end = text.find("\r\n");
  std::string_view requestLine = text.substr(0, end);
  text.remove_prefix(end + 2);

  std::size_t firstSpace = requestLine.find(' ');
  std::size_t secondSpace =
      firstSpace == std::string_view::npos ? firstSpace : requestLine.find(' ', firstSpace + 1);
  if (secondSpace == std::string_view::npos) return invalid(400, "malformed request line");
  head.method = requestLine.substr(0, firstSpace);
  head.target = requestLine.substr(firstSpace + 1, secondSpace - firstSpace - 1);
  std::string_view version = requestLine.substr(secondSpace + 1);
  if (!isToken(head.method) || !isTarget(head.target)) {
    return invalid(400, "malformed request line");
  }
  if (version == "HTTP/1.1") {
    head.minorVersion = 1;
  } else if (version == "HTTP/1.0") {
    head.minorVersion = 0;
  } else if (version.size() == 8 && version.substr(0, 5) == "HTTP/" && version[6] == '.') {
    return invalid(505, "HTTP version not supported: use HTTP/1.1");
  } else {
    return invalid(400, "malformed request line");
  }
  head.path = head.target.substr(0, head.target.find('?'));

  while (true) {
    end = text.find("\r\n");
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end + 2);
    if (line.empty()) break;  // the blank line that ends the head
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || !isToken(line.substr(0, colon))) {
      return invalid(400, "malformed header field");
    }
    std::string_view value = trimWhitespace(line.substr(colon + 1));
    if (!isFieldValue(value)) return invalid(400, "malformed header field");
    head.fields.push_back(HttpField{line.substr(0, colon), value});
  }
  return {State::Complete, 0, 0, {}};
}

ChunkedBodyDecoder::State ChunkedBodyDecoder::decode(std::string_view input, std::size_t& consumed,
                                                     std::string& body, std::size_t maxBody) {
  consumed = 0;
  auto takeLine = [&](std::size_t limit, std::string_view& line) -> std::optional<State> {
    std::size_t end = input.find('\n', consumed);
    if (end == std::string_view::npos) {
      if (input.size() - consumed > limit) return State::Invalid;
      return State::NeedMore;
    }
    if (end == consumed || input[end - 1] != '\r' || end - consumed > limit) return State::Invalid;
    line = input.substr(consumed, end - 1 - consumed);
    consumed = end + 1;
    return std::nullopt;
  };

  while (true) {
    std::string_view line;
    switch (step_) {
      case Step::Size: {
        if (auto stop = takeLine(kMaxChunkSizeLine, line)) return *stop;
        std::size_t digits = 0;
        std::uint64_t size = 0;
        const std::uint64_t room = maxBody - body.size();
        for (; digits < line.size() && hexValue(line[digits]) >= 0; ++digits) {
          auto digit = static_cast<std::uint64_t>(hexValue(line[digits]));
          if (digit > room || size > (room - digit) / 16) return State::TooLarge;
          size = size * 16 + digit;
        }
        std::string_view extension = trimWhitespace(line.substr(digits));
        if (digits == 0 || (!extension.empty() && extension.front() != ';') ||
            !isFieldValue(extension)) {
          return State::Invalid;
        }
        remaining_ = size;
        step_ = size == 0 ? Step::Trailer : Step::Data;
        break;
      }
      case Step::Data: {
        std::size_t available = input.size() - consumed;
        if (available == 0) return State::NeedMore;
        std::size_t take =
            remaining_ < available ? static_cast<std::size_t>(remaining_) : available;
        body.append(input.substr(consumed, take));
        consumed += take;
        remaining_ -= take;
        if (remaining_ == 0) step_ = Step::DataEnd;
        break;
      }
      case Step::DataEnd:
        if (input.size() - consumed < 2) return State::NeedMore;
        if (input.substr(consumed, 2) != "\r\n") return State::Invalid;
        consumed += 2;
        step_ = Step::Size;
        break;
      case Step::Trailer: {
        std::size_t before = consumed;
        if (auto stop = takeLine(kMaxTrailerBytes - trailerBytes_, line)) return *stop;
        trailerBytes_ += consumed - before;
        if (line.empty()) return State::Done;
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || !isToken(line.substr(0, colon)) ||
            !isFieldValue(line.substr(colon + 1))) {
          return State::Invalid;
        }
        break;
      }
    }
  }
}

}  // namespace hybrid_guard::webhook
