#include "webhook/http_response.h"

#include <charconv>
#include <nlohmann/json.hpp>

namespace hybrid_guard::webhook {

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

void appendResponse(std::string& out, int status, std::string_view contentType,
                    std::string_view body, bool close, std::string_view extraFields) {
  char number[24];
  out.reserve(out.size() + 128 + extraFields.size() + body.size());
  out += "HTTP/1.1 ";
  out.append(number, std::to_chars(number, number + sizeof number, status).ptr);
  out += ' ';
  out += reasonPhrase(status);
  out += "\r\nContent-Type: ";
  out += contentType;
  out += "\r\nContent-Length: ";
  out.append(number, std::to_chars(number, number + sizeof number, body.size()).ptr);
  out += "\r\n";
  if (close) out += "Connection: close\r\n";
  out += extraFields;
  out += "\r\n";
  out += body;
}

void appendContinue(std::string& out) {
  out += "HTTP/1.1 100 Continue\r\n\r\n";
}

std::string errorBody(std::string_view message) {
  return nlohmann::json{{"error", message}}.dump(-1, ' ', false,
                                                 nlohmann::json::error_handler_t::replace);
}

}  // namespace hybrid_guard::webhook
