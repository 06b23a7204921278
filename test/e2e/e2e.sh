#!/usr/bin/env bash
# End-to-end tests against a real kube-apiserver (with etcd) and a real kubectl (issue 4).
#
#   test/e2e/e2e.sh [HYBRID_GUARD_BINARY]      (default build/cli/hybrid-guard)
#
# 1. builds or reuses the control plane (test/e2e/build-control-plane.sh, cached outside the repo)
# 2. starts etcd + kube-apiserver on loopback (test/e2e/control-plane.sh), installs the Istio CRDs
#    from ../shared/istio/ (HG_SHARED_DIR to override)
# 3. starts `hybrid-guard serve` on 127.0.0.1 with a certificate made by certs/generate.sh
#    (IP SAN 127.0.0.1) and the policy test/e2e/policy.yaml
# 4. registers the webhooks of manifests/webhooks/ through a kustomize overlay that changes only
#    clientConfig (url https://127.0.0.1:PORT/validate|mutate + caBundle), and polls until the API
#    server really calls them
# 5. runs the scenarios of issue 4, each asserting on what kubectl prints or what the API holds;
#    expected violation lines come from `hybrid-guard eval` on the same objects, rule ids are
#    checked literally
# Everything started stops by itself (trap; the control plane's watchdog besides). The work folder
# is removed on success and kept (its path printed) on failure. Exit 0 when every scenario passed.
# Env: HG_SKIP_E2E=1 exits 77 (ctest: skipped); HG_SHARED_DIR; HG_CP_CACHE (see build script);
#      E2E_VERBOSE=1 prints every command and its output.
set -euo pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/../.." && pwd -P)"
E2E_NAME=e2e
# shellcheck source=test/e2e/lib.sh
source "${SCRIPT_DIR}/lib.sh"

resolve_inputs "${1:-}"
OBJ="${SCRIPT_DIR}/objects"
RUN_STARTED=${SECONDS}

# --- control plane: build (or reuse) --------------------------------------------------------------
say "building or reusing the control plane (test/e2e/build-control-plane.sh)"
build_started=${SECONDS}
bash "${SCRIPT_DIR}/build-control-plane.sh" >&2
CP_BUILD_SECONDS=$((SECONDS - build_started))
say "control-plane build took ${CP_BUILD_SECONDS}s"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hg-e2e.XXXXXX")"
SERVE_PID="" CP_START_SECONDS="-" PASSED_ALL=0

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_serve || true
  bash "${SCRIPT_DIR}/control-plane.sh" stop "${WORK}/cp" >/dev/null 2>&1 || true
  if (( rc == 0 && PASSED_ALL )); then
    rm -rf "${WORK}"
  else
    if [[ -f "${WORK}/serve.log" ]]; then say "last lines of the hybrid-guard log:"; tail -n 15 "${WORK}/serve.log" >&2; fi
    say "kept the work folder for inspection: ${WORK} (logs: serve.log, cp/kube-apiserver.log)"
  fi
  say "timings: control-plane build ${CP_BUILD_SECONDS}s, control-plane start ${CP_START_SECONDS}s, whole e2e run $((SECONDS - RUN_STARTED))s"
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- control plane: start -----------------------------------------------------------------------
start_started=${SECONDS}
KUBECONFIG="$(HG_CP_OWNER_PID=$$ bash "${SCRIPT_DIR}/control-plane.sh" start "${WORK}/cp")"
CP_START_SECONDS=$((SECONDS - start_started))
export KUBECONFIG
# shellcheck disable=SC1091
source "${WORK}/cp/control-plane.env"
say "control plane up in ${CP_START_SECONDS}s at ${APISERVER_URL}"
k() { "${KUBECTL}" --request-timeout=30s "$@"; }
"${KUBECTL}" version >&2

# --- helpers ------------------------------------------------------------------------------------
# The `[rule] path: message` lines hybrid-guard eval prints for FILE under the e2e policy (the
# pristine one in deny mode: messages do not depend on the enforcement mode).
eval_violations() {   # eval_violations [--state F]... FILE
  local out
  out="$("${BINARY}" eval --policy "${SCRIPT_DIR}/policy.yaml" "$@" 2>&1)" || true
  sed -n 's/^  \(\[[a-z-]*\] .*\)$/\1/p' <<<"${out}"
}
rule_ids() { grep -o '^\[[a-z-]*\]' | tr -d '[]' | sort -u | paste -sd' ' -; }

