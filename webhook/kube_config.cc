#include "webhook/kube_config.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

namespace hybrid_guard::webhook {

namespace fs = std::filesystem;

namespace {

Result<std::string> readText(const fs::path& file, const std::string& what) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Result<std::string>::failure("cannot read " + what + " " + file.string());
  std::ostringstream out;
  out << in.rdbuf();
  return Result<std::string>::success(out.str());
}

std::string trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
  return s.substr(start);
}

// The entry of a named list (clusters, users, contexts) with this name; a null node when absent.
YAML::Node findNamed(const YAML::Node& list, const std::string& name) {
  if (!list || !list.IsSequence()) return YAML::Node(YAML::NodeType::Undefined);
  for (const auto& entry : list) {
    if (entry.IsMap() && entry["name"] && entry["name"].IsScalar() &&
        entry["name"].as<std::string>() == name) {
      return entry;
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::optional<std::string> scalar(const YAML::Node& map, const char* key) {
  if (!map || !map.IsMap()) return std::nullopt;
  YAML::Node value = map[key];
  if (!value || !value.IsScalar()) return std::nullopt;
  return value.as<std::string>();
}

}  // namespace

std::string base64Decode(std::string_view text, bool& ok) {
  static const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  ok = true;
  size_t padding = 0;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == ' ') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    auto pos = alphabet.find(c);
    if (pos == std::string::npos || padding > 0) {
      ok = false;
      return {};
    }
    buffer = (buffer << 6) | static_cast<unsigned>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
    }
  }
  if (padding > 2) ok = false;
  return out;
}

Status parseServerUrl(const std::string& url, KubeConfig& config) {
  const std::string scheme = "https://";
  if (url.rfind(scheme, 0) != 0) {
    return Status::failure("server " + url + " is not an https:// URL");
  }
  std::string rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos) {
    return Status::failure("server " + url + " has a path; hybrid-guard supports none");
  }
  std::string host = rest, port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) return Status::failure("server " + url + " is malformed");
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return Status::failure("server " + url + " is malformed");
      port = rest.substr(close + 2);
    }
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.empty()) return Status::failure("server " + url + " names no host");
  config.host = host;
  config.port = 443;
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) < 1 || std::stoi(port) > 65535) {
      return Status::failure("server " + url + " has an invalid port");
    }
    config.port = std::stoi(port);
  }
  return Status::success();
}

Result<KubeConfig> loadKubeconfig(const fs::path& file, const std::string& defaultNamespace) {
  using R = Result<KubeConfig>;
  auto text = readText(file, "kubeconfig");
  if (!text) return R::failure(text.error());
  YAML::Node root;
  try {
    root = YAML::Load(text.value());
  } catch (const YAML::Exception& e) {
    return R::failure("kubeconfig " + file.string() + ": " + e.what());
  }
  auto fail = [&](const std::string& message) {
    return R::failure("kubeconfig " + file.string() + ": " + message);
  };
  if (!root.IsMap()) return fail("not a kubeconfig (not a mapping)");
  auto current = scalar(root, "current-context");
  if (!current || current->empty()) return fail("no current-context");
  YAML::Node context = findNamed(root["contexts"], *current);
  if (!context || !context["context"].IsMap()) return fail("no context named " + *current);
  auto clusterName = scalar(context["context"], "cluster");
  auto userName = scalar(context["context"], "user");
  if (!clusterName) return fail("context " + *current + " names no cluster");
  YAML::Node cluster = findNamed(root["clusters"], *clusterName)["cluster"];
  if (!cluster || !cluster.IsMap()) return fail("no cluster named " + *clusterName);

  KubeConfig config;
  config.source = file.string();
  fs::path base = file.parent_path();
  auto resolve = [&](const std::string& path) {
    fs::path p(path);
    return p.is_absolute() ? p : base / p;
  };
  auto server = scalar(cluster, "server");
  if (!server) return fail("cluster " + *clusterName + " has no server");
  if (auto s = parseServerUrl(*server, config); !s) return fail(s.error());
  if (auto skip = scalar(cluster, "insecure-skip-tls-verify"); skip && *skip == "true") {
    return fail("insecure-skip-tls-verify is refused: hybrid-guard always verifies the API server");
  }
  if (auto data = scalar(cluster, "certificate-authority-data")) {
    bool ok = false;
    config.caPem = base64Decode(*data, ok);
    if (!ok) return fail("certificate-authority-data is not base64");
  } else if (auto path = scalar(cluster, "certificate-authority")) {
    config.caFile = resolve(*path).string();
  } else {
    return fail("cluster " + *clusterName +
                " has no certificate-authority(-data); the system roots are not used");
  }

  YAML::Node user;
  if (userName) {
    user = findNamed(root["users"], *userName)["user"];
    if (!user || !user.IsMap()) return fail("no user named " + *userName);
  }
  if (user) {
    if (user["exec"] || user["auth-provider"]) {
      return fail("user " + *userName + ": exec and auth-provider plugins are not supported");
    }
    auto loadPem = [&](const char* dataKey, const char* fileKey,
                       std::string& out) -> std::optional<std::string> {
      if (auto data = scalar(user, dataKey)) {
        bool ok = false;
        out = base64Decode(*data, ok);
        if (!ok) return std::string(dataKey) + " is not base64";
      } else if (auto path = scalar(user, fileKey)) {
        auto pem = readText(resolve(*path), fileKey);
        if (!pem) return pem.error();
        out = pem.value();
      }
      return std::nullopt;
    };
    if (auto e =
            loadPem("client-certificate-data", "client-certificate", config.clientCertificatePem)) {
      return fail(*e);
    }
    if (auto e = loadPem("client-key-data", "client-key", config.clientKeyPem)) return fail(*e);
    if (config.clientCertificatePem.empty() != config.clientKeyPem.empty()) {
      return fail("user " + *userName + " has a client certificate without a key or the reverse");
    }
    if (auto token = scalar(user, "token")) config.bearerToken = trimmed(*token);
    if (auto tokenFile = scalar(user, "tokenFile")) config.tokenFile = resolve(*tokenFile);
  }
  if (config.clientCertificatePem.empty() && config.bearerToken.empty() &&
      config.tokenFile.empty()) {
    return fail("context " + *current + " has no credentials (client certificate or token)");
  }
  config.namespace_ = scalar(context["context"], "namespace").value_or(defaultNamespace);
  if (config.namespace_.empty()) config.namespace_ = defaultNamespace;
  return R::success(std::move(config));
}

Result<KubeConfig> inClusterConfig(const std::string& host, const std::string& port,
                                   const fs::path& accountDir) {
  using R = Result<KubeConfig>;
  if (host.empty() || port.empty()) {
    return R::failure(
        "--in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not "
        "running in a pod?)");
  }
  KubeConfig config;
  config.source = "in-cluster";
  std::string url =
      "https://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
  if (auto s = parseServerUrl(url, config); !s) return R::failure("--in-cluster: " + s.error());
  config.caFile = (accountDir / "ca.crt").string();
  if (!fs::exists(config.caFile)) {
    return R::failure("--in-cluster: no " + config.caFile +
                      " (is the service account token mounted?)");
  }
  config.tokenFile = accountDir / "token";
  auto token = readText(config.tokenFile, "service account token");
  if (!token) return R::failure("--in-cluster: " + token.error());
  auto ns = readText(accountDir / "namespace", "service account namespace");
  if (!ns) return R::failure("--in-cluster: " + ns.error());
  config.namespace_ = trimmed(ns.value());
  return R::success(std::move(config));
}

}  // namespace hybrid_guard::webhook
