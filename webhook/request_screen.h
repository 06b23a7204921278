#pragma once

#include <cstddef>
#include <variant>

#include "webhook/http_parser.h"
#include "webhook/https_server.h"

namespace hybrid_guard::webhook {

// A request the admission endpoints will read the body of, and how that body is framed.
struct AdmissionRequest {
  Endpoint endpoint;
  bool chunked = false;
  std::size_t contentLength = 0;  // when not chunked
  bool expectsContinue = false;   // "Expect: 100-continue"
};

// The first check of DESIGN §6 that the request head fails, in the contract's order (see
// HttpsServer), or the request to read.
[[nodiscard]] std::variant<AdmissionRequest, Rejection> screenRequest(const RequestHead& head,
                                                                      std::size_t maxBodyBytes);

}  // namespace hybrid_guard::webhook