# expect_denied WEBHOOK RULES FILE [eval args before FILE...]: the last `run` (a kubectl
# command) was refused by WEBHOOK with exactly the rule ids RULES (space-separated, sorted),
# and printed every violation line that `hybrid-guard eval` gives for the same object.
expect_denied() {
  local webhook="$1" rules="$2"; shift 2
  expect_fail "kubectl" || return 1
  expect_output_has "admission webhook \"${webhook}\" denied the request: " || return 1
  local lines line
  lines="$(eval_violations "$@")"
  [[ -n "${lines}" ]] || fail "hybrid-guard eval found no violation in ${*: -1}" || return 1
  expect_eq "rule ids by hybrid-guard eval" "${rules}" "$(rule_ids <<<"${lines}")" || return 1
  expect_eq "rule ids printed by kubectl" "${rules}" "$(rule_ids <<<"${E2E_LAST_OUTPUT}")" || return 1
  while IFS= read -r line; do
    expect_output_has "${line}" || return 1
  done <<<"${lines}"
}

expect_absent() {   # expect_absent RESOURCE NAMESPACE NAME
  run k get "$1" -n "$2" "$3"
  expect_fail "kubectl get $1 $2/$3" || return 1
  expect_output_has "NotFound" || return 1
}

metric() {   # metric 'name{labels}': its value on the side port ("" when absent)
  curl -fsS --max-time 5 "http://${SERVE_METRICS_ADDR}/metrics" 2>/dev/null \
    | awk -v m="$1" '$1 == m { print $2; exit }'
}

# ================================================================================================
POLICY="${WORK}/policy.yaml"
cp "${SCRIPT_DIR}/policy.yaml" "${POLICY}"

setup_cluster() {
  run k create -f "${ISTIO_DIR}/crd-sidecars.networking.istio.io.yaml" \
    -f "${ISTIO_DIR}/crd-peerauthentications.security.istio.io.yaml"
  expect_ok "installing the Istio CRDs" || return 1
  run k wait --for condition=Established --timeout=60s crd/sidecars.networking.istio.io \
    crd/peerauthentications.security.istio.io
  expect_ok "waiting for the CRDs" || return 1
  wait_for 60 "the Sidecar API to be served" k get sidecars -A || return 1
  run k apply -f "${OBJ}/namespaces.yaml" -f "${REPO_ROOT}/manifests/namespace.yaml"
  expect_ok "creating the namespaces" || return 1
}

manifests_accepted() {
  # Namespaced objects cannot be dry-run into a namespace that does not exist yet: setup_cluster
  # created it from manifests/namespace.yaml.
  run k apply --dry-run=server -k "${REPO_ROOT}/manifests"
  expect_ok "kubectl apply --dry-run=server -k manifests/" || return 1
  local kind
  for kind in namespace/hybrid-guard serviceaccount/hybrid-guard role.rbac.authorization.k8s.io/hybrid-guard-ledger \
      clusterrole.rbac.authorization.k8s.io/hybrid-guard rolebinding.rbac.authorization.k8s.io/hybrid-guard-ledger \
      clusterrolebinding.rbac.authorization.k8s.io/hybrid-guard configmap/hybrid-guard-ledger \
      configmap/hybrid-guard-policy service/hybrid-guard deployment.apps/hybrid-guard \
      poddisruptionbudget.policy/hybrid-guard mutatingwebhookconfiguration.admissionregistration.k8s.io/hybrid-guard \
      validatingwebhookconfiguration.admissionregistration.k8s.io/hybrid-guard; do
    expect_output_has "${kind} " || return 1
  done
  expect_eq "objects dry-run" 13 "$(grep -c '(server dry run)' <<<"${E2E_LAST_OUTPUT}")" || return 1
  expect_output_lacks "Warning:" || return 1   # e.g. PodSecurity "restricted" of the namespace
  run "${BINARY}" lint "${REPO_ROOT}/manifests/policy.yaml"
  expect_ok "hybrid-guard lint manifests/policy.yaml" || return 1
  # The certs/ overlay (Secret + caBundle) is accepted too, and cert-manager's renders.
  run "${REPO_ROOT}/certs/generate.sh" --out "${WORK}/certs-overlay"
  expect_ok "certs/generate.sh" || return 1
  run k apply --dry-run=server -k "${WORK}/certs-overlay"
  expect_ok "kubectl apply --dry-run=server -k <certs overlay>" || return 1
  expect_output_has "secret/hybrid-guard-tls created (server dry run)" || return 1
  run k kustomize "${REPO_ROOT}/certs/cert-manager"
  expect_ok "kubectl kustomize certs/cert-manager" || return 1
  expect_eq "cainjector annotations" 2 "$(grep -c 'cert-manager.io/inject-ca-from: hybrid-guard/hybrid-guard-serving' <<<"${E2E_LAST_OUTPUT}")" || return 1
  expect_output_has "secretName: hybrid-guard-tls" || return 1
}

