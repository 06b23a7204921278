#!/usr/bin/env bash
# Builds a real kube-apiserver, kubectl and etcd from the Go module proxy, at the versions pinned
# in test/e2e/control-plane.env, into a cache outside the repository:
#   ${HG_CP_CACHE:-$HOME/.cache/hybrid-guard/control-plane}
#     gomod/  gocache/  gopath/   Go module and build caches (GOMODCACHE, GOCACHE, GOPATH)
#     src/kubernetes-VER/ src/etcd-VER/   generated go.mod of the two build modules
#     bin/kubernetes-VER/{kube-apiserver,kubectl}  bin/etcd-VER/etcd
#     bin/paths.env       KUBE_APISERVER=... ETCD=... KUBECTL=... (the pinned versions)
# Binaries that already exist for the pinned versions are reused: the script then exits at once.
# The first build takes a long time on two cores (the go build runs under `nice -n 10`).
#
# Usage: bash test/e2e/build-control-plane.sh
# Env:   HG_CP_CACHE   cache folder (must be outside the repository)
#        HG_CP_NICE    niceness of the go commands (default 10)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=test/e2e/control-plane.env
source "${SCRIPT_DIR}/control-plane.env"
: "${KUBERNETES_VERSION:?missing in control-plane.env}"
: "${ETCD_VERSION:?missing in control-plane.env}"
: "${GO_MIN_VERSION:?missing in control-plane.env}"

log() { printf '[build-control-plane] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

CACHE="${HG_CP_CACHE:-${HOME:?HOME is not set}/.cache/hybrid-guard/control-plane}"
CACHE="$(realpath -m -- "${CACHE}")"   # resolved without creating anything yet

# Never write inside the repository.
REPO_ROOT="$(git -C "${SCRIPT_DIR}" rev-parse --show-toplevel 2>/dev/null || (cd "${SCRIPT_DIR}/../.." && pwd -P))"
REPO_ROOT="$(cd "${REPO_ROOT}" && pwd -P)"
case "${CACHE}/" in
  "${REPO_ROOT}/"*) die "cache ${CACHE} is inside the repository ${REPO_ROOT}; set HG_CP_CACHE elsewhere" ;;
esac
mkdir -p "${CACHE}"

KV="${KUBERNETES_VERSION}"
EV="${ETCD_VERSION}"
K_BIN_DIR="${CACHE}/bin/kubernetes-${KV}"
E_BIN_DIR="${CACHE}/bin/etcd-${EV}"
KUBE_APISERVER="${K_BIN_DIR}/kube-apiserver"
KUBECTL="${K_BIN_DIR}/kubectl"
ETCD="${E_BIN_DIR}/etcd"
PATHS_ENV="${CACHE}/bin/paths.env"

write_paths() {
  mkdir -p "${CACHE}/bin"
  local tmp="${PATHS_ENV}.tmp.$$"
  {
    printf '# written by test/e2e/build-control-plane.sh: kubernetes %s, etcd %s\n' "${KV}" "${EV}"
    printf 'KUBE_APISERVER=%s\n' "${KUBE_APISERVER}"
    printf 'ETCD=%s\n' "${ETCD}"
    printf 'KUBECTL=%s\n' "${KUBECTL}"
  } >"${tmp}"
  mv -f "${tmp}" "${PATHS_ENV}"
}

print_paths() {
  printf 'KUBE_APISERVER=%s\nETCD=%s\nKUBECTL=%s\n' "${KUBE_APISERVER}" "${ETCD}" "${KUBECTL}"
  printf 'paths file: %s\n' "${PATHS_ENV}"
}

all_built() { [[ -x "${KUBE_APISERVER}" && -x "${KUBECTL}" && -x "${ETCD}" ]]; }

# Fast path: everything for the pinned versions is already in the cache.
if all_built; then
  write_paths
  log "cached binaries for kubernetes ${KV} and etcd ${EV} found; nothing to build"
  print_paths
  exit 0
fi

# One build at a time per cache.
exec 9>"${CACHE}/.build.lock"
if ! flock -n 9; then
  log "another build holds ${CACHE}/.build.lock; waiting"
  flock 9
fi
if all_built; then   # built by whoever held the lock
  write_paths
  print_paths
  exit 0
fi

command -v go >/dev/null || die "go is not installed (need go >= ${GO_MIN_VERSION})"
GO_HAVE="$(go env GOVERSION)"; GO_HAVE="${GO_HAVE#go}"
if [[ "$(printf '%s\n%s\n' "${GO_MIN_VERSION}" "${GO_HAVE}" | sort -V | head -n1)" != "${GO_MIN_VERSION}" ]]; then
  die "go ${GO_HAVE} is older than ${GO_MIN_VERSION}, which kubernetes ${KV} requires"
fi

export GOMODCACHE="${CACHE}/gomod"
export GOCACHE="${CACHE}/gocache"
export GOPATH="${CACHE}/gopath"
export GOTOOLCHAIN=local
export GOFLAGS="-mod=mod -buildvcs=false"
export GOWORK=off
export CGO_ENABLED=0
mkdir -p "${GOMODCACHE}" "${GOCACHE}" "${GOPATH}"

NICE=(nice -n "${HG_CP_NICE:-10}")
START_SECONDS=${SECONDS}

