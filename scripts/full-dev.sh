#!/usr/bin/env bash
# The Full Dev Environment for real (container/examples/full-dev): builds its image on podman the
# way the engine tests do (a bullseye base from artifacts/, packet-cuda with this agent, the
# example on top), copies its hooks into a fresh volume, and boots it twice on that volume:
# - first boot: code-server installed into the volume from the npm registry, JupyterLab tried
#   (PyPI is not reachable here: the image's Jupyter Notebook serves), both servers answer;
# - the first container stops within seconds (the servers keep nothing alive);
# - second boot: no first-boot hook runs, nothing is installed, both servers answer again, a
#   code-server killed by hand is back by itself, and headless Chromium logs in to each: Jupyter's
#   file list shows the persisted home, code-server shows a file of that home open.
# Screenshots, both boots' logs and the hooks' times: artifacts/full-dev/ (FULL_DEV_OUT names another folder).
#
# Usage: scripts/full-dev.sh [--fast]
#   --fast  code-server's registry is a closed port (NPM_CONFIG_REGISTRY): its install fails at
#           once, the boot goes on with one warning, and only Jupyter is checked (the CI variant).
# Needs root, podman with runc, Debian's chromium, node; runs scripts/build.sh when artifacts/
# lacks the agent or the bullseye root file system. PACKET_AGENT_BIN names another agent binary.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fast=0
case "${1:-}" in
  --fast) fast=1 ;;
  "") ;;
  *) echo "usage: scripts/full-dev.sh [--fast]" >&2; exit 2 ;;
esac
out="${FULL_DEV_OUT:-$root/artifacts/full-dev}"
sysroot="$root/artifacts/sysroot-bullseye"
agent="${PACKET_AGENT_BIN:-$root/artifacts/bin/packet-agent}"