rbac_least_privilege() {
  run k apply -f "${REPO_ROOT}/manifests/rbac.yaml"
  expect_ok "applying manifests/rbac.yaml" || return 1
  local sa=system:serviceaccount:hybrid-guard:hybrid-guard check verdict
  for check in "yes list sidecars.networking.istio.io -A" "yes watch sidecars.networking.istio.io -A" \
      "yes get configmap/hybrid-guard-ledger -n hybrid-guard" "yes update configmap/hybrid-guard-ledger -n hybrid-guard" \
      "no create configmaps -n hybrid-guard" "no get configmap/hybrid-guard-policy -n hybrid-guard" \
      "no update sidecars.networking.istio.io -n hg-allowed" "no get secrets -n hybrid-guard" \
      "no list pods -A" "no create sidecars.networking.istio.io -n hg-allowed"; do
    read -r verdict check <<<"${check}"
    # shellcheck disable=SC2086
    run k auth can-i --as="${sa}" ${check}
    expect_eq "can-i ${check}" "${verdict}" "${E2E_LAST_OUTPUT}" || return 1
  done
  run k delete -f "${REPO_ROOT}/manifests/rbac.yaml" --ignore-not-found
  expect_ok "removing the RBAC objects again" || return 1
}

certs_rotate() {
  local d="${WORK}/certs-rotate" n
  "${REPO_ROOT}/certs/generate.sh" --out "${d}" >/dev/null
  cp "${d}/ca.crt" "${WORK}/ca-1.crt"
  for n in 2 3; do
    "${REPO_ROOT}/certs/generate.sh" --out "${d}" >/dev/null
    cp "${d}/ca.crt" "${WORK}/ca-${n}.crt"
    expect_eq "CAs in the bundle after run ${n}" 2 "$(grep -c 'BEGIN CERTIFICATE' "${d}/ca-bundle.crt")" || return 1
    run openssl verify -CAfile "${d}/ca-bundle.crt" "${d}/tls.crt"
    expect_ok "the new serving certificate verifies against the bundle" || return 1
    # The bundle is the new CA then the previous one (and not the one before).
    expect_eq "bundle after run ${n}" "$(cat "${WORK}/ca-${n}.crt" "${WORK}/ca-$((n - 1)).crt")" "$(cat "${d}/ca-bundle.crt")" || return 1
  done
  run k kustomize "${d}"
  expect_ok "rendering the rotated overlay" || return 1
  local bundle; bundle="$(base64 -w0 <"${d}/ca-bundle.crt")"
  expect_eq "webhooks with the rotated caBundle" 4 "$(grep -c "caBundle: ${bundle}" <<<"${E2E_LAST_OUTPUT}")" || return 1
  run openssl x509 -in "${d}/tls.crt" -noout -ext subjectAltName
  expect_output_has "DNS:hybrid-guard.hybrid-guard.svc, DNS:hybrid-guard.hybrid-guard.svc.cluster.local" || return 1
}

