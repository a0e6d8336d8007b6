#!/usr/bin/env bash
# `npm start`: installs what is missing, builds, and runs `botedge up` (arguments pass through).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh nats-server sip-tester
exec node dist/edge/cli.js up "$@"
