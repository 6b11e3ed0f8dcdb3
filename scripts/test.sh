#!/usr/bin/env bash
# Runs every test: unit, integration (real file systems in temp dirs) and end-to-end (the
# freshly published NativeAOT binary as a child process). Exits non-zero on any failure.
# The last line sums every project: "N passed, N failed, N skipped" (a tripped tripwire counts as
# one failure, named above that line).
# Root-only tests skip elsewhere; with PACKET_TEST_REQUIRE_ROOT=1 (CI) they must run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
results="$root/artifacts/test-results"
bin="$root/artifacts/test-bin"
rm -rf "$results"
mkdir -p "$results"

# What no test may change (the real home, the top of /, a real /workspace), fingerprinted before
# and compared after: a test that reaches past its temporary directories fails the run.
fingerprint="$(mktemp)"
trap 'rm -f "$fingerprint"' EXIT
"$root/scripts/tripwire.sh" record "$fingerprint"

"$root/scripts/build.sh" "$bin"
export PACKET_AGENT_BIN="$bin/packet-agent"
# Validators for the Kubernetes manifests and the Dockerfile (versions pinned in package-lock.json).
npm ci --prefix "$root/tests/tools" --no-audit --no-fund --loglevel=error >/dev/null

dotnet build "$root/Packet.Agent.sln" --nologo -v quiet -c Release

status=0
projects=("$root"/tests/*Tests/*.csproj)
for project in "${projects[@]}"; do
  name="$(basename "$project" .csproj)"
  echo "== $name"
  # A hung test fails after 5 minutes of silence instead of hanging CI.
  if ! dotnet test "$project" --nologo --no-build -c Release \
      --logger "trx;LogFileName=$name.trx" --logger "console;verbosity=minimal" \
      --results-directory "$results" --blame-hang-timeout 5m; then
    status=1
  fi
  if [ ! -f "$results/$name.trx" ]; then
    echo "test.sh: $name produced no results (its test host crashed?)" >&2
    status=1
  fi
done

passed=0 failed=0 skipped=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters="$(grep -o '<Counters [^>]*' "$trx")"
  count() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
  passed=$((passed + $(count passed)))
  failed=$((failed + $(count failed) + $(count error) + $(count timeout) + $(count aborted)))
  skipped=$((skipped + $(count notExecuted)))
done

if ! "$root/scripts/tripwire.sh" verify "$fingerprint"; then
  failed=$((failed + 1))
fi

((failed == 0)) || status=1
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
