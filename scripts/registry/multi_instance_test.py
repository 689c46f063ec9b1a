#!/usr/bin/env python3
"""Several instances against one registry, as separate processes (scripts/test.d/60-registry):

1. a throwaway PostgreSQL on 127.0.0.1 (free port, password auth, stopped by PID);
2. a publisher (the `recommender models push|activate --registry` commands) and two followers
   (`recommender serve --registry`), each with its own local store;
3. 20 activations under load: each must reach both followers within 2 s, and no request may fail;
   prints propagation p50/p99;
4. a model file of about 300 MB pushed and pulled: peak RSS of both commands against the file size,
   and download throughput.

Exit status 0 only when every check holds. The password is given through PGPASSWORD and must not
appear in any output.
"""
import json, os, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request

BIN = sys.argv[1] if len(sys.argv) > 1 else ".build/debug/recommender"
LARGE_ITEMS = int(os.environ.get("REGISTRY_LARGE_ITEMS", "1150000"))
failures = []


def check(condition, message):
    print(("ok   " if condition else "FAIL ") + message, flush=True)
    if not condition:
        failures.append(message)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    def __init__(self, root, password):
        bins = sorted(d for d in os.listdir("/usr/lib/postgresql") if os.path.exists(f"/usr/lib/postgresql/{d}/bin/postgres"))
        self.bin = f"/usr/lib/postgresql/{bins[-1]}/bin"
        self.dir = os.path.join(root, "pg")
        os.makedirs(self.dir)
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        if os.getuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            os.chmod(root, 0o755)
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(password + "\n")
        if os.getuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        self.run([f"{self.bin}/initdb", "-D", f"{self.dir}/data", "-U", "postgres", f"--pwfile={pwfile}",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"])
        os.remove(pwfile)
        self.run([f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/server.log", "-w",
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start"])
        with open(f"{self.dir}/data/postmaster.pid") as f:
            self.pid = int(f.readline())

    def run(self, command):
        subprocess.run(self.as_user + command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        os.kill(self.pid, signal.SIGINT)
        for _ in range(400):
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.025)


def cli(*args, env):
    result = subprocess.run([BIN, *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"recommender {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result.stdout


def rss_watch(process):
    """Peak VmHWM and peak RssAnon (kB) of a running process, sampled every 20 ms."""
    peaks = {"VmHWM": 0, "RssAnon": 0}
    def watch():
        while process.poll() is None:
            try:
                with open(f"/proc/{process.pid}/status") as f:
                    for line in f:
                        key = line.split(":")[0]
                        if key in peaks:
                            peaks[key] = max(peaks[key], int(line.split()[1]))
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(0.02)
    thread = threading.Thread(target=watch)
    thread.start()
    return peaks, thread


def post(port, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/recommend", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def main():
    root = tempfile.mkdtemp(prefix="registry-test-")
    password = "pw-" + os.urandom(6).hex()
    server = Postgres(root, password)
    followers = []
    output_seen = []
    try:
        url = f"postgres://postgres@127.0.0.1:{server.port}/postgres"
        env = dict(os.environ, PGPASSWORD=password)
        # A publisher store: the load benchmark's small cousin (als v1/v2, popular).
        publisher = os.path.join(root, "publisher")
        cli("serve", "load-store", "--directory", publisher, "--items", "2000", "--users", "500", "--interactions", "20000", "--factors", "16", env=env)
        for args in (["popular", "--activate"], ["popular"]):
            output_seen.append(cli("models", "push", "--registry", url, "--store", publisher, *args, env=env))
        output_seen.append(cli("models", "list", "--registry", url, env=env))

        # Two followers.
        for index in range(2):
            store = os.path.join(root, f"follower{index}")
            log = open(os.path.join(root, f"follower{index}.log"), "w+")
            process = subprocess.Popen([BIN, "serve", "--store", store, "--registry", url, "--port", "0", "--workers", "1"],
                                       env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
            followers.append((process, log))
        ports = []
        for process, log in followers:
            deadline = time.time() + 60
            port = None
            while port is None and time.time() < deadline:
                log.seek(0)
                found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read())
                port = int(found.group(1)) if found else None
                time.sleep(0.05)
            if port is None:
                raise RuntimeError("a follower did not start")
            ports.append(port)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                ready = [json.loads(urllib.request.urlopen(f"http://127.0.0.1:{p}/health/ready", timeout=2).read()) for p in ports]
                if all(r.get("registry", {}).get("ready") for r in ready):
                    break
            except Exception:
                pass
            time.sleep(0.1)
        check(all(r.get("registry", {}).get("ready") for r in ready), f"both followers ready for updates: {ready}")
        check(all(post(p, {"pipeline": "popular", "k": 3})["models"]["popular"] == 1 for p in ports), "both followers serve registry v1")

        # Load on both followers while activations flip the version.
        stop = threading.Event()
        counts = {"ok": 0, "failed": 0}
        errors = []
        def load(port):
            while not stop.is_set():
                try:
                    post(port, {"pipeline": "popular", "k": 3})
                    counts["ok"] += 1
                except Exception as error:  # any failure during a switch is a failure of the test
                    counts["failed"] += 1
                    errors.append(str(error))
        loaders = [threading.Thread(target=load, args=(p,)) for p in ports for _ in range(2)]
        for thread in loaders:
            thread.start()
        from_commit, from_command = [], []
        for n in range(20):
            version = 2 if n % 2 == 0 else 1
            started = time.perf_counter()
            output_seen.append(cli("models", "activate", "--registry", url, "popular", str(version), env=env))
            committed = time.perf_counter()
            done = [None, None]
            while time.perf_counter() - committed < 2.0 and None in done:
                for i, port in enumerate(ports):
                    if done[i] is None and post(port, {"pipeline": "popular", "k": 3})["models"]["popular"] == version:
                        done[i] = time.perf_counter()
                time.sleep(0.002)
            check(None not in done, f"activation {n + 1} (v{version}) reached both followers within 2 s")
            if None not in done:
                from_commit.append(max(done) - committed)
                from_command.append(max(done) - started)
        stop.set()
        for thread in loaders:
            thread.join()
        check(counts["failed"] == 0, f"no request failed during 20 switches ({counts['ok']} answered, {counts['failed']} failed {errors[:3]})")
        def pct(values, q):
            values = sorted(values)
            return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] * 1000
        if from_commit:
            print(f"FIGURE activation propagation to both followers over {len(from_commit)} activations: "
                  f"after commit p50 {pct(from_commit, 0.5):.0f} ms, p99 {pct(from_commit, 0.99):.0f} ms; "
                  f"from the activate command's start p50 {pct(from_command, 0.5):.0f} ms, p99 {pct(from_command, 0.99):.0f} ms", flush=True)
        for process, log in followers:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            log.seek(0)
            output_seen.append(log.read())
        followers = []

        # A model file of about 300 MB: pushed and pulled with bounded memory.
        if LARGE_ITEMS > 0:
            big = os.path.join(root, "big")
            started = time.perf_counter()
            cli("serve", "load-store", "--directory", big, "--items", str(LARGE_ITEMS), "--users", "1000",
                "--interactions", str(LARGE_ITEMS + 50000), "--factors", "64", env=env)
            path = os.path.join(big, "als", "v1.rkm")
            size = os.path.getsize(path)
            print(f"large model: {size / 1e6:.0f} MB written in {time.perf_counter() - started:.0f} s", flush=True)
            for name, args in (("push", ["models", "push", "--registry", url, "--store", big, "als", "1", "--activate"]),
                               ("pull", ["models", "pull", "--registry", url, "--store", os.path.join(root, "big-follower")])):
                process = subprocess.Popen([BIN, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                peaks, watcher = rss_watch(process)
                out, _ = process.communicate()
                watcher.join()
                output_seen.append(out)
                check(process.returncode == 0, f"{name} of the {size / 1e6:.0f} MB model: {out.strip()}")
                print(f"FIGURE {name} {size / 1e6:.0f} MB: peak RSS {peaks['VmHWM'] / 1024:.0f} MB "
                      f"(anonymous {peaks['RssAnon'] / 1024:.0f} MB) = {peaks['VmHWM'] * 1024 / size:.2f} x the file "
                      f"(anonymous {peaks['RssAnon'] * 1024 / size:.2f} x)", flush=True)
                check(peaks["RssAnon"] * 1024 < size / 3, f"{name}: anonymous memory well below the file size")
            pulled = os.path.join(root, "big-follower", "als", "v1.rkm")
            check(os.path.exists(pulled) and os.path.getsize(pulled) == size, "the pulled file has the published size")
        check(not any(password in text for text in output_seen), "the password appears in no output or log")
    finally:
        for process, log in followers:
            process.kill()
            process.wait()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
