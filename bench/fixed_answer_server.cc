// The ceiling for bench/run: hybrid-guard's own HTTP/TLS layer (webhook::HttpsServer) with a
// handler that does no admission work and answers /validate and /mutate with fixed bytes, the
// same bytes nginx returns there. The server is configured and built as `hybrid-guard serve
// --threads 1` builds it (cli/serve.cc): one event-loop worker, the default timeouts, connection
// and body limits, no handler pool, the certificate loaded through a CertificateStore. Runs until
// SIGTERM or SIGINT, then stops the server as serve does.
//
//   fixed_answer_server --listen HOST:PORT --tls-cert FILE --tls-key FILE
//                       --answer-validate FILE --answer-mutate FILE
#include <signal.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/flags.h"
#include "webhook/certificate_store.h"
#include "webhook/https_server.h"

namespace {

namespace webhook = hybrid_guard::webhook;

int usage(const std::string& message) {
  std::cerr << "fixed_answer_server: " << message
            << "\nusage: fixed_answer_server --listen HOST:PORT --tls-cert FILE --tls-key FILE"
               " --answer-validate FILE --answer-mutate FILE\n";
  return 2;
}

std::optional<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return std::move(out).str();
}

}  // namespace

int main(int argc, char** argv) {
  hybrid_guard::cli::Flags flags(
      {{"listen"}, {"tls-cert"}, {"tls-key"}, {"answer-validate"}, {"answer-mutate"}});
  if (auto error = flags.parse(std::vector<std::string>(argv + 1, argv + argc))) {
    return usage(*error);
  }
  if (!flags.positional().empty()) return usage("unexpected argument " + flags.positional()[0]);
  for (const char* name : {"listen", "tls-cert", "tls-key", "answer-validate", "answer-mutate"}) {
    if (!flags.has(name)) return usage(std::string("--") + name + " is required");
  }

  std::string listen = *flags.value("listen");
  auto colon = listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos && colon > 0) {
    try {
      size_t used = 0;
      port = std::stoi(listen.substr(colon + 1), &used);
      if (used != listen.size() - colon - 1 || port > 65535) port = -1;
    } catch (const std::exception&) {
      port = -1;
    }
  }
  if (port < 0) return usage("--listen must be HOST:PORT");
  std::string host = listen.substr(0, colon);

  auto validateAnswer = readFile(*flags.value("answer-validate"));
  auto mutateAnswer = readFile(*flags.value("answer-mutate"));
  if (!validateAnswer) return usage("cannot read " + *flags.value("answer-validate"));
  if (!mutateAnswer) return usage("cannot read " + *flags.value("answer-mutate"));

  // As `hybrid-guard serve --threads 1`: defaults apart from one worker.
  webhook::HttpsServerOptions options;
  options.workers = 1;

  auto certificates = std::make_shared<webhook::CertificateStore>();
  if (auto loaded = certificates->loadFiles(*flags.value("tls-cert"), *flags.value("tls-key"));
      !loaded) {
    std::cerr << "fixed_answer_server: " << loaded.error() << "\n";
    return 2;
  }

  // Signals are waited for on this thread only; the server's threads inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  webhook::HttpsServer server(
      certificates,
      [&validateAnswer, &mutateAnswer](webhook::Endpoint endpoint, std::string_view) {
        return webhook::HttpResponse{
            200, endpoint == webhook::Endpoint::Validate ? *validateAnswer : *mutateAnswer};
      },
      options);
  if (auto s = server.start(host, port); !s) {
    std::cerr << "fixed_answer_server: cannot listen on " << listen << ": " << s.error() << "\n";
    return 2;
  }

  int received = 0;
  sigwait(&signals, &received);
  server.stop();
  return 0;
}
