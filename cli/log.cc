#include "cli/log.h"

#include "webhook/timestamp.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace hybrid_guard::cli {

namespace {

// Each message as one JSON line on stdout: `time`, `level`, `msg`, in one fwrite (stdio's own lock
// keeps it whole beside JsonLog's lines).
class JsonLineSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    nlohmann::ordered_json line = {
        {"time", webhook::utcTimestampNow()},
        {"level", spdlog::level::to_string_view(message.level).data()},
        {"msg", std::string(message.payload.data(), message.payload.size())}};
    std::string text = line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    text += '\n';
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }
  void flush_() override { std::fflush(stdout); }
};

}  // namespace

void routeDefaultLoggerToJson(spdlog::level::level_enum level) {
  auto logger = std::make_shared<spdlog::logger>("default", std::make_shared<JsonLineSink>());
  logger->set_level(level);
  spdlog::set_default_logger(std::move(logger));
}

JsonLog::JsonLog(spdlog::level::level_enum level) {
  auto sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  logger_ = std::make_shared<spdlog::logger>("hybrid-guard", sink);
  logger_->set_pattern("%v");
  logger_->set_level(level);
  logger_->flush_on(spdlog::level::warn);
}

void JsonLog::write(spdlog::level::level_enum level, const std::string& msg,
                    nlohmann::json fields) const {
  if (!logger_->should_log(level)) return;
  nlohmann::ordered_json line = {{"time", webhook::utcTimestampNow()},
                                 {"level", spdlog::level::to_string_view(level).data()},
                                 {"msg", msg}};
  for (auto& [k, v] : fields.items()) line[k] = v;
  logger_->log(level, line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
  logger_->flush();
}

void JsonLog::info(const std::string& msg, nlohmann::json fields) const {
  write(spdlog::level::info, msg, std::move(fields));
}
void JsonLog::warn(const std::string& msg, nlohmann::json fields) const {
  write(spdlog::level::warn, msg, std::move(fields));
}
void JsonLog::error(const std::string& msg, nlohmann::json fields) const {
  write(spdlog::level::err, msg, std::move(fields));
}

void JsonLog::raw(spdlog::level::level_enum level, const std::string& line) const {
  logger_->log(level, line);
}

bool parseLogLevel(const std::string& name, spdlog::level::level_enum& out) {
  if (name == "debug") {
    out = spdlog::level::debug;
  } else if (name == "info") {
    out = spdlog::level::info;
  } else if (name == "warn") {
    out = spdlog::level::warn;
  } else if (name == "error") {
    out = spdlog::level::err;
  } else {
    return false;
  }
  return true;
}

}  // namespace hybrid_guard::cli
