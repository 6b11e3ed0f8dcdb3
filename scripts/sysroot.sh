#!/usr/bin/env bash
# Makes (once, then cached) a Debian bullseye root file system to link the agent against, so the
# binary needs no glibc symbol newer than bullseye's 2.31 and runs on Ubuntu 20.04 CUDA images.
# Usage: scripts/sysroot.sh [DIR]   (default artifacts/sysroot-bullseye); prints DIR.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sysroot="${1:-$root/artifacts/sysroot-bullseye}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# debootstrap mounts proc (and more) inside its target while it works, and leaves them mounted when
# it fails: nothing may stay mounted there, or a later copy or rm of the checkout walks into /proc.
unmount_inside() {
  local mounts
  mounts="$(awk -v root="$sysroot/" 'index($2, root) == 1 { print $2 }' /proc/self/mounts | sort -r)"
  [ -z "$mounts" ] || xargs -r -n 1 umount -l <<<"$mounts"
}

if [ ! -f "$sysroot/.complete" ]; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  unmount_inside
  rm -rf "$sysroot"
  mkdir -p "$(dirname "$sysroot")" # a fresh clone has no artifacts/ yet
  trap unmount_inside EXIT
  echo "sysroot.sh: debootstrap bullseye into $sysroot (about 30 s, once)" >&2
  debootstrap --variant=minbase --include=libc6-dev,libgcc-10-dev,zlib1g-dev bullseye "$sysroot" "$mirror" >"$sysroot.log" 2>&1 \
    || { echo "sysroot.sh: debootstrap failed; see $sysroot.log" >&2; exit 1; }
  # lld resolves the sysroot's absolute library symlinks against the host: make them relative.
  while IFS= read -r link; do
    target="$(readlink "$link")"
    ln -sfn "$(realpath --relative-to="$(dirname "$link")" "$sysroot$target")" "$link"
  done < <(find "$sysroot/usr/lib" "$sysroot/usr/lib64" "$sysroot/lib64" -type l -lname '/*' 2>/dev/null)
  touch "$sysroot/.complete"
fi
echo "$sysroot"
