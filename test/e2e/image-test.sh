#!/usr/bin/env bash
# Proves the container image complete: builds it with manifests/build-image.sh (buildah, vfs),
# exports the OCI archive, imports that archive again (`buildah from oci-archive:`), mounts it
# (`buildah mount`) and runs, chrooted into it as the image's non-root user,
# `hybrid-guard version` and a short `serve` that answers an AdmissionReview over HTTPS, /readyz
# and /metrics, then stops on SIGTERM with exit 0. (podman run fails in this sandbox on
# setrlimit; chroot into the mounted image works.) Needs root and buildah.
#
#   test/e2e/image-test.sh [HYBRID_GUARD_BINARY]      (default build/cli/hybrid-guard)
# Exit 77 (ctest: skipped) when buildah is not installed or not root.
set -euo pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/../.." && pwd -P)"
E2E_NAME=image
# shellcheck source=test/e2e/lib.sh
source "${SCRIPT_DIR}/lib.sh"

BINARY="${1:-${HG_BINARY:-${REPO_ROOT}/build/cli/hybrid-guard}}"
[[ -x "${BINARY}" ]] || { say "no binary at ${BINARY}"; exit 1; }
if ! command -v buildah >/dev/null; then say "SKIP: buildah is not installed (apt-get install buildah)"; exit 77; fi
if (( EUID != 0 )); then say "SKIP: needs root (buildah vfs storage and chroot)"; exit 77; fi

B=(buildah --storage-driver vfs)
WORK="$(mktemp -d "${TMPDIR:-/tmp}/hg-image-test.XXXXXX")"
TAG="localhost/hybrid-guard-image-test:$$"
ARCHIVE="${WORK}/hybrid-guard.oci.tar"
CTR="" MNT="" IMAGE_ID="" SERVE_PID=""
started=${SECONDS}

