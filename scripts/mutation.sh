#!/usr/bin/env bash
# Mutation testing: dotnet-stryker (the version in .config/dotnet-tools.json) changes src/Packet.Agent
# one small way at a time and reruns the unit and integration tests that cover each change; a
# mutant that no test kills is logic no test holds. The end-to-end tests run the published binary,
# which Stryker cannot mutate. String mutations are left out by the configuration (log and help
# wording); mutants no test can kill are listed in scripts/mutation/equivalent-mutants.md.
#
#   scripts/mutation.sh                     every file in one run (over 2 h 45 min on 2 cores)
#   scripts/mutation.sh --mutate '**/Copy/*.cs' --mutate '**/Posix/*.cs'     with, at once in another clone:
#   scripts/mutation.sh --mutate '!**/Copy/*.cs' --mutate '!**/Posix/*.cs'   every file in 2 h 16 min
#   scripts/mutation.sh --since main        only what changed since main (minutes)
#   scripts/mutation.sh --mutate '**/Ssh/*.cs' [--mutate ...]   only the files these globs match
#
# Reports: artifacts/mutation/<UTC time>/reports/mutation-report.{html,json}, and a score per file
# (scripts/mutation/score.py). Not run by CI: too slow. Run as root, as CI runs the tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

since=""
mutate=()
while (($#)); do
  case "$1" in
    --since) since="${2:?--since needs a git reference}"; shift 2 ;;
    --since=*) since="${1#*=}"; shift ;;
    --mutate) mutate+=(--mutate "${2:?--mutate needs a glob}"); shift 2 ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "mutation.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

cd "$root"
dotnet tool restore >/dev/null
output="$root/artifacts/mutation/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$output"
arguments=(--config-file "$root/scripts/mutation/stryker-config.json" --output "$output" --skip-version-check "${mutate[@]}")
[ -z "$since" ] || arguments+=("--since:$since")

# Root tests run (never skip) where root is, as in CI.
if [ "$(id -u)" = 0 ]; then export PACKET_TEST_REQUIRE_ROOT=1; fi
# Code made wrong on purpose runs as root here: the integration tests' adapter refuses every change
# outside the tests' own trees, and the tripwire checks the machine after the run as test.sh does.
fingerprint="$output/tripwire-before"
"$root/scripts/tripwire.sh" record "$fingerprint"
(cd "$root/src/Packet.Agent" && dotnet dotnet-stryker "${arguments[@]}")
if ! "$root/scripts/tripwire.sh" verify "$fingerprint"; then
  echo "mutation.sh: the run changed the machine (above); the score below counts, the machine needs a look" >&2
fi

report="$output/reports/mutation-report.json"
[ -f "$report" ] || { echo "mutation.sh: no report in $output" >&2; exit 1; }
python3 "$root/scripts/mutation/score.py" "$report"
echo "mutation.sh: reports in $output/reports"
