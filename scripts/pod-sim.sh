#!/usr/bin/env bash
# A pod simulator: runs the image the Dockerfile describes the way Kubernetes runs a container,
# with Linux namespaces instead of a container engine (none is needed, root is).
#   - the image: a Debian bullseye root file system (debootstrap minbase, cached) with tini and
#     the agent installed where the Dockerfile puts them (/opt/packet-agent, /usr/local/bin);
#   - each container start gets a fresh overlayfs upper layer: the ephemeral layer a restart loses;
#   - the persistent volume is a host directory bind-mounted at /workspace;
#   - mount and PID namespaces: the ENTRYPOINT is PID 1, /proc shows the pod's processes only;
#   - /dev/termination-log is a host file, as the kubelet provides it.
#
# Usage (as root):
#   pod-sim.sh image                         build (once) and refresh the image's agent
#   pod-sim.sh run NAME [options] [-- ARGS]  start a container; ARGS replace the image's CMD
#       --volume DIR        mount DIR at /workspace (the PVC)
#       --home-subpath      also mount DIR/home at /root (subPath: home)
#       --command CMD...    replace the ENTRYPOINT (Kubernetes `command`), up to --
#       --env NAME=VALUE    add to the container's environment (repeatable)
#       --detach            run in the background; logs in $STATE/NAME.log
#     Prints the exit code in the foreground; the termination message is in $STATE/NAME.termination-log.
#   pod-sim.sh exec NAME -- CMD...           run CMD inside the running container, like kubectl exec
#   pod-sim.sh stop NAME                     SIGTERM to PID 1 (SIGKILL after 10 s), then tear down
# STATE is artifacts/pod-sim (POD_SIM_STATE overrides it); the agent comes from artifacts/bin
# (PACKET_AGENT_DIR overrides it).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${POD_SIM_STATE:-$root/artifacts/pod-sim}"
image="$state/image"
agent_dir="${PACKET_AGENT_DIR:-$root/artifacts/bin}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
entrypoint=(/usr/bin/tini -- packet-agent boot --)
default_cmd=(sleep infinity)

