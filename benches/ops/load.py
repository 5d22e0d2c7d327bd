# Loads N leads into a running leadbase through bulk imports of 500 rows (4 threads).
import json, sys, threading, urllib.request, random
base, token, tenant, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def post(rows):
    req = urllib.request.Request(base + "/api/agents/crm/leads/bulk", data=json.dumps({"leads": rows}).encode(),
        headers={"Authorization": "Bearer " + token, "x-customer-id": tenant, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        assert r.status == 200, r.status
stages = ["new", "contacted", "qualified", "won", "lost"]
def worker(k):
    for start in range(k * 500, n, 2000):
        rows = []
        for i in range(start, min(start + 500, n)):
            rows.append({"contact_name": f"Lead {i} Surname{i % 9973}", "contact_email": f"lead{i}@example{i % 7}.com",
                         "contact_phone": f"+1206{i:07d}", "stage_slug": stages[i % 5],
                         "custom_fields": {"lead_line": "buyer" if i % 2 else "seller"}})
        post(rows)
ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print("loaded", n)
