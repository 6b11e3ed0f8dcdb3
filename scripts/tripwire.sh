#!/usr/bin/env bash
# The test run's tripwire: fingerprints what no test may change, before the run and after it.
#   scripts/tripwire.sh record FILE   write the fingerprint to FILE
#   scripts/tripwire.sh verify FILE   compare with FILE; name each change and exit 1 if any
# What it fingerprints: $HOME and /root (type, device, inode, link target), every entry at the top
# of / (the same, per name), and /workspace to depth 2 when it exists (files also by size and
# modification time), and the entries inside $HOME and /root (type, inode), of which only a removed
# or replaced one counts (tools may add their own caches there). A home moved aside and replaced by
# a link, a home emptied, a new top-level entry, or a file written in a real workspace all show. TRIPWIRE_ROOT prefixes /, /root and /workspace, so the
# tripwire's own test can fire it on a scratch copy instead of the machine.
set -euo pipefail

top="${TRIPWIRE_ROOT:-}"

identity() {
  local path="$1"
  if [ -e "$path" ] || [ -L "$path" ]; then
    printf '%s: %s\n' "$2" "$(stat -c '%F, device %d, inode %i' -- "$path")$(if [ -L "$path" ]; then printf ' -> %s' "$(readlink -- "$path")"; fi)"
  else
    printf '%s: absent\n' "$2"
  fi
}

# Entries inside the homes, each on a line that starts with "home entry".
home_entries() {
  local home
  for home in "$HOME" "$top/root"; do
    [ -d "$home" ] || continue
    find "$home" -mindepth 1 -maxdepth 1 -printf 'home entry %p: %y, inode %i\n'
  done | sort -u
}

fingerprint() {
  identity "$HOME" "\$HOME ($HOME)"
  identity "$top/root" /root
  find "$top/" -mindepth 1 -maxdepth 1 \( -type l -printf '/%P: l, inode %i -> %l\n' -o -printf '/%P: %y, inode %i\n' \) | sort
  if [ -d "$top/workspace" ]; then
    find "$top/workspace" -mindepth 1 -maxdepth 2 -type d -printf '/workspace/%P: d, inode %i\n' | sort
    find "$top/workspace" -mindepth 1 -maxdepth 2 \( -type l -printf '/workspace/%P: l, inode %i -> %l\n' -o ! -type d -printf '/workspace/%P: %y, inode %i, %s bytes, modified %T@\n' \) | sort
  else
    echo "/workspace: absent"
  fi
}

case "${1:-}" in
  record)
    [ $# -eq 2 ] || { echo "usage: $0 record FILE" >&2; exit 2; }
    { fingerprint; home_entries; } >"$2"
    ;;
  verify)
    [ $# -eq 2 ] || { echo "usage: $0 verify FILE" >&2; exit 2; }
    [ -f "$2" ] || { echo "tripwire: no fingerprint at $2 (record one first)" >&2; exit 2; }
    tripped=0
    if ! changes="$(diff <(grep -v '^home entry ' "$2") <(fingerprint))"; then
      echo "tripwire: the test run changed what no test may touch (< before, > after):" >&2
      grep '^[<>]' <<<"$changes" >&2
      tripped=1
    fi
    if gone="$(comm -23 <(grep '^home entry ' "$2") <(home_entries))" && [ -n "$gone" ]; then
      echo "tripwire: the test run removed or replaced entries of a real home (as they were before):" >&2
      printf '%s\n' "${gone//home entry /< }" >&2
      tripped=1
    fi
    exit "$tripped"
    ;;
  *)
    echo "usage: $0 record FILE | verify FILE" >&2
    exit 2
    ;;
esac