start_hybrid_guard() {
  "${REPO_ROOT}/certs/generate.sh" --out "${WORK}/serving" --san IP:127.0.0.1 >/dev/null
  start_serve "${WORK}/serve.log" "${BINARY}" serve --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --tls-cert "${WORK}/serving/tls.crt" --tls-key "${WORK}/serving/tls.key" \
    --policy "${POLICY}" --reload-interval-ms 200 || return 1
  say "hybrid-guard serving on ${SERVE_ADDR} (side port ${SERVE_METRICS_ADDR})"
  run curl -fsS --max-time 5 "http://${SERVE_METRICS_ADDR}/readyz"
  expect_ok "GET /readyz" || return 1
}

# The overlay that registers the real webhook configurations of manifests/webhooks/, changing only
# clientConfig: url https://SERVE_ADDR + the path of each webhook's service, and the test CA.
write_webhook_overlay() {
  local dir="${WORK}/webhooks" bundle file kind
  mkdir -p "${dir}"
  bundle="$(base64 -w0 <"${WORK}/serving/ca.crt")"
  {
    for file in validating mutating; do
      kind="$(awk '$1 == "kind:" { print $2; exit }' "${REPO_ROOT}/manifests/webhooks/${file}.yaml")"
      printf -- '---\napiVersion: admissionregistration.k8s.io/v1\nkind: %s\nmetadata:\n  name: hybrid-guard\nwebhooks:\n' "${kind}"
      # each webhook's name and its service path, in order
      awk '/^webhooks:/ { on = 1 } on && /^  - name:/ { name = $3 } on && /^        path:/ { print name, $2 }' \
        "${REPO_ROOT}/manifests/webhooks/${file}.yaml" |
      while read -r name path; do
        printf '  - name: %s\n    clientConfig:\n      service: null\n      url: https://%s%s\n      caBundle: %s\n' \
          "${name}" "${SERVE_ADDR}" "${path}" "${bundle}"
      done
    done
  } >"${dir}/endpoint.yaml"
  cat >"${dir}/kustomization.yaml" <<EOF
# e2e overlay: the webhooks of manifests/webhooks/ called by URL on loopback.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="${dir}" "${REPO_ROOT}/manifests/webhooks")
patches:
  - path: endpoint.yaml
EOF
}

without_client_config() {   # drops every clientConfig block from rendered YAML
  awk '{ match($0, /^ */); ind = RLENGTH }
       skip && ind > cind { next }
       { skip = 0 }
       /^ *clientConfig:$/ { skip = 1; cind = ind; next }
       { print }'
}

register_webhooks() {
  write_webhook_overlay
  local base overlay
  base="$(k kustomize "${REPO_ROOT}/manifests/webhooks")" || return 1
  overlay="$(k kustomize "${WORK}/webhooks")" || return 1
  expect_eq "the overlay differs from manifests/webhooks only in clientConfig" \
    "$(without_client_config <<<"${base}")" "$(without_client_config <<<"${overlay}")" || return 1
  expect_eq "webhooks called by URL" 4 "$(grep -c "url: https://${SERVE_ADDR}/" <<<"${overlay}")" || return 1
  run k apply -k "${WORK}/webhooks"
  expect_ok "registering the webhooks" || return 1
  # Registered is not yet called: poll until the API server really asks hybrid-guard.
  wait_for 60 "the API server to call sidecars.hybrid-guard.io" \
    dry_run_prints "[namespace-not-allowed]" "${OBJ}/sidecar-not-allowed-namespace.yaml" || return 1
  wait_for 60 "the API server to call workloads.hybrid-guard.io" \
    dry_run_prints "[hybrid-flag-unapproved]" "${OBJ}/pod-flag-not-allowed.yaml" || return 1
}

dry_run_prints() {   # dry_run_prints TEXT FILE: a server dry-run create of FILE prints TEXT
  local out
  out="$("${KUBECTL}" create --dry-run=server -f "$2" 2>&1)" || true
  [[ "${out}" == *"$1"* ]]
}

