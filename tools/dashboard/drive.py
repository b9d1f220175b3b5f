"""The scripted load for tools/dashboard/run, and the scrapes.

Through nginx on 127.0.0.1:PORT for DURATION seconds: edge requests with
the users' tokens (some unknown, some without a header), logins from many
client addresses (X-Client, believed by authtokend from nginx), a burst of
wrong passwords from one address (throttled), a surge of logins (the
hashing queue), a revocation and a re-login every 15 s. Every 2 s both
/metrics endpoints are scraped, parsed by prometheus_client, and written
as one JSON line: {"t": seconds, "samples": [[name, {labels}, value]...]},
after a first line {"events": [[from, to, what]...]}.
"""
import argparse
import http.client
import json
import random
import subprocess
import threading
import time
import urllib.parse

from prometheus_client.parser import text_string_to_metric_families

ap = argparse.ArgumentParser()
ap.add_argument("--nginx", type=int, required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--ctl", required=True)
ap.add_argument("--tokens", required=True)
ap.add_argument("--duration", type=float, default=240)
args = ap.parse_args()

# The scripted events, shaded in the picture (run stops Redis at 150 s).
EVENTS = [[80, 110, "wrong-password burst"], [150, 153, "Redis stopped"],
          [190, 210, "login surge"]]
tokens = args.tokens.split(",")
lock = threading.Lock()
start = time.time()
stop = threading.Event()


def now():
    return time.time() - start


def request(method, path, headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", args.nginx, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        return res.status, res.read()
    except OSError:
        return 0, b""
    finally:
        conn.close()


def login(user, password, address):
    body = urllib.parse.urlencode({"username": user, "password": password})
    return request("POST", "/api-token-auth/",
                   {"Content-Type": "application/x-www-form-urlencoded",
                    "X-Client": address}, body)


def edge():
    rnd = random.Random()
    while not stop.is_set():
        r = rnd.random()
        with lock:
            token = rnd.choice(tokens)
        if r < 0.90:
            headers = {"Authorization": "Token " + token}
        elif r < 0.97:
            headers = {"Authorization": "Token %040x" % rnd.getrandbits(160)}
        else:
            headers = {}
        request("GET", "/api/x", headers)
        time.sleep(0.02)


def logins(pause):
    rnd = random.Random()
    while not stop.is_set():
        r = rnd.random()
        i = rnd.randint(1, 20)
        address = "198.51.100.%d" % rnd.randint(1, 250)
        if r < 0.80:
            login("user%d" % i, "pass-%d" % i, address)
        elif r < 0.92:
            login("user%d" % i, "wrong", address)
        elif r < 0.95:
            login("nobody%d" % i, "x", address)
        elif r < 0.98:
            login("retired", "gone", address)
        else:
            request("POST", "/api-token-auth/",
                    {"Content-Type": "application/x-www-form-urlencoded",
                     "X-Client": address}, "username=user1")
        time.sleep(pause)


def attacker():
    while not stop.is_set() and now() < 80:
        time.sleep(0.2)
    while not stop.is_set() and now() < 110:
        login("user1", "guess%d" % random.getrandbits(32), "203.0.113.66")
        time.sleep(0.1)


def surge():
    while not stop.is_set() and now() < 190:
        time.sleep(0.2)
    threads = [threading.Thread(target=surge_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def surge_one():
    rnd = random.Random()
    while not stop.is_set() and now() < 210:
        i = rnd.randint(1, 20)
        login("user%d" % i, "pass-%d" % i, "192.0.2.%d" % rnd.randint(1, 250))


def revocations():
    rnd = random.Random(7)
    while not stop.wait(15):
        i = rnd.randint(1, 20)
        subprocess.run([args.ctl, "revoke", "user%d" % i],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        status, body = login("user%d" % i, "pass-%d" % i, "198.51.100.1")
        if status == 200:
            with lock:
                tokens[i - 1] = json.loads(body)["token"]


def scrape(path):
    status, body = request("GET", path)
    if status != 200:
        return []
    out = []
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out.append([s.name, s.labels, s.value])
    return out


workers = [threading.Thread(target=edge) for _ in range(2)]
workers += [threading.Thread(target=logins, args=(0.15,)) for _ in range(2)]
workers += [threading.Thread(target=f) for f in (attacker, surge, revocations)]
for w in workers:
    w.start()
with open(args.out, "w") as out:
    out.write(json.dumps({"events": EVENTS}) + "\n")
    next_scrape = time.time()
    while now() < args.duration:
        t = now()
        samples = [["nginx:" + n, l, v] for n, l, v in scrape("/metrics")]
        samples += [["issuer:" + n, l, v]
                    for n, l, v in scrape("/authtokend/metrics")]
        out.write(json.dumps({"t": t, "samples": samples}) + "\n")
        out.flush()
        next_scrape += 2
        time.sleep(max(0, next_scrape - time.time()))
stop.set()
for w in workers:
    w.join()
