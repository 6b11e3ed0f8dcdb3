#!/usr/bin/env bash
# Publishes the NativeAOT agent into OUTDIR (default artifacts/bin):
#   OUTDIR/packet-agent            the program
#   OUTDIR/libMonoPosixHelper.so   Mono.Posix's native helper; it must sit beside the program
# By default the binary is linked against a Debian bullseye sysroot (scripts/sysroot.sh) with
# clang and lld, so it needs glibc 2.31 at most and runs on Ubuntu 20.04 CUDA images and newer.
# --host links against this machine's glibc instead (no sysroot; runs where that glibc or newer is).
# On a fresh Debian machine, run as root, missing tools are installed with apt-get.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
portable=1
if [ "${1:-}" = "--host" ]; then
  portable=0
  shift
fi
out="${1:-$root/artifacts/bin}"

missing=()
command -v objdump >/dev/null 2>&1 || missing+=(binutils)
if ((portable)); then
  command -v clang >/dev/null 2>&1 || missing+=(clang)
  command -v ld.lld >/dev/null 2>&1 || missing+=(lld)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
else
  command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
fi
if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "build.sh: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "build.sh: needs ${missing[*]}; install them (as root: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

link=()
if ((portable)); then
  sysroot="$("$root/scripts/sysroot.sh")"
  link=(-p:SysRoot="$sysroot" -p:LinkerFlavor=lld)
fi

staging="$root/artifacts/publish"
rm -rf "$staging"
dotnet publish "$root/src/Packet.Agent/Packet.Agent.csproj" \
  --nologo -v quiet -c Release -r linux-x64 -o "$staging" "${link[@]}"

mkdir -p "$out"
rm -f "$out/packet-agent" "$out/libMonoPosixHelper.so"
install -m 0755 "$staging/packet-agent" "$out/packet-agent"
install -m 0755 "$staging/libMonoPosixHelper.so" "$out/libMonoPosixHelper.so"
newest="$(objdump -T "$out/packet-agent" | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -1)"
echo "build.sh: published $out/packet-agent ($("$out/packet-agent" --version); needs $newest at most)"