sidecar_allowed() {
  run k apply -f "${OBJ}/sidecar-allowed.yaml"
  expect_ok "kubectl apply of a hybrid Sidecar in an allowed namespace" || return 1
  expect_output_has "sidecar.networking.istio.io/web-tls created" || return 1
  run k get sidecar -n hg-allowed web-tls -o jsonpath='{.spec.ingress[0].tls.mode}'
  expect_ok "kubectl get sidecar" || return 1
  expect_eq "stored tls mode" SIMPLE "${E2E_LAST_OUTPUT}" || return 1
  expect_eq "hybrid_guard_hybrid_workloads{namespace=\"hg-allowed\"}" 1 \
    "$(metric 'hybrid_guard_hybrid_workloads{namespace="hg-allowed"}')" || return 1
}

sidecar_denied() {   # sidecar_denied FILE NAMESPACE NAME RULES
  run k apply -f "${OBJ}/$1"
  expect_denied sidecars.hybrid-guard.io "$4" "${OBJ}/$1" || return 1
  expect_absent sidecar "$2" "$3" || return 1
}

injected_on_dry_run() {
  [[ "$("${KUBECTL}" create --dry-run=server -o 'jsonpath={.metadata.annotations.hybrid-guard\.io/sidecar}' \
        -f "${OBJ}/pod-selected.yaml" 2>/dev/null)" == web-tls ]]
}

pods_injected() {
  # The mutating configuration is watched apart from the validating one: poll it with dry-runs.
  wait_for 60 "the API server to call inject.hybrid-guard.io" injected_on_dry_run || return 1
  run k apply -f "${OBJ}/pod-selected.yaml"
  expect_ok "creating a Pod selected by hg-allowed/web-tls" || return 1
  run k get pod -n hg-allowed web -o json
  expect_ok "kubectl get pod web -o json" || return 1
  expect_output_has '"hybrid-guard.io/sidecar": "web-tls"' || return 1
  expect_output_has '"proxy.istio.io/config": "{\"proxyMetadata\":{\"SIDECAR_IN_HYBRID_MODE\":\"true\"}}"' || return 1

  # With an istio-proxy container and an existing ProxyConfig: env set, config merged.
  run k apply -f "${OBJ}/pod-selected-with-proxy.yaml"
  expect_ok "creating a selected Pod with an istio-proxy container" || return 1
  run k get pod -n hg-allowed web-proxied -o 'jsonpath={.spec.containers[?(@.name=="istio-proxy")].env[?(@.name=="SIDECAR_IN_HYBRID_MODE")].value}'
  expect_eq "SIDECAR_IN_HYBRID_MODE on istio-proxy" true "${E2E_LAST_OUTPUT}" || return 1
  run k get pod -n hg-allowed web-proxied -o 'jsonpath={.spec.containers[?(@.name=="istio-proxy")].env[?(@.name=="ISTIO_META_ROUTER_MODE")].value}'
  expect_eq "the proxy's other env var kept" sni-dnat "${E2E_LAST_OUTPUT}" || return 1
  run k get pod -n hg-allowed web-proxied -o 'jsonpath={.metadata.annotations.proxy\.istio\.io/config}'
  expect_output_has '"holdApplicationUntilProxyStarts":true' || return 1
  expect_output_has '"proxyMetadata":{"SIDECAR_IN_HYBRID_MODE":"true"}' || return 1

  # Not selected: stored untouched.
  run k apply -f "${OBJ}/pod-not-selected.yaml"
  expect_ok "creating a Pod that no hybrid Sidecar selects" || return 1
  run k get pod -n hg-allowed other -o 'jsonpath={.metadata.annotations}'
  expect_output_lacks "hybrid-guard.io/sidecar" || return 1
  expect_output_lacks "SIDECAR_IN_HYBRID_MODE" || return 1
}

pod_flag_refused() {
  run k apply -f "${OBJ}/pod-flag-not-allowed.yaml"
  expect_denied workloads.hybrid-guard.io hybrid-flag-unapproved "${OBJ}/pod-flag-not-allowed.yaml" || return 1
  expect_output_has '[hybrid-flag-unapproved] metadata.annotations["proxy.istio.io/config"]: ' || return 1
  expect_absent pod hg-denied rogue || return 1
}

deployment_flag_refused() {
  run k apply -f "${OBJ}/deployment-flag-not-allowed.yaml"
  expect_denied workloads.hybrid-guard.io hybrid-flag-unapproved "${OBJ}/deployment-flag-not-allowed.yaml" || return 1
  expect_output_has '[hybrid-flag-unapproved] spec.template.spec.containers[1].env[0]: ' || return 1
  expect_absent deployment hg-denied rogue || return 1
}

