#!/usr/bin/env python3
"""Writes the benchmark's AdmissionReviews and state from real manifests of the shared corpus.

Usage: make_reviews.py CORPUS_DIR OUT_DIR [STATE_WORKLOADS]

- sidecar-create.json: CREATE of the "ingress-sidecar" Sidecar of Istio's "Ingress Sidecar TLS
  Termination" task (istio-docs/), MUTUAL TLS, namespace test (~2 KB, indented as kubectl -v
  shows reviews).
- pod-create.json: CREATE of the injected Pod of Istio's injector tests (istio-inject/
  pod.yaml.injected: init containers, istio-proxy with its env), namespace hello (~10 KB).
- state-1.yaml: the one hybrid Sidecar selecting that pod (hello/hellopod-tls), so /mutate has
  something to inject and /validate something to check mounts against.
- state-10000.yaml: the same plus hybrid Sidecars in namespaces team-0..team-99 up to
  STATE_WORKLOADS (default 10,000) hybrid workloads in all, counting the reviewed Sidecar (which
  the first /validate of the run adds: the state starts with one less).
- state-10000.json: the same Sidecars as one List, as `kubectl get sidecars -A -o json` writes it.
- policy.yaml: allows test, hello and team-.* (100 each), cluster maximum 10,000.
"""
import json
import os
import sys

import yaml


def load(path, kind, name=None):
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if doc and doc.get("kind") == kind and (name is None or doc["metadata"]["name"] == name):
                return doc
    raise SystemExit(f"{path}: no {kind} {name or ''}")


def review(uid, group, version, kind, resource, namespace, obj, user):
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": obj["metadata"].get("name", ""),
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": user,
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions",
                        "fieldManager": "kubectl-client-side-apply",
                        "fieldValidation": "Strict"},
        },
    }


def sidecar_yaml(ns, name, labels, cert_dir):
    selector = "".join(f"\n      {k}: {v}" for k, v in labels.items())
    return f"""apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: {name}
  namespace: {ns}
spec:
  workloadSelector:
    labels:{selector}
  ingress:
  - port: {{number: 8443, protocol: HTTPS, name: external}}
    defaultEndpoint: 0.0.0.0:8080
    tls:
      mode: SIMPLE
      serverCertificate: {cert_dir}/tls.crt
      privateKey: {cert_dir}/tls.key
"""


def main():
    corpus, out = sys.argv[1], sys.argv[2]
    total = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    os.makedirs(out, exist_ok=True)
    user = {"username": "alice@example.com", "uid": "a1b2c3",
            "groups": ["platform-team", "system:authenticated"],
            "extra": {"scopes.example.com": ["namespace:test"]}}

    sidecar = load(f"{corpus}/istio-docs/sidecar-tls-termination.yaml", "Sidecar", "ingress-sidecar")
    sidecar["metadata"]["namespace"] = "test"
    r = review("6f1d7c2a-0b7e-4c51-9a54-2f4c3d8e9a01", "networking.istio.io", "v1", "Sidecar",
               "sidecars", "test", sidecar, user)
    with open(f"{out}/sidecar-create.json", "w") as f:
        json.dump(r, f, indent=2)
        f.write("\n")

    pod = load(f"{corpus}/istio-inject/pod.yaml.injected", "Pod")
    pod["metadata"]["namespace"] = "hello"
    r = review("0c9b7e55-71d2-4f0e-8a1b-5e2d9c4f3b77", "", "v1", "Pod", "pods", "hello", pod,
               {"username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "d4e5f6", "groups": ["system:serviceaccounts",
                                             "system:serviceaccounts:kube-system",
                                             "system:authenticated"]})
    with open(f"{out}/pod-create.json", "w") as f:
        json.dump(r, f, indent=2)
        f.write("\n")

    selected = sidecar_yaml("hello", "hellopod-tls",
                            {"service.istio.io/canonical-name": "hellopod"}, "/etc/istio/tls-certs")
    with open(f"{out}/state-1.yaml", "w") as f:
        f.write(selected)
    # The reviewed Sidecar and hello/hellopod-tls make two; team-N hold the rest, 100 each.
    documents = [selected] + [sidecar_yaml(f"team-{i // 100}", f"sc-{i}", {"app": f"app-{i}"},
                                           "/etc/istio/tls-certs") for i in range(total - 2)]
    with open(f"{out}/state-{total}.yaml", "w") as f:
        f.write("---\n".join(documents))
    with open(f"{out}/state-{total}.json", "w") as f:
        items = [yaml.safe_load(d) for d in documents]
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f, indent=2)
        f.write("\n")
    with open(f"{out}/policy.yaml", "w") as f:
        f.write("""apiVersion: hybrid-guard.io/v1alpha1
kind: HybridModePolicy
metadata: {name: bench}
spec:
  maxWorkloads: 10000
  namespaces:
  - {name: test, maxWorkloads: 100}
  - {name: hello, maxWorkloads: 100}
  - {pattern: "team-.*", maxWorkloads: 100}
  requesters:
    groups: [platform-team, system:serviceaccounts]
  tls:
    certificatePaths: [/etc/istio/tls-certs/, /etc/istio/tls-ca-certs/]
""")


if __name__ == "__main__":
    main()
