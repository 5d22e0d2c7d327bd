#!/usr/bin/env python3
"""Peak memory of bulk imports: starts the release binary on a temporary data file, sends
4 MB bulk bodies (one, then N at once) and prints how far peak RSS (VmHWM) rose over the idle
RSS, as a multiple of the body size. Two shapes, each on a fresh server:
  tiny:  500 rows of ~900 one-digit custom fields (the review's attack; past the field limit);
  wide:  500 rows of 100 custom fields with 70-character values (accepted rows).

    cargo build --release && scripts/bulk-memory.py [target/release/leadbase] [concurrency]
"""
import json, os, secrets, socket, subprocess, sys, tempfile, threading, time, urllib.request

BINARY = sys.argv[1] if len(sys.argv) > 1 else "target/release/leadbase"
CONCURRENCY = int(sys.argv[2]) if len(sys.argv) > 2 else 8
ADMIN = "bench-admin-token-" + secrets.token_hex(16)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def call(base, method, path, body=None, headers=None):
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=120) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def bulk_body(shape, seed):
    """500 rows of about 8 KiB each."""
    rows = []
    for i in range(500):
        if shape == "tiny":
            fields = {f"f{j}": j % 10 for j in range(900)}
        else:
            fields = {f"field_{j}": f"{seed}-{i}-{j}-" + "x" * 60 for j in range(100)}
        rows.append({"contact_email": f"row{seed}-{i}@example.com", "custom_fields": fields})
    return json.dumps({"leads": rows, "on_duplicate": "update"}, separators=(",", ":")).encode()


def main():
    for shape in ["tiny", "wide"]:
        measure(shape)


def measure(shape):
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            [BINARY, "serve", "--listen", f"127.0.0.1:{port}",
             "--set", f"storage.path={tmp}/data.redb", "--set", f"admin.token={ADMIN}",
             "--set", "limits.bulk_per_minute=1000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    call(base, "GET", "/healthz")
                    break
                except OSError:
                    time.sleep(0.05)
            admin = {"Authorization": f"Bearer {ADMIN}"}
            _, t = call(base, "POST", "/admin/api/tenants", {"name": "Bench"}, admin)
            tenant = json.loads(t)["tenant"]["id"]
            _, k = call(base, "POST", f"/admin/api/tenants/{tenant}/keys",
                        {"name": "bench", "scopes": ["public_api:leads:write"]}, admin)
            auth = {"Authorization": "Bearer " + json.loads(k)["token"], "x-customer-id": tenant}
            bodies = [bulk_body(shape, n) for n in range(CONCURRENCY + 1)]
            size = len(bodies[0])
            idle = status(server.pid, "VmRSS")
            code, _ = call(base, "POST", "/api/agents/crm/leads/bulk", bodies[0], auth)
            one = status(server.pid, "VmHWM")
            codes = []
            threads = [threading.Thread(target=lambda b=b: codes.append(
                call(base, "POST", "/api/agents/crm/leads/bulk", b, auth)[0])) for b in bodies[1:]]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            many = status(server.pid, "VmHWM")
            after = status(server.pid, "VmRSS")
            mib = lambda b: f"{b / 1048576:.1f} MiB"
            print(f"{shape}: body {mib(size)}; idle RSS {mib(idle)}; statuses {code} then {sorted(set(codes))}")
            print(f"one request:  peak RSS +{mib(one - idle)} = {(one - idle) / size:.1f}x the body")
            print(f"{CONCURRENCY} at once:    peak RSS +{mib(many - idle)} = "
                  f"{(many - idle) / size / CONCURRENCY:.1f}x the body per request; "
                  f"retained afterwards +{mib(after - idle)}")
        finally:
            server.terminate()
            server.wait(timeout=30)


main()