kube_system_not_evaluated() {
  run k apply -f "${OBJ}/pod-flag-kube-system.yaml"
  expect_ok "a flagged Pod in kube-system (outside the namespaceSelector)" || return 1
  run k get pod -n kube-system hg-e2e-flagged -o 'jsonpath={.metadata.annotations}'
  expect_output_lacks "hybrid-guard.io/sidecar" || return 1
}

dry_run_no_quota() {
  run k apply -f "${OBJ}/sidecar-quota-1.yaml"
  expect_ok "q1 (1 of 2)" || return 1
  local i
  for i in 1 2 3; do
    run k apply --dry-run=server -f "${OBJ}/sidecar-quota-2.yaml"
    expect_ok "server dry-run ${i} of q2" || return 1
    expect_output_has "sidecar.networking.istio.io/q2 created (server dry run)" || return 1
  done
  expect_absent sidecar hg-quota q2 || return 1
  expect_eq "hg-quota count after the dry-runs" 1 "$(metric 'hybrid_guard_hybrid_workloads{namespace="hg-quota"}')" || return 1
  # Had a dry-run been charged, the namespace would be full now and this would be refused.
  run k apply -f "${OBJ}/sidecar-quota-2.yaml"
  expect_ok "q2 (2 of 2) after three dry-runs" || return 1
  expect_output_has "sidecar.networking.istio.io/q2 created" || return 1
  # A dry-run is still evaluated: with the namespace full it is refused.
  run k apply --dry-run=server -f "${OBJ}/sidecar-quota-3.yaml"
  expect_denied sidecars.hybrid-guard.io namespace-quota-exceeded \
    --state "${OBJ}/sidecar-quota-1.yaml" --state "${OBJ}/sidecar-quota-2.yaml" "${OBJ}/sidecar-quota-3.yaml" || return 1
}

quota_enforced() {
  run k get sidecars -n hg-quota -o name
  expect_eq "hybrid Sidecars in hg-quota" $'sidecar.networking.istio.io/q1\nsidecar.networking.istio.io/q2' "${E2E_LAST_OUTPUT}" || return 1
  run k apply -f "${OBJ}/sidecar-quota-3.yaml"
  expect_denied sidecars.hybrid-guard.io namespace-quota-exceeded \
    --state "${OBJ}/sidecar-quota-1.yaml" --state "${OBJ}/sidecar-quota-2.yaml" "${OBJ}/sidecar-quota-3.yaml" || return 1
  expect_absent sidecar hg-quota q3 || return 1
  run k delete -f "${OBJ}/sidecar-quota-1.yaml"
  expect_ok "deleting q1" || return 1
  expect_eq "hg-quota count after the delete" 1 "$(metric 'hybrid_guard_hybrid_workloads{namespace="hg-quota"}')" || return 1
  run k apply -f "${OBJ}/sidecar-quota-3.yaml"
  expect_ok "q3 after q1 freed its slot" || return 1
  expect_output_has "sidecar.networking.istio.io/q3 created" || return 1
  run k apply -f "${OBJ}/sidecar-quota-1.yaml"
  expect_denied sidecars.hybrid-guard.io namespace-quota-exceeded \
    --state "${OBJ}/sidecar-quota-2.yaml" --state "${OBJ}/sidecar-quota-3.yaml" "${OBJ}/sidecar-quota-1.yaml" || return 1
  expect_eq "hg-quota count" 2 "$(metric 'hybrid_guard_hybrid_workloads{namespace="hg-quota"}')" || return 1
}

reload_count() { local v; v="$(metric 'hybrid_guard_policy_reloads_total{result="success"}')"; echo "${v:-0}"; }
reload_count_is() { [[ "$(reload_count)" == "$1" ]]; }

