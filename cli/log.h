#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace hybrid_guard::cli {

// JSON lines on stdout: one object per event, `time`, `level`, `msg` and the event's fields.
class JsonLog {
 public:
  explicit JsonLog(spdlog::level::level_enum level);

  void info(const std::string& msg, nlohmann::json fields = nlohmann::json::object()) const;
  void warn(const std::string& msg, nlohmann::json fields = nlohmann::json::object()) const;
  void error(const std::string& msg, nlohmann::json fields = nlohmann::json::object()) const;
  bool enabled(spdlog::level::level_enum level) const { return logger_->should_log(level); }
  // A line that is already a JSON object (the decision log).
  void raw(spdlog::level::level_enum level, const std::string& line) const;

 private:
  void write(spdlog::level::level_enum level, const std::string& msg, nlohmann::json fields) const;
  std::shared_ptr<spdlog::logger> logger_;
};

// Makes spdlog's default logger (what the webhook library logs through: handler failures, the
// connection cap, accept errors) write the same JSON lines on stdout, from `level` up, so that the
// server's output is JSON throughout.
void routeDefaultLoggerToJson(spdlog::level::level_enum level);

// debug, info, warn or error.
bool parseLogLevel(const std::string& name, spdlog::level::level_enum& out);

}  // namespace hybrid_guard::cli
