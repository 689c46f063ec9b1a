#!/usr/bin/env python3
"""Streaming benchmark: sustained events/s and event→result latency through a Kafka-protocol
broker (Tansu) on loopback, for a synthetic catalog (default 100,000 items × 64 factors), at
several micro-batch sizes — beside the kernel-only bound for the same work (fold-in + one GEMM
with fused top-K per micro-batch, `recommender stream --replay … --kernel-bound`), timed in the
same run.

    scripts/install.d/30-kafka && swift build -c release --product recommender
    python3 Benchmarks/stream.py                     # defaults below; --help for options

Saturation: N events are produced first, then one processor consumes them; the rate is events
answered per second between the first and the last result. Latency: a fresh processor, events
produced at half the saturation rate measured for that batch size (the producing thread wakes
at most once a millisecond and produces every event due by then), each event's `time` its
production time; latency = result received − newest event time of that result.

The "steady" columns leave out the results received in the latency run's first
`--warm-up-seconds` (0.5): the fresh processor's first fetch comes after events have queued, and
those first answers carry that wait (measured: ~400 results within the first 50 ms, up to ~120 ms
old, enough on their own to set the p99 of a 6 s run). The plain columns keep them.

Breakdown (printed after the table, per batch size, at half load): where the events' time went,
stage by stage, as the processor measured it (`recommender stream --stage-report`, see
`StreamStage` in Sources/RecStreaming/StageLatencies.swift), plus the last hop measured here:
the result message's create time → received by this application's consumer. Also printed: the
cores the processor, the broker and this application kept busy (from the first result to the
last), and the events per micro-batch.

Client settings (this script is the producing and consuming application): librdkafka's defaults
(linger.ms 5 on the producer) except `socket.nagle.disable` (what a latency-sensitive
application sets) and, on the consumer, `fetch.wait.max.ms` 10 — a Tansu quirk: it answers a
fetch only when its wait expires, not when data arrives (measured: event → consumer ≈ half the
wait, 240 ms at librdkafka's default 500), where a Kafka broker answers as soon as
`fetch.min.bytes` (1) is there. The processor's consumer uses the same 10 ms (`KafkaConsumer`).
`--client-linger-ms`, `--client-fetch-wait-ms`, `--linger-ms` (the processor's micro-batch
linger), `--processor-kafka KEY=VALUE` and `--processor-args` vary these for experiments.

On a 2-core machine the broker is the largest user of CPU besides the processor: Tansu spends
about 0.3–0.5 cores per consumer reading 2,000 messages/s, so at half load the three parties
together keep both cores nearly busy, and queueing behind the CPU — not the processor's own
work — dominates the latency tail. Read the latency figures with the cores line beside them."""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

