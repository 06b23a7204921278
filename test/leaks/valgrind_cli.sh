#!/usr/bin/env bash
# Valgrind memcheck on the CLI over the test corpus: `eval -o json` of every fixture case
# (test/fixtures/cases/*: its policy, state, flags and input), `eval` of all fixture inputs at once
# (text output), of Istio's own manifests (../shared/corpus) and of examples/, and `lint` of every
# fixture policy. Fails on any memory error or any leak (definite, indirect or possible); "still
# reachable" memory is not a leak.
# test/leaks/re2.supp silences RE2's uninitialised-by-design reads inside libre2, nothing else.
# Usage: test/leaks/valgrind_cli.sh [path/to/hybrid-guard]   (default build/cli/hybrid-guard)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/cli/hybrid-guard}
command -v valgrind >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
runs=0 failed=0
check() {  # name, then the hybrid-guard arguments
  local name=$1
  shift
  runs=$((runs + 1))
  local status=0
  valgrind --quiet --suppressions=test/leaks/re2.supp --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
    --log-file="$work/vg.log" "$bin" "$@" > /dev/null 2>&1 || status=$?
  if [ "$status" -eq 99 ] || [ -s "$work/vg.log" ]; then
    failed=$((failed + 1))
    echo "FAIL $name (exit $status):"
    head -40 "$work/vg.log"
  fi
}
for dir in test/fixtures/cases/*/; do
  name=$(basename "$dir")
  args=()  # as the fixture runner passes them: policy, state, extra flags, input
  [ -e "$dir/policy.yaml" ] && args+=(--policy "$dir/policy.yaml")
  [ -e "$dir/state.yaml" ] && args+=(--state "$dir/state.yaml")
  [ -e "$dir/args" ] && mapfile -t -O "${#args[@]}" args < <(grep -v '^$' "$dir/args")
  check "eval $name" eval "${args[@]}" -o json "$dir/input.yaml"
done
check "eval (text output)" eval --policy examples/policy.yaml test/fixtures/cases/*/input.yaml
check "lint every fixture policy" lint test/fixtures/cases/*/policy.yaml
shared=../shared/corpus
[ -d "$shared" ] && check "eval shared corpus" eval --policy examples/policy.yaml -o json "$shared"
check "eval examples" eval --policy examples/policy.yaml examples/httpbin examples/denied
check "lint examples/policy.yaml" lint examples/policy.yaml
check "version" version
echo "valgrind memcheck: $runs runs of $bin, $failed with errors or leaks"
[ "$failed" -eq 0 ]
