#include "cli/input_reader.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "policy/document.h"

namespace hybrid_guard::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kMaxInputBytes = 16 * 1024 * 1024;

bool isManifestFile(const fs::path& p) {
  auto ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml" || ext == ".json";
}

bool isList(const json& v) {
  if (!v.is_object()) return false;
  auto kind = v.find("kind");
  auto items = v.find("items");
  if (kind == v.end() || !kind->is_string() || items == v.end() || !items->is_array()) return false;
  const auto& k = kind->get_ref<const std::string&>();
  return k.size() >= 4 && k.compare(k.size() - 4, 4, "List") == 0;
}

// Reads at most kMaxInputBytes + 1 so that a huge input is refused without holding it all.
bool readBounded(std::istream& in, std::string& out) {
  out.clear();
  char buffer[65536];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    out.append(buffer, static_cast<size_t>(in.gcount()));
    if (out.size() > kMaxInputBytes) return false;
  }
  return true;
}

void readOne(const std::string& text, const std::string& source, std::vector<InputObject>& objects,
             std::vector<InputError>& errors) {
  auto docs = policy::parseDocuments(text);
  if (!docs) {
    std::string where = source;
    if (docs.error().line > 0) where += ":" + std::to_string(docs.error().line);
    errors.push_back({where, docs.error().message});
    return;
  }
  for (auto& doc : *docs) {
    if (isList(doc.value)) {
      json& items = doc.value["items"];
      for (size_t i = 0; i < items.size(); ++i) {
        auto line = doc.lines.find("/items/" + std::to_string(i));
        int at = line == doc.lines.end() ? doc.line : line->second;
        objects.push_back({source + ":" + std::to_string(at), std::move(items[i])});
      }
      continue;
    }
    objects.push_back({source + ":" + std::to_string(doc.line), std::move(doc.value)});
  }
}

void readFile(const fs::path& file, std::vector<InputObject>& objects,
              std::vector<InputError>& errors) {
  std::error_code ec;
  auto size = fs::file_size(file, ec);
  if (!ec && size > kMaxInputBytes) {
    errors.push_back({file.string(), "file of " + std::to_string(size) +
                                         " bytes is over the limit of " +
                                         std::to_string(kMaxInputBytes) + " bytes"});
    return;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    errors.push_back({file.string(), "cannot read the file"});
    return;
  }
  std::string text;
  if (!readBounded(in, text)) {
    errors.push_back(
        {file.string(), "input is over the limit of " + std::to_string(kMaxInputBytes) + " bytes"});
    return;
  }
  readOne(text, file.string(), objects, errors);
}

}  // namespace

InputResult readText(const std::string& text, const std::string& source) {
  std::vector<InputObject> objects;
  std::vector<InputError> errors;
  readOne(text, source, objects, errors);
  if (!errors.empty()) return InputResult::failure(std::move(errors));
  return objects;
}

InputResult readInputs(const std::vector<std::string>& paths, std::istream& stdinStream) {
  std::vector<InputObject> objects;
  std::vector<InputError> errors;
  for (const auto& path : paths) {
    if (path == "-") {
      std::string text;
      if (!readBounded(stdinStream, text)) {
        errors.push_back(
            {"<stdin>", "input is over the limit of " + std::to_string(kMaxInputBytes) + " bytes"});
        continue;
      }
      readOne(text, "<stdin>", objects, errors);
      continue;
    }
    std::error_code ec;
    fs::file_status status = fs::status(path, ec);
    if (ec || !fs::exists(status)) {
      errors.push_back({path, "no such file or directory"});
      continue;
    }
    if (!fs::is_directory(status)) {
      readFile(path, objects, errors);
      continue;
    }
    std::vector<fs::path> files;
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (it->is_regular_file() && isManifestFile(it->path())) files.push_back(it->path());
    }
    if (ec) {
      errors.push_back({path, "cannot list the directory: " + ec.message()});
      continue;
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) readFile(f, objects, errors);
  }
  if (!errors.empty()) return InputResult::failure(std::move(errors));
  return objects;
}

}  // namespace hybrid_guard::cli
