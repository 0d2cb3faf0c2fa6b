#!/usr/bin/env bash
# Server CPU and RSS per connecting reader: N readers connect at once (the shared load
# generator, 2 processes) to a fresh `ticker serve` with its own redis-server, or to one of
# the connect floors below. Loopback only; every process is stopped by PID.
#
#   bench/tools/connect_cost.sh [N] [target]     N = 2000; target = ticker (default),
#                                                uvicorn-app, uvicorn-protocol, bare
#   PROFILE=1 bench/tools/connect_cost.sh 2000   ticker under py-spy: bench/results/connect-profile.txt
#
# Targets (each answers GET with an SSE head and one `retry:` frame, then keeps the stream):
#   ticker            python -m ticker serve (what a reader of /channels/en/events costs)
#   uvicorn-app       the smallest ASGI app under uvicorn (httptools, uvloop): the ASGI floor
#   uvicorn-protocol  uvicorn's httptools protocol, answering in on_headers_complete: its floor
#   bare              asyncio.Protocol + httptools on uvloop: the Python floor
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-2000}
TARGET=${2:-ticker}
PY=.venv/bin/python
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
case "$TARGET" in
  ticker)
    RPORT=$(free_port)
    redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
    PIDS+=($!)
    sleep 0.3
    TICKER_REDIS_URL=redis://127.0.0.1:$RPORT/0 TICKER_KEY_PREFIX=bench TICKER_STATE_DIR=$WORK/state \
      $PY -m ticker serve --port "$PORT" --log-level warning >"$WORK/server.log" 2>&1 &
    SERVER=$!
    URL=http://127.0.0.1:$PORT/channels/en/events ;;
  uvicorn-app|uvicorn-protocol|bare)
    $PY bench/tools/connect_floors.py "$TARGET" "$PORT" &
    SERVER=$! ;;
  *) echo "unknown target $TARGET" >&2; exit 2 ;;
esac
PIDS+=("$SERVER")
URL=${URL:-http://127.0.0.1:$PORT/x}
for _ in $(seq 100); do
  $PY -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
    "$PORT" 2>/dev/null && break || sleep 0.1
done
sleep 0.5
if [ -n "${PROFILE:-}" ]; then
  mkdir -p bench/results
  ${PYSPY:-.venv/bin/py-spy} record --pid "$SERVER" --rate 2000 --duration 6 --format raw \
    --nonblocking -o bench/results/connect-profile.txt >/dev/null 2>&1 &
  PIDS+=($!)
  sleep 0.5
fi
$PY bench/harness/sse_load.py --url "$URL" --clients "$N" --procs 2 --src-ips 4 \
  --connect-timeout 60 --expect 0 --hold 2 --max-time 20 --server-pid "$SERVER" \
  --server-pid-tree 2>/dev/null | $PY -c '
import json, sys
d = json.load(sys.stdin)
s = d["server"]
n = max(1, d["clients_connected"])
print("%s: %d/%s connected in %s s, %.0f us of server CPU and %s KB RSS per reader" % (
    sys.argv[1], d["clients_connected"], sys.argv[2], d["connect_time_s"],
    s["cpu_s_connect"] / n * 1e6, s["rss_per_conn_kb"]))
' "$TARGET" "$N"
if [ -n "${PROFILE:-}" ]; then
  wait "${PIDS[-1]}" 2>/dev/null || true
  $PY bench/profile_summary.py bench/results/connect-profile.txt --top 30
fi
