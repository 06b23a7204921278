#!/usr/bin/env bash
# Soak (issue 6): wrk load against /validate of `hybrid-guard serve` for SOAK_SECONDS (default 300)
# while the serving certificate is rotated 10 times and the policy reloaded 10 times (5 valid, 5
# invalid), both through the kubelet's atomic volume layout (a ..data symlink swapped at once).
# Two wrk runs side by side: keep-alive connections (-c 32), and Connection: close (-c 4: a new
# TLS handshake per request, so rotations are exercised under load). Passes when
#   - every answer is 200 with the request's uid, and wrk counts no socket error;
#   - every rotation is served (new handshakes get the new serial) and every reload is counted
#     (policy: 5 success, 5 failure; certificate: 10 success, 0 failure);
#   - RSS at the end is less than 10% above RSS after warm-up; the thread count never changes.
# Loopback only; everything stops by itself.
# Usage: test/soak/soak.sh [path/to/hybrid-guard]   (SOAK_SECONDS=30 for a short run)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/cli/hybrid-guard}
seconds=${SOAK_SECONDS:-300}
rotations=10
reloads=10
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
log() { printf '[%4ds] %s\n' "$SECONDS" "$*"; }

# The kubelet's AtomicWriter layout: dir/<file> -> ..data/<file>, ..data -> ..<generation>/.
publish() {  # dir generation file=source...
  local dir=$1 gen=$2
  shift 2
  mkdir -p "$dir/..$gen"
  for pair in "$@"; do cp "${pair#*=}" "$dir/..$gen/${pair%%=*}"; done
  ln -sfn "..$gen" "$dir/..data_tmp"
  mv -T "$dir/..data_tmp" "$dir/..data"
  for pair in "$@"; do
    [ -L "$dir/${pair%%=*}" ] || ln -s "..data/${pair%%=*}" "$dir/${pair%%=*}"
  done
}

openssl ecparam -name prime256v1 -genkey -noout -out "$work/ca.key"
openssl req -x509 -new -key "$work/ca.key" -subj /CN=soak-ca -days 1 -out "$work/ca.crt" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$work/ext"
serial=0
make_cert() {  # -> $work/new.crt, $work/new.key, and $want: its serial (not in a subshell)
  serial=$((serial + 1))
  openssl ecparam -name prime256v1 -genkey -noout -out "$work/new.key"
  openssl req -new -key "$work/new.key" -subj "/CN=soak-$serial" -out "$work/new.csr" 2>/dev/null
  openssl x509 -req -in "$work/new.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
    -set_serial "$((4096 + serial))" -days 1 -extfile "$work/ext" -out "$work/new.crt" 2>/dev/null
  want=$(openssl x509 -in "$work/new.crt" -noout -serial | cut -d= -f2)
}

policy_valid() {  # $1: which namespace is allowed (the answers flip between allow and deny)
  cat <<P
apiVersion: hybrid-guard.io/v1alpha1
kind: HybridModePolicy
metadata: {name: soak-$1}
spec:
  namespaces: [$1, payments]
  tls: {certificatePaths: [/etc/istio/tls-certs/]}
P
}
policy_invalid() {
  printf 'apiVersion: hybrid-guard.io/v1alpha1\nkind: HybridModePolicy\nmetadata: {name: bad}\nspec:\n  namespace: [shop]\n'
}

make_cert
publish "$work/tls" 0 tls.crt="$work/new.crt" tls.key="$work/new.key"
policy_valid shop > "$work/policy.yaml"
publish "$work/policy" 0 policy.yaml="$work/policy.yaml"

"$bin" serve --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --tls-cert "$work/tls/tls.crt" --tls-key "$work/tls/tls.key" --policy "$work/policy/policy.yaml" \
  --reload-interval-ms 200 \
  > >(grep --line-buffered -v '"msg":"admission decision"' > "$work/serve.log") 2> "$work/serve.err" &
server=$!
pids+=("$server")
port= metrics=
for _ in $(seq 1 100); do
  line=$(grep -m1 '"msg":"serving"' "$work/serve.log" 2>/dev/null || true)
  if [ -n "$line" ]; then
    port=$(sed -E 's/.*"listen":"127.0.0.1:([0-9]+)".*/\1/' <<< "$line")
    metrics=$(sed -E 's/.*"metrics_listen":"127.0.0.1:([0-9]+)".*/\1/' <<< "$line")
    break
  fi
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/serve.err"; echo "FAIL: the server did not start"; exit 1; }
log "serving on 127.0.0.1:$port (pid $server), metrics on $metrics; soak of ${seconds}s"

metric() {  # name{labels} -> value
  curl -s "http://127.0.0.1:$metrics/metrics" | grep -F "$1 " | awk '{print $2}'
}
wait_metric() {  # name{labels} value
  for _ in $(seq 1 100); do
    [ "$(metric "$1")" = "$2" ] && return 0
    sleep 0.1
  done
  echo "FAIL: $1 did not reach $2 (is $(metric "$1"))"
  return 1
}
served_serial() {
  openssl s_client -connect "127.0.0.1:$port" -CAfile "$work/ca.crt" -verify_return_error \
    < /dev/null 2> /dev/null | openssl x509 -noout -serial 2> /dev/null | cut -d= -f2
}
status_of() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$server/status"; }

export BODY_FILE=examples/reviews/sidecar-create.json
export EXPECT_UID=705ab4f5-6393-11e8-b7cc-42010a800002
wrk -t1 -c32 -d"${seconds}s" --timeout 5s -s test/soak/soak.lua \
  "https://127.0.0.1:$port/validate" > "$work/wrk-keepalive.txt" 2>&1 &