die() { echo "pod-sim: $*" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || die "needs root (namespaces, mounts, chroot)"

build_image() {
  if [ ! -f "$image/.complete" ]; then
    command -v debootstrap >/dev/null 2>&1 || {
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    }
    rm -rf "$image"
    mkdir -p "$state"
    echo "pod-sim: building the image root file system (debootstrap, about a minute, once)" >&2
    debootstrap --variant=minbase --include=tini,procps bullseye "$image" "$mirror" >"$state/debootstrap.log" 2>&1 \
      || die "debootstrap failed; see $state/debootstrap.log"
    # What an image's own home holds: proof, after seeding, that the image's files came along.
    echo "from the image" >"$image/root/.image-marker"
    touch "$image/.complete"
  fi
  [ -x "$agent_dir/packet-agent" ] || die "no agent in $agent_dir: run scripts/build.sh"
  mkdir -p "$image/opt/packet-agent"
  install -m 0755 "$agent_dir/packet-agent" "$agent_dir/libMonoPosixHelper.so" "$image/opt/packet-agent/"
  ln -sfn /opt/packet-agent/packet-agent "$image/usr/local/bin/packet-agent"
}

# The first process in the container's PID namespace (tini, usually), seen from the host.
pid1() {
  local unshare_pid
  unshare_pid="$(cat "$state/$1.pid" 2>/dev/null)" || die "no container $1"
  pgrep -P "$unshare_pid" | head -1
}

run() {
  local name="$1"
  shift
  local volume="" home_subpath=0 detach=0 command=() args=() env=()
  while (($#)); do
    case "$1" in
      --volume) volume="$(realpath "$2")"; shift 2 ;;
      --home-subpath) home_subpath=1; shift ;;
      --detach) detach=1; shift ;;
      --env) env+=("$2"); shift 2 ;;
      --command)
        shift
        while (($#)) && [ "$1" != "--" ]; do command+=("$1"); shift; done
        ;;
      --) shift; args=("$@"); break ;;
      *) die "unknown option $1" ;;
    esac
  done
  ((${#command[@]})) || command=("${entrypoint[@]}")
  ((${#args[@]})) || { [ "${command[*]}" = "${entrypoint[*]}" ] && args=("${default_cmd[@]}"); }

  build_image
  local dir="$state/containers/$name"
  teardown "$name" 2>/dev/null || true
  rm -rf "$dir"
  mkdir -p "$dir/upper" "$dir/work" "$dir/merged"
  : >"$state/$name.termination-log"
  mount -t overlay overlay -o "lowerdir=$image,upperdir=$dir/upper,workdir=$dir/work" "$dir/merged"

  # Runs as PID 1 of the new PID namespace, in a private mount namespace, then becomes the entry point.
  # shellcheck disable=SC2016 # expanded by the inner bash, from its environment
  local setup='
    set -e
    m="$POD_MERGED"
    mount -t proc proc "$m/proc"
    mount -t tmpfs -o mode=0755 tmpfs "$m/dev"
    for n in null zero full random urandom tty; do touch "$m/dev/$n"; mount --bind "/dev/$n" "$m/dev/$n"; done
    mkdir -p "$m/dev/pts" "$m/dev/shm"
    ln -s /proc/self/fd "$m/dev/fd"
    touch "$m/dev/termination-log"
    mount --bind "$POD_TERMINATION_LOG" "$m/dev/termination-log"
    if [ -n "$POD_VOLUME" ]; then
      mkdir -p "$m/workspace"
      mount --bind "$POD_VOLUME" "$m/workspace"
      if [ "$POD_HOME_SUBPATH" = 1 ]; then
        mkdir -p "$POD_VOLUME/home"
        mount --bind "$POD_VOLUME/home" "$m/root"
      fi
    fi
    exec chroot "$m" /usr/bin/env -i "$@"
  '
  local environment=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root HOSTNAME="$name"
    KUBERNETES_SERVICE_HOST=10.96.0.1 PACKET_IMAGE_VERSION=pod-sim "${env[@]}")
  local launch=(unshare --mount --pid --fork --propagation private
    env POD_MERGED="$dir/merged" POD_VOLUME="$volume" POD_HOME_SUBPATH="$home_subpath" POD_TERMINATION_LOG="$state/$name.termination-log"
    bash -c "$setup" pod-setup "${environment[@]}" "${command[@]}" "${args[@]}")

  if ((detach)); then
    "${launch[@]}" >"$state/$name.log" 2>&1 &
    echo $! >"$state/$name.pid"
    for _ in $(seq 1 100); do
      [ -n "$(pid1 "$name")" ] && break
      sleep 0.05
    done
  else
    local code=0
    "${launch[@]}" || code=$?
    teardown "$name"
    return "$code"
  fi
}

exec_in() {
  local name="$1"
  shift
  [ "${1:-}" = "--" ] && shift
  local target
  target="$(pid1 "$name")"
  [ -n "$target" ] || die "container $name is not running"
  # kubectl exec: the container's own environment, its root, its namespaces; not the entry point's.
  local environment=()
  mapfile -d '' environment <"/proc/$target/environ"
  nsenter --target "$target" --mount --pid --root --wd -- /usr/bin/env -i "${environment[@]}" "$@"
}

teardown() {
  local name="$1" dir="$state/containers/$1"
  rm -f "$state/$name.pid"
  if mountpoint -q "$dir/merged" 2>/dev/null; then
    umount -l "$dir/merged"
  fi
  rm -rf "$dir"
}

stop() {
  local name="$1" unshare_pid target
  unshare_pid="$(cat "$state/$name.pid" 2>/dev/null)" || die "no container $name"
  target="$(pid1 "$name")"
  if [ -n "$target" ]; then
    kill -TERM "$target" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$unshare_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$target" 2>/dev/null || true
  fi
  wait "$unshare_pid" 2>/dev/null || true
  teardown "$name"
}

case "${1:-}" in
  image) build_image ;;
  run) shift; [ $# -ge 1 ] || die "run needs a NAME"; run "$@" ;;
  exec) shift; [ $# -ge 2 ] || die "exec needs a NAME and a command"; exec_in "$@" ;;
  stop) shift; [ $# -ge 1 ] || die "stop needs a NAME"; stop "$1" ;;
  *) sed -n '2,27p' "$0" >&2; exit 2 ;;
esac
