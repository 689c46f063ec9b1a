"""The test broker for the streaming benchmarks: a fresh Tansu (in-memory storage) on a free
loopback port, as `scripts/install.d/30-kafka` installs it (`RECOMMENDER_KAFKA_LIB` to use
another folder). Imported by Benchmarks/stream.py and Benchmarks/kafka-hop.py."""
import os
import signal
import socket
import subprocess
import time

KAFKA_LIB = os.environ.get("RECOMMENDER_KAFKA_LIB", "/usr/local/lib/recommender-kafka")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start():
    """Starts a broker and waits (up to ~25 s) until it accepts connections; returns the
    process and its `host:port` for `bootstrap.servers`."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen([os.path.join(KAFKA_LIB, "tansu"), "broker", "--listener-url", url, "--advertised-listener-url", url,
                                "--storage-engine", "memory://tansu/"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, f"127.0.0.1:{port}"


def stop(process):
    """SIGTERM, then SIGKILL if the broker has not exited within 5 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
