#include "cli/commands.h"

int main(int argc, char** argv) {
  return hybrid_guard::cli::run(argc, argv);
}
