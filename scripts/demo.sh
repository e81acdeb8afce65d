#!/usr/bin/env bash
# The README's main-job command: sets up the host, installs, builds, and runs the demo on a
# temporary vault (nothing outside a temporary directory is changed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
exec node dist/src/cli/main.js demo "$@"