wrk_keepalive=$!
wrk -t1 -c4 -d"${seconds}s" --timeout 5s -H 'Connection: close' -s test/soak/soak.lua \
  "https://127.0.0.1:$port/validate" > "$work/wrk-close.txt" 2>&1 &
wrk_close=$!
pids+=("$wrk_keepalive" "$wrk_close")

# RSS and threads every second; the baseline is taken after a tenth of the run (warm-up).
: > "$work/rss.csv"
(
  start=$SECONDS
  while kill -0 "$server" 2>/dev/null; do
    echo "$((SECONDS - start)) $(status_of VmRSS) $(status_of Threads)" >> "$work/rss.csv"
    sleep 1
  done
) &
pids+=($!)

failures=0
events=$((rotations + reloads))
start=$SECONDS
rotated=0 reloaded=0 good=0 bad=0
for k in $(seq 0 $((events - 1))); do
  at=$(( (k + 1) * seconds / (events + 1) ))
  while [ $((SECONDS - start)) -lt "$at" ]; do sleep 0.2; done
  if [ $((k % 2)) -eq 0 ]; then
    rotated=$((rotated + 1))
    make_cert
    publish "$work/tls" "$rotated" tls.crt="$work/new.crt" tls.key="$work/new.key"
    wait_metric 'hybrid_guard_certificate_reloads_total{result="success"}' "$rotated" || failures=$((failures + 1))
    got=$(served_serial)
    if [ "$got" = "$want" ]; then
      log "certificate rotation $rotated: new handshakes get serial $got"
    else
      log "FAIL: certificate rotation $rotated: serving serial '$got', expected $want"
      failures=$((failures + 1))
    fi
  else
    reloaded=$((reloaded + 1))
    if [ $((reloaded % 2)) -eq 1 ]; then
      good=$((good + 1))
      policy_valid "$([ $((good % 2)) -eq 0 ] && echo shop || echo other)" > "$work/policy.yaml"
      result=success count=$good
    else
      bad=$((bad + 1))
      policy_invalid > "$work/policy.yaml"
      result=failure count=$bad
    fi
    publish "$work/policy" "$reloaded" policy.yaml="$work/policy.yaml"
    if wait_metric "hybrid_guard_policy_reloads_total{result=\"$result\"}" "$count"; then
      log "policy reload $reloaded: $result (as intended)"
    else
      failures=$((failures + 1))
    fi
  fi
done
wait "$wrk_keepalive" "$wrk_close" || true
sleep 1.5

summary() { grep '^SOAK' "$1" || { cat "$1"; echo "SOAK requests=0"; }; }
field() { sed -E "s/.* $2=([0-9]+).*/\1/" <<< "$1"; }
for run in keepalive close; do
  line=$(summary "$work/wrk-$run.txt")
  log "wrk $run: ${line#SOAK }"
  requests=$(field "$line" requests)
  non200=$(field "$line" non200)
  badbody=$(field "$line" bad_body)
  socket=$(( $(field "$line" connect) + $(field "$line" read) + $(field "$line" write) + $(field "$line" timeout) ))
  [ "$requests" -gt 0 ] || { log "FAIL: wrk $run made no request"; failures=$((failures + 1)); }
  [ "$non200" -eq 0 ] && [ "$(field "$line" status)" -eq 0 ] || { log "FAIL: wrk $run: $non200 answers were not 200"; failures=$((failures + 1)); }
  [ "$badbody" -eq 0 ] || { log "FAIL: wrk $run: $badbody answers without the uid"; failures=$((failures + 1)); }
  [ "$socket" -eq 0 ] || { log "FAIL: wrk $run: $socket socket errors"; failures=$((failures + 1)); }
done

[ "$(metric 'hybrid_guard_certificate_reloads_total{result="failure"}')" = 0 ] ||
  { log "FAIL: a certificate reload was refused"; failures=$((failures + 1)); }
log "reloads: certificate success=$(metric 'hybrid_guard_certificate_reloads_total{result="success"}') failure=$(metric 'hybrid_guard_certificate_reloads_total{result="failure"}');" \
  "policy success=$(metric 'hybrid_guard_policy_reloads_total{result="success"}') failure=$(metric 'hybrid_guard_policy_reloads_total{result="failure"}')"

warm=$((seconds / 10))
baseline=$(awk -v t="$warm" '$1 >= t {print $2; exit}' "$work/rss.csv")
final=$(awk '$2 != "" {v = $2} END {print v}' "$work/rss.csv")
peak=$(awk '$2 > m {m = $2} END {print m}' "$work/rss.csv")
threads=$(awk '$3 != "" {print $3}' "$work/rss.csv" | sort -u | tr '\n' ' ')
growth=$(awk -v b="$baseline" -v f="$final" 'BEGIN {printf "%.1f", (f - b) * 100 / b}')
log "RSS: ${baseline} kB after warm-up (${warm}s), ${final} kB at the end, peak ${peak} kB: ${growth}% growth; threads: ${threads}"
awk -v b="$baseline" -v f="$final" 'BEGIN {exit !(f < b * 1.10)}' ||
  { log "FAIL: RSS grew by ${growth}% (limit 10%)"; failures=$((failures + 1)); }
[ "$(wc -w <<< "$threads")" -eq 1 ] || { log "FAIL: the thread count changed: $threads"; failures=$((failures + 1)); }
kill -0 "$server" || { log "FAIL: the server died"; failures=$((failures + 1)); }
if grep '"level":"error"' "$work/serve.log" | grep -v 'policy reload refused' > "$work/errors.log"; then
  log "FAIL: the server logged errors:"
  head -5 "$work/errors.log"
  failures=$((failures + 1))
fi

if [ "$failures" -ne 0 ]; then
  log "soak: $failures failure(s)"
  exit 1
fi
log "soak: PASS"
