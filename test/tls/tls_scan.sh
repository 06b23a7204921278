#!/usr/bin/env bash
# DESIGN §6 "HTTPS only, TLS 1.2 minimum", checked from outside the way an auditor would: sslscan
# against `hybrid-guard serve` (its local default: generated ECDSA P-256 certificate). Fails when
#   - a protocol other than TLS 1.2 and 1.3 is accepted, or either of those is not;
#   - a cipher suite outside the allowlist below is accepted (ECDHE + AEAD only in TLS 1.2:
#     no CBC, RC4, 3DES, NULL, anonymous or export suites; the AEAD suites in TLS 1.3);
#   - a key-exchange group under 128 bits of strength is offered;
#   - insecure (or any client-initiated) renegotiation is supported;
#   - TLS compression is on (sslscan's OpenSSL cannot probe it: checked with openssl s_client);
#   - the server is vulnerable to Heartbleed, or its certificate is weaker than 128 bits.
# Usage: tls_scan.sh path/to/hybrid-guard   (ctest label tls; prints the scan on failure)
set -euo pipefail
binary=${1:?usage: tls_scan.sh path/to/hybrid-guard}
command -v sslscan >/dev/null || { echo "sslscan is not installed (scripts/deps installs it)"; exit 1; }

work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

"$binary" serve --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --ca-out "$work/ca.crt" \
  --log-level info > "$work/serve.log" 2> "$work/serve.err" &
pid=$!
port=
for _ in $(seq 1 200); do
  port=$(grep -o '"listen":"127.0.0.1:[0-9]*"' "$work/serve.log" 2>/dev/null | grep -o '[0-9]*"$' | tr -d '"' || true)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.err"; exit 1; }
  sleep 0.05
done
[ -n "$port" ] || { echo "the server did not start"; cat "$work/serve.err"; exit 1; }

sslscan --no-colour --xml="$work/scan.xml" "127.0.0.1:$port" > "$work/scan.txt" 2>&1 || true
xml=$work/scan.xml
failures=()
fail() { failures+=("$1"); }

grep -q '<ssltest ' "$xml" 2>/dev/null || fail "sslscan produced no result"

# Protocols.
for v in 'ssl" version="2' 'ssl" version="3' 'tls" version="1.0' 'tls" version="1.1'; do
  grep -q "<protocol type=\"$v\" enabled=\"0\"" "$xml" || fail "protocol ${v//\" version=\"/ } is not disabled"
done
for v in 1.2 1.3; do
  grep -q "<protocol type=\"tls\" version=\"$v\" enabled=\"1\"" "$xml" || fail "TLS $v is not enabled"
done

# Cipher suites: every accepted one must be on the allowlist.
allowed=" TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256
  ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305
  ECDHE-RSA-AES128-GCM-SHA256 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-RSA-CHACHA20-POLY1305 "
ciphers=$(grep -o '<cipher [^>]*' "$xml" | sed -E 's/.*sslversion="([^"]*)".*cipher="([^"]*)".*/\1 \2/' || true)
[ -n "$ciphers" ] || fail "no cipher suite accepted"
while read -r version cipher; do
  [ -z "$cipher" ] && continue
  case "$version" in TLSv1.2 | TLSv1.3) ;; *) fail "cipher $cipher accepted over $version" ;; esac
  [[ "$allowed" == *" $cipher"[[:space:]]* ]] || fail "weak or unexpected cipher suite accepted: $version $cipher"
done <<< "$ciphers"
grep -o '<cipher [^>]*' "$xml" | grep -Eq 'strength="(weak|medium|null|anonymous)"' &&
  fail "sslscan rates an accepted cipher suite weak"

# Key exchange groups.
while read -r bits name; do
  [ -z "$bits" ] && continue
  [ "$bits" -ge 128 ] || fail "key exchange group $name offers only $bits bits"
done <<< "$(grep -o '<group [^>]*' "$xml" | sed -E 's/.*bits="([0-9]*)".*name="([^"]*)".*/\1 \2/' || true)"

# Renegotiation: not supported at all (SSL_OP_NO_RENEGOTIATION), so never insecurely.
grep -q '<renegotiation supported="0"' "$xml" || fail "session renegotiation is supported"
grep -q '<renegotiation supported="1" secure="0"' "$xml" && fail "INSECURE session renegotiation is supported"

# Compression (CRIME): the TLS 1.2 session must say NONE.
session=$(openssl s_client -connect "127.0.0.1:$port" -tls1_2 -CAfile "$work/ca.crt" \
  -verify_return_error < /dev/null 2>&1 || true)
grep -q '^Compression: NONE' <<< "$session" || fail "TLS 1.2 session compression is not NONE"
grep -Eq '^ *Verify return code: 0 \(ok\)' <<< "$session" || fail "the certificate does not verify against the CA"

# Heartbleed and the certificate.
grep -q 'vulnerable="1"' "$xml" && fail "vulnerable to Heartbleed"
pkbits=$(grep -o '<pk [^>]*' "$xml" | grep -o 'bits="[0-9]*"' | head -1 | tr -dc '0-9')
[ -n "$pkbits" ] && [ "$pkbits" -ge 128 ] || fail "certificate key strength ${pkbits:-unknown} bits (< 128)"
grep -q '<signature-algorithm>.*sha1\|<signature-algorithm>.*md5' "$xml" && fail "certificate signed with SHA-1 or MD5"

if [ ${#failures[@]} -gt 0 ]; then
  cat "$work/scan.txt"
  printf 'FAIL: %s\n' "${failures[@]}"
  exit 1
fi
accepted=$(wc -l <<< "$ciphers")
echo "sslscan 127.0.0.1:$port: TLS 1.2 and 1.3 only; $accepted cipher suites, all ECDHE/AEAD;" \
  "groups >= 128 bits; no renegotiation; no compression; not vulnerable to Heartbleed; PASS"
