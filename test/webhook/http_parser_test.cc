#include "webhook/http_parser.h"

#include "catch2/catch.hpp"

using namespace hybrid_guard::webhook;
using State = RequestHeadParser::State;

namespace {

struct Parsed {
  RequestHeadParser::Outcome outcome;
  RequestHead head;
};

// Feeds `input` whole, or one byte more at a time as a trickling client would.
Parsed parse(std::string_view input, bool byteByByte = false, HeadLimits limits = {}) {
  RequestHeadParser parser(limits);
  Parsed parsed;
  if (!byteByByte) {
    parsed.outcome = parser.parse(input, parsed.head);
    return parsed;
  }
  for (std::size_t n = 1; n <= input.size(); ++n) {
    parsed.outcome = parser.parse(input.substr(0, n), parsed.head);
    if (parsed.outcome.state != State::Incomplete) break;
  }
  return parsed;
}

}  // namespace

TEST_CASE("a request head is parsed whole or byte by byte", "[http]") {
  const std::string input =
      "\r\nPOST /validate?timeout=10s HTTP/1.1\r\nHost: x\r\ncontent-type:application/json \r\n"
      "Connection: keep-alive, Upgrade\r\nX-Empty:\r\n\r\n{\"body\":1}";
  for (bool byteByByte : {false, true}) {
    INFO("byte by byte: " << byteByByte);
    Parsed parsed = parse(input, byteByByte);
    REQUIRE(parsed.outcome.state == State::Complete);
    CHECK(parsed.outcome.size == input.find("{"));
    CHECK(parsed.head.method == "POST");
    CHECK(parsed.head.target == "/validate?timeout=10s");
    CHECK(parsed.head.path == "/validate");
    CHECK(parsed.head.minorVersion == 1);
    CHECK(parsed.head.field("Content-Type") == "application/json");
    CHECK(parsed.head.field("x-empty") == "");
    CHECK_FALSE(parsed.head.field("Content-Length"));
    CHECK(parsed.head.count("HOST") == 1);
    CHECK(parsed.head.hasToken("connection", "upgrade"));
    CHECK_FALSE(parsed.head.hasToken("connection", "close"));
  }
}

TEST_CASE("an incomplete head asks for more", "[http]") {
  CHECK(parse("").outcome.state == State::Incomplete);
  CHECK(parse("POST /validate HTTP/1.1\r\nHost: x\r\n").outcome.state == State::Incomplete);
  CHECK(parse("POST /validate HTTP/1.1\r\nHost: x\r\n\r").outcome.state == State::Incomplete);
}

