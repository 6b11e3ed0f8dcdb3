#!/usr/bin/env bash
# The bash "Persistent Workspace" init script packet-agent replaces, reconstructed for
# side-by-side measurement only (scripts/bench.sh). Its flaws are kept on purpose: cp -r loses
# owners, times, hard links and xattrs, and every error is hidden. WORKSPACE replaces the
# hard-coded /workspace so it can run against a scratch directory.
WORKSPACE="${WORKSPACE:-/workspace}"
if [ -d "$WORKSPACE" ]; then
  if [ ! -f "$WORKSPACE/home/.packet-init" ]; then
    mkdir -p "$WORKSPACE/home"
    cp -r "$HOME/." "$WORKSPACE/home/" 2>/dev/null || true
    touch "$WORKSPACE/home/.packet-init"
  fi
  if ! grep -q "packet-persist marker" "$WORKSPACE/home/.bashrc" 2>/dev/null; then
    echo "# packet-persist marker" >> "$WORKSPACE/home/.bashrc"
    echo "export PATH=\"$WORKSPACE/bin:\$PATH\"" >> "$WORKSPACE/home/.bashrc"
  fi
fi
