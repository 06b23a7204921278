#!/usr/bin/env bash
# Makes the serving certificate of the hybrid-guard webhook with openssl, and a kustomize overlay
# that installs it: the TLS Secret plus every webhook's caBundle (DESIGN.md §9).
#
#   certs/generate.sh [--out DIR] [--namespace NS] [--service NAME] [--days N] [--ca-days N]
#                     [--san DNS:name|IP:addr]... [--manifests DIR]
#   kubectl apply -k certs/out
#
# Writes into DIR (default certs/out, git-ignored; mode 700):
#   ca.crt ca.key           a new CA (ECDSA P-256, --ca-days, default 3650)
#   tls.crt tls.key         the serving certificate it signs (ECDSA P-256, --days, default 365),
#                           SANs NAME.NS.svc and NAME.NS.svc.cluster.local (+ --san ones)
#   previous-ca.crt         the CA of the run before, if any
#   ca-bundle.crt           ca.crt + previous-ca.crt (while that one is still valid)
#   secret.yaml             the kubernetes.io/tls Secret NAME-tls (tls.crt, tls.key, ca.crt)
#   webhook-ca-bundle.yaml  patches that set ca-bundle.crt as every webhook's caBundle
#   kustomization.yaml      the overlay: the base in --manifests + secret.yaml + those patches
#
# Re-running rotates cleanly: a new CA and a new serving certificate, while the caBundle keeps
# trusting the previous CA too. Whatever order the API server and the pod see the change in
# (the kubelet refreshes the Secret volume within about a minute; serve then reloads it without
# a restart), every certificate served meanwhile verifies, so no admission request fails.
# Rotate again only after the new certificate is being served (the oldest CA is then dropped).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/.." && pwd -P)"

out="${SCRIPT_DIR}/out"
namespace=hybrid-guard
service=hybrid-guard
days=365
ca_days=3650
manifests="${REPO_ROOT}/manifests"
extra_sans=()

die() { printf 'certs/generate.sh: %s\n' "$*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }

while (($#)); do
  case "$1" in
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    --namespace) namespace="${2:?--namespace needs a name}"; shift 2 ;;
    --service) service="${2:?--service needs a name}"; shift 2 ;;
    --days) days="${2:?--days needs a number}"; shift 2 ;;
    --ca-days) ca_days="${2:?--ca-days needs a number}"; shift 2 ;;
    --san) extra_sans+=("${2:?--san needs DNS:name or IP:address}"); shift 2 ;;
    --manifests) manifests="${2:?--manifests needs a folder}"; shift 2 ;;
    -h|--help) usage ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ "${days}" =~ ^[1-9][0-9]*$ && "${ca_days}" =~ ^[1-9][0-9]*$ ]] || die "--days and --ca-days must be positive numbers"
(( ca_days >= days )) || die "--ca-days (${ca_days}) must be at least --days (${days})"
for san in "${extra_sans[@]}"; do
  [[ "${san}" =~ ^(DNS|IP):[^,[:space:]]+$ ]] || die "--san ${san}: use DNS:name or IP:address"
done
command -v openssl >/dev/null || die "openssl is not installed"
[[ -f "${manifests}/kustomization.yaml" ]] || die "${manifests} is not the kustomize base (no kustomization.yaml)"
manifests="$(cd "${manifests}" && pwd -P)"