say() { printf '%s full-dev: %s\n' "$(date -u +%H:%M:%S)" "$*"; }
fail() { say "FAILED: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (rootful podman)"
if [ ! -x "$agent" ] || [ ! -e "$sysroot/.complete" ]; then "$root/scripts/build.sh"; fi
[ -d "$root/tests/tools/node_modules/playwright-core" ] ||
  npm ci --prefix "$root/tests/tools" --no-audit --no-fund --loglevel=error >/dev/null

# A private engine: its images, containers and state live in a temporary folder (as in the tests).
work="$(mktemp -d /tmp/packet-full-dev.XXXXXX)"
export CONTAINERS_CONF="$root/tests/tools/containers.conf"
engine() { podman --root "$work/storage" --runroot "$work/run" --storage-driver overlay "$@"; }
cleanup() {
  engine rm --all --force --time 0 >/dev/null 2>&1 || true
  engine rmi --all --force >/dev/null 2>&1 || true
  # The storage's own overlay mounts go before the folder does.
  awk -v dir="$work/" 'index($5, dir) == 1 { print $5 }' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' INT TERM
mkdir -p "$out"
rm -f "$out/first.log" "$out/second.log" "$out/second-again.log" "$out/hook-times.txt" "$out/jupyter.png" "$out/code-server.png"

say "building the images (bullseye base, packet-cuda, full-dev)"
started=$(date +%s)
tar -C "$sysroot" -c . | engine import - localhost/packet-test-base >/dev/null
mkdir -p "$work/context/out"
cp "$agent" "$(dirname "$agent")/libMonoPosixHelper.so" "$work/context/out/"
engine build --quiet --network host --file "$root/container/Dockerfile" --build-context "build=$work/context" \
  --build-arg CUDA_IMAGE=localhost/packet-test-base --build-arg IMAGE_VERSION=test --tag localhost/packet-cuda:test "$root" >/dev/null
engine build --quiet --network host --build-arg BASE_IMAGE=localhost/packet-cuda:test --tag localhost/packet-full-dev:test \
  "$root/container/examples/full-dev" >/dev/null
say "images built in $(($(date +%s) - started)) s"

# The volume, with the hooks the image carries copied in as the README says.
volume="$work/workspace"
mkdir -p "$volume/.packet"
engine run --rm --network none --volume "$volume:/workspace" --entrypoint cp localhost/packet-full-dev:test \
  -a /opt/full-dev/first-boot.d /opt/full-dev/boot.d /workspace/.packet/

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
code_port=$(free_port)
jupyter_port=$(free_port)
environment=(--env PACKET_GPU=off)
((fast == 0)) || environment+=(--env NPM_CONFIG_REGISTRY=http://127.0.0.1:9)
# The host's CA bundle goes in read-only, named by the variables curl, Node and pip read: where this
# machine reaches the registries through a TLS-inspecting proxy, the container trusts what it trusts
# (a pod on the internet needs none of this: the image's ca-certificates serve).
ca_bundle="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
if [ -f "$ca_bundle" ]; then
  environment+=(--volume "$ca_bundle:/etc/packet-test/ca.crt:ro" --env CURL_CA_BUNDLE=/etc/packet-test/ca.crt
    --env NODE_EXTRA_CA_CERTS=/etc/packet-test/ca.crt --env PIP_CERT=/etc/packet-test/ca.crt)
fi

# boot NAME: a container on the volume; returns once the agent has finished its boot (and exec'd
# the command), with its log in artifacts/full-dev/NAME.log.
boot() {
  engine run --detach --name "$1" --network bridge "${environment[@]}" --volume "$volume:/workspace" \
    --publish "127.0.0.1:$code_port:8080" --publish "127.0.0.1:$jupyter_port:8888" localhost/packet-full-dev:test >/dev/null
  local deadline=$(($(date +%s) + 900))
  until engine logs "$1" 2>&1 | grep -q 'boot\[0\] boot finished'; do
    [ "$(engine inspect --format '{{.State.Running}}' "$1")" = true ] || { engine logs "$1" >"$out/$1.log" 2>&1; fail "$1 ended during its boot (log: $out/$1.log)"; }
    (($(date +%s) < deadline)) || fail "$1 did not finish its boot in 15 minutes"
    sleep 1
  done
  engine logs "$1" >"$out/$1.log" 2>&1
  # The agent's own time stamp of its last line: the servers' start is timed from there.
  since_ns=$(date -d "$(grep -m1 'boot\[0\] boot finished' "$out/$1.log" | cut -d' ' -f1)" +%s%N)
}

# answers BOOT SERVER URL SECONDS [SINCE]: waits until the server answers URL with a success, and
# notes in hook-times.txt how long after $since_ns (SINCE says what that was) it first did.
answers() {
  local deadline=$(($(date +%s) + $4))
  until curl --fail --silent --output /dev/null "$3"; do
    (($(date +%s) < deadline)) || return 1
    sleep 0.2
  done
  printf '  %s: %s answered %s ms after %s\n' "$1" "$2" $((($(date +%s%N) - since_ns) / 1000000)) "${5:-the boot finished}" |
    tee -a "$out/hook-times.txt"
}

# hook_times NAME: the hooks that ran in a boot, with the time each took, and the whole boot's time,
# from the agent's log.
hook_times() {
  grep -oE '(first-boot\.d|boot\.d)/[^ ]+ (succeeded|failed|exited)[^"]*|boot finished in [^,]*' "$out/$1.log" | sed "s/^/  $1: /" || true
}

say "first boot"
boot first
hook_times first | tee -a "$out/hook-times.txt"
answers first Jupyter "http://127.0.0.1:$jupyter_port/api" 60 || fail "Jupyter does not answer after the first boot"
if ((fast)); then
  grep -q 'warn: hooks\[6\] first-boot.d/20-install-code-server exited with code 1' "$out/first.log" || fail "the unreachable registry did not make the code-server hook fail"
  grep -q 'code-server is not installed' "$out/first.log" || fail "the start hook did not say code-server is not installed"
  warnings=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["warnings"]))' "$volume/.packet/last-boot.json")
  [ "$warnings" = 1 ] || fail "the first boot had $warnings warnings; one was expected (code-server not installed)"
else
  answers first code-server "http://127.0.0.1:$code_port/healthz" 60 || fail "code-server does not answer after the first boot"
  # What a user leaves in the home and the volume during the first container's life.
  engine exec first sh -c 'printf "# Notes\n\nwritten during the first boot\n" >/root/notes.md'
  mkdir -p "$volume/home/.local/share/code-server/User"
  printf '{ "workbench.colorTheme": "Default Light Modern", "security.workspace.trust.enabled": false, "workbench.startupEditor": "none" }\n' \
    >"$volume/home/.local/share/code-server/User/settings.json"
fi
engine exec first sh -c 'printf "{\"cells\": [], \"metadata\": {}, \"nbformat\": 4, \"nbformat_minor\": 5}\n" >/root/analysis-from-the-first-boot.ipynb'

started=$(date +%s%N)
engine stop --time 30 first >/dev/null
stop_ms=$((($(date +%s%N) - started) / 1000000))
say "the first container stopped in $stop_ms ms"
((stop_ms < 5000)) || fail "stopping took $stop_ms ms: something kept the container alive past SIGTERM"
engine rm first >/dev/null
if ((fast == 0)); then
  leftovers=$(find "$volume/code-server" -mindepth 1 -maxdepth 1 \( -name '*.partial' -o -name .npm-cache \))
  [ -z "$leftovers" ] || fail "the code-server install left $leftovers behind"
fi
# What the hooks installed, as names: the second boot must leave it as it is.
installed() { find "$volume/code-server" "$volume/venv" -maxdepth 2 2>/dev/null | sort | md5sum; }
installed_before=$(installed)

say "second boot"
boot second
hook_times second | tee -a "$out/hook-times.txt"
if grep -q 'first-boot\.d/' "$out/second.log" && ((fast == 0)); then fail "a first-boot hook ran again on the second boot"; fi
[ "$installed_before" = "$(installed)" ] ||
  fail "the second boot changed what is installed on the volume"
answers second Jupyter "http://127.0.0.1:$jupyter_port/api" 60 || fail "Jupyter does not answer after the second boot"
token=$(cat "$volume/home/.jupyter/token")
browse=("$out" jupyter "http://127.0.0.1:$jupyter_port" "$token" analysis-from-the-first-boot.ipynb)
if ((fast == 0)); then
  answers second code-server "http://127.0.0.1:$code_port/healthz" 60 || fail "code-server does not answer after the second boot"
  say "killing code-server: its supervisor starts it again"
  # shellcheck disable=SC2016 # expanded inside the container
  engine exec second sh -c 'kill $(cat /proc/$(cat /workspace/home/.cache/full-dev/code-server.pid)/task/*/children)'
  since_ns=$(date +%s%N)
  sleep 1
  answers second code-server "http://127.0.0.1:$code_port/healthz" 30 "it was killed" || fail "code-server did not come back after it was killed"
  grep -q 'full-dev-supervise-code-server exited' "$volume/home/.cache/code-server.log" || fail "code-server's log does not show the restart"
  browse+=(code-server "http://127.0.0.1:$code_port" "$(cat "$volume/home/.config/code-server/password")" /workspace/home/notes.md "written during the first boot")
fi
# What the README tells users to run in a pod after copying the hooks in: the servers that run are
# left alone.
engine exec second packet-agent boot >"$out/second-again.log" 2>&1 || fail "packet-agent boot run again failed (log: $out/second-again.log)"
grep -q 'boot.d/60-start-jupyter: jupyter runs already' "$out/second-again.log" || fail "boot run again did not leave Jupyter alone"
if ((fast == 0)); then
  grep -q 'boot.d/50-start-code-server: code-server runs already' "$out/second-again.log" || fail "boot run again did not leave code-server alone"
fi
if grep -q 'starting on' "$out/second-again.log"; then fail "boot run again started a server that was running"; fi
say "logging in with headless Chromium"
node "$root/tests/tools/full-dev-browser.mjs" "${browse[@]}" || fail "the browser did not see both servers logged in"
engine stop --time 30 second >/dev/null
say "passed: $( ((fast)) && echo "fast variant: Jupyter only" || echo "code-server and Jupyter" ); screenshots in $out"
