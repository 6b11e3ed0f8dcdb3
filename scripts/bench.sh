#!/usr/bin/env bash
# Measures packet-agent against what it is compared with, on the same tree, in the same run:
#   1. the first-boot seed of a realistic home against cp -a (and cp -a followed by sync -f, which
#      is as durable as the agent's copy) and rsync -aHAX, alternating run by run; medians,
#      per-run ratios, and peak RSS from /usr/bin/time;
#   2. as root, the pod's layout: the home on overlayfs (as a container's image layers give it), the
#      workspace its own loop-mounted ext4 volume; against cp -a and cp -a + sync -f;
#   3. the same seed on each kind of volume users mount (as root: loop-mounted ext4, xfs and btrfs,
#      tmpfs, and FUSE volumes from Debian: bindfs, fusefat, exfat-fuse), against cp -a and
#      cp -a + sync -f on that same volume; on FUSE also against cp -a + an fsync of every entry,
#      the durable one there (syncfs does not reach a FUSE daemon);
#   4. a boot with nothing to do against the bash script it replaces, with hyperfine;
#   5. as root, with openssh-server: the first boot of a pod given a public key (the SSH step makes
#      its host key and starts sshd) against the same boot with --ssh off, and the step's own time
#      from the boot reports (scripts/bench/ssh-first-boot.sh).
# Usage: scripts/bench.sh [RUNS]
#   BENCH_DIR      the file system of part 1 (default /var/tmp)
#   BENCH_TREE     an installed tree to use as the home's small files (default: /usr/lib/python3*);
#                  point it at a big one (a site-packages with 100k files) to measure that end.
#   BENCH_VOLUMES  the volume kinds of part 2 (default "ext4 xfs btrfs tmpfs bindfs vfat exfat"; empty: skip)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-5}"
volumes="${BENCH_VOLUMES-ext4 xfs btrfs tmpfs bindfs vfat exfat}"
[ "$(id -u)" -eq 0 ] || volumes=""

missing=()
command -v hyperfine >/dev/null 2>&1 || missing+=(hyperfine)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
[ -x /usr/bin/time ] || missing+=(time)
if [ -n "$volumes" ]; then
  command -v mkfs.xfs >/dev/null 2>&1 || missing+=(xfsprogs)
  command -v mkfs.btrfs >/dev/null 2>&1 || missing+=(btrfs-progs)
  command -v bindfs >/dev/null 2>&1 || missing+=(bindfs)
  command -v fusefat >/dev/null 2>&1 || missing+=(fusefat)
  command -v mkfs.vfat >/dev/null 2>&1 || missing+=(dosfstools)
  command -v mount.exfat-fuse >/dev/null 2>&1 || missing+=(exfat-fuse)
  command -v mkfs.exfat >/dev/null 2>&1 || missing+=(exfatprogs)
fi
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
# Measures the copy and the boot, never an sshd (the SSH step's own cost is part 5).
export PACKET_SSH=off
work="$(mktemp -d "${BENCH_DIR:-/var/tmp}/packet-bench.XXXXXX")"
mounted=()
loops=()
cleanup() {
  for mount in "${mounted[@]}"; do
    fusermount -u "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || true
  done
  for loop in "${loops[@]}"; do
    losetup -d "$loop" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
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

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# measure SOURCE TARGET RUNS TOOL...: each tool copies SOURCE into TARGET/out, alternating run by
# run; appends "tool run seconds kilobytes" lines to $work/results.
measure() {
  local source="$1" target="$2" count="$3"
  shift 3
  # shellcheck disable=SC2016 # $1 and $2 belong to the inner shell
  local sync_copy='cp -a "$1/." "$2/" && sync -f "$2"'
  # shellcheck disable=SC2016
  local fsync_copy='cp -a "$1/." "$2/" && find "$2" -exec sync {} +'
  : >"$work/results"
  for ((run = 1; run <= count; run++)); do
    for tool in "$@"; do
      rm -rf "$target/out"
      mkdir -p "$target/out/home"
      sync
      case "$tool" in
        agent) rmdir "$target/out/home"; command=("$agent" boot --workspace "$target/out" --home "$source" --gpu off --link-home off) ;;
        cp-a) command=(cp -a "$source/." "$target/out/home/") ;;
        cp-a+sync) command=(sh -c "$sync_copy" sh "$source" "$target/out/home") ;;
        cp-a+fsync) command=(sh -c "$fsync_copy" sh "$source" "$target/out/home") ;;
        rsync) command=(rsync -aHAX "$source/" "$target/out/home/") ;;
      esac
      # cp -a complains about what a lossy volume refuses; its exit status is not the measure.
      /usr/bin/time -f "%e %M" -o "$work/time" "${command[@]}" >/dev/null 2>"$work/log" || true
      read -r seconds kilobytes < <(tail -1 "$work/time")
      echo "$tool $run $seconds $kilobytes" >>"$work/results"
    done
  done
  rm -rf "$target/out"
}

