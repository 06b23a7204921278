#!/usr/bin/env bash
# Starts and stops a real etcd + kube-apiserver on 127.0.0.1 for the end-to-end tests.
# The binaries come from test/e2e/build-control-plane.sh (read from <cache>/bin/paths.env), or from
# the KUBE_APISERVER, ETCD and KUBECTL environment variables when all three are set.
#
# Usage:
#   control-plane.sh start DIR    start both in state folder DIR (created; must be outside the
#                                 repository's sources, e.g. a mktemp -d). Prints the kubeconfig
#                                 path on stdout and writes DIR/control-plane.env with
#                                 KUBECONFIG, APISERVER_URL, APISERVER_PORT, ETCD_URL, ETCD_PORT,
#                                 ETCD_PEER_PORT, CA_CERT, CA_KEY, ADMIN_CERT, ADMIN_KEY, KUBECTL,
#                                 KUBE_APISERVER, ETCD. Exits 2 when the binaries are not built.
#   control-plane.sh stop DIR     stop everything started in DIR (idempotent; safe to call twice,
#                                 after a failed start, or from a trap). Keeps the logs in DIR.
#   control-plane.sh status DIR   exit 0 when the apiserver of DIR answers /healthz.
#
# Each process has a pid file in DIR (etcd.pid, kube-apiserver.pid, watchdog.pid). A watchdog
# runs `stop DIR` when the owner process exits (HG_CP_OWNER_PID, default: the caller of `start`;
# 0 disables) or after HG_CP_MAX_SECONDS (default 7200), so nothing outlives the harness.
# Env: HG_CP_CACHE (see build-control-plane.sh), HG_CP_START_TIMEOUT (seconds, default 180).
set -euo pipefail

SCRIPT_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")"
CACHE="${HG_CP_CACHE:-${HOME:?HOME is not set}/.cache/hybrid-guard/control-plane}"

log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
  sed -n '2,/^[^#]/p' "${SCRIPT_PATH}" | grep '^#' | sed 's/^# \{0,1\}//' >&2
  exit 64
}

abs_dir() { mkdir -p "$1" && (cd "$1" && pwd -P); }

load_binaries() {
  if [[ -z "${KUBE_APISERVER:-}" || -z "${ETCD:-}" || -z "${KUBECTL:-}" ]]; then
    if [[ ! -f "${CACHE}/bin/paths.env" ]]; then
      log "no ${CACHE}/bin/paths.env: run test/e2e/build-control-plane.sh first"
      exit 2
    fi
    # shellcheck disable=SC1091
    source "${CACHE}/bin/paths.env"
  fi
  local b
  for b in "${KUBE_APISERVER}" "${ETCD}" "${KUBECTL}"; do
    if [[ ! -x "${b}" ]]; then
      log "missing binary ${b}: run test/e2e/build-control-plane.sh first"
      exit 2
    fi
  done
}

# --- ports -------------------------------------------------------------------------------------
port_in_use() {
  local p="$1"
  if command -v ss >/dev/null 2>&1 && [[ -n "$(ss -Htan "( sport = :${p} )" 2>/dev/null)" ]]; then
    return 0
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/${p}") 2>/dev/null && return 0
  return 1
}

