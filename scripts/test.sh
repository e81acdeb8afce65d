#!/usr/bin/env bash
# The README's test command: sets up the host (as root), installs the locked npm dependencies,
# builds, type-checks, lints and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
npm ci --no-audit --no-fund
npm test -- "$@"
