#!/usr/bin/env bash
# Load test of `recommender serve` with Debian's wrk on 127.0.0.1, beside the kernel-only bound
# timed in the same run (`recommender serve kernel-bound`: the same requests as bare model
# calls, no HTTP and no pipeline, from as many threads as the server has workers).
#
# Store: implicit ALS, 100,000 items × 64 factors, 20,000 users (v1 active, v2 activated in the
# middle of the hot-swap run), plus a popularity model; default pipeline "als".
# Runs: known-user recommendations and 5-item anonymous sessions at saturation; known users at
# half of the measured saturation rate (wrk's delay()); known users with v2 activated mid-run
# (must show zero non-2xx and zero socket errors, and both versions answering).
#
# Usage: flock -o /tmp/cpu.lock Benchmarks/http-load.sh [seconds per run, default 15] [connections, default 8]
# Environment: SERVE_ARGS (extra `recommender serve` options, e.g. --no-batching), BUILD_FLAGS
# (extra `swift build` flags, to reuse a build made with them), RECOMMENDER (a binary to serve
# with instead of building one, e.g. an older build to compare with).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
CONNECTIONS=${2:-8}
STORE=${STORE:-/tmp/recommender-load-store}
TOKEN=load-test-token
if [ -z "${RECOMMENDER:-}" ]; then swift build -c release ${BUILD_FLAGS:-} --product recommender >/dev/null; fi
R=${RECOMMENDER:-.build/release/recommender}
[ -d "$STORE/als" ] || $R serve load-store --directory "$STORE"
$R models activate --store "$STORE" als 1 >/dev/null   # every run starts on v1

LOG=$(mktemp)
RECOMMENDER_ADMIN_TOKEN=$TOKEN $R serve --store "$STORE" --port 0 ${SERVE_ARGS:-} >"$LOG" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 600); do grep -q "listening on" "$LOG" && break; sleep 0.1; done
PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$LOG" | grep -o '[0-9]*$')
URL=http://127.0.0.1:$PORT
for _ in $(seq 1 600); do curl -sf "$URL/health/ready" >/dev/null && break; sleep 0.1; done
curl -sf "$URL/health/ready" >/dev/null || { echo "server not ready"; cat "$LOG"; exit 1; }

run() {  # name script [extra wrk args...]: prints "name rps p50 p99 non2xx socketerrors"
    local name=$1 script=$2; shift 2
    local out
    out=$(wrk -t 1 -c "$CONNECTIONS" -d "${DURATION}s" --latency -s "Benchmarks/http/$script" "$@" "$URL" 2>&1)
    echo "$out" > "/tmp/recommender-load-$name.txt"
    local rps p50 p99 non2xx errors
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}'); non2xx=${non2xx:-0}
    errors=$(echo "$out" | awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}'); errors=${errors:-0}
    echo "$name $rps $p50 $p99 $non2xx $errors"
}

wrk -t 1 -c "$CONNECTIONS" -d 3s -s Benchmarks/http/user.lua "$URL" >/dev/null   # warm-up
USER_LINE=$(run user user.lua)
SESSION_LINE=$(run session session.lua)
USER_RPS=$(echo "$USER_LINE" | awk '{print $2}')
HALF_DELAY=$(awk -v c="$CONNECTIONS" -v r="$USER_RPS" 'BEGIN {printf "%d", 1000 * c / (r / 2)}')
HALF_LINE=$(DELAY_MS=$HALF_DELAY run user-half user.lua)
( sleep "$(awk -v d="$DURATION" 'BEGIN {print d / 2}')"
  curl -sf -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"version":2}' "$URL/v1/models/als/activate" >/tmp/recommender-load-activate.txt ) &
ACTIVATOR=$!
SWAP_LINE=$(run swap swap.lua)
wait $ACTIVATOR   # not a bare wait: the server is a child too
VERSIONS=$(grep '^versions' /tmp/recommender-load-swap.txt || echo "versions: unknown")

kill -TERM $PID 2>/dev/null || true
wait $PID && STOP=0 || STOP=$?
trap 'rm -f "$LOG"' EXIT
KERNEL=$($R serve kernel-bound --directory "$STORE" --threads 2 --duration "$DURATION")

echo
echo "server: 127.0.0.1, $CONNECTIONS connections, wrk -t 1, ${DURATION}s per run, serve options '${SERVE_ARGS:-}'; exit after SIGTERM: $STOP"
printf "%-28s %10s %10s %10s %8s %14s\n" run "req/s" p50 p99 non-2xx "socket errors"
for line in "$USER_LINE" "$SESSION_LINE" "$HALF_LINE" "$SWAP_LINE"; do
    set -- $line
    printf "%-28s %10s %10s %10s %8s %14s\n" "$1" "$2" "$3" "$4" "$5" "$6"
done
echo "hot swap: $(cat /tmp/recommender-load-activate.txt); $VERSIONS"
echo "$KERNEL"
KU=$(echo "$KERNEL" | awk '/kernel-only user/ {print $3}')
KS=$(echo "$KERNEL" | awk '/kernel-only session/ {print $3}')
SU=$(echo "$SESSION_LINE" | awk '{print $2}')
awk -v s="$USER_RPS" -v k="$KU" -v ss="$SU" -v ks="$KS" 'BEGIN {
    printf "ratio server / kernel-only bound: known user %.2f, session %.2f\n", s / k, ss / ks }'
