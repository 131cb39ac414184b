#!/usr/bin/env bash
# End-to-end check of the Kafka source against a separate broker process: tansu 0.6.x with its
# in-memory storage engine on 127.0.0.1 (docs/tooling.md §2b).
#
#   1. start `tansu broker` on 127.0.0.1:$E2E_BROKER_PORT (default 19092), memory://tansu/
#   2. create a 4-partition topic and produce $E2E_MESSAGES (default 2000) Event Hub envelopes
#      (synthetic sign-ins plus the project's real fixture envelopes) with the kafka_e2e example
#   3. consume them with KafkaSource in a consumer group: the count of events must match, and the
#      group's committed offsets must reach every partition's end; prints records/s
#   4. consume again with the same group: nothing may come back (offsets were kept by the broker)
#
# Uses $TANSU, else `tansu` on PATH; needs version 0.6.x. Without it the check is skipped (exit 0)
# and says so. Build it once per machine (about 50 min of CPU on 2 cores):
#   cargo install tansu --version 0.6.0 --features dynostore --locked
set -euo pipefail
cd "$(dirname "$0")/.."

TANSU="${TANSU:-$(command -v tansu || true)}"
INSTALL_HINT="cargo install tansu --version 0.6.0 --features dynostore --locked (or set TANSU=/path/to/tansu)"
if [[ -z "$TANSU" || ! -x "$TANSU" ]]; then
  echo "tansu not installed: skipping real-broker e2e (install with: $INSTALL_HINT)"
  exit 0
fi
VERSION="$("$TANSU" --version 2>&1 | head -n 1 || true)"
if ! grep -Eq '(^|[^0-9.])v?0\.6\.[0-9]+' <<<"$VERSION"; then
  echo "tansu at $TANSU reports '$VERSION', not 0.6.x: skipping real-broker e2e (install with: $INSTALL_HINT)"
  exit 0
fi
echo "real-broker e2e with $TANSU ($VERSION)"

PORT="${E2E_BROKER_PORT:-19092}"
MESSAGES="${E2E_MESSAGES:-2000}"
BROKER="127.0.0.1:$PORT"
WORK="$(mktemp -d)"
TANSU_PID=""
cleanup() {
  if [[ -n "$TANSU_PID" ]]; then
    kill "$TANSU_PID" 2>/dev/null || true
    wait "$TANSU_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "port $PORT is already in use: set E2E_BROKER_PORT" >&2
  exit 1
fi

cargo build --release -p entrawatch-ingest --features kafka --example kafka_e2e
BIN=target/release/examples/kafka_e2e

"$TANSU" broker \
  --listener-url "tcp://$BROKER" \
  --advertised-listener-url "tcp://$BROKER" \
  --storage-engine memory://tansu/ >"$WORK/tansu.log" 2>&1 &
TANSU_PID=$!
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
  if ! kill -0 "$TANSU_PID" 2>/dev/null; then
    echo "tansu exited:" >&2
    cat "$WORK/tansu.log" >&2
    exit 1
  fi
  sleep 0.1
done

TOPIC="entrawatch-e2e-$$"
GROUP="entrawatch-e2e-$$"
timeout 300 "$BIN" --brokers "$BROKER" --topic "$TOPIC" --create 4 --produce "$MESSAGES" | tee "$WORK/produce.out"
EVENTS="$(sed -n 's/^produced [0-9]* messages (\([0-9]*\) events).*/\1/p' "$WORK/produce.out")"
if [[ -z "$EVENTS" ]]; then
  echo "could not read the produced event count" >&2
  exit 1
fi
timeout 300 "$BIN" --brokers "$BROKER" --topic "$TOPIC" --group "$GROUP" --consume --expect-events "$EVENTS"
echo "second run of group $GROUP: nothing may be read again"
timeout 120 "$BIN" --brokers "$BROKER" --topic "$TOPIC" --group "$GROUP" --consume --expect-events 0 --idle-secs 5
echo "real-broker e2e OK ($MESSAGES messages, $EVENTS events)"