# Prints N distinct free ports in 20000-32767 (below the kernel's usual ephemeral range).
pick_ports() {
  local n="$1" p tries=0 chosen=" "
  local -a out=()
  while (( ${#out[@]} < n )); do
    (( tries++ < 1000 )) || die "could not find ${n} free ports"
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12768 ))
    [[ "${chosen}" == *" ${p} "* ]] && continue
    port_in_use "${p}" && continue
    out+=("${p}"); chosen+="${p} "
  done
  echo "${out[@]}"
}

# --- certificates ------------------------------------------------------------------------------
gen_certs() {
  local d="$1"
  mkdir -p "${d}" && chmod 700 "${d}"
  (
    cd "${d}"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout ca.key -out ca.crt \
      -subj "/CN=hybrid-guard-e2e-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1" \
      >apiserver.ext
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
    openssl x509 -req -sha256 -days 3650 -in apiserver.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null

    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=clientAuth" >admin.ext
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=admin" 2>/dev/null
    openssl x509 -req -sha256 -days 3650 -in admin.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
      -extfile admin.ext -out admin.crt 2>/dev/null

    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr ./*.ext
    chmod 600 ./*.key
  )
}

write_kubeconfig() {
  local file="$1" url="$2" certs="$3"
  cat >"${file}" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: hybrid-guard-e2e
  cluster:
    server: ${url}
    certificate-authority: ${certs}/ca.crt
users:
- name: admin
  user:
    client-certificate: ${certs}/admin.crt
    client-key: ${certs}/admin.key
contexts:
- name: hybrid-guard-e2e
  context:
    cluster: hybrid-guard-e2e
    user: admin
current-context: hybrid-guard-e2e
EOF
  chmod 600 "${file}"
}

# --- processes ---------------------------------------------------------------------------------
# A pid is "ours" when it is alive and its command line mentions the state folder.
pid_is_ours() {
  local pid="$1" dir="$2"
  [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
  local cmdline
  cmdline="$(tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null)" || return 1
  [[ "${cmdline}" == *"${dir}"* ]]
}

kill_pid() {
  local pid="$1" dir="$2" what="$3" i
  pid_is_ours "${pid}" "${dir}" || return 0
  kill -TERM "${pid}" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    pid_is_ours "${pid}" "${dir}" || { log "stopped ${what} (pid ${pid})"; return 0; }
    # An exited process that its parent has not reaped yet (a zombie) counts as stopped.
    [[ "$(awk '{print $3}' "/proc/${pid}/stat" 2>/dev/null)" == Z ]] && { log "stopped ${what} (pid ${pid})"; return 0; }
    sleep 0.1
  done
  log "${what} (pid ${pid}) ignored SIGTERM for 10s; sending SIGKILL"
  kill -KILL "${pid}" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pid_is_ours "${pid}" "${dir}" || return 0
    [[ "$(awk '{print $3}' "/proc/${pid}/stat" 2>/dev/null)" == Z ]] && return 0
    sleep 0.1
  done
  log "ERROR: could not stop ${what} (pid ${pid})"
  return 1
}

proc_starttime() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null || true; }

cmd_stop() {
  local dir="$1" rc=0 name pid
  [[ -d "${dir}" ]] || { log "no state folder ${dir}; nothing to stop"; return 0; }
  dir="$(cd "${dir}" && pwd -P)"
  for name in kube-apiserver etcd; do
    if [[ -f "${dir}/${name}.pid" ]]; then
      pid="$(cat "${dir}/${name}.pid" 2>/dev/null || true)"
      kill_pid "${pid}" "${dir}" "${name}" || rc=1
      rm -f "${dir}/${name}.pid"
    fi
  done
  # Sweep: any other etcd/kube-apiserver whose command line names this folder (lost pid file).
  # kube-apiserver first: without etcd it does not shut down promptly.
  local p exe bin
  for bin in kube-apiserver etcd; do
    for p in /proc/[0-9]*; do
      pid="${p#/proc/}"
      exe="$(readlink "${p}/exe" 2>/dev/null || true)"
      if [[ "${exe##*/}" == "${bin}" ]] && pid_is_ours "${pid}" "${dir}"; then
        kill_pid "${pid}" "${dir}" "${bin}" || rc=1
      fi
    done
  done
  if [[ -f "${dir}/watchdog.pid" ]]; then
    pid="$(cat "${dir}/watchdog.pid" 2>/dev/null || true)"
    if [[ "${pid}" != "${HG_CP_WATCHDOG_SELF:-}" ]]; then
      kill_pid "${pid}" "${dir}" "watchdog" || rc=1
    fi
    rm -f "${dir}/watchdog.pid"
  fi
  return "${rc}"
}

start_watchdog() {   # start_watchdog DIR OWNER_PID OWNER_STARTTIME DEADLINE_EPOCH
  # A separate process whose command line names DIR (so stop can identify it), fully detached
  # from the caller's stdout/stderr so that `$(control-plane.sh start DIR)` returns.
  bash "${SCRIPT_PATH}" __watchdog "$1" "$2" "$3" "$4" </dev/null >/dev/null 2>&1 &
  echo "$!" >"$1/watchdog.pid"
}

cmd_watchdog() {
  local dir="$1" owner="$2" owner_start="$3" deadline="$4" self="$$"
  trap '' HUP INT
  while :; do
    sleep 1
    [[ "$(cat "${dir}/watchdog.pid" 2>/dev/null || true)" == "${self}" ]] || exit 0   # stopped or replaced
    if (( $(date +%s) >= deadline )); then
      echo "watchdog: HG_CP_MAX_SECONDS reached; stopping" >>"${dir}/watchdog.log"
      break
    fi
    if [[ "${owner}" != 0 && "$(proc_starttime "${owner}")" != "${owner_start}" ]]; then
      echo "watchdog: owner pid ${owner} exited; stopping" >>"${dir}/watchdog.log"
      break
    fi
  done
  HG_CP_WATCHDOG_SELF="${self}" cmd_stop "${dir}" >>"${dir}/watchdog.log" 2>&1 || true
}

wait_until() {   # wait_until SECONDS PID DESCRIPTION COMMAND...
  local limit="$1" pid="$2" what="$3"; shift 3
  local end=$((SECONDS + limit))
  while (( SECONDS < end )); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    kill -0 "${pid}" 2>/dev/null || { log "${what}: process ${pid} exited"; return 1; }
    sleep 0.5
  done
  log "${what}: not ready after ${limit}s"
  return 1
}

# (Responses captured first: `curl | grep -q` can fail under pipefail when grep exits early.)
etcd_healthy() {
  local out; out="$(curl -fsS --max-time 2 "http://127.0.0.1:$1/health" 2>/dev/null)" || return 1
  [[ "${out}" == *'"health":"true"'* ]]
}
apiserver_healthy() {
  local out
  out="$(curl -fsS --max-time 3 --cacert "$2/ca.crt" --cert "$2/admin.crt" --key "$2/admin.key" \
    "https://127.0.0.1:$1/healthz" 2>/dev/null)" || return 1
  [[ "${out}" == ok ]]
}

try_start() {   # one attempt with fresh ports; returns 3 when a port was taken meanwhile
  local dir="$1" timeout="$2"
  local certs="${dir}/certs" ports etcd_port peer_port api_port
  ports="$(pick_ports 3)"
  read -r etcd_port peer_port api_port <<<"${ports}"

  rm -rf "${dir}/etcd-data"
  "${ETCD}" --name=hg-e2e --data-dir="${dir}/etcd-data" \
    --listen-client-urls="http://127.0.0.1:${etcd_port}" --advertise-client-urls="http://127.0.0.1:${etcd_port}" \
    --listen-peer-urls="http://127.0.0.1:${peer_port}" --initial-advertise-peer-urls="http://127.0.0.1:${peer_port}" \
    --initial-cluster="hg-e2e=http://127.0.0.1:${peer_port}" \
    --unsafe-no-fsync=true --log-level=warn \
    </dev/null >"${dir}/etcd.log" 2>&1 &
  local etcd_pid=$!
  echo "${etcd_pid}" >"${dir}/etcd.pid"
  if ! wait_until 60 "${etcd_pid}" "etcd" etcd_healthy "${etcd_port}"; then
    grep -q 'address already in use' "${dir}/etcd.log" && return 3
    tail -n 20 "${dir}/etcd.log" >&2; return 1
  fi

  # --endpoint-reconciler-type=none: kube-apiserver 1.37 refuses to start with
  # "cannot use public IP 127.0.0.1 with endpoint reconciler: ... may not be in the loopback range"
  # when --advertise-address is loopback and the default (lease) endpoint reconciler is on.
  "${KUBE_APISERVER}" --etcd-servers="http://127.0.0.1:${etcd_port}" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="${api_port}" \
    --cert-dir="${certs}" --tls-cert-file="${certs}/apiserver.crt" --tls-private-key-file="${certs}/apiserver.key" \
    --client-ca-file="${certs}/ca.crt" --authorization-mode=RBAC \
    --service-cluster-ip-range=10.0.0.0/24 \
    --service-account-issuer="https://127.0.0.1:${api_port}/" \
    --service-account-key-file="${certs}/sa.pub" --service-account-signing-key-file="${certs}/sa.key" \
    --allow-privileged=true --disable-admission-plugins=ServiceAccount \
    --endpoint-reconciler-type=none \
    </dev/null >"${dir}/kube-apiserver.log" 2>&1 &
  local api_pid=$!
  echo "${api_pid}" >"${dir}/kube-apiserver.pid"
  if ! wait_until "${timeout}" "${api_pid}" "kube-apiserver /healthz" apiserver_healthy "${api_port}" "${certs}"; then
    grep -q 'address already in use' "${dir}/kube-apiserver.log" && return 3
    tail -n 30 "${dir}/kube-apiserver.log" >&2; return 1
  fi

  write_kubeconfig "${dir}/kubeconfig" "https://127.0.0.1:${api_port}" "${certs}"
  if ! wait_until 60 "${api_pid}" "namespace default" \
      "${KUBECTL}" --kubeconfig="${dir}/kubeconfig" get namespace default; then
    tail -n 30 "${dir}/kube-apiserver.log" >&2; return 1
  fi

  local tmp="${dir}/control-plane.env.tmp"
  cat >"${tmp}" <<EOF
KUBECONFIG=${dir}/kubeconfig
APISERVER_URL=https://127.0.0.1:${api_port}
APISERVER_PORT=${api_port}
ETCD_URL=http://127.0.0.1:${etcd_port}
ETCD_PORT=${etcd_port}
ETCD_PEER_PORT=${peer_port}
CA_CERT=${certs}/ca.crt
CA_KEY=${certs}/ca.key
ADMIN_CERT=${certs}/admin.crt
ADMIN_KEY=${certs}/admin.key
KUBECTL=${KUBECTL}
KUBE_APISERVER=${KUBE_APISERVER}
ETCD=${ETCD}
EOF
  mv -f "${tmp}" "${dir}/control-plane.env"
  return 0
}

cmd_start() {
  local dir
  dir="$(abs_dir "$1")"
  load_binaries
  local timeout="${HG_CP_START_TIMEOUT:-180}"
  local owner="${HG_CP_OWNER_PID:-${PPID}}" owner_start=""
  if [[ "${owner}" != 0 ]]; then
    owner_start="$(proc_starttime "${owner}")"
    [[ -n "${owner_start}" ]] || die "owner pid ${owner} does not exist"
  fi
  local deadline=$(( $(date +%s) + ${HG_CP_MAX_SECONDS:-7200} ))

  cmd_stop "${dir}" || true          # leftovers of an earlier run in the same folder
  rm -f "${dir}/control-plane.env" "${dir}/watchdog.log"
  gen_certs "${dir}/certs"
  start_watchdog "${dir}" "${owner}" "${owner_start}" "${deadline}"

  local attempt rc
  for attempt in 1 2 3; do
    rc=0
    try_start "${dir}" "${timeout}" || rc=$?
    if (( rc == 0 )); then
      log "started in ${SECONDS}s: $(grep '^APISERVER_URL=' "${dir}/control-plane.env" | cut -d= -f2-)" \
          "(state: ${dir}/control-plane.env)"
      echo "${dir}/kubeconfig"
      return 0
    fi
    cmd_stop "${dir}" >/dev/null 2>&1 || true
    (( rc == 3 )) || break
    log "a port was taken meanwhile; retrying with new ports (attempt ${attempt})"
    start_watchdog "${dir}" "${owner}" "${owner_start}" "${deadline}"
  done
  cmd_stop "${dir}" || true
  die "control plane did not start; logs in ${dir}"
}

cmd_status() {
  local dir
  dir="$(cd "$1" && pwd -P)" || return 1
  [[ -f "${dir}/control-plane.env" ]] || return 1
  local port; port="$(sed -n 's/^APISERVER_PORT=//p' "${dir}/control-plane.env")"
  apiserver_healthy "${port}" "${dir}/certs"
}

if [[ "${1:-}" == __watchdog && $# -eq 5 ]]; then cmd_watchdog "$2" "$3" "$4" "$5"; exit 0; fi
[[ $# -eq 2 ]] || usage
case "$1" in
  start) cmd_start "$2" ;;
  stop) cmd_stop "$2" ;;
  status) cmd_status "$2" ;;
  *) usage ;;
esac
