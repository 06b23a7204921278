#!/usr/bin/env bash
# Cluster-mode tests (issue 7, DESIGN §8) against the real kube-apiserver of the e2e harness.
#
#   test/cluster/cluster.sh [HYBRID_GUARD_BINARY]      (default build/cli/hybrid-guard)
#
# Two `hybrid-guard serve --kubeconfig` replicas run as local processes with the service account
# credentials of manifests/rbac.yaml (a token from the TokenRequest API), so the RBAC that ships
# is what the test exercises. One webhook configuration (manifests/webhooks/ with clientConfig
# changed to a URL) points at a round-robin TCP proxy in front of both replicas: the API server
# opens several connections for concurrent requests and the proxy hands them out in turn, as
# kube-proxy does for the Service of a real Deployment. TLS passes through the proxy unchanged.
#
# Scenarios (policy test/cluster/policy.yaml: hg-q maxWorkloads 3, hg-c-N maxWorkloads 10, the
# cluster maxWorkloads 3; --ledger-grace 3):
#   - 50 concurrent creates of distinct hybrid Sidecars in hg-q: exactly 3 stored, 47 refused with
#     [namespace-quota-exceeded]; repeated CLUSTER_RUNS times (default 3), counts printed per run
#   - the same across 10 namespaces against the cluster-wide cap: 3 stored, 47 refused with
#     [cluster-quota-exceeded]
#   - a hybrid Sidecar created while the webhooks were removed and the replicas down is counted
#     after restart (state and ledger)
#   - a reservation for a create the API server refused after the webhook (AlreadyExists) is
#     released once the grace period passes
#   - deleting a hybrid Sidecar frees its slot for the next create
# Exit 0 when every scenario passed, 77 (skipped) under the same conditions as e2e.sh.
# Env: HG_SKIP_E2E=1 skips; HG_SHARED_DIR; HG_CP_CACHE; CLUSTER_RUNS; E2E_VERBOSE=1.
set -euo pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/../.." && pwd -P)"
E2E_DIR="${REPO_ROOT}/test/e2e"
E2E_NAME=cluster
# shellcheck source=test/e2e/lib.sh
source "${E2E_DIR}/lib.sh"

resolve_inputs "${1:-}"
command -v python3 >/dev/null || { say "python3 (for the round-robin proxy) is not installed"; exit 1; }
RUNS="${CLUSTER_RUNS:-3}"
GRACE=3

say "building or reusing the control plane (test/e2e/build-control-plane.sh)"
bash "${E2E_DIR}/build-control-plane.sh" >&2

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hg-cluster.XXXXXX")"
PASSED_ALL=0
declare -a REPLICA_PID=("" "") REPLICA_ADDR=("" "") REPLICA_METRICS=("" "")
PROXY_PID="" PROXY_PORT=""
COUNTS=()

