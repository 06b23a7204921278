#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hybrid_guard::cli {

// A small getopt-like reader: `--name value`, `--name=value`, `-o value`, repeatable flags,
// positional arguments, `--` ends flags, `-` is a positional (stdin).
class Flags {
 public:
  struct Spec {
    std::string name;  // without dashes; a one-letter name is also accepted as -x
    bool takesValue = true;
    bool repeatable = false;
  };

  explicit Flags(std::vector<Spec> specs) : specs_(std::move(specs)) {}

  // Returns an error message, or nullopt when the arguments are well formed.
  std::optional<std::string> parse(const std::vector<std::string>& args);

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::optional<std::string> value(const std::string& name) const;
  std::vector<std::string> values(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  const Spec* find(const std::string& name) const;
  std::vector<Spec> specs_;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

}  // namespace hybrid_guard::cli