updates_follow_the_contract() {
  # An update that leaves spec.ingress and spec.workloadSelector alone is admitted unevaluated.
  run k label sidecar -n hg-quota q3 team=edge
  expect_ok "labelling an admitted hybrid Sidecar" || return 1
  run k annotate sidecar -n hg-quota q2 owner=platform
  expect_ok "annotating an admitted hybrid Sidecar" || return 1
  expect_eq "hg-quota count after label/annotate" 2 "$(metric 'hybrid_guard_hybrid_workloads{namespace="hg-quota"}')" || return 1
  # Removing tls goes to sidecar-events (matchConditions) and releases the slot.
  run k apply -f "${OBJ}/sidecar-quota-3-without-tls.yaml"
  expect_ok "removing tls from q3" || return 1
  expect_output_has "sidecar.networking.istio.io/q3 configured" || return 1
  run k get sidecar -n hg-quota q3 -o 'jsonpath={.spec.ingress[0].tls}'
  expect_eq "q3's stored tls" "" "${E2E_LAST_OUTPUT}" || return 1
  expect_eq "hg-quota count after removing tls" 1 "$(metric 'hybrid_guard_hybrid_workloads{namespace="hg-quota"}')" || return 1
  run k apply -f "${OBJ}/sidecar-quota-1.yaml"
  expect_ok "q1 into the slot q3 released" || return 1
  # Adding tls back counts again: the namespace is full.
  run k apply -f "${OBJ}/sidecar-quota-3.yaml"
  expect_fail "adding tls back to q3 with hg-quota full" || return 1
  expect_output_has "[namespace-quota-exceeded] " || return 1
}

set_enforcement() {   # set_enforcement MODE: rewrites the policy file, waits for the reload
  local want=$(( $(reload_count) + 1 ))
  sed "s/^  enforcement: .*/  enforcement: $1/" "${POLICY}" >"${POLICY}.new"
  mv -f "${POLICY}.new" "${POLICY}"
  wait_for 20 "the policy reload (${1})" reload_count_is "${want}" || return 1
}

warnings_reach_kubectl() {
  local lines line
  set_enforcement warn || return 1
  run k apply -f "${OBJ}/sidecar-warn.yaml"
  expect_ok "a hybrid Sidecar in a disallowed namespace under warn" || return 1
  expect_output_has "sidecar.networking.istio.io/warned-tls created" || return 1
  lines="$(eval_violations "${OBJ}/sidecar-warn.yaml")"
  expect_eq "rules" namespace-not-allowed "$(rule_ids <<<"${lines}")" || return 1
  while IFS= read -r line; do expect_output_has "Warning: ${line}" || return 1; done <<<"${lines}"

  run k apply -f "${OBJ}/pod-warn.yaml"
  expect_ok "a Pod setting the flag in a disallowed namespace under warn" || return 1
  expect_output_has "pod/warned created" || return 1
  lines="$(eval_violations "${OBJ}/pod-warn.yaml")"
  expect_eq "rules" hybrid-flag-unapproved "$(rule_ids <<<"${lines}")" || return 1
  while IFS= read -r line; do expect_output_has "Warning: ${line}" || return 1; done <<<"${lines}"

  set_enforcement deny || return 1
  run k create --dry-run=server -f "${OBJ}/sidecar-not-allowed-namespace.yaml"
  expect_denied sidecars.hybrid-guard.io namespace-not-allowed "${OBJ}/sidecar-not-allowed-namespace.yaml" || return 1
}

outage() {
  stop_serve
  expect_eq "hybrid-guard exit status after SIGTERM" 0 "${SERVE_RC}" || return 1
  # failurePolicy Fail: a hybrid Sidecar cannot be created while hybrid-guard is down.
  run k apply -f "${OBJ}/sidecar-outage.yaml"
  expect_fail "a hybrid Sidecar with hybrid-guard down" || return 1
  expect_output_has 'failed calling webhook "sidecars.hybrid-guard.io"' || return 1
  expect_absent sidecar hg-allowed outage-tls || return 1
  # failurePolicy Ignore / namespaceSelector: pods and workloads are still created.
  run k apply -f "${OBJ}/outage-workloads.yaml"
  expect_ok "a Pod in kube-system, a Pod and a Deployment in hg-plain with hybrid-guard down" || return 1
  expect_output_has "pod/hg-e2e-outage created" || return 1
  expect_output_has "pod/outage created" || return 1
  expect_output_has "deployment.apps/outage created" || return 1
  run k get pod -n kube-system hg-e2e-outage -o name
  expect_eq "stored" pod/hg-e2e-outage "${E2E_LAST_OUTPUT}" || return 1
  run k get pod -n hg-plain outage -o name
  expect_eq "stored" pod/outage "${E2E_LAST_OUTPUT}" || return 1
  run k get deployment -n hg-plain outage -o name
  expect_eq "stored" deployment.apps/outage "${E2E_LAST_OUTPUT}" || return 1
  # Neither other Sidecars nor deletions are held up.
  run k apply -f "${OBJ}/sidecar-plain.yaml"
  expect_ok "a Sidecar without tls with hybrid-guard down" || return 1
  run k delete sidecar -n hg-quota q2
  expect_ok "deleting a hybrid Sidecar with hybrid-guard down" || return 1
}