TEST_CASE("malformed heads are refused with the status that fits", "[http]") {
  struct Case {
    std::string name;
    std::string input;
    int status;
  };
  const std::vector<Case> cases = {
      {"bare LF", "POST /validate HTTP/1.1\nHost: x\n\n", 400},
      {"bare LF after a field", "POST /validate HTTP/1.1\r\nHost: x\n\r\n", 400},
      {"no target", "POST HTTP/1.1\r\n\r\n", 400},
      {"two spaces", "POST  /validate HTTP/1.1\r\n\r\n", 400},
      {"space in the method", "PO ST /validate HTTP/1.1\r\n\r\n", 400},
      {"control byte in the target", "POST /val\x01idate HTTP/1.1\r\n\r\n", 400},
      {"not HTTP", "POST /validate SPDY/3\r\n\r\n", 400},
      {"trailing words", "POST /validate HTTP/1.1 extra\r\n\r\n", 400},
      {"HTTP/2", "POST /validate HTTP/2.0\r\n\r\n", 505},
      {"HTTP/0.9", "POST /validate HTTP/0.9\r\n\r\n", 505},
      {"space before the colon", "POST / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
      {"no colon", "POST / HTTP/1.1\r\nHost x\r\n\r\n", 400},
      {"empty name", "POST / HTTP/1.1\r\n: x\r\n\r\n", 400},
      {"folded line", "POST / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", 400},
      {"NUL in a value", std::string("POST / HTTP/1.1\r\nX-A: a\0b\r\n\r\n", 30), 400},
      {"CR in a value", "POST / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", 400},
      {"request line too long", "POST /" + std::string(9000, 'a'), 414},
      {"request line too long when complete",
       "POST /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n", 414},
      {"head too large", "POST / HTTP/1.1\r\n" + std::string(17000, 'a'), 431},
      {"head too large when complete",
       "POST / HTTP/1.1\r\nX-A: " + std::string(16400, 'a') + "\r\n\r\n", 431},
  };
  for (const Case& c : cases) {
    for (bool byteByByte : {false, true}) {
      INFO(c.name << (byteByByte ? ", byte by byte" : ""));
      Parsed parsed = parse(c.input, byteByByte);
      REQUIRE(parsed.outcome.state == State::Invalid);
      CHECK(parsed.outcome.status == c.status);
      CHECK_FALSE(parsed.outcome.reason.empty());
    }
  }
}

TEST_CASE("the number of header fields is limited", "[http]") {
  std::string head = "POST / HTTP/1.1\r\n";
  for (int i = 0; i < 100; ++i) head += "X-" + std::to_string(i) + ": v\r\n";
  CHECK(parse(head + "\r\n").outcome.state == State::Complete);
  Parsed tooMany = parse(head + "X-Last: v\r\n\r\n");
  REQUIRE(tooMany.outcome.state == State::Invalid);
  CHECK(tooMany.outcome.status == 431);
}

TEST_CASE("the parser starts over for each request", "[http]") {
  RequestHeadParser parser;
  RequestHead head;
  std::string first = "POST /validate HTTP/1.1\r\n\r\n";
  REQUIRE(parser.parse(first, head).state == State::Complete);
  parser.reset();
  std::string second = "POST /mutate HTTP/1.0\r\nA: b\r\n\r\n";
  auto outcome = parser.parse(second, head);
  REQUIRE(outcome.state == State::Complete);
  CHECK(outcome.size == second.size());
  CHECK(head.path == "/mutate");
  CHECK(head.minorVersion == 0);
  CHECK(head.fields.size() == 1);
}

namespace {

struct Decoded {
  ChunkedBodyDecoder::State state;
  std::string body;
  std::size_t consumed = 0;
};

Decoded decodeChunked(std::string_view input, std::size_t maxBody = 1000, bool byteByByte = false) {
  ChunkedBodyDecoder decoder;
  Decoded decoded{ChunkedBodyDecoder::State::NeedMore, {}, 0};
  if (!byteByByte) {
    decoded.state = decoder.decode(input, decoded.consumed, decoded.body, maxBody);
    return decoded;
  }
  std::string pending;
  for (char c : input) {
    pending += c;
    std::size_t consumed = 0;
    decoded.state = decoder.decode(pending, consumed, decoded.body, maxBody);
    pending.erase(0, consumed);
    decoded.consumed += consumed;
    if (decoded.state != ChunkedBodyDecoder::State::NeedMore) break;
  }
  return decoded;
}

}  // namespace

TEST_CASE("chunked bodies are decoded whole or byte by byte", "[http]") {
  using S = ChunkedBodyDecoder::State;
  const std::string input =
      "4\r\n{\"a\"\r\n9;name=value\r\n:1234567}\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
  for (bool byteByByte : {false, true}) {
    INFO("byte by byte: " << byteByByte);
    Decoded decoded = decodeChunked(input, 1000, byteByByte);
    REQUIRE(decoded.state == S::Done);
    CHECK(decoded.body == "{\"a\":1234567}");
    CHECK(decoded.consumed == input.find("NEXT"));
  }
  CHECK(decodeChunked("0\r\n\r\n").state == S::Done);
  CHECK(decodeChunked("5\r\nab").state == S::NeedMore);
}

TEST_CASE("malformed or oversized chunked bodies are refused", "[http]") {
  using S = ChunkedBodyDecoder::State;
  CHECK(decodeChunked("x\r\n").state == S::Invalid);
  CHECK(decodeChunked("\r\n").state == S::Invalid);
  CHECK(decodeChunked("4\nabcd\r\n").state == S::Invalid);
  CHECK(decodeChunked("4 junk\r\nabcd\r\n").state == S::Invalid);
  CHECK(decodeChunked("2\r\nabcd\r\n").state == S::Invalid);  // data longer than declared
  CHECK(decodeChunked("0\r\nno colon\r\n\r\n").state == S::Invalid);
  CHECK(decodeChunked(std::string(2000, '1')).state == S::Invalid);  // endless size line
  CHECK(decodeChunked("0\r\nX: " + std::string(9000, 'a')).state == S::Invalid);
  // Too large as soon as a declared size shows it, however it is written.
  CHECK(decodeChunked("3e9\r\n", 1000).state == S::TooLarge);
  CHECK(decodeChunked("3e8\r\n", 1000).state == S::NeedMore);
  CHECK(decodeChunked("ffffffffffffffffffffffff\r\n", 1000).state == S::TooLarge);
  CHECK(decodeChunked("000000000000000000000001\r\na\r\n0\r\n\r\n").state == S::Done);
  CHECK(decodeChunked("200\r\n" + std::string(512, 'a') + "\r\n200\r\n", 1000).state ==
        S::TooLarge);
  CHECK(decodeChunked("200\r\n" + std::string(512, 'a') + "\r\n200\r\n", 1000, true).state ==
        S::TooLarge);
}