# The webhooks whose caBundle is set: every `- name:` entry of the base's webhook configurations.
webhook_names() {   # webhook_names FILE
  awk '/^webhooks:/ { in_list = 1; next } in_list && /^  - name:/ { print $3 }' "$1"
}
validating=() mutating=()
mapfile -t validating < <(webhook_names "${manifests}/webhooks/validating.yaml")
mapfile -t mutating < <(webhook_names "${manifests}/webhooks/mutating.yaml")
(( ${#validating[@]} > 0 && ${#mutating[@]} > 0 )) || die "no webhooks found in ${manifests}/webhooks"

umask 077
mkdir -p "${out}"
out="$(cd "${out}" && pwd -P)"
chmod 700 "${out}"
work="$(mktemp -d "${out}/.new.XXXXXX")"
trap 'rm -rf "${work}"' EXIT

# --- CA and serving certificate (made aside, moved in only when all of it worked) -----------
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
  -days "${ca_days}" -keyout "${work}/ca.key" -out "${work}/ca.crt" \
  -subj "/O=hybrid-guard/CN=hybrid-guard webhook CA $(date -u +%Y%m%dT%H%M%SZ)" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

sans="DNS:${service}.${namespace}.svc,DNS:${service}.${namespace}.svc.cluster.local"
for san in "${extra_sans[@]}"; do sans+=",${san}"; done
printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth" "subjectAltName=${sans}" \
  "authorityKeyIdentifier=keyid" "subjectKeyIdentifier=hash" >"${work}/tls.ext"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
  -keyout "${work}/tls.key" -out "${work}/tls.csr" -subj "/CN=${service}.${namespace}.svc" 2>/dev/null
openssl x509 -req -sha256 -days "${days}" -in "${work}/tls.csr" -CA "${work}/ca.crt" \
  -CAkey "${work}/ca.key" -set_serial "0x$(openssl rand -hex 16)" -extfile "${work}/tls.ext" \
  -out "${work}/tls.crt" 2>/dev/null
openssl verify -CAfile "${work}/ca.crt" "${work}/tls.crt" >/dev/null \
  || die "the new serving certificate does not verify against the new CA"
rm -f "${work}/tls.csr" "${work}/tls.ext"

# The previous CA stays trusted for one rotation, as long as it has not expired.
cp "${work}/ca.crt" "${work}/ca-bundle.crt"
if [[ -f "${out}/ca.crt" ]]; then
  cp "${out}/ca.crt" "${work}/previous-ca.crt"
  if openssl x509 -checkend 0 -noout -in "${work}/previous-ca.crt" >/dev/null 2>&1; then
    cat "${work}/previous-ca.crt" >>"${work}/ca-bundle.crt"
  fi
fi

# --- manifests ---------------------------------------------------------------------------------
b64() { base64 -w0 <"$1"; }
cat >"${work}/secret.yaml" <<YAML
# Written by certs/generate.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ). Holds a private key: do not commit.
apiVersion: v1
kind: Secret
metadata:
  name: ${service}-tls
  namespace: ${namespace}
type: kubernetes.io/tls
data:
  tls.crt: $(b64 "${work}/tls.crt")
  tls.key: $(b64 "${work}/tls.key")
  ca.crt: $(b64 "${work}/ca.crt")
YAML

bundle="$(b64 "${work}/ca-bundle.crt")"
{
  printf '# Written by certs/generate.sh: the caBundle of every hybrid-guard webhook.\n'
  printf 'apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\n'
  printf 'metadata:\n  name: hybrid-guard\nwebhooks:\n'
  for name in "${validating[@]}"; do
    printf '  - name: %s\n    clientConfig:\n      caBundle: %s\n' "${name}" "${bundle}"
  done
  printf -- '---\napiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\n'
  printf 'metadata:\n  name: hybrid-guard\nwebhooks:\n'
  for name in "${mutating[@]}"; do
    printf '  - name: %s\n    clientConfig:\n      caBundle: %s\n' "${name}" "${bundle}"
  done
} >"${work}/webhook-ca-bundle.yaml"

base_ref="$(realpath --relative-to="${out}" "${manifests}")"
cat >"${work}/kustomization.yaml" <<YAML
# Written by certs/generate.sh: the hybrid-guard base with its serving certificate.
#   kubectl apply -k ${out}
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ${base_ref}
  - secret.yaml
patches:
  - path: webhook-ca-bundle.yaml
YAML

# --- install: all files at once, then drop the work folder -------------------------------------
for f in ca.crt ca.key tls.crt tls.key ca-bundle.crt secret.yaml webhook-ca-bundle.yaml kustomization.yaml; do
  mv -f "${work}/${f}" "${out}/${f}"
done
if [[ -f "${work}/previous-ca.crt" ]]; then mv -f "${work}/previous-ca.crt" "${out}/previous-ca.crt"; fi
chmod 600 "${out}"/*.key "${out}/secret.yaml"
chmod 644 "${out}"/*.crt

printf 'wrote %s: serving certificate for %s (%s days), caBundle of %d webhooks (%d CA%s)\n' \
  "${out}" "${sans}" "${days}" $(( ${#validating[@]} + ${#mutating[@]} )) \
  "$(grep -c 'BEGIN CERTIFICATE' "${out}/ca-bundle.crt")" \
  "$( (( $(grep -c 'BEGIN CERTIFICATE' "${out}/ca-bundle.crt") > 1 )) && echo 's: new + previous' || echo '')"
printf 'install or rotate: kubectl apply -k %s\n' "${out}"