stop_replica() {   # stop_replica I
  SERVE_PID="${REPLICA_PID[$1]}"
  stop_serve
  REPLICA_PID[$1]=""
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_replica 0 || true
  stop_replica 1 || true
  if [[ -n "${PROXY_PID}" ]]; then kill "${PROXY_PID}" 2>/dev/null || true; wait "${PROXY_PID}" 2>/dev/null || true; fi
  bash "${E2E_DIR}/control-plane.sh" stop "${WORK}/cp" >/dev/null 2>&1 || true
  if ((${#COUNTS[@]})); then
    say "concurrency counts:"; printf '  %s\n' "${COUNTS[@]}" >&2
  fi
  if (( rc == 0 && PASSED_ALL )); then
    rm -rf "${WORK}"
  else
    local i
    for i in 0 1; do
      [[ -f "${WORK}/replica-${i}.log" ]] && { say "last lines of replica ${i}:"; tail -n 15 "${WORK}/replica-${i}.log" >&2; }
    done
    say "kept the work folder for inspection: ${WORK}"
  fi
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

KUBECONFIG="$(HG_CP_OWNER_PID=$$ bash "${E2E_DIR}/control-plane.sh" start "${WORK}/cp")"
export KUBECONFIG
# shellcheck disable=SC1091
source "${WORK}/cp/control-plane.env"
k() { "${KUBECTL}" --request-timeout=30s "$@"; }

# --- helpers ------------------------------------------------------------------------------------
sidecar_yaml() {   # sidecar_yaml NAMESPACE NAME [notls]: a hybrid Sidecar (or a plain one)
  printf 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: %s\n  namespace: %s\n' "$2" "$1"
  printf 'spec:\n  workloadSelector:\n    labels:\n      app: %s\n' "$2"
  [[ "${3:-}" == notls ]] && return 0
  printf '  ingress:\n  - port: {number: 8443, protocol: HTTPS, name: external}\n'
  printf '    defaultEndpoint: 0.0.0.0:8080\n    tls:\n      mode: SIMPLE\n'
  printf '      serverCertificate: /etc/istio/tls-certs/tls.crt\n      privateKey: /etc/istio/tls-certs/tls.key\n'
}

metric_of() {   # metric_of I 'name{labels}'
  curl -fsS --max-time 5 "http://${REPLICA_METRICS[$1]}/metrics" 2>/dev/null \
    | awk -v m="$2" '$1 == m { print $2; exit }'
}
metric_sum() {   # metric_sum 'name{labels}': over both replicas
  local a b; a="$(metric_of 0 "$1")"; b="$(metric_of 1 "$1")"
  echo $(( ${a:-0} + ${b:-0} ))
}
metric_both_eq() { [[ "$(metric_of 0 "$1")" == "$2" && "$(metric_of 1 "$1")" == "$2" ]]; }

ledger_data() { k get configmap -n hybrid-guard hybrid-guard-ledger -o 'jsonpath={.data}'; }
ledger_count() {   # reservations in the ledger (one line each)
  k get configmap -n hybrid-guard hybrid-guard-ledger -o json \
    | python3 -c 'import json,sys; d=json.load(sys.stdin).get("data") or {}; print(sum(len(v.splitlines()) for v in d.values()))'
}
ledger_has() { [[ "$(ledger_data)" == *"$1"* ]]; }
ledger_lacks() { [[ "$(ledger_data)" != *"$1"* ]]; }
ledger_empty() { [[ "$(ledger_count)" == 0 ]]; }
stored_count() { k get sidecars -n "$1" --no-headers 2>/dev/null | wc -l; }

start_replica() {   # start_replica I
  start_serve "${WORK}/replica-$1.log" "${BINARY}" serve --kubeconfig "${WORK}/sa.kubeconfig" \
    --ledger-grace "${GRACE}" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --threads 4 \
    --tls-cert "${WORK}/serving/tls.crt" --tls-key "${WORK}/serving/tls.key" \
    --policy "${SCRIPT_DIR}/policy.yaml" || return 1
  REPLICA_PID[$1]="${SERVE_PID}" REPLICA_ADDR[$1]="${SERVE_ADDR}" REPLICA_METRICS[$1]="${SERVE_METRICS_ADDR}"
  SERVE_PID=""
}
replica_ready() { curl -fsS --max-time 2 "http://${REPLICA_METRICS[$1]}/readyz" >/dev/null; }

start_replicas() {
  start_replica 0 || return 1
  start_replica 1 || return 1
  local i
  for i in 0 1; do
    wait_for 30 "replica ${i} /readyz (cluster state synced)" replica_ready "${i}" || {
      say "replica ${i} (${REPLICA_METRICS[$i]}) /readyz says: $(curl -sS --max-time 2 "http://${REPLICA_METRICS[$i]}/readyz" 2>&1)"
      return 1
    }
  done
  restart_proxy || return 1
}

restart_proxy() {
  if [[ -n "${PROXY_PID}" ]]; then kill "${PROXY_PID}" 2>/dev/null || true; wait "${PROXY_PID}" 2>/dev/null || true; fi
  local port="${PROXY_PORT:-0}"
  python3 "${SCRIPT_DIR}/round_robin_proxy.py" "${port}" "${REPLICA_ADDR[0]##*:}" "${REPLICA_ADDR[1]##*:}" \
    >"${WORK}/proxy.out" 2>>"${WORK}/proxy.log" &
  PROXY_PID=$!
  wait_for 10 "the proxy to listen" grep -q '^listening ' "${WORK}/proxy.out" || return 1
  PROXY_PORT="$(sed -n 's/^listening //p' "${WORK}/proxy.out")"
}

write_webhook_overlay() {   # the webhooks of manifests/webhooks, called by URL through the proxy
  local dir="${WORK}/webhooks" bundle file kind
  mkdir -p "${dir}"
  bundle="$(base64 -w0 <"${WORK}/serving/ca.crt")"
  {
    for file in validating mutating; do
      kind="$(awk '$1 == "kind:" { print $2; exit }' "${REPO_ROOT}/manifests/webhooks/${file}.yaml")"
      printf -- '---\napiVersion: admissionregistration.k8s.io/v1\nkind: %s\nmetadata:\n  name: hybrid-guard\nwebhooks:\n' "${kind}"
      awk '/^webhooks:/ { on = 1 } on && /^  - name:/ { name = $3 } on && /^        path:/ { print name, $2 }' \
        "${REPO_ROOT}/manifests/webhooks/${file}.yaml" |
      while read -r name path; do
        printf '  - name: %s\n    clientConfig:\n      service: null\n      url: https://127.0.0.1:%s%s\n      caBundle: %s\n' \
          "${name}" "${PROXY_PORT}" "${path}" "${bundle}"
      done
    done
  } >"${dir}/endpoint.yaml"
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\npatches:\n  - path: endpoint.yaml\n' \
    "$(realpath --relative-to="${dir}" "${REPO_ROOT}/manifests/webhooks")" >"${dir}/kustomization.yaml"
}

dry_run_prints() {
  local out
  out="$(sidecar_yaml hg-denied probe | "${KUBECTL}" create --dry-run=server -f - 2>&1)" || true
  [[ "${out}" == *"$1"* ]]
}

register_webhooks() {
  write_webhook_overlay
  run k apply -k "${WORK}/webhooks"
  expect_ok "registering the webhooks" || return 1
  wait_for 60 "the API server to call the replicas" dry_run_prints "[namespace-not-allowed]" || return 1
}

# Creates N Sidecars at once; NAMESPACES cycles. Sets CREATED, REFUSED_WITH (the quota rule),
# OTHER (anything else), and keeps each kubectl output in WORK/concurrent/.
concurrent_creates() {   # concurrent_creates PREFIX RULE N NAMESPACE...
  local prefix="$1" rule="$2" n="$3"; shift 3
  local -a namespaces=("$@")
  local dir="${WORK}/concurrent/${prefix}" i ns
  local -a pids=()
  rm -rf "${dir}"; mkdir -p "${dir}"
  for ((i = 1; i <= n; i++)); do
    ns="${namespaces[$(( (i - 1) % ${#namespaces[@]} ))]}"
    ( sidecar_yaml "${ns}" "${prefix}-${i}" | "${KUBECTL}" --request-timeout=30s create -f - >"${dir}/${i}.out" 2>&1
      echo $? >"${dir}/${i}.rc" ) &
    pids+=($!)
  done
  wait "${pids[@]}" || true   # (not a bare wait: the replicas and the proxy run in the background)
  CREATED=0 REFUSED_WITH=0 OTHER=0
  for ((i = 1; i <= n; i++)); do
    if [[ "$(cat "${dir}/${i}.rc")" == 0 ]] && grep -q " created" "${dir}/${i}.out"; then
      CREATED=$((CREATED + 1))
    elif grep -q "admission webhook \"sidecars.hybrid-guard.io\" denied the request: .*" "${dir}/${i}.out" \
        && grep -q "^\[${rule}\] " "${dir}/${i}.out"; then
      REFUSED_WITH=$((REFUSED_WITH + 1))
    else
      OTHER=$((OTHER + 1))
      say "  unexpected answer for ${prefix}-${i}: $(head -c 400 "${dir}/${i}.out")"
    fi
  done
}

# Deletes every Sidecar of the test namespaces and waits until the ledger is empty again.
reset_sidecars() {
  local ns
  for ns in hg-q "${CLUSTER_NAMESPACES[@]}"; do k delete sidecars -n "${ns}" --all --wait=false >/dev/null; done
  wait_for $((GRACE * 4 + 10)) "the ledger to empty" ledger_empty || { say "ledger: $(ledger_data)"; return 1; }
}

CLUSTER_NAMESPACES=()
for i in $(seq 1 10); do CLUSTER_NAMESPACES+=("hg-c-${i}"); done

# ================================================================================================
setup() {
  run k create -f "${ISTIO_DIR}/crd-sidecars.networking.istio.io.yaml"
  expect_ok "installing the Sidecar CRD" || return 1
  run k wait --for condition=Established --timeout=60s crd/sidecars.networking.istio.io
  expect_ok "waiting for the CRD" || return 1
  wait_for 60 "the Sidecar API to be served" k get sidecars -A || return 1
  run k apply -f "${REPO_ROOT}/manifests/namespace.yaml" -f "${REPO_ROOT}/manifests/rbac.yaml" \
    -f "${REPO_ROOT}/manifests/ledger.yaml"
  expect_ok "applying namespace, RBAC and ledger of manifests/" || return 1
  local ns
  for ns in hg-q hg-denied "${CLUSTER_NAMESPACES[@]}"; do
    run k create namespace "${ns}"
    expect_ok "creating namespace ${ns}" || return 1
  done
  # The replicas authenticate as the ServiceAccount of manifests/rbac.yaml.
  local token
  token="$(k create token hybrid-guard -n hybrid-guard --duration=2h)" || return 1
  cat >"${WORK}/sa.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: "${APISERVER_URL}", certificate-authority: "${CA_CERT}"}
users:
- name: hybrid-guard
  user: {token: "${token}"}
contexts:
- name: hybrid-guard
  context: {cluster: e2e, user: hybrid-guard, namespace: hybrid-guard}
current-context: hybrid-guard
EOF
  "${REPO_ROOT}/certs/generate.sh" --out "${WORK}/serving" --san IP:127.0.0.1 >/dev/null
}

replicas_start() {
  start_replicas || return 1
  register_webhooks || return 1
  expect_eq "cluster_state_synced on both" 1 "$(( $(metric_of 0 hybrid_guard_cluster_state_synced) * $(metric_of 1 hybrid_guard_cluster_state_synced) ))" || return 1
}

namespace_quota_concurrency() {   # one run of 50 concurrent creates in hg-q
  local run_no="$1" before_conflicts connections_before connections
  before_conflicts="$(metric_sum hybrid_guard_ledger_conflicts_total)"
  connections_before="$(grep -c '^conn ' "${WORK}/proxy.log" || true)"
  concurrent_creates "nq${run_no}" namespace-quota-exceeded 50 hg-q
  local stored; stored="$(stored_count hg-q)"
  connections=$(( $(grep -c '^conn ' "${WORK}/proxy.log" || true) - connections_before ))
  COUNTS+=("namespace quota run ${run_no}: created ${CREATED}, refused with [namespace-quota-exceeded] ${REFUSED_WITH}, other ${OTHER}, stored ${stored}, ledger $(ledger_count), conflicts $(( $(metric_sum hybrid_guard_ledger_conflicts_total) - before_conflicts )), proxied connections ${connections}")
  say "  ${COUNTS[-1]}"
  expect_eq "created" 3 "${CREATED}" || return 1
  expect_eq "refused with the quota message" 47 "${REFUSED_WITH}" || return 1
  expect_eq "stored in hg-q" 3 "${stored}" || return 1
  expect_eq "reservations in the ledger" 3 "$(ledger_count)" || return 1
  # Both replicas answered: each one reserved or refused some of them.
  local r0 r1
  r0="$(grep -c '"msg":"admission decision".*"namespace":"hg-q","name":"nq'"${run_no}"'-' "${WORK}/replica-0.log" || true)"
  r1="$(grep -c '"msg":"admission decision".*"namespace":"hg-q","name":"nq'"${run_no}"'-' "${WORK}/replica-1.log" || true)"
  say "  decisions by replica 0: ${r0}, by replica 1: ${r1}"
  (( r0 > 0 && r1 > 0 )) || fail "one replica answered everything (${r0} / ${r1})" || return 1
  wait_for 10 "hybrid_workloads{hg-q} = 3 on both replicas" \
    metric_both_eq 'hybrid_guard_hybrid_workloads{namespace="hg-q"}' 3 || return 1
  reset_sidecars || return 1
}

cluster_quota_concurrency() {
  concurrent_creates cq cluster-quota-exceeded 50 "${CLUSTER_NAMESPACES[@]}"
  local stored=0 ns
  for ns in "${CLUSTER_NAMESPACES[@]}"; do stored=$((stored + $(stored_count "${ns}"))); done
  COUNTS+=("cluster quota: created ${CREATED}, refused with [cluster-quota-exceeded] ${REFUSED_WITH}, other ${OTHER}, stored ${stored} in 10 namespaces, ledger $(ledger_count)")
  say "  ${COUNTS[-1]}"
  expect_eq "created" 3 "${CREATED}" || return 1
  expect_eq "refused with the quota message" 47 "${REFUSED_WITH}" || return 1
  expect_eq "stored" 3 "${stored}" || return 1
  expect_eq "reservations in the ledger" 3 "$(ledger_count)" || return 1
  # Each namespace has room (maxWorkloads 10): only the cluster-wide cap refused them.
  local dir="${WORK}/concurrent/cq"
  expect_eq "refusals that name the namespace quota" 0 "$(cat "${dir}"/*.out | grep -c '^\[namespace-quota-exceeded\]' || true)" || return 1
  reset_sidecars || return 1
}

created_while_down() {
  stop_replica 0; stop_replica 1
  run k delete -k "${WORK}/webhooks"
  expect_ok "removing the webhook configurations" || return 1
  run k create -f - <<<"$(sidecar_yaml hg-q made-while-down)"
  expect_ok "a hybrid Sidecar with hybrid-guard removed" || return 1
  expect_eq "ledger before the restart" 0 "$(ledger_count)" || return 1
  start_replicas || return 1
  register_webhooks || return 1
  # Counted in the watched state at once, and put into the ledger by the recount.
  expect_eq "hybrid_workloads{hg-q} on replica 0" 1 "$(metric_of 0 'hybrid_guard_hybrid_workloads{namespace="hg-q"}')" || return 1
  expect_eq "hybrid_workloads{hg-q} on replica 1" 1 "$(metric_of 1 'hybrid_guard_hybrid_workloads{namespace="hg-q"}')" || return 1
  wait_for 20 "the recount to add it to the ledger" ledger_has made-while-down || return 1
  (( $(metric_sum hybrid_guard_ledger_repairs_total) >= 1 )) || fail "no repair counted" || return 1
  grep -q '"msg":"ledger recount: stored hybrid Sidecar had no reservation; added".*"name":"made-while-down"' \
    "${WORK}/replica-0.log" "${WORK}/replica-1.log" || fail "no repair log line" || return 1
  # It holds one of hg-q's 3 slots: of 5 concurrent creates only 2 pass.
  concurrent_creates down namespace-quota-exceeded 5 hg-q
  expect_eq "created next to it" 2 "${CREATED}" || return 1
  expect_eq "refused" 3 "${REFUSED_WITH}" || return 1
  run k get sidecars -n hg-q -o name
  expect_output_has "sidecar.networking.istio.io/made-while-down" || return 1
  expect_eq "stored in hg-q" 3 "$(stored_count hg-q)" || return 1
  reset_sidecars || return 1
}

rejected_later_released() {
  # A Sidecar without tls holds the name; creating a hybrid one of that name passes the webhook
  # (which reserves a slot) and is then refused by the API server's storage: AlreadyExists.
  run k create -f - <<<"$(sidecar_yaml hg-q taken notls)"
  expect_ok "a plain Sidecar named taken" || return 1
  local expired_before; expired_before="$(metric_sum 'hybrid_guard_ledger_releases_total{reason="expired"}')"
  run k create -f - <<<"$(sidecar_yaml hg-q taken)"
  expect_fail "creating a hybrid Sidecar whose name is taken" || return 1
  expect_output_has "AlreadyExists" || return 1
  expect_eq "reservations right after" 1 "$(ledger_count)" || return 1
  ledger_has "taken" || fail "no reservation for taken: $(ledger_data)" || return 1
  # While it is reserved, it holds a slot.
  run k get sidecar -n hg-q taken -o 'jsonpath={.spec.ingress}'
  expect_eq "the stored taken has no ingress" "" "${E2E_LAST_OUTPUT}" || return 1
  wait_for $((GRACE * 4 + 10)) "the reservation to be released after the grace period" ledger_lacks taken || return 1
  (( $(metric_sum 'hybrid_guard_ledger_releases_total{reason="expired"}') == expired_before + 1 )) \
    || fail "releases_total{reason=expired} did not grow by 1" || return 1
  grep -q '"msg":"reservation released: not stored as hybrid within the grace period".*"name":"taken"' \
    "${WORK}/replica-0.log" "${WORK}/replica-1.log" || fail "no release log line" || return 1
  run k delete sidecar -n hg-q taken
  expect_ok "deleting the plain taken" || return 1
}

delete_frees_slot() {
  local i deleted_before
  for i in 1 2 3; do
    run k create -f - <<<"$(sidecar_yaml hg-q slot-${i})"
    expect_ok "slot-${i}" || return 1
  done
  run k create -f - <<<"$(sidecar_yaml hg-q slot-4)"
  expect_fail "slot-4 with hg-q full" || return 1
  expect_output_has "[namespace-quota-exceeded] metadata.namespace: namespace \"hg-q\" already has 3 of its 3 hybrid workloads" || return 1
  deleted_before="$(metric_sum 'hybrid_guard_ledger_releases_total{reason="deleted"}')"
  run k delete sidecar -n hg-q slot-2
  expect_ok "deleting slot-2" || return 1
  # Released on the watch's word, well before the grace period would expire it.
  wait_for 10 "slot-2's reservation to be released" ledger_lacks "slot-2 " || return 1
  (( $(metric_sum 'hybrid_guard_ledger_releases_total{reason="deleted"}') == deleted_before + 1 )) \
    || fail "releases_total{reason=deleted} did not grow by 1" || return 1
  run k create -f - <<<"$(sidecar_yaml hg-q slot-4)"
  expect_ok "slot-4 after slot-2 was deleted" || return 1
  expect_output_has "sidecar.networking.istio.io/slot-4 created" || return 1
  expect_eq "stored in hg-q" 3 "$(stored_count hg-q)" || return 1
}

scenario "setup: CRD, namespaces, manifests/ RBAC + ledger, service account kubeconfig" setup
scenario "two replicas (service account credentials) synced, behind one webhook configuration" replicas_start
if (( E2E_FAILED == 0 )); then
  for ((r = 1; r <= RUNS; r++)); do
    scenario "50 concurrent creates in hg-q (maxWorkloads 3), run ${r}: 3 stored, 47 refused" \
      namespace_quota_concurrency "${r}"
  done
  scenario "50 concurrent creates over 10 namespaces (cluster maxWorkloads 3): 3 stored, 47 refused" \
    cluster_quota_concurrency
  scenario "a hybrid Sidecar created while hybrid-guard was removed counts after restart" created_while_down
  scenario "a reservation whose create failed later (AlreadyExists) is released after the grace" \
    rejected_later_released
  scenario "deleting a hybrid Sidecar frees its slot for the next create" delete_frees_slot
fi
if summary; then PASSED_ALL=1; else exit 1; fi
