#!/usr/bin/env bash
# The README's test command (`npm test`): installs the system peers the integration tests talk to
# (nats-server, SIPp) when they are missing and we are root, builds, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v nats-server >/dev/null || need+=(nats-server)
command -v sipp >/dev/null || need+=(sip-tester)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "missing: ${need[*]} — install with: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi
npx tsc -p .
# Unit tests first (fast, pure), then the integration tests against real peers, one file at a time
# so port ranges and nats-server instances never collide.
node --test --test-timeout=60000 $(find dist/test/unit -name '*.test.js' | sort)
node --test --test-concurrency=1 --test-timeout=180000 $(find dist/test/integration -name '*.test.js' | sort)
