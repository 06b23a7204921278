#pragma once

#include <string>

namespace hybrid_guard::webhook {

// The current UTC time as RFC 3339 with milliseconds, e.g. 2026-11-27T22:45:16.581Z.
std::string utcTimestampNow();

}  // namespace hybrid_guard::webhook
