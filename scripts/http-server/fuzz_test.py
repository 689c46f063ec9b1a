"""schemathesis against /v1/openapi.json with a bounded number of examples per operation
(admin routes included, with the token): fails on any 5xx. The request count and the 5xx count
are read from the server's own /metrics, so they do not depend on schemathesis' output format."""
import os, subprocess, sys, tempfile
from serve import Server

TOKEN = "fuzz-test-token"
EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "40")
server = Server("--demo-items", "400", "--demo-users", "100", token=TOKEN)
# Readiness polls before the engine loaded answered 503 by design: count only what follows.
before, errors_before = server.metrics()
known = set(server.server_errors)
venv = os.path.dirname(sys.executable)
result = subprocess.run([os.path.join(venv, "schemathesis"), "run", server.url + "/v1/openapi.json", "--url", server.url,
                         "--checks", "not_a_server_error", "--max-examples", EXAMPLES, "--header", f"Authorization: Bearer {TOKEN}",
                         "--seed", "1", "--no-color"], capture_output=True, text=True,
                        cwd=tempfile.mkdtemp(prefix="recommender-fuzz-"))  # schemathesis' cache stays out of the repository
after, errors = server.metrics()
errors -= errors_before
status = server.stop()
tail = "\n".join(result.stdout.splitlines()[-25:])
print(tail)
sent = after - before - 1
print(f"schemathesis sent {sent} requests ({EXAMPLES} examples per operation at most); the server counted {errors} 5xx; "
      f"schemathesis exit {result.returncode}; server exit {status} after SIGTERM")
for line in [l for l in server.server_errors if errors > 0] + (server.logged_errors()[-20:] if errors > 0 else []):
    print("5xx:", line)
if result.returncode != 0 and errors == 0:
    print(result.stderr[-3000:], file=sys.stderr)
sys.exit(0 if errors == 0 and result.returncode == 0 and status == 0 else 1)
