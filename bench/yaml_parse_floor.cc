// The parse-only floor of the eval benchmark: load the same file with yaml-cpp, nothing else.
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <iostream>
#include <sstream>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: yaml_parse_floor FILE\n";
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  auto docs = YAML::LoadAll(text.str());
  std::cout << docs.size() << " documents\n";
  return 0;
}
