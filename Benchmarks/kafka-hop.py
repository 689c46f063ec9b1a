#!/usr/bin/env python3
"""One Kafka hop, no recommender: a producer at a steady rate and a consumer in another process,
through a fresh Tansu broker on loopback, with the client settings of Benchmarks/stream.py
(librdkafka's defaults — producer linger 5 ms — Nagle off, consumer fetch wait 10 ms). Latency
= received − the message's create time.

The event → result path of `recommender stream` crosses the broker twice (the application's
event to the processor, the processor's result to the application), so two of these hops are
the part of its latency that no processor can remove. Run it beside Benchmarks/stream.py at the
same rate (its half-load rate) to read its latency figures against that floor.

    python3 Benchmarks/kafka-hop.py [--rate 3000] [--seconds 8] [--producer-linger-ms 5]
"""
import argparse
import json
import multiprocessing
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

import tansu as tansu_broker

END = b"end"


def consume(broker, topic, seconds, fetch_wait_ms, results):
    consumer = Consumer({"bootstrap.servers": broker, "group.id": f"hop-{topic}", "auto.offset.reset": "earliest",
                         "session.timeout.ms": 6000, "fetch.wait.max.ms": fetch_wait_ms, "socket.nagle.disable": True, "log_level": 0})
    consumer.subscribe([topic])
    latencies, ends, deadline = [], 0, time.time() + seconds + 60
    while time.time() < deadline and ends < 4:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        if message.value() == END:
            ends += 1  # one per partition
            continue
        latencies.append((time.time() - message.timestamp()[1] / 1000) * 1000)
    consumer.close()
    results.put(latencies)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=3000, help="messages per second")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--producer-linger-ms", type=float, default=5)
    parser.add_argument("--fetch-wait-ms", type=int, default=10)
    args = parser.parse_args()

    tansu, broker = tansu_broker.start()
    try:
        topic = f"hop-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": broker, "log_level": 0})
        for future in admin.create_topics([NewTopic(topic, 4, 1)]).values():
            future.result(10)
        results = multiprocessing.Queue()
        consumer = multiprocessing.Process(target=consume, args=(broker, topic, args.seconds, args.fetch_wait_ms, results))
        consumer.start()
        time.sleep(5)  # the test broker's first group join takes about half the session timeout
        producer = Producer({"bootstrap.servers": broker, "socket.nagle.disable": True, "linger.ms": args.producer_linger_ms, "log_level": 0})
        start, produced = time.time(), 0
        while time.time() - start < args.seconds:
            # As Benchmarks/stream.py paces: wake at most once a millisecond, produce what is due.
            wait = start + produced / args.rate - time.time()
            if wait > 0:
                time.sleep(max(wait, 0.001))
            while produced < (time.time() - start) * args.rate:
                producer.produce(topic, key=f"u{produced % 3000}", value=json.dumps({"n": produced}))
                produced += 1
            producer.poll(0)
        for partition in range(4):
            producer.produce(topic, value=END, partition=partition)
        producer.flush(30)
        latencies = sorted(results.get(timeout=120))
        consumer.join(30)
    finally:
        tansu_broker.stop(tansu)
    percentile = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    print(f"one hop through Tansu at {args.rate:.0f} messages/s (producer linger {args.producer_linger_ms} ms, fetch wait "
          f"{args.fetch_wait_ms} ms): {len(latencies)} of {produced} received, p50 {percentile(0.5):.1f} ms, "
          f"p99 {percentile(0.99):.1f} ms, max {latencies[-1]:.1f} ms")


if __name__ == "__main__":
    main()
