#include "webhook/request_screen.h"

#include <charconv>
#include <string>

namespace hybrid_guard::webhook {
namespace {

// application/json, whatever the case, with or without parameters such as charset.
bool isJsonMediaType(std::string_view contentType) {
  std::string_view mediaType = contentType.substr(0, contentType.find(';'));
  return equalsIgnoringCase(trimWhitespace(mediaType), "application/json");
}

std::optional<std::uint64_t> parseContentLength(std::string_view value) {
  std::uint64_t length = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
  return length;
}

}  // namespace

std::variant<AdmissionRequest, Rejection> screenRequest(const RequestHead& head,
                                                        std::size_t maxBodyBytes) {
  std::optional<Endpoint> endpoint = endpointForPath(head.path);
  auto refuse = [&](int status, std::string reason) {
    return Rejection{endpoint, std::string(head.method), std::string(head.path), status,
                     std::move(reason)};
  };
  if (!endpoint) return refuse(404, "no such endpoint: use POST /validate or /mutate");
  if (head.method != "POST") {
    return refuse(405, "method " + std::string(head.method) + " not allowed: use POST");
  }
  if (!isJsonMediaType(head.field("Content-Type").value_or(""))) {
    return refuse(415, "Content-Type must be application/json");
  }
  if (auto encoding = head.field("Content-Encoding");
      encoding && !equalsIgnoringCase(*encoding, "identity")) {
    return refuse(415, "Content-Encoding " + std::string(*encoding) + " is not supported");
  }

  AdmissionRequest request{*endpoint};
  const std::size_t lengths = head.count("Content-Length");
  if (auto transferEncoding = head.field("Transfer-Encoding")) {
    if (head.count("Transfer-Encoding") != 1 || !equalsIgnoringCase(*transferEncoding, "chunked")) {
      return refuse(400, "unsupported Transfer-Encoding");
    }
    if (lengths > 0) return refuse(400, "both Content-Length and Transfer-Encoding given");
    request.chunked = true;  // the body's size is checked while it is read
  } else {
    if (lengths == 0) return refuse(411, "Content-Length required");
    std::optional<std::uint64_t> length = parseContentLength(*head.field("Content-Length"));
    if (!length || lengths != 1) return refuse(400, "invalid Content-Length");
    if (*length > maxBodyBytes) {
      return refuse(413, "request body of " + std::to_string(*length) +
                             " bytes exceeds the limit of " + std::to_string(maxBodyBytes) +
                             " bytes");
    }
    request.contentLength = static_cast<std::size_t>(*length);
  }

  if (auto expect = head.field("Expect")) {
    if (!equalsIgnoringCase(*expect, "100-continue")) {
      return refuse(417, "unsupported Expect: " + std::string(*expect));
    }
    request.expectsContinue = true;
  }
  return request;
}

}  // namespace hybrid_guard::webhook
