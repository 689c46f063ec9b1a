"""Fixtures for the streaming tests: a Tansu broker on 127.0.0.1 (free port, stopped by PID),
a model store trained on MovieLens 100K (../shared; the suite skips without it), the recommender
binary, and helpers to produce events and read results with the confluent-kafka Python client —
the client a user's application would use."""
import json
import os
import signal
import socket
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KAFKA_LIB = os.environ.get("RECOMMENDER_KAFKA_LIB", "/usr/local/lib/recommender-kafka")
TANSU = os.path.join(KAFKA_LIB, "tansu")
BINARY = os.environ.get("RECOMMENDER_BIN", os.path.join(REPO, ".build", "debug", "recommender"))
MOVIELENS = os.path.join(REPO, "..", "shared", "datasets", "ml-100k", "u.data")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    if not os.path.exists(TANSU):
        pytest.fail(f"{TANSU} missing: run scripts/install.d/30-kafka")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = open(tmp_path_factory.mktemp("tansu") / "tansu.log", "w")
    process = subprocess.Popen([TANSU, "broker", "--listener-url", url, "--advertised-listener-url", url,
                                "--storage-engine", "memory://tansu/"], stdout=log, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("tansu did not start listening")
    yield address
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    if not os.path.exists(MOVIELENS):
        pytest.skip("../shared/datasets/ml-100k is absent")
    directory = str(tmp_path_factory.mktemp("store") / "models")
    subprocess.run([BINARY, "models", "add", "--store", directory, "--format", "movielens100k", "--data", MOVIELENS,
                    "--name", "movies", "--model", "als", "--factors", "32", "--activate"],
                   check=True, capture_output=True)
    return directory


def create_topics(broker, names, partitions=4):
    admin = AdminClient({"bootstrap.servers": broker})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names])
    for future in futures.values():
        future.result(10)


class Topics:
    """Fresh topic names for one test: events, results, dead letters, and a group."""

    def __init__(self, broker, partitions=4):
        tag = uuid.uuid4().hex[:8]
        self.broker = broker
        self.events, self.results, self.dead = f"events-{tag}", f"results-{tag}", f"events-{tag}.dead-letter"
        self.group = f"group-{tag}"
        create_topics(broker, [self.events, self.results, self.dead], partitions)


@pytest.fixture
def topics(broker):
    return Topics(broker)


def event(user, item, time_, type_="view"):
    return json.dumps({"user": str(user), "item": str(item), "type": type_, "time": time_}).encode()


def produce(broker, topic, messages):
    """Produces (key, value) pairs; returns [(partition, offset)] in order, after the broker acked them."""
    producer = Producer({"bootstrap.servers": broker, "acks": "all", "linger.ms": 2, "log_level": 0})
    placed = [None] * len(messages)

    def report(index):
        def callback(error, message):
            assert error is None, error
            placed[index] = (message.partition(), message.offset())
        return callback

    for index, (key, value) in enumerate(messages):
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=report(index))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(30) == 0
    return placed


OPEN_READERS = []


@pytest.fixture(autouse=True)
def close_readers():
    yield
    while OPEN_READERS:
        reader = OPEN_READERS.pop()
        reader.close()


class Reader:
    """Reads a topic from the beginning with its own group, accumulating what it saw."""

    def __init__(self, broker, topic):
        self.consumer = Consumer({"bootstrap.servers": broker, "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                  "session.timeout.ms": 6000, "log_level": 0})
        OPEN_READERS.append(self)
        self.consumer.subscribe([topic])
        self.messages = []

    def read_until(self, predicate, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate(self.messages):
                return True
            message = self.consumer.poll(0.2)
            if message is None or message.error():
                continue
            self.messages.append(message)
        return predicate(self.messages)

    def results(self):
        return [json.loads(m.value()) for m in self.messages]

    def close(self):
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None


class Processor:
    """A `recommender stream` process, stopped by PID (SIGTERM or SIGKILL)."""

    def __init__(self, topics, store, *extra, state_dir=None, log_path=None):
        self.log_path = log_path or f"/tmp/stream-{uuid.uuid4().hex[:8]}.log"
        arguments = [BINARY, "stream", "--brokers", topics.broker, "--events", topics.events, "--results", topics.results,
                     "--group", topics.group, "--store", store, "--session-timeout-ms", "6000", "--checkpoint-ms", "200",
                     "--linger-ms", "5", "-k", "5"]
        if state_dir:
            arguments += ["--state-dir", state_dir]
        self.log = open(self.log_path, "a")
        self.process = subprocess.Popen(arguments + list(extra), stdout=self.log, stderr=subprocess.STDOUT)

    def terminate(self, timeout=30):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self):
        self.process.kill()
        self.process.wait()

    def output(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def wait_assigned(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if "assigned partitions" in self.output():
                return True
            if self.process.poll() is not None:
                raise AssertionError("processor exited: " + self.output())
            time.sleep(0.1)
        return False


@pytest.fixture
def processors():
    started = []
    yield started
    for p in started:
        if p.process.poll() is None:
            p.kill()
