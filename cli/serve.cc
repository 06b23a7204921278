#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

#include "cli/commands.h"
#include "cli/evaluator.h"
#include "cli/flags.h"
#include "cli/input_reader.h"
#include "cli/log.h"
#include "webhook/admission_service.h"
#include "webhook/certificate_store.h"
#include "webhook/file_watcher.h"
#include "webhook/https_server.h"
#include "webhook/kube_client.h"
#include "webhook/pki.h"
#include "webhook/quota_ledger.h"
#include "webhook/side_port_server.h"
#include "webhook/sidecar_informer.h"

namespace hybrid_guard::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct HostPort {
  std::string host;
  int port = 0;
};

std::optional<HostPort> parseHostPort(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  try {
    size_t used = 0;
    int port = std::stoi(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1 || port < 0 || port > 65535) return std::nullopt;
    return HostPort{host, port};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<long long> parsePositive(const std::string& text) {
  try {
    size_t used = 0;
    long long v = std::stoll(text, &used);
    if (used != text.size() || v <= 0) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool isIpAddress(const std::string& host) {
  return !host.empty() && (host.find_first_not_of("0123456789.") == std::string::npos ||
                           host.find(':') != std::string::npos);
}

// The local default: a CA and an ECDSA P-256 serving certificate made at start.
std::optional<std::string> generateLocalCertificates(const HostPort& listen,
                                                     const std::optional<std::string>& caOut,
                                                     webhook::CertificateStore& store,
                                                     std::string& caPath) {
  webhook::CertificateOptions caOptions;
  caOptions.commonName = "hybrid-guard local CA";
  caOptions.validity = std::chrono::hours(24 * 30);
  auto ca = webhook::generateCertificateAuthority(caOptions);
  if (!ca) return "cannot generate a CA: " + ca.error();
  webhook::CertificateOptions serving;
  serving.commonName = "hybrid-guard";
  serving.dnsNames = {"localhost", "hybrid-guard", "hybrid-guard.hybrid-guard.svc"};
  serving.ipAddresses = {"127.0.0.1", "::1"};
  if (isIpAddress(listen.host) && listen.host != "127.0.0.1" && listen.host != "::1" &&
      listen.host != "0.0.0.0" && listen.host != "::") {
    serving.ipAddresses.push_back(listen.host);
  }
  serving.validity = std::chrono::hours(24 * 30);
  auto cert = webhook::generateServingCertificate(ca.value(), serving);
  if (!cert) return "cannot generate a serving certificate: " + cert.error();
  if (auto loaded = store.loadPem(cert.value().certificatePem, cert.value().privateKeyPem);
      !loaded) {
    return "generated certificate refused: " + loaded.error();
  }
  fs::path target;
  if (caOut) {
    target = *caOut;
  } else {
    std::error_code ec;
    fs::path dir = fs::temp_directory_path(ec) / ("hybrid-guard-" + std::to_string(::getpid()));
    fs::create_directories(dir, ec);
    if (ec) return "cannot create " + dir.string() + ": " + ec.message();
    target = dir / "ca.crt";
  }
  if (auto written =
          webhook::writePemFile(target, ca.value().certificatePem, webhook::FileSecrecy::Public);
      !written) {
    return "cannot write the CA certificate to " + target.string() + ": " + written.error();
  }
  caPath = fs::absolute(target).string();
  return std::nullopt;
}

std::string envOr(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

int usageError(const std::string& message) {
  std::cerr << "hybrid-guard serve: " << message << "\n";
  return kExitUsage;
}

}  // namespace

int runServe(const std::vector<std::string>& args) {
  auto started = std::chrono::steady_clock::now();
  Flags flags({{"policy"},
               {"listen"},
               {"tls-cert"},
               {"tls-key"},
               {"metrics-listen"},
               {"state", true, true},
               {"kubeconfig"},
               {"in-cluster", false},
               {"max-body-bytes"},
               {"request-timeout"},
               {"idle-timeout"},
               {"max-connections"},
               {"ledger-grace"},
               {"ca-out"},
               {"log-level"},
               {"reload-interval-ms"},
               {"threads"}});
  if (auto error = flags.parse(args)) return usageError(*error);
  if (!flags.positional().empty())
    return usageError("unexpected argument " + flags.positional()[0]);
  bool clusterMode = flags.has("kubeconfig") || flags.has("in-cluster");
  if (flags.has("kubeconfig") && flags.has("in-cluster")) {
    return usageError("--kubeconfig and --in-cluster exclude each other");
  }
  if (!clusterMode && flags.has("ledger-grace")) {
    return usageError("--ledger-grace needs cluster mode (--kubeconfig or --in-cluster)");
  }
  if (clusterMode && flags.has("state")) {
    return usageError(
        "--state seeds the local state; in cluster mode the state comes from the API server");
  }
  std::chrono::milliseconds ledgerGrace(30000);
  if (auto v = flags.value("ledger-grace")) {
    auto n = parsePositive(*v);
    if (!n || *n > 86400) return usageError("--ledger-grace must be 1 to 86400 seconds");
    ledgerGrace = std::chrono::seconds(*n);
  }
  spdlog::level::level_enum level = spdlog::level::info;
  if (auto l = flags.value("log-level"); l && !parseLogLevel(*l, level)) {
    return usageError("--log-level must be debug, info, warn or error");
  }
  auto listen = parseHostPort(flags.value("listen").value_or("127.0.0.1:8443"));
  auto metricsListen = parseHostPort(flags.value("metrics-listen").value_or("127.0.0.1:9090"));
  if (!listen) return usageError("--listen must be HOST:PORT");
  if (!metricsListen) return usageError("--metrics-listen must be HOST:PORT");
  if (flags.has("tls-cert") != flags.has("tls-key")) {
    return usageError("--tls-cert and --tls-key go together");
  }
  webhook::HttpsServerOptions options;
  if (auto v = flags.value("max-body-bytes")) {
    auto n = parsePositive(*v);
    if (!n) return usageError("--max-body-bytes must be a positive number");
    options.maxBodyBytes = static_cast<size_t>(*n);
  }
  if (auto v = flags.value("request-timeout")) {
    auto n = parsePositive(*v);
    if (!n) return usageError("--request-timeout must be a positive number of seconds");
    options.requestTimeout = std::chrono::seconds(*n);
  }
  if (auto v = flags.value("idle-timeout")) {
    auto n = parsePositive(*v);
    if (!n) return usageError("--idle-timeout must be a positive number of seconds");
    options.idleTimeout = std::chrono::seconds(*n);
  }
  if (auto v = flags.value("threads")) {
    auto n = parsePositive(*v);
    if (!n || *n > 4096) return usageError("--threads must be between 1 and 4096");
    options.workers = static_cast<size_t>(*n);
  }
  if (auto v = flags.value("max-connections")) {
    auto n = parsePositive(*v);
    if (!n) return usageError("--max-connections must be a positive number");
    options.maxConnections = static_cast<size_t>(*n);
  }
  // In cluster mode a Sidecar needing a quota slot waits on ledger round trips to the API server
  // (up to 2 s): decisions then run on a pool, so that the event loops never wait on one.
  if (clusterMode) options.handlerThreads = 16;
  std::chrono::milliseconds reloadInterval(1000);
  if (auto v = flags.value("reload-interval-ms")) {
    auto n = parsePositive(*v);
    if (!n) return usageError("--reload-interval-ms must be a positive number");
    reloadInterval = std::chrono::milliseconds(*n);
  }

  JsonLog log(level);
  routeDefaultLoggerToJson(level);

  // Policy: a bad one at start is fatal; a bad one later is refused and the last good one serves.
  std::shared_ptr<const policy::Policy> initial = policy::defaultPolicy();
  std::optional<std::string> policyFile = flags.value("policy");
  if (policyFile) {
    auto loaded = policy::loadPolicyFile(*policyFile);
    if (!loaded) {
      for (const auto& e : loaded.error()) std::cerr << e.str() << "\n";
      return kExitUsage;
    }
    initial = *loaded;
  }
  webhook::PolicyHolder policyHolder(initial);

  policy::State seeded;
  auto stateInputs = readInputs(flags.values("state"), std::cin);
  if (!stateInputs) {
    for (const auto& e : stateInputs.error()) std::cerr << e.str() << "\n";
    return kExitUsage;
  }
  seedState(*stateInputs, "default", seeded);
  webhook::StateStore state(std::move(seeded));
  webhook::ServerMetrics metrics(*initial);

  // Cluster mode (DESIGN §8): the state follows a watch of the API server, quotas go through the
  // ledger ConfigMap(s) shared by every replica.
  std::unique_ptr<webhook::KubeClient> kube;
  std::unique_ptr<webhook::ClusterMetrics> clusterMetrics;
  std::unique_ptr<webhook::SidecarInformer> informer;
  std::unique_ptr<webhook::QuotaLedger> ledger;
  if (clusterMode) {
    webhook::Result<webhook::KubeConfig> config =
        flags.has("kubeconfig")
            ? webhook::loadKubeconfig(*flags.value("kubeconfig"), "hybrid-guard")
            : webhook::inClusterConfig(envOr("KUBERNETES_SERVICE_HOST"),
                                       envOr("KUBERNETES_SERVICE_PORT"),
                                       "/var/run/secrets/kubernetes.io/serviceaccount");
    if (!config) return usageError(config.error());
    auto client = webhook::KubeClient::create(std::move(config).value());
    if (!client) return usageError(client.error());
    kube = std::move(client).value();
  }
  for (const auto& [ns, count] : state.countsByNamespace()) {
    metrics.setHybridWorkloads(ns, static_cast<double>(count));
  }

  auto certificates = std::make_shared<webhook::CertificateStore>();
  std::string caPath;
  std::optional<std::string> certFile = flags.value("tls-cert"), keyFile = flags.value("tls-key");
  if (certFile) {
    if (auto loaded = certificates->loadFiles(*certFile, *keyFile); !loaded) {
      std::cerr << "hybrid-guard serve: " << loaded.error() << "\n";
      return kExitUsage;
    }
  } else if (auto error =
                 generateLocalCertificates(*listen, flags.value("ca-out"), *certificates, caPath)) {
    std::cerr << "hybrid-guard serve: " << *error << "\n";
    return kExitUsage;
  }
  if (auto info = certificates->info())
    metrics.setCertificateExpiry(static_cast<double>(info->notAfter));

  // Signals are waited for on this thread only; every thread started below inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Below info the decision log is off: no record is built or formatted at all.
  webhook::DecisionLogger decisionLogger;
  if (log.enabled(spdlog::level::info)) {
    decisionLogger = [&log](const webhook::DecisionRecord& record) {
      log.raw(spdlog::level::info, webhook::formatDecisionLog(record));
    };
  }
  webhook::AdmissionService service(policyHolder, state, metrics, std::move(decisionLogger));
  webhook::HttpsServer server(
      certificates,
      [&service](webhook::Endpoint endpoint, std::string_view body) {
        return service.handle(endpoint, body);
      },
      options,
      [&metrics, &log](const webhook::Rejection& rejection) {
        std::string endpoint =
            rejection.endpoint ? std::string(webhook::endpointName(*rejection.endpoint)) : "";
        if (rejection.endpoint) metrics.countRequest(endpoint, "unknown", "unknown", "error");
        log.info("request refused", {{"method", rejection.method},
                                     {"path", rejection.path},
                                     {"status", rejection.status},
                                     {"reason", rejection.reason}});
      });
  webhook::SidePortServer sidePort({[&]() -> std::optional<std::string> {
                                      if (!certificates->current()) return "certificate not loaded";
                                      if (!policyHolder.get()) return "policy not loaded";
                                      if (informer && !informer->synced()) {
                                        return "cluster state not synced (Sidecars not listed yet)";
                                      }
                                      return std::nullopt;
                                    },
                                    [&metrics] { return metrics.render(); }});

  auto stopCluster = [&] {  // the ledger first: it asks the informer what is stored
    if (ledger) ledger->stop();
    if (informer) informer->stop();
  };
  if (kube) {
    clusterMetrics = std::make_unique<webhook::ClusterMetrics>(metrics.registry());
    webhook::EventLog eventLog = [&log](spdlog::level::level_enum at, const std::string& msg,
                                        const json& fields) {
      if (at >= spdlog::level::err) {
        log.error(msg, fields);
      } else if (at == spdlog::level::warn) {
        log.warn(msg, fields);
      } else if (log.enabled(at)) {
        log.info(msg, fields);
      }
    };
    webhook::LedgerOptions ledgerOptions;
    ledgerOptions.namespace_ = kube->config().namespace_;
    ledgerOptions.grace = ledgerGrace;
    ledgerOptions.reconcileInterval = std::clamp(ledgerGrace / 3, std::chrono::milliseconds(200),
                                                 std::chrono::milliseconds(5000));
    ledger = std::make_unique<webhook::QuotaLedger>(
        *kube,
        [&informer]() -> std::optional<std::map<webhook::ObjectKey, std::string>> {
          if (!informer || !informer->synced()) return std::nullopt;
          return informer->storedHybrid();
        },
        *clusterMetrics, eventLog, ledgerOptions);
    webhook::SidecarInformer::Observer observer;
    observer.onGone = [&ledger](const webhook::ObjectKey& key, const std::string& uid,
                                std::chrono::system_clock::time_point when) {
      ledger->noteGone(key, uid, when);
    };
    informer = std::make_unique<webhook::SidecarInformer>(
        *kube, state, *clusterMetrics, eventLog, webhook::SidecarInformer::Options{},
        std::move(observer), [&metrics](const std::string& ns, size_t count) {
          metrics.setHybridWorkloads(ns, static_cast<double>(count));
        });
    state.enableClusterMode(ledger.get());
    log.info("cluster mode",
             {{"api_server", kube->config().host + ":" + std::to_string(kube->config().port)},
              {"credentials", kube->config().source},
              {"ledger", ledgerOptions.namespace_ + "/" + ledgerOptions.name},
              {"ledger_grace_s", ledgerGrace.count() / 1000}});
    informer->start();
    ledger->start();
  }

  if (auto s = server.start(listen->host, listen->port); !s) {
    stopCluster();
    std::cerr << "hybrid-guard serve: cannot listen on " << listen->host << ":" << listen->port
              << ": " << s.error() << "\n";
    return kExitUsage;
  }
  if (auto s = sidePort.start(metricsListen->host, metricsListen->port); !s) {
    server.stop();
    stopCluster();
    std::cerr << "hybrid-guard serve: cannot listen on " << metricsListen->host << ":"
              << metricsListen->port << ": " << s.error() << "\n";
    return kExitUsage;
  }

  std::unique_ptr<webhook::FileWatcher> policyWatcher, certWatcher;
  if (policyFile) {
    policyWatcher = std::make_unique<webhook::FileWatcher>(
        std::vector<fs::path>{*policyFile},
        [&, file = *policyFile] {
          auto loaded = policy::loadPolicyFile(file);
          if (!loaded) {
            json errors = json::array();
            for (const auto& e : loaded.error()) errors.push_back(e.str());
            metrics.countPolicyReload(false);
            log.error("policy reload refused; the last good policy keeps serving",
                      {{"file", file}, {"errors", errors}});
            return;
          }
          policyHolder.set(*loaded);
          metrics.countPolicyReload(true);
          log.info("policy reloaded", {{"file", file},
                                       {"policy", (*loaded)->name},
                                       {"enforcement", policy::toString((*loaded)->enforcement)}});
        },
        reloadInterval);
    policyWatcher->start();
  }
  if (certFile) {
    certWatcher = std::make_unique<webhook::FileWatcher>(
        std::vector<fs::path>{*certFile, *keyFile},
        [&, cert = *certFile, key = *keyFile] {
          if (auto loaded = certificates->loadFiles(cert, key); !loaded) {
            metrics.countCertificateReload(false);
            log.error("certificate reload refused; the current certificate keeps serving",
                      {{"cert", cert}, {"key", key}, {"error", loaded.error()}});
            return;
          }
          metrics.countCertificateReload(true);
          auto info = certificates->info();
          if (info) metrics.setCertificateExpiry(static_cast<double>(info->notAfter));
          log.info("certificate reloaded", {{"serial", info ? info->serialHex : ""},
                                            {"not_after", info ? info->notAfter : 0}});
        },
        reloadInterval);
    certWatcher->start();
  }

  auto readyMicros = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::steady_clock::now() - started)
                         .count();
  json fields = {{"listen", listen->host + ":" + std::to_string(server.port())},
                 {"metrics_listen", metricsListen->host + ":" + std::to_string(sidePort.port())},
                 {"policy", initial->name},
                 {"enforcement", policy::toString(initial->enforcement)},
                 {"hybrid_workloads", state.total()},
                 {"ready_us", readyMicros}};
  if (!caPath.empty()) fields["ca_file"] = caPath;
  log.info("serving", fields);
  if (!caPath.empty()) {
    std::cerr << "hybrid-guard: serving https://" << listen->host << ":" << server.port()
              << " with a generated certificate; CA file: " << caPath << "\n";
  }

  int received = 0;
  sigwait(&signals, &received);
  log.info("stopping: draining in-flight requests",
           {{"signal", received == SIGTERM ? "SIGTERM" : "SIGINT"}});
  if (policyWatcher) policyWatcher->stop();
  if (certWatcher) certWatcher->stop();
  server.stop();
  stopCluster();
  sidePort.stop();
  log.info("stopped");
  return kExitOk;
}

}  // namespace hybrid_guard::cli
