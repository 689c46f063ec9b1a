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