import tansu as tansu_broker

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
def cpu_seconds(pid):
    """User + system CPU seconds used so far by process `pid` (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    times = os.times()
    return times.user + times.system


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))] if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(REPO, ".build", "release", "recommender"))
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--train-users", type=int, default=20_000)
    parser.add_argument("--interactions", type=int, default=500_000)
    parser.add_argument("--events", type=int, default=20_000, help="events per saturation run")
    parser.add_argument("--stream-users", type=int, default=5_000, help="distinct (fresh) users in the event stream")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--latency-seconds", type=float, default=6.0)
    parser.add_argument("--linger-ms", type=int, default=5, help="the processor's --linger-ms")
    parser.add_argument("--processor-kafka", action="append", default=[], metavar="KEY=VALUE",
                        help="extra librdkafka setting for the processor (its --kafka; repeatable)")
    parser.add_argument("--processor-args", default="", help="extra arguments for `recommender stream` (one string, split on spaces)")
    parser.add_argument("--client-linger-ms", type=float, default=5, help="this application's producer linger.ms")
    parser.add_argument("--client-fetch-wait-ms", type=int, default=10, help="this application's consumer fetch.wait.max.ms")
    parser.add_argument("--warm-up-seconds", type=float, default=0.5,
                        help="the steady-state latency columns leave out results received in this first part of the latency run "
                        "(the events that queued while the fresh processor made its first fetch)")
    parser.add_argument("--latency-rate", type=float, help="events/s for the latency run instead of half the measured saturated rate "
                        "(e.g. to time the broker and clients alone at a real run's half load, on a tiny catalog)")
    parser.add_argument("--latencies-file", help="write each half-load result's (seconds since the run's first result, latency ms, "
                        "events answered) per batch size to this JSON file")
    args = parser.parse_args()
    timelines = {}
    breakdowns = []

    work = tempfile.mkdtemp(prefix="stream-bench-")
    tansu, broker = tansu_broker.start()
    processes = []
    try:
        rng = random.Random(7)
        train = os.path.join(work, "train.csv")
        with open(train, "w") as f:
            f.write("user,item\n")
            for _ in range(args.interactions):
                f.write(f"u{rng.randrange(args.train_users)},i{min(args.items - 1, int(rng.paretovariate(0.8)) - 1) if rng.random() < 0.5 else rng.randrange(args.items)}\n")
            for i in range(args.items):  # every item in the catalog
                f.write(f"u{i % args.train_users},i{i}\n")
        store = os.path.join(work, "models")
        subprocess.run([args.binary, "models", "add", "--store", store, "--format", "csv", "--data", train, "--name", "bench",
                        "--model", "als", "--factors", str(args.factors), "--iterations", "2", "--activate"],
                       check=True, capture_output=True)

        def event_line(n, stamp):
            user = f"fresh{rng.randrange(args.stream_users)}"
            return user, json.dumps({"user": user, "item": f"i{rng.randrange(args.items)}", "type": "view", "time": stamp})

        events_path = os.path.join(work, "events.jsonl")
        events = [event_line(n, 1.0 + n) for n in range(args.events)]
        with open(events_path, "w") as f:
            f.writelines(line + "\n" for _, line in events)

        print(f"catalog {args.items} items × {args.factors} factors; {args.events} events from {args.stream_users} fresh users; "
              f"broker Tansu on loopback; one processor")
        print(f"application: producer linger {args.client_linger_ms} ms, consumer fetch wait {args.client_fetch_wait_ms} ms; processor: "
              f"linger {args.linger_ms} ms {' '.join(args.processor_kafka + args.processor_args.split())}\n")
        print(f"{'batch':>6} {'bound ev/s':>11} {'stream ev/s':>12} {'ratio':>6} {'half-load ev/s':>15} {'p50 ms':>7} {'p99 ms':>7}"
              f" {'steady p50':>11} {'steady p99':>11}")
        admin = AdminClient({"bootstrap.servers": broker, "log_level": 0})
        for batch in args.batch_sizes:
            out = subprocess.run([args.binary, "stream", "--store", store, "--replay", events_path, "--kernel-bound",
                                  "--batch-size", str(batch)], check=True, capture_output=True, text=True).stdout
            bound = float(out.split("s: ")[1].split(" events/s")[0])
            bound_cores = float(out.split("), ")[1].split(" cores")[0])

            def run(produce_at):
                tag = uuid.uuid4().hex[:8]
                topics = [f"ev-{tag}", f"res-{tag}", f"ev-{tag}.dead-letter"]
                for future in admin.create_topics([NewTopic(t, 4, 1) for t in topics]).values():
                    future.result(10)
                producer = Producer({"bootstrap.servers": broker, "socket.nagle.disable": True, "log_level": 0,
                                     "linger.ms": args.client_linger_ms})
                consumer = Consumer({"bootstrap.servers": broker, "group.id": f"r-{tag}", "auto.offset.reset": "earliest",
                                     "session.timeout.ms": 6000, "log_level": 0, "fetch.wait.max.ms": args.client_fetch_wait_ms,
                                     "socket.nagle.disable": True})
                consumer.subscribe([topics[1]])
                log = open(os.path.join(work, f"proc-{tag}.log"), "w")
                report = os.path.join(work, f"stages-{tag}.json")
                process = subprocess.Popen([args.binary, "stream", "--brokers", broker, "--events", topics[0], "--results", topics[1],
                                            "--group", f"g-{tag}", "--store", store, "--batch-size", str(batch), "--linger-ms", str(args.linger_ms),
                                            "--session-timeout-ms", "6000", "--stage-report", report]
                                           + [f"--kafka={setting}" for setting in args.processor_kafka] + args.processor_args.split(), stdout=log, stderr=subprocess.STDOUT)
                processes.append(process)
                received = []
                started = None  # (wall, broker, application, processor) at the first result
                if produce_at is None:
                    for user, line in events:
                        producer.produce(topics[0], key=user, value=line)
                        producer.poll(0)
                    producer.flush(60)
                    expected = len(events)
                else:
                    # Wait for the processor's assignment, then produce at a steady rate.
                    while "assigned partitions" not in open(log.name).read():
                        time.sleep(0.1)
                    expected = 0

                    def paced():
                        nonlocal expected
                        start = time.time()
                        n = 0
                        while time.time() - start < args.latency_seconds:
                            # Wake at most once a millisecond and produce every event due by
                            # then, each stamped when produced: the same steady rate, without a
                            # wake-up per event (this application's CPU competes with the
                            # processor and the broker for the same 2 cores).
                            wait = start + n / produce_at - time.time()
                            if wait > 0:
                                time.sleep(max(wait, 0.001))
                            while n < (time.time() - start) * produce_at:
                                user, line = event_line(n, time.time())
                                producer.produce(topics[0], key=user, value=line)
                                n += 1
                            producer.poll(0)
                        producer.flush(60)
                        expected = n

                    thread = threading.Thread(target=paced)
                    thread.start()
                answered = 0
                deadline = time.time() + 300
                while time.time() < deadline:
                    message = consumer.poll(0.5)
                    if message is None or message.error():
                        if produce_at is not None and not thread.is_alive() and answered >= expected:
                            break
                        continue
                    result = json.loads(message.value())
                    now = time.time()
                    if started is None:
                        started = (now, cpu_seconds(tansu.pid), own_cpu_seconds(), cpu_seconds(process.pid))
                    kind, stamp = message.timestamp()
                    result["_delivered"] = now - stamp / 1000 if stamp > 0 else None
                    received.append((now, result))
                    answered += len(result["offsets"])
                    if produce_at is None and answered >= expected:
                        break
                    if produce_at is not None and not thread.is_alive() and answered >= expected:
                        break
                ended = (time.time(), cpu_seconds(tansu.pid), own_cpu_seconds(), cpu_seconds(process.pid))
                started = started or ended
                process.send_signal(signal.SIGTERM)
                process.wait(60)
                consumer.close()
                stages = json.load(open(report)) if os.path.exists(report) else {}
                log.close()
                for line in open(log.name):
                    if "stopped after" in line:  # "... N events, D dead letters, R results in B batches"
                        words = line.split()
                        events_done, batches_done = int(words[words.index("events,") - 1]), int(words[words.index("batches") - 1])
                        stages["_eventsPerBatch"] = events_done / max(batches_done, 1)
                wall = max(ended[0] - started[0], 1e-9)
                # Cores busy from the first result to the last: the processor, the broker, this
                # benchmark's producing and consuming application.
                cores = ((ended[3] - started[3]) / wall, (ended[1] - started[1]) / wall, (ended[2] - started[2]) / wall)
                return received, stages, cores

            saturated, saturated_stages, saturated_cores = run(None)
            saturated_fill = saturated_stages.get("_eventsPerBatch", float("nan"))
            first, last = saturated[0][0], saturated[-1][0]
            counted = sum(len(r["offsets"]) for _, r in saturated[1:])
            rate = counted / max(last - first, 1e-9)
            load = args.latency_rate or rate / 2
            half, stages, half_cores = run(load)
            latencies = [(t - r["eventTime"]) * 1000 for t, r in half if r.get("eventTime")]
            if half:
                timelines[batch] = [(t - half[0][0], (t - r["eventTime"]) * 1000, len(r["offsets"])) for t, r in half if r.get("eventTime")]
            delivered = [r["_delivered"] * 1000 for _, r in half if r.get("_delivered") is not None]
            breakdowns.append((batch, load, stages, latencies, delivered, saturated_cores, half_cores, saturated_fill,
                               bound, bound_cores, rate))
            # Steady state: without the results of the first --warm-up-seconds (a fresh processor's
            # first fetch comes after events have queued; its answers carry that wait).
            steady = [(t - r["eventTime"]) * 1000 for t, r in half if r.get("eventTime") and t - half[0][0] >= args.warm_up_seconds]
            print(f"{batch:>6} {bound:>11.0f} {rate:>12.0f} {rate / bound:>6.2f} {load:>15.0f} "
                  f"{percentile(latencies, 50):>7.1f} {percentile(latencies, 99):>7.1f}"
                  f" {percentile(steady, 50):>11.1f} {percentile(steady, 99):>11.1f}", flush=True)
        for batch, load, stages, latencies, delivered, saturated_cores, half_cores, saturated_fill, bound, bound_cores, rate in breakdowns:
            # Per core kept busy: the processor's rate per core against the bound's, both measured here.
            print(f"\nbatch {batch}: per core busy: bound {bound / bound_cores:.0f} events/s on {bound_cores:.2f} cores, processor "
                  f"{rate / max(saturated_cores[0], 1e-9):.0f} events/s on {saturated_cores[0]:.2f} cores at saturation: ratio "
                  f"{rate / max(saturated_cores[0], 1e-9) / (bound / bound_cores):.2f}")
            print(f"batch {batch}: cores busy (processor / broker / this application): saturated "
                  f"{' / '.join(f'{c:.2f}' for c in saturated_cores)}, half load {' / '.join(f'{c:.2f}' for c in half_cores)} "
                  f"(of {os.cpu_count()})")
            print(f"batch {batch}: events per micro-batch: saturated {saturated_fill:.1f}, half load {stages.get('_eventsPerBatch', float('nan')):.1f}")
            print(f"batch {batch}, half load ({load:.0f} ev/s): where an event's time went (ms; per event unless noted)")
            print(f"{'stage':<34} {'mean':>7} {'p50':>7} {'p99':>7} {'count':>8}")
            names = {"transport": "broker → consumer poll", "busy": "queued while processor busy", "batchFill": "queued until micro-batch closed",
                     "state": "state apply + history", "scoring": "scoring (fold-in, GEMM, top-K)", "produce": "encode + produce",
                     "ack": "delivery ack (after produce)", "commit": "commit (after ack)", "snapshotWrite": "snapshot write (per checkpoint)",
                     "commitRoundTrip": "commit call (per checkpoint)"}
            for key, label in names.items():
                if key in stages:
                    st = stages[key]
                    print(f"{label:<34} {st['meanMs']:>7.2f} {st['p50Ms']:>7.2f} {st['p99Ms']:>7.2f} {st['count']:>8}")
            if delivered:
                print(f"{'result → application consumer':<34} {sum(delivered) / len(delivered):>7.2f} {percentile(delivered, 50):>7.2f} "
                      f"{percentile(delivered, 99):>7.2f} {len(delivered):>8}")
            if latencies:
                print(f"{'total: event time → result received':<34} {sum(latencies) / len(latencies):>7.2f} {percentile(latencies, 50):>7.2f} "
                      f"{percentile(latencies, 99):>7.2f} {len(latencies):>8}")
        if args.latencies_file:
            with open(args.latencies_file, "w") as f:
                json.dump(timelines, f)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        tansu_broker.stop(tansu)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
