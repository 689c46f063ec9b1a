#!/usr/bin/env bash
# Load test of `recommender serve` with Debian's wrk on 127.0.0.1, beside the kernel-only bound
# timed in the same run (`recommender serve kernel-bound`: the same requests as bare model
# calls, no HTTP and no pipeline, from as many threads as the server has workers, on the same
# table: the int8 compressed copy the model file holds, which both scan for single queries).
#
# Store: implicit ALS, 100,000 items × 64 factors, 20,000 users (v1 active, v2 activated in the
# middle of the hot-swap run), plus a popularity model; default pipeline "als".
# Runs: known-user recommendations and 5-item anonymous sessions at saturation; known users at
# half of the measured saturation rate (wrk's delay()); known users with v2 activated mid-run
# (must show zero non-2xx and zero socket errors, and both versions answering).
#
# CPU: the server's and wrk's CPU use in each run (cores busy: CPU seconds / wall seconds) are
# printed beside the rates, and the bound reports its own; besides the plain ratio the script
# prints the ratio per core used (server requests per CPU second / bound requests per CPU
# second), since wrk shares the cores with the server while the bound runs alone.
#
# Usage: flock -o /tmp/cpu.lock Benchmarks/http-load.sh [seconds per run, default 15] [connections, default 8]
# Environment: WORKERS (the server's engine workers and the bound's threads; default: cores),
# SERVE_ARGS (extra `recommender serve` options, e.g. --gather 1), BUILD_FLAGS
# (extra `swift build` flags, to reuse a build made with them), RECOMMENDER (a binary to serve
# with instead of building one, e.g. an older build to compare with).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
CONNECTIONS=${2:-8}
STORE=${STORE:-/tmp/recommender-load-store-int8}
WORKERS=${WORKERS:-$(nproc)}
TOKEN=load-test-token
if [ -z "${RECOMMENDER:-}" ]; then swift build -c release ${BUILD_FLAGS:-} --product recommender >/dev/null; fi
R=${RECOMMENDER:-.build/release/recommender}
[ -d "$STORE/als" ] || $R serve load-store --directory "$STORE"
# A store written before model files held int8 sections would time float32 scans instead.
grep -qa 'itemFactors.int8.codes' "$STORE/als/v1.rkm" || { echo "$STORE/als/v1.rkm has no int8 section: written by an older build; remove $STORE"; exit 1; }
$R models activate --store "$STORE" als 1 >/dev/null   # every run starts on v1

# The bound is timed before and after the server runs, and the faster of the two is used per
# kind: noise from other processes on the machine can only lower a ratio, never raise it.
bound() { $R serve kernel-bound --directory "$STORE" --threads "$WORKERS" --duration "$DURATION"; }
KERNEL_BEFORE=$(bound)

