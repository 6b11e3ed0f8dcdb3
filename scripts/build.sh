#!/usr/bin/env bash
# Publishes the NativeAOT agent into OUTDIR (default artifacts/bin):
#   OUTDIR/packet-agent            the program
#   OUTDIR/libMonoPosixHelper.so   Mono.Posix's native helper; it must sit beside the program
# NativeAOT links with the system C toolchain; on a fresh Debian machine, run as root, the
# missing pieces are installed with apt-get.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/artifacts/bin}"

missing=()
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v objcopy >/dev/null 2>&1 || missing+=(binutils)
if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "build.sh: installing ${missing[*]} (NativeAOT links with them)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "build.sh: NativeAOT needs ${missing[*]}; install them (as root: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

staging="$root/artifacts/publish"
rm -rf "$staging"
dotnet publish "$root/src/Packet.Agent/Packet.Agent.csproj" \
  --nologo -v quiet -c Release -r linux-x64 -o "$staging"

mkdir -p "$out"
rm -f "$out/packet-agent" "$out/libMonoPosixHelper.so"
install -m 0755 "$staging/packet-agent" "$out/packet-agent"
install -m 0755 "$staging/libMonoPosixHelper.so" "$out/libMonoPosixHelper.so"
echo "build.sh: published $out/packet-agent ($("$out/packet-agent" --version))"
