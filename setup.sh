#!/usr/bin/env bash
# One command for a newcomer: install dependencies, build, and run the main workflow
# (upload a package, transport it, restart the environment) against the local sandbox.
set -euo pipefail
cd "$(dirname "$0")"
tools/install-deps
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
echo
echo "== build/mxdeploy --sandbox scripts/deploy.lua"
MXDEPLOY_SANDBOX_TIME_SCALE=${MXDEPLOY_SANDBOX_TIME_SCALE:-0.02} build/mxdeploy --sandbox scripts/deploy.lua
