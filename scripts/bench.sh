#!/usr/bin/env bash
# Measures packet-agent against what it is compared with, on the same tree, in the same run:
#   1. the first-boot seed of a realistic home against cp -a (and cp -a followed by sync, which is
#      as durable as the agent's copy) and rsync -aHAX, alternating run by run; medians, ratios,
#      and peak RSS from /usr/bin/time;
#   2. a boot with nothing to do against the bash script it replaces, with hyperfine.
# Usage: scripts/bench.sh [RUNS]
#   BENCH_DIR   the file system to measure on (default /var/tmp)
#   BENCH_TREE  an installed tree to use as the home's small files (default: /usr/lib/python3*);
#               point it at a big one (a site-packages with 100k files) to measure that end.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-5}"

missing=()
command -v hyperfine >/dev/null 2>&1 || missing+=(hyperfine)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
[ -x /usr/bin/time ] || missing+=(time)
if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "bench.sh: needs ${missing[*]}" >&2
    exit 1
  fi
fi

"$root/scripts/build.sh" >/dev/null
agent="$root/artifacts/bin/packet-agent"
work="$(mktemp -d "${BENCH_DIR:-/var/tmp}/packet-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
home="$work/home"

# A home as GPU images have them: an installed Python tree (thousands of small files), model
# weights (large files) and a sparse disk image.
mkdir -p "$home/.local/lib" "$home/.cache/huggingface"
if [ -n "${BENCH_TREE:-}" ]; then
  trees=("$BENCH_TREE")
else
  trees=(/usr/lib/python3*)
fi
for tree in "${trees[@]}"; do
  [ -d "$tree" ] && cp -a "$tree" "$home/.local/lib/$(basename "$tree")"
done
for i in 1 2 3 4; do
  head -c 64M /dev/urandom >"$home/.cache/huggingface/model-$i.safetensors"
done
truncate -s 1G "$home/disk.img"
dd if=/dev/urandom of="$home/disk.img" bs=1M count=1 seek=100 conv=notrunc status=none
dd if=/dev/urandom of="$home/disk.img" bs=1M count=1 seek=900 conv=notrunc status=none
entries=$(find "$home" | wc -l)
echo "tree: $entries entries, $(du -sh --apparent-size "$home" | cut -f1) apparent, $(du -sh "$home" | cut -f1) on disk, in $work"

tools=(agent cp-a cp-a+sync rsync)
# shellcheck disable=SC2016 # $1 and $2 belong to the inner shell
sync_copy='cp -a "$1/." "$2/" && sync -f "$2"'
results="$work/results"
: >"$results"
for ((run = 1; run <= runs; run++)); do
  for tool in "${tools[@]}"; do
    rm -rf "$work/out"
    mkdir -p "$work/out/home"
    sync
    case "$tool" in
      agent) rmdir "$work/out/home"; command=("$agent" boot --workspace "$work/out" --home "$home" --gpu off) ;;
      cp-a) command=(cp -a "$home/." "$work/out/home/") ;;
      cp-a+sync) command=(sh -c "$sync_copy" sh "$home" "$work/out/home") ;;
      rsync) command=(rsync -aHAX "$home/" "$work/out/home/") ;;
    esac
    /usr/bin/time -f "%e %M" -o "$work/time" "${command[@]}" >/dev/null 2>"$work/log"
    read -r seconds kilobytes <"$work/time"
    echo "$tool $run $seconds $kilobytes" >>"$results"
  done
done
rm -rf "$work/out"

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "seed, $runs runs each, alternating (wall seconds; peak RSS):"
for tool in "${tools[@]}"; do
  seconds=$(awk -v t="$tool" '$1 == t { print $3 }' "$results" | median)
  peak=$(awk -v t="$tool" '$1 == t { print $4 }' "$results" | sort -g | tail -1)
  printf '  %-10s median %6.2f s   peak RSS %6.1f MiB\n' "$tool" "$seconds" "$(echo "$peak" | awk '{ print $1 / 1024 }')"
done
for reference in cp-a cp-a+sync rsync; do
  ratio=$(awk -v r="$reference" '$1 == "agent" { a[$2] = $3 } $1 == r { b[$2] = $3 } END { for (k in a) if (b[k] > 0) print a[k] / b[k] }' "$results" | median)
  printf '  agent / %-10s median of per-run ratios %.2f\n' "$reference" "$ratio"
done

# A boot with nothing to do: marker and block present, GPU check off.
noop="$work/noop"
mkdir -p "$noop/agent" "$noop/legacy" "$noop/home"
echo 'alias ll="ls -l"' >"$noop/home/.bashrc"
"$agent" boot --workspace "$noop/agent" --home "$noop/home" --gpu off 2>/dev/null
WORKSPACE="$noop/legacy" HOME="$noop/home" "$root/scripts/bench/legacy-persist.sh"
echo
echo "no-op boot (hyperfine, medians):"
# Both run directly (no env(1) in front of either): the script reads WORKSPACE and HOME from
# hyperfine's own environment, the agent its flags.
WORKSPACE="$noop/legacy" HOME="$noop/home" hyperfine -N --warmup 20 --runs 300 --export-json "$work/noop.json" \
  -n agent "$agent boot --workspace $noop/agent --home $noop/home --gpu off" \
  -n bash-script "$root/scripts/bench/legacy-persist.sh" >/dev/null
grep -o '"median": *[0-9.e-]*' "$work/noop.json" | awk -F': *' '{ m[NR] = $2 * 1000 } END { printf "  agent %.2f ms, bash script %.2f ms, ratio %.2f\n", m[1], m[2], m[1] / m[2] }'
