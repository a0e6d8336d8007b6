#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks for BotEdge: the Debian packages named as arguments
# (via apt-get when root; otherwise prints the exact command) and the npm dependencies, then builds.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for pkg in "$@"; do
  case "$pkg" in
    nats-server) command -v nats-server >/dev/null || need+=(nats-server) ;;
    sip-tester) command -v sipp >/dev/null || need+=(sip-tester) ;;
    *) need+=("$pkg") ;;
  esac
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "botedge: missing ${need[*]}. Install with: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi
[ -d node_modules ] || npm ci
[ -f dist/edge/cli.js ] && [ -z "$(find edge sip codecs tdb workers bench test -name '*.ts' -newer dist/edge/cli.js 2>/dev/null | head -1)" ] || npx tsc -p .
