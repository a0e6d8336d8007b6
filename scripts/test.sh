#!/usr/bin/env bash
# `npm test`: installs the peers the integration tests talk to (nats-server, SIPp) and the npm
# dependencies when missing, builds, and runs every test: unit first, then integration.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh nats-server sip-tester
npx tsc -p .
node --test --test-timeout=60000 $(find dist/test/unit -name '*.test.js' | sort)
# The native resampler's portable loops, on a machine whose CPU would pick the AVX2 ones.
BOTEDGE_FIR_SIMD=0 node --test --test-timeout=60000 dist/test/unit/codecs/resample-native.test.js dist/test/unit/edge/media/rx-lane.test.js
# The native addon's fallback is selected and used when the addon is switched off (or did not build).
BOTEDGE_NATIVE=0 node --test --test-timeout=60000 dist/test/unit/codecs/native.test.js dist/test/unit/codecs/g711.test.js dist/test/unit/codecs/resample-native.test.js dist/test/unit/edge/media/rtp-io.test.js
# Calls end to end on the node:dgram RTP fallback too (the rest of the integration tests use native RTP I/O).
BOTEDGE_RTP_IO=dgram node --test --test-concurrency=1 --test-timeout=240000 dist/test/integration/inbound-call.test.js dist/test/integration/bot-twilio.test.js dist/test/integration/opus-call.test.js dist/test/integration/g722-call.test.js dist/test/integration/rtcp.test.js
# One integration file at a time: each starts its own nats-server and binds its own port ranges.
node --test --test-concurrency=1 --test-timeout=240000 $(find dist/test/integration -name '*.test.js' | sort)
