#include "cli/flags.h"

namespace hybrid_guard::cli {

const Flags::Spec* Flags::find(const std::string& name) const {
  for (const auto& s : specs_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::optional<std::string> Flags::parse(const std::vector<std::string>& args) {
  bool flagsDone = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flagsDone || arg == "-" || arg.empty() || arg[0] != '-') {
      positional_.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flagsDone = true;
      continue;
    }
    std::string name;
    std::optional<std::string> inlineValue;
    if (arg.rfind("--", 0) == 0) {
      name = arg.substr(2);
      if (auto eq = name.find('='); eq != std::string::npos) {
        inlineValue = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
    } else {
      name = arg.substr(1);
      if (name.size() > 1) {
        inlineValue = name.substr(1);
        name = name.substr(0, 1);
      }
    }
    const Spec* spec = find(name);
    if (!spec) return "unknown flag " + arg;
    if (!spec->repeatable && values_.count(name)) return "flag --" + name + " given twice";
    if (!spec->takesValue) {
      if (inlineValue) return "flag --" + name + " takes no value";
      values_[name].push_back("true");
      continue;
    }
    if (!inlineValue) {
      if (i + 1 >= args.size()) return "flag --" + name + " needs a value";
      inlineValue = args[++i];
    }
    values_[name].push_back(*inlineValue);
  }
  return std::nullopt;
}

std::optional<std::string> Flags::value(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> Flags::values(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

}  // namespace hybrid_guard::cli