cleanup() {
  local rc=$?
  stop_serve || true
  if [[ -n "${CTR}" ]]; then
    "${B[@]}" umount "${CTR}" >/dev/null 2>&1 || true
    "${B[@]}" rm "${CTR}" >/dev/null 2>&1 || true
  fi
  [[ -n "${IMAGE_ID}" ]] && { "${B[@]}" rmi -f "${IMAGE_ID}" >/dev/null 2>&1 || true; }
  "${B[@]}" rmi -f "${TAG}" >/dev/null 2>&1 || true
  rm -rf "${WORK}"
  say "image test took $((SECONDS - started))s"
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_image() { chroot --userspec=65532:65532 "${MNT}" "$@"; }

build_and_mount() {
  run "${REPO_ROOT}/manifests/build-image.sh" --binary "${BINARY}" --tag "${TAG}" --output "${ARCHIVE}"
  expect_ok "manifests/build-image.sh" || return 1
  [[ -s "${ARCHIVE}" ]] || fail "no OCI archive at ${ARCHIVE}" || return 1
  tar -xOf "${ARCHIVE}" oci-layout | grep -q imageLayoutVersion || fail "${ARCHIVE} is not an OCI layout" || return 1
  # What is tested is the archive: drop the built image, import the archive again.
  "${B[@]}" rmi -f "${TAG}" >/dev/null
  CTR="$("${B[@]}" from --quiet --name "hg-image-test-$$" "oci-archive:${ARCHIVE}")"
  IMAGE_ID="$("${B[@]}" inspect --format '{{.FromImageID}}' "${CTR}")"
  MNT="$("${B[@]}" mount "${CTR}")"
  [[ -x "${MNT}/usr/local/bin/hybrid-guard" ]] || fail "no /usr/local/bin/hybrid-guard in the image" || return 1
}

config_is_non_root() {
  local user entrypoint
  user="$("${B[@]}" inspect --format '{{.OCIv1.Config.User}}' "${CTR}")"
  entrypoint="$("${B[@]}" inspect --format '{{.OCIv1.Config.Entrypoint}}' "${CTR}")"
  expect_eq "image USER" "65532:65532" "${user}" || return 1
  expect_eq "image ENTRYPOINT" '[/usr/local/bin/hybrid-guard]' "${entrypoint}" || return 1
}

contents_are_minimal() {
  # Exactly: the binary, the libraries ldd lists (+ the loader), CA certificates, passwd, group, /tmp.
  local expected actual
  expected="$( { printf '%s\n' /usr/local/bin/hybrid-guard /etc/ssl/certs/ca-certificates.crt /etc/passwd /etc/group
                 ldd "${BINARY}" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'; } | sort -u)"
  actual="$(cd "${MNT}" && find . \( -type f -o -type l \) | sed 's/^\.//' | sort -u)"
  expect_eq "files in the image" "${expected}" "${actual}" || return 1
  [[ -d "${MNT}/tmp" ]] || fail "no /tmp in the image" || return 1
}

version_runs() {
  run in_image /usr/local/bin/hybrid-guard version
  expect_ok "hybrid-guard version in the image" || return 1
  expect_eq "version" "$("${BINARY}" version)" "${E2E_LAST_OUTPUT}" || return 1
}

serve_runs() {
  local data="${MNT}/tmp/e2e"
  mkdir -p "${data}"
  "${REPO_ROOT}/certs/generate.sh" --out "${WORK}/certs" --san IP:127.0.0.1 >/dev/null
  install -m 0644 "${WORK}/certs/tls.crt" "${data}/tls.crt"
  install -m 0644 -o 65532 -g 65532 "${WORK}/certs/tls.key" "${data}/tls.key"
  install -m 0644 "${REPO_ROOT}/manifests/policy.yaml" "${data}/policy.yaml"
  start_serve "${WORK}/serve.log" chroot --userspec=65532:65532 "${MNT}" /usr/local/bin/hybrid-guard serve \
    --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --tls-cert /tmp/e2e/tls.crt --tls-key /tmp/e2e/tls.key --policy /tmp/e2e/policy.yaml || return 1
  # chroot execs serve: SERVE_PID is the server itself.
  local uid
  uid="$(awk '/^Uid:/ { print $2 }' "/proc/${SERVE_PID}/status")"
  expect_eq "uid of serve" 65532 "${uid}" || return 1
  # Admission over HTTPS, verified against the CA (the shipped policy allows hybrid mode nowhere).
  run curl -sS --fail --cacert "${WORK}/certs/ca.crt" -H 'Content-Type: application/json' \
    --data-binary "@${REPO_ROOT}/examples/reviews/sidecar-create.json" "https://${SERVE_ADDR}/validate"
  expect_ok "POST /validate" || return 1
  expect_output_has '"uid":"705ab4f5-6393-11e8-b7cc-42010a800002"' || return 1
  expect_output_has '"allowed":false' || return 1
  expect_output_has '[namespace-not-allowed] metadata.namespace' || return 1
  run curl -sS --fail "http://${SERVE_METRICS_ADDR}/readyz"
  expect_ok "GET /readyz" || return 1
  run curl -sS --fail "http://${SERVE_METRICS_ADDR}/metrics"
  expect_ok "GET /metrics" || return 1
  expect_output_has 'hybrid_guard_admission_requests_total{' || return 1
  stop_serve
  expect_eq "serve exit status after SIGTERM" 0 "${SERVE_RC}" || { cat "${WORK}/serve.log" >&2; return 1; }
}

scenario "image builds with buildah, exports as OCI archive, re-imports and mounts" build_and_mount
if [[ -n "${MNT}" ]]; then
  scenario "image config: non-root USER 65532, ENTRYPOINT hybrid-guard" config_is_non_root
  scenario "image holds exactly the binary, its ldd libraries, CA certificates, passwd/group" contents_are_minimal
  scenario "chroot: hybrid-guard version" version_runs
  scenario "chroot as 65532: serve answers /validate over TLS, /readyz, /metrics; SIGTERM exits 0" serve_runs
fi
summary