# ================================================================================================
scenario "setup: Istio CRDs from ${ISTIO_DIR}, test namespaces" setup_cluster
scenario "kubectl apply --dry-run=server -k manifests/ is accepted (and the certs/ overlays)" manifests_accepted
scenario "RBAC of manifests/: list/watch Sidecars, get/update the ledger ConfigMap, nothing else" rbac_least_privilege
scenario "certs/generate.sh rotates cleanly (new CA + previous in every caBundle)" certs_rotate
scenario "hybrid-guard serve starts on 127.0.0.1 with a certs/generate.sh certificate" start_hybrid_guard
if [[ -n "${SERVE_PID}" ]]; then
  scenario "webhooks of manifests/webhooks registered by URL; API server calls them" register_webhooks
fi
if (( E2E_FAILED == 0 )); then
  scenario "hybrid Sidecar in an allowed namespace is created" sidecar_allowed
  scenario "hybrid Sidecar in a disallowed namespace: [namespace-not-allowed]" \
    sidecar_denied sidecar-not-allowed-namespace.yaml hg-denied shop-tls namespace-not-allowed
  scenario "hybrid Sidecar with ISTIO_MUTUAL: [tls-mode]" \
    sidecar_denied sidecar-istio-mutual.yaml hg-allowed mesh-mtls tls-mode
  scenario "hybrid Sidecar with MUTUAL and no CA: [tls-credentials]" \
    sidecar_denied sidecar-mutual-without-ca.yaml hg-allowed mutual-no-ca tls-credentials
  scenario "hybrid Sidecar on reserved port 15006: [port-not-allowed]" \
    sidecar_denied sidecar-reserved-port.yaml hg-allowed reserved-port port-not-allowed
  scenario "hybrid Sidecar as v1alpha3 is guarded alike: [namespace-not-allowed]" \
    sidecar_denied sidecar-v1alpha3.yaml hg-denied old-api namespace-not-allowed
  scenario "v1beta1 Sidecar with tls: {} reaches the fail-closed webhook: [tls-mode]" \
    sidecar_denied sidecar-empty-tls.yaml hg-allowed empty-tls tls-mode
  scenario "selected Pod stored with the flag injected (annotation, ProxyConfig merge, istio-proxy env)" pods_injected
  scenario "Pod setting the flag in a disallowed namespace is refused: [hybrid-flag-unapproved]" pod_flag_refused
  scenario "Deployment template setting the flag is refused: [hybrid-flag-unapproved]" deployment_flag_refused
  scenario "flagged Pod in kube-system is not evaluated (namespaceSelector)" kube_system_not_evaluated
  scenario "kubectl apply --dry-run=server of hybrid Sidecars consumes no quota" dry_run_no_quota
  scenario "quota maxWorkloads 2: third refused [namespace-quota-exceeded], delete frees the slot" quota_enforced
  scenario "updates: label/annotate admitted unevaluated; removing tls frees the slot, adding counts" \
    updates_follow_the_contract
  scenario "warn mode: kubectl prints our Warning: lines" warnings_reach_kubectl
  scenario "hybrid-guard stopped: hybrid Sidecar fails; Pods (kube-system, hg-plain), Deployment created" outage
fi
if summary; then PASSED_ALL=1; else exit 1; fi
