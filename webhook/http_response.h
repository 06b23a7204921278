#pragma once

#include <string>
#include <string_view>

namespace hybrid_guard::webhook {

// "OK", "Bad Request", ...; "Unknown" for a code without one here.
std::string_view reasonPhrase(int status);

// Appends a whole HTTP/1.1 response, so that it goes out in one write. `extraFields` are complete
// lines ("Allow: POST\r\n"); `close` adds "Connection: close".
void appendResponse(std::string& out, int status, std::string_view contentType,
                    std::string_view body, bool close, std::string_view extraFields = {});

// The interim answer to "Expect: 100-continue".
void appendContinue(std::string& out);

// {"error": message}; invalid UTF-8 in the message (it may quote request bytes) is replaced.
std::string errorBody(std::string_view message);

}  // namespace hybrid_guard::webhook