# report TOOL...: medians, peak RSS, and the agent's median per-run ratio against each other tool.
report() {
  for tool in "$@"; do
    seconds=$(awk -v t="$tool" '$1 == t { print $3 }' "$work/results" | median)
    peak=$(awk -v t="$tool" '$1 == t { print $4 }' "$work/results" | sort -g | tail -1)
    printf '  %-10s median %7.2f s   peak RSS %6.1f MiB\n' "$tool" "$seconds" "$(echo "$peak" | awk '{ print $1 / 1024 }')"
  done
  for reference in "$@"; do
    [ "$reference" = agent ] && continue
    ratio=$(awk -v r="$reference" '$1 == "agent" { a[$2] = $3 } $1 == r { b[$2] = $3 } END { for (k in a) if (b[k] > 0) print a[k] / b[k] }' "$work/results" | median)
    printf '  agent / %-10s median of per-run ratios %.2f\n' "$reference" "$ratio"
  done
}

measure "$home" "$work" "$runs" agent cp-a cp-a+sync rsync
echo
echo "seed, $runs runs each, alternating (wall seconds; peak RSS):"
report agent cp-a cp-a+sync rsync

# mount_volume KIND DIR: a fresh volume of that kind at DIR (1 GiB; images are sparse).
mount_volume() {
  local kind="$1" dir="$2" image="$2.img"
  mkdir -p "$dir"
  case "$kind" in
    tmpfs) mount -t tmpfs -o size=1g tmpfs "$dir" ;;
    bindfs) mkdir -p "$dir.backing" && bindfs "$dir.backing" "$dir" ;;
    vfat) truncate -s 1G "$image" && mkfs.vfat "$image" >/dev/null && fusefat -o rw+ "$image" "$dir" >/dev/null 2>&1 ;;
    exfat)
      truncate -s 1G "$image" && mkfs.exfat "$image" >/dev/null
      loops+=("$(losetup --find --show "$image")")
      mount.exfat-fuse "${loops[-1]}" "$dir" >/dev/null 2>&1
      ;;
    *) truncate -s 1G "$image" && "mkfs.$kind" -q "$image" >/dev/null && mount -o loop "$image" "$dir" ;;
  esac
  mounted+=("$dir")
}

if [ "$(id -u)" -eq 0 ]; then
  # The pod: image layers under overlayfs for the home, a volume of its own for the workspace.
  pod="$work/pod"
  mkdir -p "$pod/lower" "$pod/upper" "$pod/work" "$pod/home"
  cp -a "$home/." "$pod/lower/"
  mount -t overlay overlay -o "lowerdir=$pod/lower,upperdir=$pod/upper,workdir=$pod/work" "$pod/home"
  mounted+=("$pod/home")
  mount_volume ext4 "$pod/workspace"
  measure "$pod/home" "$pod/workspace" "$runs" agent cp-a cp-a+sync
  echo
  echo "seed in the pod layout (home on overlayfs, workspace on ext4 of its own), $runs runs each, alternating:"
  report agent cp-a cp-a+sync
fi

if [ -n "$volumes" ]; then
  # One home for every volume row, so the rows compare with each other: 2,000 of the small files
  # and one model. FAT-like volumes would hold the sparse image whole, and fusefat takes some
  # 10 ms a file, so the whole tree there would measure little but the wait.
  volume_home="$work/volume-home"
  mkdir -p "$volume_home/.cache/huggingface"
  (cd "$home" && find .local -type f | awk 'NR <= 2000' | tar -cf - --files-from=- | tar -xf - -C "$volume_home")
  cp -a "$home/.cache/huggingface/model-1.safetensors" "$volume_home/.cache/huggingface/"
  volume_runs=$(((runs + 1) / 2))
  echo
  echo "seed per volume kind ($(find "$volume_home" | wc -l) entries, $(du -sh "$volume_home" | cut -f1)), $volume_runs runs each, alternating:"
  for kind in $volumes; do
    mount_volume "$kind" "$work/volume-$kind"
    tools=(agent cp-a cp-a+sync)
    case "$kind" in bindfs | vfat | exfat) tools+=(cp-a+fsync) ;; esac
    measure "$volume_home" "$work/volume-$kind" "$volume_runs" "${tools[@]}"
    echo " $kind:"
    report "${tools[@]}"
  done
fi

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

if [ "$(id -u)" -eq 0 ] && [ -x /usr/sbin/sshd ]; then
  echo
  echo "first boot of a pod given a key (hyperfine, medians; each run a fresh workspace and container):"
  hyperfine -N --warmup 2 --runs "$((runs * 4))" --export-json "$work/ssh.json" \
    -n ssh "$root/scripts/bench/ssh-first-boot.sh $agent auto $work/ssh-step" \
    -n no-ssh "$root/scripts/bench/ssh-first-boot.sh $agent off $work/no-ssh-step" >/dev/null
  grep -o '"median": *[0-9.e-]*' "$work/ssh.json" | awk -F': *' '{ m[NR] = $2 * 1000 } END { printf "  boot with the SSH step %.1f ms, without %.1f ms, difference %.1f ms\n", m[1], m[2], m[1] - m[2] }'
  printf '  the SSH step alone (its duration in the boot reports): median %.1f ms\n' "$(median <"$work/ssh-step" | awk '{ print $1 * 1000 }')"
fi
