"""`recommender stream` against a real Kafka-protocol broker (Tansu), driven by confluent-kafka."""
import json
import os
import random
import time

from conftest import Processor, Reader, Topics, create_topics, event, produce


def test_happy_path_one_result_per_user_reflecting_their_events(topics, store, processors):
    p = Processor(topics, store)
    processors.append(p)
    # A fresh user who watched three Star Wars-era films, and a second with two other films.
    placed = produce(topics.broker, topics.events, [
        (b"fresh-1", event("fresh-1", 50, 1000.0)), (b"fresh-1", event("fresh-1", 172, 1001.0)),
        (b"fresh-1", event("fresh-1", 181, 1002.0)), (b"fresh-2", event("fresh-2", 1, 1003.0, "buy")),
    ])
    reader = Reader(topics.broker, topics.results)
    answered = lambda ms: {(r["partition"], o) for r in (json.loads(m.value()) for m in ms) for o in r["offsets"]} >= set(placed)
    assert reader.read_until(answered, 60), p.output()
    results = reader.results()
    by_user = {}
    for r in results:
        by_user.setdefault(r["user"], []).append(r)
    last = by_user["fresh-1"][-1]
    assert last["model"] == "movies" and last["version"] == 1
    assert len(last["items"]) == 5 and len(last["scores"]) == 5
    assert last["scores"] == sorted(last["scores"], reverse=True)
    # Seen items are excluded: the user's three films never come back.
    assert not {"50", "172", "181"} & set(last["items"])
    assert last["eventTime"] == 1002.0 and last["latencyMs"] >= 0
    # Keyed by user: the message key is the user id.
    assert all(m.key().decode() == json.loads(m.value())["user"] for m in reader.messages)
    reader.close()
    assert p.terminate() == 0
    assert "stopped after" in p.output()


def offsets_answered(messages):
    return {(r["partition"], o) for r in (json.loads(m.value()) for m in messages) for o in r["offsets"]}


def test_poison_messages_go_to_the_dead_letter_topic_and_never_stall(topics, store, processors):
    p = Processor(topics, store, "--max-event-bytes", "2000")
    processors.append(p)
    poison = [
        (b"bad-json", b"{not json", "not JSON"),
        (b"missing", json.dumps({"user": "u1", "time": 5}).encode(), "missing field 'item'"),
        (b"unknown-type", json.dumps({"user": "u1", "item": "50", "type": "teleport", "time": 5}).encode(), "unknown event type 'teleport'"),
        (b"oversized", json.dumps({"user": "u1", "item": "50", "type": "view", "time": 5, "pad": "x" * 4000}).encode(), "oversized"),
        (b"not-object", b"[1,2,3]", "not a JSON object"),
        (b"binary", bytes(range(256)), "not JSON"),
    ]
    messages = []
    for key, value, _ in poison:
        messages.append((key, value))
        messages.append((b"good", event("good", 50, 10.0)))
    placed = produce(topics.broker, topics.events, messages)
    dead = Reader(topics.broker, topics.dead)
    assert dead.read_until(lambda ms: len(ms) >= len(poison), 60), p.output()
    letters = {(json.loads(m.value())["partition"], json.loads(m.value())["offset"]): json.loads(m.value()) for m in dead.messages}
    import base64
    for (key, value, reason), (partition, offset) in zip(poison, placed[0::2]):
        letter = letters.get((partition, offset))
        assert letter is not None, (reason, letters)
        assert reason in letter["reason"], (reason, letter["reason"])
        assert base64.b64decode(letter["value"]) == value
        assert base64.b64decode(letter["key"]) == key
    good = set(placed[1::2])
    results = Reader(topics.broker, topics.results)
    assert results.read_until(lambda ms: offsets_answered(ms) >= good, 60), p.output()
    # Still consuming after the poison: a later event is answered too.
    later = produce(topics.broker, topics.events, [(b"good", event("good", 172, 11.0))])
    assert results.read_until(lambda ms: set(later) <= offsets_answered(ms), 60), p.output()
    assert p.process.poll() is None
    dead.close(); results.close()
    assert p.terminate() == 0


def test_ten_kills_under_steady_load_lose_no_event(topics, store, processors, tmp_path):
    import threading
    state_dir = str(tmp_path / "state")
    placed, stop = [], threading.Event()
    rng = random.Random(11)

    def load():
        n = 0
        while not stop.is_set():
            batch = [(f"u{(n + i) % 97}".encode(), event(f"u{(n + i) % 97}", 1 + (n + i) % 1600, 100.0 + n + i)) for i in range(20)]
            placed.extend(produce(topics.broker, topics.events, batch))
            n += 20
            time.sleep(0.1)

    producer = threading.Thread(target=load)
    producer.start()
    try:
        for kill in range(10):
            p = Processor(topics, store, state_dir=state_dir)
            processors.append(p)
            assert p.wait_assigned(60), p.output()
            time.sleep(rng.uniform(0.2, 2.5))
            p.kill()
    finally:
        stop.set()
        producer.join()
    final = Processor(topics, store, state_dir=state_dir)
    processors.append(final)
    reader = Reader(topics.broker, topics.results)
    expected = set(placed)
    assert len(expected) > 500
    ok = reader.read_until(lambda ms: offsets_answered(ms) >= expected, 120)
    missing = expected - offsets_answered(reader.messages)
    assert ok, f"{len(missing)} of {len(expected)} events never answered, e.g. {sorted(missing)[:5]}"
    reader.close()
    assert final.terminate() == 0