build_kubernetes() {
  local src="${CACHE}/src/kubernetes-${KV}"
  local minor_patch="${KV#v1.}"                 # e.g. 37.2
  local staging_version="v0.${minor_patch}"     # staging modules are tagged v0.Y.Z for v1.Y.Z
  rm -rf "${src}" && mkdir -p "${src}"
  cd "${src}"

  log "downloading k8s.io/kubernetes@${KV}"
  local dl gomod goline
  dl="$("${NICE[@]}" go mod download -json "k8s.io/kubernetes@${KV}")"
  gomod="$(printf '%s\n' "${dl}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -n "${gomod}" && -f "${gomod}" ]] || die "could not find the go.mod of k8s.io/kubernetes@${KV}: ${dl}"
  goline="$(awk '$1 == "go" { print $2; exit }' "${gomod}")"
  [[ -n "${goline}" ]] || die "no go line in ${gomod}"

  printf 'module hybrid-guard.local/control-plane/kubernetes\n\ngo %s\n' "${goline}" >go.mod

  # Staging replaces, generated from the pinned tag's go.mod:
  #   k8s.io/NAME => ./staging/src/k8s.io/NAME   becomes   k8s.io/NAME => k8s.io/NAME v0.Y.Z
  local -a edits=()
  local name count=0
  while read -r name; do
    edits+=("-replace=${name}=${name}@${staging_version}")
    count=$((count + 1))
  done < <(sed -n 's/^[[:space:]]*\(replace[[:space:]]\{1,\}\)\{0,1\}\(k8s\.io\/[^[:space:]]\{1,\}\)[[:space:]]\{1,\}=>[[:space:]]\{1,\}\.\/staging\/.*$/\2/p' "${gomod}")
  (( count >= 20 )) || die "found only ${count} staging replace lines in ${gomod}; refusing to guess"
  log "generated ${count} staging replace lines (=> ${staging_version})"

  go mod edit "-require=k8s.io/kubernetes@${KV}" "${edits[@]}" \
    -tool=k8s.io/kubernetes/cmd/kube-apiserver -tool=k8s.io/kubernetes/cmd/kubectl
  log "resolving modules (go mod tidy)"
  "${NICE[@]}" go mod tidy

  # Version stamp, as kubernetes' hack/lib/version.sh does, so `--version` and `kubectl version`
  # print the pinned release instead of v0.0.0-master.
  local minor="${minor_patch%%.*}" build_date ldflags="-s -w" pkg
  build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${pkg}.gitVersion=${KV} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
    ldflags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=${build_date}"
  done

  mkdir -p "${K_BIN_DIR}"
  local bin
  for bin in kube-apiserver kubectl; do
    log "building ${bin} ${KV} (CGO_ENABLED=0)"
    "${NICE[@]}" go build -trimpath -ldflags "${ldflags}" -o "${K_BIN_DIR}/.${bin}.tmp" "k8s.io/kubernetes/cmd/${bin}"
    mv -f "${K_BIN_DIR}/.${bin}.tmp" "${K_BIN_DIR}/${bin}"
  done
}

build_etcd() {
  local src="${CACHE}/src/etcd-${EV}"
  rm -rf "${src}" && mkdir -p "${src}"
  cd "${src}"
  local goline
  goline="$(go env GOVERSION)"; goline="${goline#go}"
  printf 'module hybrid-guard.local/control-plane/etcd\n\ngo %s\n' "${goline}" >go.mod
  go mod edit "-require=go.etcd.io/etcd/server/v3@${EV}" -tool=go.etcd.io/etcd/server/v3
  log "resolving modules for etcd ${EV} (go mod tidy)"
  "${NICE[@]}" go mod tidy
  mkdir -p "${E_BIN_DIR}"
  log "building etcd ${EV} (CGO_ENABLED=0)"
  "${NICE[@]}" go build -trimpath -ldflags "-s -w" -o "${E_BIN_DIR}/.etcd.tmp" go.etcd.io/etcd/server/v3
  mv -f "${E_BIN_DIR}/.etcd.tmp" "${E_BIN_DIR}/etcd"
}

if [[ ! -x "${ETCD}" ]]; then build_etcd; fi
if [[ ! -x "${KUBE_APISERVER}" || ! -x "${KUBECTL}" ]]; then build_kubernetes; fi

# Smoke check: each binary runs and reports the pinned version.
# (Output captured first: `cmd | grep -q` can fail under pipefail when grep exits early.)
check_version() {   # check_version BINARY EXPECTED ARGS...
  local bin="$1" want="$2" out; shift 2
  out="$("${bin}" "$@" 2>&1 || true)"
  if [[ "${out}" != *"${want}"* ]]; then
    rm -f "${bin}"   # do not let the fast path reuse a bad binary
    die "'${bin} $*' does not report ${want}: ${out}"
  fi
}
check_version "${KUBE_APISERVER}" "${KV}" --version
check_version "${KUBECTL}" "${KV}" version --client
check_version "${ETCD}" "${EV#v}" --version

write_paths
ELAPSED=$((SECONDS - START_SECONDS))
log "build took ${ELAPSED} seconds"
printf 'build took %d seconds\n' "${ELAPSED}"
print_paths
