"""Revocations made on one instance while another serves, for bench/instances.sh.

    python3 bench/revocation_probe.py http://127.0.0.1:3100 http://127.0.0.1:3101 COUNT

Each round: a token issued by A (client_credentials) is checked on B until B serves it (from its
near-cache, when on), then revoked on A; from the moment A acknowledges the revocation, B is asked
again and again until it refuses. Prints one JSON line: how many requests B accepted after the
acknowledgement (must be 0); how long the revocation request took (with the near-cache, A
answers only once B has confirmed, so this bounds the propagation); and the time from the
revocation request to B's first refusal (median, p99, max, in ms). Persistent connections (http.client), so a check costs a loopback round trip.
"""
import base64, http.client, json, statistics, sys, time
from urllib.parse import urlparse

a_url, b_url, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
auth = "Basic " + base64.b64encode(b"bench:bench-secret").decode()
form = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth}

def connect(url):
    u = urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=5)

a, b = connect(a_url), connect(b_url)

def call(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    return r.status, data

def check(token):
    return call(b, "GET", "/protected", headers={"Authorization": "Bearer " + token})[0]

accepted_after, delays, revokes, unserved = 0, [], [], 0
for _ in range(count):
    status, body = call(a, "POST", "/oauth/token", "grant_type=client_credentials", form)
    assert status == 200, (status, body)
    token = json.loads(body)["access_token"]
    # B serves it (twice: the first check fills its cache).
    for _ in range(2):
        if check(token) != 200:
            unserved += 1
    start = time.perf_counter()
    status, _ = call(a, "POST", "/oauth/revoke", "token=" + token, form)
    assert status == 200, status
    revokes.append((time.perf_counter() - start) * 1000)
    while True:
        s = check(token)
        if s == 200:
            accepted_after += 1
            continue
        assert s == 401, s
        delays.append((time.perf_counter() - start) * 1000)
        break

def summary(xs):
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
    return {"median": round(statistics.median(xs), 3), "p99": round(p99, 3), "max": round(xs[-1], 3)}
print(json.dumps({
    "revocations": count,
    "accepted_after_ack": accepted_after,
    "not_served_before": unserved,
    "revocation_ms": summary(revokes),
    "refused_after_ms": summary(delays),
}))
