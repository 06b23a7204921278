#pragma once

#include <memory>

#include "policy/decision.h"
#include "policy/policy.h"
#include "policy/state.h"

namespace hybrid_guard::fuzz {

// A policy that exercises every rule, and a state with hybrid Sidecars to select pods.
inline std::shared_ptr<const policy::Policy> fuzzPolicy() {
  auto loaded = policy::loadPolicy(R"(apiVersion: hybrid-guard.io/v1alpha1
kind: HybridModePolicy
metadata: {name: fuzz}
spec:
  exemptNamespaces: [platform, {pattern: "kube-.*"}]
  namespaces: [{name: payments, maxWorkloads: 2}, {pattern: "edge-.*"}, default]
  maxWorkloads: 3
  requesters: {users: [alice, {pattern: "ci-.*"}], groups: [admins]}
  tls:
    modes: [SIMPLE, MUTUAL]
    cipherSuites: [ECDHE-ECDSA-AES256-GCM-SHA384]
    certificatePaths: [/etc/istio/tls-certs/]
  ports: [8443, {from: 9000, to: 9099}]
)",
                                   "fuzz-policy.yaml");
  if (!loaded) std::abort();
  return *loaded;
}

inline policy::State fuzzState() {
  policy::State state;
  state.upsert(
      {"payments", "api", policy::Labels{{"app", "api"}}, {"/etc/istio/tls-certs/tls.crt"}});
  state.upsert({"default", "all", std::nullopt, {}});
  return state;
}

}  // namespace hybrid_guard::fuzz
