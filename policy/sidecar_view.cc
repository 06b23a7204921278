#include "policy/sidecar_view.h"

#include "policy/object_shape.h"

namespace hybrid_guard::policy {

using nlohmann::json;

bool isSidecarKind(std::string_view group, std::string_view kind) {
  return group == "networking.istio.io" && kind == "Sidecar";
}

std::vector<std::string> SidecarView::certificatePaths() const {
  std::vector<std::string> paths;
  for (const auto& listener : tlsListeners) {
    for (const char* field : kTlsFileFields) {
      auto it = listener.tls->find(field);
      if (it != listener.tls->end() && it->is_string() &&
          !it->get_ref<const std::string&>().empty()) {
        paths.push_back(it->get<std::string>());
      }
    }
  }
  return paths;
}

HybridSidecar SidecarView::toHybridSidecar() const {
  return HybridSidecar{namespace_, name, selector, certificatePaths()};
}

namespace {

void readTlsShape(ShapeChecker& check, const json& tls, const Path& path) {
  for (const char* field : {"mode", "serverCertificate", "privateKey", "caCertificates", "caCrl",
                            "minProtocolVersion", "maxProtocolVersion", "credentialName"}) {
    check.string(tls, field, path);
  }
  check.boolean(tls, "httpsRedirect", path);
  for (const char* field : {"subjectAltNames", "cipherSuites", "credentialNames",
                            "verifyCertificateSpki", "verifyCertificateHash"}) {
    if (const json* list = check.array(tls, field, path)) {
      for (size_t i = 0; i < list->size(); ++i) {
        if (!(*list)[i].is_string()) {
          check.invalid((path / field)[i], "must be a string, not " + jsonTypeName((*list)[i]));
        }
      }
    }
  }
  check.array(tls, "tlsCertificates", path);
}

}  // namespace

SidecarRead readSidecar(const json& object, std::string_view requestNamespace) {
  SidecarRead read;
  SidecarView& view = read.view;
  ShapeChecker check;
  Path root;
  if (!object.is_object()) {
    check.invalid(root, "a Sidecar must be a map, not " + jsonTypeName(object));
    read.invalid = std::move(check.findings);
    return read;
  }
  const json* metadata = check.object(object, "metadata", root);
  if (!metadata && check.ok()) {  // absent or null; a wrong type was reported above
    check.invalid(root / "metadata", "is missing; a Sidecar needs metadata.name");
  }
  if (metadata) {
    Path metadataPath = root / "metadata";
    if (const json* name = check.string(*metadata, "name", metadataPath)) {
      view.name = name->get<std::string>();
    }
    if (const json* ns = check.string(*metadata, "namespace", metadataPath)) {
      view.namespace_ = ns->get<std::string>();
    }
  }
  if (view.namespace_.empty()) view.namespace_ = std::string(requestNamespace);

  Path specPath = root / "spec";
  const json* spec = check.object(object, "spec", root);
  if (spec) {
    Path selectorPath = specPath / "workloadSelector";
    view.workloadSelector = check.object(*spec, "workloadSelector", specPath);
    if (view.workloadSelector) {
      if (const json* labels = check.stringMap(*view.workloadSelector, "labels", selectorPath)) {
        if (!labels->empty()) {
          Labels selector;
          for (const auto& [k, v] : labels->items()) selector.emplace(k, v.get<std::string>());
          view.selector = std::move(selector);
        }
      }
    }
    Path ingressPath = specPath / "ingress";
    view.ingress = check.array(*spec, "ingress", specPath);
    if (view.ingress) {
      for (size_t i = 0; i < view.ingress->size(); ++i) {
        const json& entry = (*view.ingress)[i];
        Path entryPath = ingressPath[i];
        if (!entry.is_object()) {
          check.invalid(entryPath, "an ingress listener must be a map, not " + jsonTypeName(entry));
          continue;
        }
        auto tlsIt = entry.find("tls");
        if (tlsIt == entry.end()) continue;
        TlsListener listener;
        listener.index = i;
        listener.path = entryPath;
        static const json kEmpty = json::object();
        if (tlsIt->is_null()) {
          listener.tls = &kEmpty;
        } else if (!tlsIt->is_object()) {
          check.invalid(entryPath / "tls", "must be a map, not " + jsonTypeName(*tlsIt));
          continue;
        } else {
          listener.tls = &*tlsIt;
          readTlsShape(check, *tlsIt, entryPath / "tls");
        }
        if (const json* port = check.object(entry, "port", entryPath)) {
          Path portPath = entryPath / "port";
          if (const json* number = check.integer(*port, "number", portPath)) {
            listener.portNumber =
                number->is_number_unsigned() && number->get<unsigned long long>() > 1'000'000'000ULL
                    ? 1'000'000'000LL
                    : number->get<long long>();
          }
          if (const json* protocol = check.string(*port, "protocol", portPath)) {
            listener.protocol = protocol->get<std::string>();
          }
        }
        view.tlsListeners.push_back(std::move(listener));
      }
    }
  }
  read.invalid = std::move(check.findings);
  return read;
}

}  // namespace hybrid_guard::policy
