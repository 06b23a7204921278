# Shared helpers of the end-to-end tests (sourced by e2e.sh and image-test.sh).
# A scenario is a bash function; `scenario NAME FUNCTION` runs it, records PASS/FAIL with its
# duration, and `summary` prints the table and returns non-zero when anything failed.

E2E_PASSED=0
E2E_FAILED=0
E2E_RESULTS=()
E2E_LAST_OUTPUT=""

say() { printf '[%s] %s\n' "${E2E_NAME:-e2e}" "$*" >&2; }

# fail MESSAGE: fails the current scenario (the scenario function returns 1 through `|| return`).
fail() { say "  FAIL: $*"; return 1; }

# Shared by e2e.sh and cluster.sh: skip on HG_SKIP_E2E=1, then set BINARY (argument 1, HG_BINARY,
# or build/cli/hybrid-guard; made absolute), SHARED_DIR and ISTIO_DIR, or exit 1 naming what is
# missing. Needs REPO_ROOT.
resolve_inputs() {
  if [[ "${HG_SKIP_E2E:-}" == 1 ]]; then say "SKIP: HG_SKIP_E2E=1"; exit 77; fi
  BINARY="${1:-${HG_BINARY:-${REPO_ROOT}/build/cli/hybrid-guard}}"
  [[ -x "${BINARY}" ]] || { say "no hybrid-guard binary at ${BINARY}"; exit 1; }
  BINARY="$(cd "$(dirname "${BINARY}")" && pwd -P)/$(basename "${BINARY}")"
  SHARED_DIR="${HG_SHARED_DIR:-${REPO_ROOT}/../shared}"
  ISTIO_DIR="${SHARED_DIR}/istio"
  [[ -f "${ISTIO_DIR}/crd-sidecars.networking.istio.io.yaml" ]] || { say "no Istio CRDs in ${ISTIO_DIR}"; exit 1; }
}

# run CMD...: runs CMD, keeps its combined output in E2E_LAST_OUTPUT and its status in E2E_LAST_RC.
run() {
  E2E_LAST_RC=0
  E2E_LAST_OUTPUT="$("$@" 2>&1)" || E2E_LAST_RC=$?
  if [[ "${E2E_VERBOSE:-}" == 1 ]]; then
    printf '  $ %s\n%s\n  (exit %d)\n' "$*" "$(sed 's/^/    /' <<<"${E2E_LAST_OUTPUT}" | cut -c1-400)" "${E2E_LAST_RC}" >&2
  fi
  return 0
}

# expect_ok / expect_fail: the last `run` succeeded / failed.
expect_ok() {
  (( E2E_LAST_RC == 0 )) && return 0
  fail "${1:-command} failed (exit ${E2E_LAST_RC}):"$'\n'"${E2E_LAST_OUTPUT}"
}
expect_fail() {
  (( E2E_LAST_RC != 0 )) && return 0
  fail "${1:-command} succeeded but must fail:"$'\n'"${E2E_LAST_OUTPUT}"
}

# expect_output_has TEXT: the last `run` printed TEXT (a fixed string).
expect_output_has() {
  [[ "${E2E_LAST_OUTPUT}" == *"$1"* ]] && return 0
  fail "expected the output to contain:"$'\n'"  $1"$'\n'"got:"$'\n'"${E2E_LAST_OUTPUT}"
}
expect_output_lacks() {
  [[ "${E2E_LAST_OUTPUT}" != *"$1"* ]] && return 0
  fail "expected the output not to contain:"$'\n'"  $1"$'\n'"got:"$'\n'"${E2E_LAST_OUTPUT}"
}

expect_eq() {   # expect_eq WHAT EXPECTED ACTUAL
  [[ "$2" == "$3" ]] && return 0
  fail "$1: expected '$2', got '$3'"
}

scenario() {   # scenario "description" function [args...]
  local title="$1"; shift
  local started=${SECONDS} rc=0
  say "--- ${title}"
  "$@" || rc=$?
  local took=$((SECONDS - started))
  if (( rc == 0 )); then
    E2E_PASSED=$((E2E_PASSED + 1)); E2E_RESULTS+=("PASS  ${title} (${took}s)")
  else
    E2E_FAILED=$((E2E_FAILED + 1)); E2E_RESULTS+=("FAIL  ${title} (${took}s)")
  fi
  return 0
}

summary() {   # prints the table (stderr, after the log lines); returns 1 when a scenario failed
  {
  printf '\n===== %s summary =====\n' "${E2E_NAME:-e2e}"
  printf '%s\n' "${E2E_RESULTS[@]}"
  printf '%d scenarios: %d passed, %d failed\n' "$((E2E_PASSED + E2E_FAILED))" "${E2E_PASSED}" "${E2E_FAILED}"
  } >&2
  (( E2E_FAILED == 0 ))
}

# wait_for SECONDS DESCRIPTION CMD...: polls CMD every 0.2 s until it succeeds.
wait_for() {
  local limit="$1" what="$2"; shift 2
  local end=$((SECONDS + limit))
  while (( SECONDS < end )); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  say "timed out after ${limit}s waiting for ${what}"
  return 1
}

# start_serve LOG CMD...: starts `hybrid-guard serve` in the background (its pid in SERVE_PID),
# waits for its "serving" log line and sets SERVE_ADDR and SERVE_METRICS_ADDR (host:port).
start_serve() {
  local log="$1"; shift
  "$@" >"${log}" 2>&1 &
  SERVE_PID=$!
  local end=$((SECONDS + 20)) line=""
  while (( SECONDS < end )); do
    line="$(grep -m1 '"msg":"serving"' "${log}" 2>/dev/null || true)"
    [[ -n "${line}" ]] && break
    kill -0 "${SERVE_PID}" 2>/dev/null || { say "serve exited:"; cat "${log}" >&2; return 1; }
    sleep 0.1
  done
  [[ -n "${line}" ]] || { say "serve printed no \"serving\" line:"; cat "${log}" >&2; return 1; }
  SERVE_ADDR="$(sed -n 's/.*"listen":"\([^"]*\)".*/\1/p' <<<"${line}")"
  SERVE_METRICS_ADDR="$(sed -n 's/.*"metrics_listen":"\([^"]*\)".*/\1/p' <<<"${line}")"
  [[ -n "${SERVE_ADDR}" && -n "${SERVE_METRICS_ADDR}" ]] || { say "cannot read the addresses from: ${line}"; return 1; }
}

# stop_serve: SIGTERM, and the exit status it ended with in SERVE_RC (DESIGN §6: exit 0).
stop_serve() {
  SERVE_RC=""
  [[ -n "${SERVE_PID:-}" ]] || return 0
  if kill -0 "${SERVE_PID}" 2>/dev/null; then
    kill -TERM "${SERVE_PID}" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do kill -0 "${SERVE_PID}" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "${SERVE_PID}" 2>/dev/null; then
      say "serve (pid ${SERVE_PID}) ignored SIGTERM for 10s; killing it"
      kill -KILL "${SERVE_PID}" 2>/dev/null || true
    fi
  fi
  SERVE_RC=0
  wait "${SERVE_PID}" 2>/dev/null || SERVE_RC=$?
  SERVE_PID=""
}
