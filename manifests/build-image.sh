#!/usr/bin/env bash
# Builds the hybrid-guard container image from the repository's Containerfile with buildah and
# exports it as an OCI archive (no registry needed).
#
#   manifests/build-image.sh [--binary PATH] [--tag NAME:TAG] [--output FILE] [--no-strip]
#
#   --binary  the built hybrid-guard (default build/cli/hybrid-guard)
#   --tag     image name (default localhost/hybrid-guard:<version>, the name manifests/ uses)
#   --output  the OCI archive (default build/hybrid-guard-<version>.oci.tar)
#   --no-strip  keep the debug information in the binary (default: stripped copy)
#
# Stages a build context outside the repository: rootfs/ with the binary, the shared libraries
# `ldd` lists (at the paths it lists them, with the loader), /etc/ssl/certs/ca-certificates.crt,
# /etc/passwd and /etc/group naming the non-root user 65532, and /tmp. Then
#   buildah --storage-driver vfs bud -f Containerfile -t TAG CONTEXT
#   buildah --storage-driver vfs push TAG oci-archive:FILE:TAG
# Push it to a registry with, e.g.,
#   skopeo copy oci-archive:FILE docker://REGISTRY/hybrid-guard:TAG   (or buildah push TAG docker://...)
# Runs as root (buildah with the vfs driver); needs buildah (apt-get install buildah).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/.." && pwd -P)"
binary="${REPO_ROOT}/build/cli/hybrid-guard"
tag="" output="" strip=1

die() { printf 'build-image: %s\n' "$*" >&2; exit 1; }
log() { printf '[build-image] %s\n' "$*" >&2; }
while (($#)); do
  case "$1" in
    --binary) binary="${2:?}"; shift 2 ;;
    --tag) tag="${2:?}"; shift 2 ;;
    --output) output="${2:?}"; shift 2 ;;
    --no-strip) strip=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    *) die "unknown argument $1" ;;
  esac
done
command -v buildah >/dev/null || die "buildah is not installed (apt-get install buildah)"
[[ -x "${binary}" ]] || die "no hybrid-guard binary at ${binary}; build it first (scripts/build)"
cacerts=/etc/ssl/certs/ca-certificates.crt
[[ -s "${cacerts}" ]] || die "${cacerts} is missing (apt-get install ca-certificates)"

version="$("${binary}" version | awk '{print $2}')"
[[ -n "${version}" ]] || die "could not read the version of ${binary}"
tag="${tag:-localhost/hybrid-guard:${version}}"
output="${output:-${REPO_ROOT}/build/hybrid-guard-${version}.oci.tar}"
BUILDAH=(buildah --storage-driver vfs)

context="$(mktemp -d "${TMPDIR:-/tmp}/hybrid-guard-image.XXXXXX")"
trap 'rm -rf "${context}"' EXIT
root="${context}/rootfs"
mkdir -p "${root}/usr/local/bin" "${root}/etc/ssl/certs" "${root}/tmp"
chmod 1777 "${root}/tmp"

if (( strip )); then
  objcopy --strip-debug "${binary}" "${root}/usr/local/bin/hybrid-guard"
else
  cp "${binary}" "${root}/usr/local/bin/hybrid-guard"
fi
chmod 0755 "${root}/usr/local/bin/hybrid-guard"

# Exactly what the dynamic loader resolves: `name => /path (addr)` and the loader `/path (addr)`.
libs=()
while read -r lib; do libs+=("${lib}"); done < <(
  ldd "${binary}" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
(( ${#libs[@]} > 0 )) || die "ldd lists no libraries for ${binary} (is it static? then drop this step)"
if ldd "${binary}" | grep -q 'not found'; then die "ldd: $(ldd "${binary}" | grep 'not found')"; fi
for lib in "${libs[@]}"; do
  mkdir -p "${root}$(dirname "${lib}")"
  cp -L "${lib}" "${root}${lib}"   # the file itself under the name the loader asks for
done
cp -L "${cacerts}" "${root}/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' >"${root}/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"${root}/etc/group"
cp "${REPO_ROOT}/Containerfile" "${context}/Containerfile"
log "staged ${#libs[@]} libraries: ${libs[*]}"

started=${SECONDS}
"${BUILDAH[@]}" bud --quiet --layers=false --build-arg "VERSION=${version}" \
  -f "${context}/Containerfile" -t "${tag}" "${context}" >/dev/null
mkdir -p "$(dirname "${output}")"
rm -f "${output}"
"${BUILDAH[@]}" push --quiet "${tag}" "oci-archive:${output}:${tag#localhost/}"
log "built ${tag} in $((SECONDS - started))s; OCI archive ${output} ($(du -h "${output}" | cut -f1))"
printf '%s\n' "${output}"
