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


_ANSWERED = {}  # id(messages) -> [messages, how many parsed, the offsets they answer]


def offsets_answered(messages):
    """(partition, offset) of every event the result messages answer (do not mutate the set).

    Incremental over a growing list: the read_until predicates run after every message read, and
    parsing every message again each time made reading quadratic — the ten-kills test's ~6,000
    results took longer than its timeout to read, so events whose results were on the broker were
    reported unanswered (the "43 events lost" of an earlier session)."""
    entry = _ANSWERED.get(id(messages))
    if entry is None or entry[0] is not messages:
        entry = _ANSWERED[id(messages)] = [messages, 0, set()]
    for message in messages[entry[1]:]:
        result = json.loads(message.value())
        entry[2].update((result["partition"], offset) for offset in result["offsets"])
    entry[1] = len(messages)
    return entry[2]


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


def assignments(processor):
    """The partitions of the processor's latest assignment, from its log."""
    lines = [l for l in processor.output().splitlines() if "assigned partitions" in l]
    if not lines:
        return set()
    inside = lines[-1].split("[", 1)[1].rstrip("]")
    return {int(x) for x in inside.split(",") if x.strip()}


def wait_for(predicate, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def users_load(n, start, prefix="s"):
    return [(f"{prefix}{i % 40}".encode(), event(f"{prefix}{i % 40}", 1 + i % 1600, start + i)) for i in range(n)]


import pytest


@pytest.mark.parametrize("stop", ["sigterm", "kill"])
def test_two_processes_split_partitions_and_one_takes_over(topics, store, processors, tmp_path, stop):
    state_dir = str(tmp_path / "state")
    a = Processor(topics, store, state_dir=state_dir)
    processors.append(a)
    assert a.wait_assigned(60), a.output()
    b = Processor(topics, store, state_dir=state_dir)
    processors.append(b)
    # Both end up with a share: disjoint and together every partition.
    assert wait_for(lambda: assignments(a) and assignments(b) and not (assignments(a) & assignments(b))
                    and assignments(a) | assignments(b) == {0, 1, 2, 3}, 60), (a.output(), b.output())
    first = produce(topics.broker, topics.events, users_load(200, 0))
    reader = Reader(topics.broker, topics.results)
    assert reader.read_until(lambda ms: offsets_answered(ms) >= set(first), 60)
    assert "0 events" not in a.output()
    if stop == "sigterm":
        assert b.terminate() == 0
    else:
        b.kill()
    second = produce(topics.broker, topics.events, users_load(200, 1000))
    assert wait_for(lambda: assignments(a) == {0, 1, 2, 3}, 60), a.output()
    assert reader.read_until(lambda ms: offsets_answered(ms) >= set(first) | set(second), 60), a.output()
    assert a.terminate() == 0
    # Each process answered events: the split was real.
    counts = [int(p.output().split("stopped after ")[1].split(" ")[0]) for p in ([a, b] if stop == "sigterm" else [a])]
    assert all(c > 0 for c in counts), counts


def replay_last(store, tmp_path, user, items):
    """The result the replay mode (no broker, no saved state) gives after `items` in order: the
    oracle for what a stateful processor must answer."""
    import subprocess
    from conftest import BINARY
    path = tmp_path / f"oracle-{len(items)}.jsonl"
    path.write_text("".join(json.dumps({"user": user, "item": str(i), "type": "view", "time": 100.0 + n}) + "\n"
                            for n, i in enumerate(items)))
    out = subprocess.run([BINARY, "stream", "--store", store, "--replay", str(path), "-k", "5", "--batch-size", "1"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["items"]


def result_for(reader, user, offset):
    for r in reader.results():
        if r["user"] == user and offset[1] in r["offsets"] and r["partition"] == offset[0]:
            return r
    return None


@pytest.mark.parametrize("move", ["restart", "partition-move"])
def test_user_state_survives_restart_and_partition_move(topics, store, processors, tmp_path, move):
    state_dir = str(tmp_path / "state")
    user, earlier, later = "stateful-user", ["50", "172", "181"], "1"
    expected = replay_last(store, tmp_path, user, earlier + [later])
    without_history = replay_last(store, tmp_path, user, [later])
    assert expected != without_history  # the test can tell state from no state
    a = Processor(topics, store, state_dir=state_dir)
    processors.append(a)
    assert a.wait_assigned(60), a.output()
    b = None
    if move == "partition-move":
        b = Processor(topics, store, state_dir=state_dir)
        processors.append(b)
        assert wait_for(lambda: assignments(a) and assignments(b) and assignments(a) | assignments(b) == {0, 1, 2, 3}, 60)
    placed = produce(topics.broker, topics.events, [(user.encode(), event(user, i, 100.0 + n)) for n, i in enumerate(earlier)])
    reader = Reader(topics.broker, topics.results)
    assert reader.read_until(lambda ms: offsets_answered(ms) >= set(placed), 60)
    partition = placed[0][0]
    if move == "restart":
        assert a.terminate() == 0
        a = Processor(topics, store, state_dir=state_dir)
        processors.append(a)
        assert a.wait_assigned(60), a.output()
    else:
        owner, other = (a, b) if partition in assignments(a) else (b, a)
        owner.kill()  # kill -9: the partition moves to the other process after the session timeout
        assert wait_for(lambda: partition in assignments(other), 60), other.output()
    last = produce(topics.broker, topics.events, [(user.encode(), event(user, later, 100.0 + len(earlier)))])[0]
    assert reader.read_until(lambda ms: result_for(reader, user, last) is not None, 60)
    assert result_for(reader, user, last)["items"] == expected


def test_model_hot_swap_without_restart(topics, store, processors, tmp_path):
    import shutil
    import subprocess
    from conftest import BINARY, MOVIELENS
    own_store = str(tmp_path / "models")
    shutil.copytree(store, own_store)
    p = Processor(topics, own_store)
    processors.append(p)
    first = produce(topics.broker, topics.events, [(b"swap", event("swap", 50, 1.0))])
    reader = Reader(topics.broker, topics.results)
    assert reader.read_until(lambda ms: offsets_answered(ms) >= set(first), 60)
    assert reader.results()[-1]["version"] == 1
    subprocess.run([BINARY, "models", "add", "--store", own_store, "--format", "movielens100k", "--data", MOVIELENS,
                    "--name", "movies", "--model", "bpr", "--factors", "16", "--iterations", "3", "--activate"],
                   check=True, capture_output=True)
    time.sleep(1.5)  # the processor checks the store twice a second
    second = produce(topics.broker, topics.events, [(b"swap", event("swap", 172, 2.0))])
    assert reader.read_until(lambda ms: offsets_answered(ms) >= set(second), 60)
    answer = [r for r in reader.results() if second[0][1] in r["offsets"] and r["partition"] == second[0][0]][-1]
    assert answer["version"] == 2 and answer["model"] == "movies"
    assert p.process.poll() is None  # the same process, never restarted
    assert "serving a new version of model movies" in p.output()
    assert p.terminate() == 0


@pytest.mark.parametrize("concurrent", ["1", "2"])
def test_backlog_is_prepared_while_scoring_and_every_result_reflects_the_events_before_it(topics, store, processors, tmp_path,
                                                                                           concurrent):
    """Overlapped scoring: batch N+1 is applied to user state while batch N is scored. Each
    result must still be the one a one-event-at-a-time replay gives after that user's newest
    event in the result (so batch N+1's fold-in saw batch N's events), and a user's results must
    leave in the order of their events — also when two batches are scored at once."""
    import subprocess
    from conftest import BINARY
    rng = random.Random(23)
    users = [f"o{n}" for n in range(40)]
    lines = [(user, json.dumps({"user": user, "item": str(rng.randrange(1, 1600)), "type": "view", "time": 100.0 + n}))
             for n, user in enumerate(rng.choice(users) for _ in range(1200))]
    oracle_path = tmp_path / "events.jsonl"
    oracle_path.write_text("".join(line + "\n" for _, line in lines))
    out = subprocess.run([BINARY, "stream", "--store", store, "--replay", str(oracle_path), "-k", "5", "--batch-size", "1"],
                         check=True, capture_output=True, text=True).stdout
    oracle = [json.loads(line)["items"] for line in out.strip().splitlines()]
    assert len(oracle) == len(lines)
    # A backlog first, so that every micro-batch is full and the next one is always waiting.
    placed = produce(topics.broker, topics.events, [(user.encode(), line.encode()) for user, line in lines])
    index = {where: n for n, where in enumerate(placed)}
    p = Processor(topics, store, "--batch-size", "16", "--concurrent-batches", concurrent)
    processors.append(p)
    reader = Reader(topics.broker, topics.results)
    assert reader.read_until(lambda ms: offsets_answered(ms) >= set(placed), 120), p.output()
    assert p.terminate() == 0
    newest_seen = {}
    for r in reader.results():
        newest = max(r["offsets"])
        # One user's results come in the order of their events (a user's events and results
        # each stay in one partition).
        assert newest > newest_seen.get(r["user"], -1), (r["user"], newest, newest_seen.get(r["user"]))
        newest_seen[r["user"]] = newest
        assert r["items"] == oracle[index[(r["partition"], newest)]], (r["user"], r["offsets"])
    # The overlap happened: batches were ready while the one before was still being scored.
    stopped = [line for line in p.output().splitlines() if "stopped after" in line][-1]
    overlapped = int(stopped.split("(")[1].split(" prepared while")[0])
    assert overlapped > 10, stopped


def test_replay_output_is_written_in_place_through_a_symlink(store, tmp_path):
    """`stream --replay --output PATH` writes into what PATH names. Writing a temporary file and
    renaming it over PATH (what Foundation's createFile does) would replace a symlink with a
    regular file — and `--output /dev/null` with a regular file named /dev/null."""
    import os
    import subprocess
    from conftest import BINARY
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps({"user": f"u{n % 7}", "item": str(1 + n % 50), "type": "view", "time": 100.0 + n}) + "\n"
                              for n in range(60)))
    target, link = tmp_path / "results.jsonl", tmp_path / "link.jsonl"
    target.write_text("stale line that must be truncated\n")
    os.symlink(target.name, link)
    command = [BINARY, "stream", "--store", store, "--replay", str(events), "-k", "5", "--batch-size", "1"]
    to_stdout = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    subprocess.run(command + ["--output", str(link)], check=True, capture_output=True, text=True)
    assert link.is_symlink() and os.readlink(link) == target.name
    def answers(text):  # every field but the processing latency, which differs between runs
        return [{k: v for k, v in json.loads(line).items() if k != "latencyMs"} for line in text.splitlines()]
    assert len(answers(to_stdout)) == 60
    assert answers(target.read_text()) == answers(to_stdout)
