#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hybrid_guard::webhook {

struct HttpField {
  std::string_view name;
  std::string_view value;  // without surrounding whitespace
};

// The request line and header section of one HTTP/1.x request, as views into the bytes it was
// parsed from.
struct RequestHead {
  std::string_view method;
  std::string_view target;  // as sent, query included
  std::string_view path;    // the target without its query
  int minorVersion = 1;     // HTTP/1.<minorVersion>
  std::vector<HttpField> fields;

  // The first field named `name` (any case).
  std::optional<std::string_view> field(std::string_view name) const;
  std::size_t count(std::string_view name) const;
  // Whether a comma-separated field such as Connection lists `token` (any case).
  bool hasToken(std::string_view name, std::string_view token) const;
};

bool equalsIgnoringCase(std::string_view a, std::string_view b);
std::string_view trimWhitespace(std::string_view s);

struct HeadLimits {
  std::size_t maxBytes = 16 * 1024;  // request line and fields together
  std::size_t maxRequestLine = 8 * 1024;
  std::size_t maxFields = 100;
};

// Finds and parses a request head in bytes that arrive piecemeal. Strict: lines end in CRLF, no
// line folding, no whitespace before a field's colon, only HTTP/1.0 and HTTP/1.1.
class RequestHeadParser {
 public:
  enum class State { Incomplete, Complete, Invalid };
  struct Outcome {
    State state = State::Incomplete;
    std::size_t size = 0;  // Complete: the head's bytes, its blank line included
    int status = 0;        // Invalid: 400, 414, 431 or 505
    std::string reason;
  };

  explicit RequestHeadParser(HeadLimits limits = {}) : limits_(limits) {}

  // `input` begins with the request and only grows between calls until reset(). On Complete,
  // `head` views into `input`.
  [[nodiscard]] Outcome parse(std::string_view input, RequestHead& head);
  // Before the next request.
  void reset();

 private:
  Outcome parseLines(std::string_view input, RequestHead& head) const;

  HeadLimits limits_;
  std::size_t scanned_ = 0;    // bytes searched for line ends so far
  std::size_t lineStart_ = 0;  // where the line being searched begins
  std::size_t headStart_ = 0;  // after the empty lines a request may be preceded by
  std::size_t lines_ = 0;      // complete non-empty lines seen
};

// Decodes a chunked body (RFC 9112 §7.1) from bytes that arrive piecemeal; chunk extensions and
// trailer fields are read and dropped.
class ChunkedBodyDecoder {
 public:
  enum class State { NeedMore, Done, Invalid, TooLarge };

  // Consumes from the front of `input` (`consumed` bytes), appending the data to `body`. TooLarge
  // as soon as a chunk's declared size would take `body` over `maxBody`.
  [[nodiscard]] State decode(std::string_view input, std::size_t& consumed, std::string& body,
                             std::size_t maxBody);

 private:
  enum class Step { Size, Data, DataEnd, Trailer };

  Step step_ = Step::Size;
  std::uint64_t remaining_ = 0;  // of the current chunk
  std::size_t trailerBytes_ = 0;
};

}  // namespace hybrid_guard::webhook
