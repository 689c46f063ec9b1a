"""Starts `recommender serve` on 127.0.0.1 on a free port for a test, and stops it by PID.

The server prints "listening on http://127.0.0.1:PORT" once it accepts connections; readiness
is then polled on /health/ready.
"""
import os, re, signal, subprocess, sys, tempfile, time, urllib.request


def binary():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = subprocess.run(["swift", "build", "--show-bin-path"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    return os.path.join(path, "recommender")


class Server:
    def __init__(self, *arguments, token=None):
        env = dict(os.environ)
        if token:
            env["RECOMMENDER_ADMIN_TOKEN"] = token
        self.log = tempfile.NamedTemporaryFile("w+", prefix="recommender-serve-", suffix=".log", delete=False)
        self.process = subprocess.Popen([binary(), "serve", "--port", "0", *arguments], stdout=subprocess.PIPE,
                                        stderr=self.log, text=True, env=env)
        deadline = time.time() + 60
        self.port = None
        while self.port is None and time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if match:
                self.port = int(match.group(1))
        if self.port is None:
            self.stop()
            sys.exit("the server did not start")
        self.url = f"http://127.0.0.1:{self.port}"
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(self.url + "/health/ready", timeout=2).status == 200:
                    return
            except Exception:
                time.sleep(0.1)
        self.stop()
        sys.exit("the server did not become ready")

    def metrics(self):
        """Requests the server counted, and how many of them were 5xx (from /metrics)."""
        text = urllib.request.urlopen(self.url + "/metrics", timeout=10).read().decode()
        total = errors = 0
        self.server_errors = []
        for line in text.splitlines():
            if line.startswith("http_requests_total{"):
                count = float(line.rsplit(" ", 1)[1])
                total += count
                if re.search(r'status="5\d\d"', line):
                    errors += count
                    self.server_errors.append(line)
        return int(total), int(errors)

    def logged_errors(self):
        """The server's error log lines (internal errors name the route and the error)."""
        with open(self.log.name) as log:
            return [line.rstrip() for line in log if " error " in line]

    def stop(self):
        """SIGTERM by PID; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
