#!/usr/bin/env python3
"""Writes N mixed Kubernetes objects (multi-document YAML) for the eval benchmark.

Mix per 10 objects: 2 Sidecars (1 hybrid), 3 Pods (one injected with istio-proxy), 2 Deployments,
1 Service, 1 ConfigMap, 1 CronJob, spread over 50 namespaces."""
import sys

def sidecar(i, ns, hybrid):
    tls = """
    tls:
      mode: SIMPLE
      serverCertificate: /etc/istio/tls-certs/tls.crt
      privateKey: /etc/istio/tls-certs/tls.key""" if hybrid else ""
    return f"""apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: sc-{i}
  namespace: {ns}
spec:
  workloadSelector:
    labels:
      app: app-{i}
  ingress:
  - port:
      number: 8443
      protocol: HTTPS
      name: external
    defaultEndpoint: 0.0.0.0:8080{tls}
"""

def pod(i, ns, injected):
    proxy = f"""
  - name: istio-proxy
    image: docker.io/istio/proxyv2:1.24.0
    args: [proxy, sidecar, --domain, $(POD_NAMESPACE).svc.cluster.local]
    env:
    - name: POD_NAME
      valueFrom:
        fieldRef: {{fieldPath: metadata.name}}
    - name: ISTIO_META_MESH_ID
      value: cluster.local""" if injected else ""
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: pod-{i}
  namespace: {ns}
  labels:
    app: app-{i - 1}
    version: v1
  annotations:
    proxy.istio.io/config: |
      holdApplicationUntilProxyStarts: true
spec:
  containers:
  - name: app
    image: registry.example/app:{i}
    ports:
    - containerPort: 8080
    resources:
      requests: {{cpu: 100m, memory: 64Mi}}{proxy}
"""

def deployment(i, ns):
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: deploy-{i}
  namespace: {ns}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: app-{i}}}
  template:
    metadata:
      labels: {{app: app-{i}}}
      annotations:
        sidecar.istio.io/userVolumeMount: '{{"tls":{{"mountPath":"/etc/istio/tls-certs/"}}}}'
    spec:
      containers:
      - name: app
        image: registry.example/app:{i}
"""

def other(i, ns, kind):
    if kind == "Service":
        return f"""apiVersion: v1
kind: Service
metadata:
  name: svc-{i}
  namespace: {ns}
spec:
  selector: {{app: app-{i}}}
  ports:
  - {{port: 8443, name: https, targetPort: 8443}}
"""
    if kind == "ConfigMap":
        return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: cm-{i}
  namespace: {ns}
data:
  key: value-{i}
"""
    return f"""apiVersion: batch/v1
kind: CronJob
metadata:
  name: cron-{i}
  namespace: {ns}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: job
            image: registry.example/job:{i}
"""

def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    docs = []
    for i in range(n):
        ns = f"team-{i % 50}"
        slot = i % 10
        if slot == 0: docs.append(sidecar(i, ns, True))
        elif slot == 1: docs.append(sidecar(i, ns, False))
        elif slot in (2, 3): docs.append(pod(i, ns, slot == 3))
        elif slot == 4: docs.append(pod(i, ns, False))
        elif slot in (5, 6): docs.append(deployment(i, ns))
        elif slot == 7: docs.append(other(i, ns, "Service"))
        elif slot == 8: docs.append(other(i, ns, "ConfigMap"))
        else: docs.append(other(i, ns, "CronJob"))
    sys.stdout.write("---\n".join(docs))

main()