LOG=$(mktemp)
RECOMMENDER_ADMIN_TOKEN=$TOKEN $R serve --store "$STORE" --port 0 --workers "$WORKERS" ${SERVE_ARGS:-} >"$LOG" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 600); do grep -q "listening on" "$LOG" && break; sleep 0.1; done
PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$LOG" | grep -o '[0-9]*$')
URL=http://127.0.0.1:$PORT
for _ in $(seq 1 600); do curl -sf "$URL/health/ready" >/dev/null && break; sleep 0.1; done
curl -sf "$URL/health/ready" >/dev/null || { echo "server not ready"; cat "$LOG"; exit 1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # user + system, clock ticks
TICKS=$(getconf CLK_TCK)

run() {  # name script [extra wrk args...]: prints "name rps p50 p99 non2xx socketerrors servercores wrkcores"
    local name=$1 script=$2; shift 2
    local out before after start end
    before=$(cpu_ticks $PID); start=$(date +%s.%N)
    out=$( { TIMEFORMAT='wrk-cpu %U %S'; time wrk -t 1 -c "$CONNECTIONS" -d "${DURATION}s" --latency -s "Benchmarks/http/$script" "$@" "$URL"; } 2>&1)
    after=$(cpu_ticks $PID); end=$(date +%s.%N)
    echo "$out" > "/tmp/recommender-load-$name.txt"
    local rps p50 p99 non2xx errors server wrkcpu
    server=$(awk -v a="$before" -v b="$after" -v t="$TICKS" -v s="$start" -v e="$end" 'BEGIN {printf "%.2f", (b - a) / t / (e - s)}')
    wrkcpu=$(echo "$out" | awk -v s="$start" -v e="$end" '/^wrk-cpu/ {printf "%.2f", ($2 + $3) / (e - s)}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}'); non2xx=${non2xx:-0}
    errors=$(echo "$out" | awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}'); errors=${errors:-0}
    echo "$name $rps $p50 $p99 $non2xx $errors $server $wrkcpu"
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
# The HTTP floor: the same server answering a constant route (/health/live: no engine call, no
# JSON built per request) as fast as wrk can ask — what Hummingbird, NIO and the sockets cost
# per request before a route does anything.
FLOOR_LINE=$(run floor live.lua)

kill -TERM $PID 2>/dev/null || true
wait $PID && STOP=0 || STOP=$?
trap 'rm -f "$LOG"' EXIT
KERNEL_AFTER=$(bound)
# The server answers requests queued behind each other together (serve --gather, default 4):
# the same requests in batches of that size, kernel only, for reference.
GATHER=$(echo " ${SERVE_ARGS:-} " | sed -n 's/.* --gather \([0-9]*\) .*/\1/p'); GATHER=${GATHER:-4}
KERNEL_BATCHED=$([ "$GATHER" -gt 1 ] && $R serve kernel-bound --directory "$STORE" --threads "$WORKERS" --duration "$DURATION" --batch "$GATHER" || true)
KERNEL=$(for kind in user session; do
    { echo "$KERNEL_BEFORE"; echo "$KERNEL_AFTER"; } | grep "kernel-only $kind:" | sort -t' ' -k3,3 -n -r | head -1
done)

echo
echo "server: 127.0.0.1, $CONNECTIONS connections, wrk -t 1, ${DURATION}s per run, $WORKERS workers, serve options '${SERVE_ARGS:-}'; exit after SIGTERM: $STOP"
printf "%-28s %10s %10s %10s %8s %14s %12s %10s\n" run "req/s" p50 p99 non-2xx "socket errors" "server cores" "wrk cores"
for line in "$USER_LINE" "$SESSION_LINE" "$HALF_LINE" "$SWAP_LINE" "$FLOOR_LINE"; do
    set -- $line
    printf "%-28s %10s %10s %10s %8s %14s %12s %10s\n" "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8"
done
echo "hot swap: $(cat /tmp/recommender-load-activate.txt); $VERSIONS"
echo "kernel-only bound, timed before and after the server runs (the faster of the two is used):"
echo "$KERNEL_BEFORE"; echo "$KERNEL_AFTER"
KU=$(echo "$KERNEL" | awk '/kernel-only user/ {print $3}')
KS=$(echo "$KERNEL" | awk '/kernel-only session/ {print $3}')
KUC=$(echo "$KERNEL" | awk '/kernel-only user/ {for (i = 1; i < NF; i++) if ($(i + 1) == "cores") print $i}')
KSC=$(echo "$KERNEL" | awk '/kernel-only session/ {for (i = 1; i < NF; i++) if ($(i + 1) == "cores") print $i}')
SU=$(echo "$SESSION_LINE" | awk '{print $2}')
UC=$(echo "$USER_LINE" | awk '{print $7}'); SC=$(echo "$SESSION_LINE" | awk '{print $7}')
awk -v s="$USER_RPS" -v k="$KU" -v ss="$SU" -v ks="$KS" 'BEGIN {
    printf "ratio server / kernel-only bound: known user %.2f, session %.2f\n", s / k, ss / ks }'
if [ -n "$KERNEL_BATCHED" ]; then
    echo "kernel-only, the same requests in batches of $GATHER (what a full gather scores per call):"
    echo "$KERNEL_BATCHED"
    BU=$(echo "$KERNEL_BATCHED" | awk '/kernel-only user/ {print $3}'); BS=$(echo "$KERNEL_BATCHED" | awk '/kernel-only session/ {print $3}')
    awk -v s="$USER_RPS" -v k="$BU" -v ss="$SU" -v ks="$BS" -v g="$GATHER" 'BEGIN {
        printf "ratio server / kernel-only in batches of %d: known user %.2f, session %.2f\n", g, s / k, ss / ks }'
fi
awk -v s="$USER_RPS" -v k="$KU" -v ss="$SU" -v ks="$KS" -v uc="$UC" -v sc="$SC" -v kuc="$KUC" -v ksc="$KSC" 'BEGIN {
    printf "ratio per core used (server req/s per server core / bound req/s per bound core): known user %.2f, session %.2f\n", (s / uc) / (k / kuc), (ss / sc) / (ks / ksc) }'
# What the machine allows: if the recommendation route cost the server no more CPU than the
# constant route plus the scan (the bound's CPU per request), and wrk no more than it does at the
# known-user run's rate, the most the two cores could answer, against the bound it is judged by.
FLOOR_SERVER_US=$(echo "$FLOOR_LINE" | awk '{printf "%.1f", $7 * 1e6 / $2}')
WRK_US=$(echo "$USER_LINE" | awk '{printf "%.1f", $8 * 1e6 / $2}')
WRK_FLOOR_US=$(echo "$FLOOR_LINE" | awk '{printf "%.1f", $8 * 1e6 / $2}')   # wrk per request at its busiest: its cheapest
REF=${BU:-$KU}; REFC=$(echo "${KERNEL_BATCHED:-$KERNEL}" | awk '/kernel-only user/ {for (i = 1; i < NF; i++) if ($(i + 1) == "cores") print $i}')
awk -v f="$FLOOR_SERVER_US" -v w="$WRK_US" -v wf="$WRK_FLOOR_US" -v k="$REF" -v kc="$REFC" -v n="$(nproc)" -v uc="$UC" -v s="$USER_RPS" 'BEGIN {
    scan = kc * 1e6 / k; server = uc * 1e6 / s
    printf "per known-user request: bound %.1f core-µs (its scan), server %.1f, wrk %.1f; constant route %.1f core-µs of server CPU\n", scan, server, w, f
    printf "ceiling on %d cores if a recommendation cost the scan + the constant route + wrk: %.0f req/s, %.2f of the bound; with wrk at its cheapest (%.1f µs, the floor run): %.2f (0.8 leaves %.1f µs per request beside the scan for the server and wrk)\n", n, n * 1e6 / (scan + f + w), n * 1e6 / (scan + f + w) / k, wf, n * 1e6 / (scan + f + wf) / k, n * 1e6 / (0.8 * k) - scan }'
