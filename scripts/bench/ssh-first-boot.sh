#!/usr/bin/env bash
# One first boot of a pod that is given a public key, as the SSH step meets it: a fresh workspace
# (no host keys yet), a fresh container (its own /run, network and mount namespace, marked as a
# container the way podman marks one), then the container is gone (its sshd with it).
# Usage: scripts/bench/ssh-first-boot.sh AGENT SSH_MODE REPORTS
#   AGENT    the packet-agent binary
#   SSH_MODE auto (the step runs: the pod has a key) or off (the same boot without the step)
#   REPORTS  a file that gets the boot's ssh step duration in seconds, one line per run
# Needs root (namespaces, mounts) and openssh-server.
set -euo pipefail

agent="$1" mode="$2" reports="$3"
work="$(mktemp -d "${TMPDIR:-/tmp}/packet-ssh-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/workspace" "$work/home"
cp /etc/skel/.bashrc /etc/skel/.profile "$work/home/"
ssh-keygen -q -t ed25519 -N '' -C bench -f "$work/client"
# Root's home is the persisted one, as when the live home is linked to it (passwd bound over the machine's).
sed "s#^root:\([^:]*\):0:0:\([^:]*\):[^:]*:#root:\1:0:0:\2:$work/workspace/home:#" /etc/passwd >"$work/passwd"

# shellcheck disable=SC2016 # expanded by the inner shell
PUBLIC_KEY="$(cat "$work/client.pub")" PACKET_SSH="$mode" unshare --mount --net --propagation private sh -c '
  mount -t tmpfs tmpfs /run && touch /run/.containerenv && mount --bind "$2/passwd" /etc/passwd
  "$1" boot --workspace "$2/workspace" --home "$2/home" --gpu off --link-home off 2>/dev/null
  status=$?
  if [ -f /run/packet-agent/sshd.pid ]; then kill "$(cat /run/packet-agent/sshd.pid)"; fi
  exit $status' sh "$agent" "$work"
grep -o '"name":"ssh","outcome":"[a-z]*","duration_seconds":[0-9.e-]*' "$work/workspace/.packet/last-boot.json" \
  | sed 's/.*"duration_seconds"://' >>"$reports"
