#!/usr/bin/env bash
# Install the optional peers of the backend-speed bench (README "Comparing backends"), as
# root; otherwise print the exact apt-get command. Safe to run again: it only does what is
# missing.
#   scripts/pytorch-peer.py       python3-torch and libjemalloc2 from Debian
#   scripts/onnxruntime-peer.mjs  Node.js and npm (from Debian unless node and npm are
#                                 there), and the npm packages onnxruntime-node and
#                                 onnxruntime-common, pinned in scripts/peers/package.json
#                                 and package-lock.json, into scripts/peers/node_modules
# Nothing else needs them: without them the bench's report says their rows were skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/packages.sh
need_packages peers "${peer_packages[@]}"
# A Node.js from elsewhere (NodeSource's) bundles its own npm, which Debian's npm package
# conflicts with: Debian's only when either command is missing.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  need_packages peers "${node_packages[@]}"
fi

# onnxruntime-node ships the x64 CPU library inside its package; its install script only
# fetches GPU extras, which --onnxruntime-node-install=skip skips. npm ci installs exactly
# the lock file; again only when the lock file changed since.
if [ ! scripts/peers/node_modules/.package-lock.json -nt scripts/peers/package-lock.json ]; then
  (cd scripts/peers && npm ci --onnxruntime-node-install=skip --no-audit --no-fund)
fi
scripts/onnxruntime-peer.mjs --check
scripts/pytorch-peer.py --check
