"""Draws the panels of examples/grafana-dashboard.json from drive.py's
scrapes: usage: render.py DASHBOARD.json SCRAPES.jsonl OUT.png

There is no Prometheus here, so each panel's PromQL is evaluated by the
function of the same panel id below (rate() over a 10 s window of 2 s
scrapes, sum by, histogram_quantile with Prometheus's linear
interpolation). The titles, units and legends come from the JSON; a panel
id without a function, or a function whose metric names are not in the
panel's queries, fails the run, so the picture cannot drift from the file.
"""
import json
import math
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

dashboard_path, scrapes_path, out_path = sys.argv[1:4]
dashboard = json.load(open(dashboard_path))
lines = [json.loads(line) for line in open(scrapes_path)]
events = lines[0]["events"]
scrapes = lines[1:]
T = [s["t"] for s in scrapes]
WINDOW = 5  # scrapes: 10 s


def series(name, match=None, by=None):
    """{by-label value: [value per scrape]} of samples named name."""
    out = {}
    for i, s in enumerate(scrapes):
        for n, labels, v in s["samples"]:
            if n != name or any(labels.get(k) != w for k, w in (match or {}).items()):
                continue
            key = labels.get(by, "") if by else ""
            out.setdefault(key, [0.0] * len(scrapes))[i] += v
    return out


def rate(values):
    r = [math.nan] * len(values)
    for i in range(WINDOW, len(values)):
        dv = values[i] - values[i - WINDOW]
        if dv < 0:  # a counter reset
            dv = values[i]
        r[i] = dv / (T[i] - T[i - WINDOW])
    return r


def rates(name, match=None, by=None):
    return {k: rate(v) for k, v in series(name, match, by).items()}


def quantile(q, name):
    buckets = {float(le): rate(v) for le, v in series(name, by="le").items()}
    bounds = sorted(buckets)
    out = []
    for i in range(len(T)):
        counts = [buckets[b][i] for b in bounds]
        total = counts[-1]
        if not total or math.isnan(total):
            out.append(math.nan)
            continue
        rank = q * total
        j = next(k for k, c in enumerate(counts) if c >= rank)
        if bounds[j] == math.inf:
            out.append(bounds[-2])
            continue
        lo = bounds[j - 1] if j > 0 else 0.0
        below = counts[j - 1] if j > 0 else 0.0
        inside = counts[j] - below
        out.append(lo + (bounds[j] - lo) * ((rank - below) / inside if inside else 1))
    return out


def ratio(a, b):
    return [x / y if y else math.nan for x, y in zip(a, b)]


def one(d):
    return next(iter(d.values())) if d else [math.nan] * len(T)


N = "nginx:nginx_auth_token_"
I = "issuer:authtokend_"
P = "issuer:process_"
panels = {
    1: lambda: rates(N + "requests_total", by="status"),
    2: lambda: rates(N + "cache_requests_total", by="cache_status"),
    3: lambda: {"hit ratio": ratio(one(rates(N + "cache_requests_total", {"cache_status": "HIT"})),
                                   one(rates(N + "cache_requests_total")))},
    4: lambda: {"p50": quantile(0.5, N + "redis_lookup_duration_seconds_bucket"),
                "p99": quantile(0.99, N + "redis_lookup_duration_seconds_bucket")},
    5: lambda: {**{"error: " + k: v for k, v in rates(N + "redis_errors_total", by="cause").items()},
                "reconnects": one(rates(N + "redis_reconnects_total")),
                "subscription losses": one(rates(N + "subscription_losses_total"))},
    6: lambda: {"revocations applied": one(rates(N + "revocations_total")),
                **{"evictions: " + k: v for k, v in rates(N + "cache_evictions_total", by="zone").items()}},
    7: lambda: {k: ratio(v, series(N + "cache_size_bytes", by="zone")[k])
                for k, v in series(N + "cache_used_bytes", by="zone").items()},
    8: lambda: rates(I + "logins_total", by="outcome"),
    9: lambda: {"p50": quantile(0.5, I + "password_hash_duration_seconds_bucket"),
                "p99": quantile(0.99, I + "password_hash_duration_seconds_bucket")},
    10: lambda: {"waiting": one(series(I + "password_hashes_waiting")),
                 "in flight": one(series(I + "password_hashes_in_flight"))},
    11: lambda: rates(I + "redis_errors_total", by="cause"),
    12: lambda: {"created": one(rates(I + "tokens_created_total")),
                 "revoked": one(rates(I + "tokens_revoked_total"))},
    13: lambda: {"CPU (cores)": one(rates(P + "cpu_seconds_total")),
                 "resident MiB": [v / 1048576 for v in one(series(P + "resident_memory_bytes"))],
                 "open fds": one(series(P + "open_fds"))},
}


def consts(code):
    for c in code.co_consts:
        if isinstance(c, str):
            yield c
        elif hasattr(c, "co_consts"):
            yield from consts(c)


def check(panel):
    """The metrics the panel's queries name are the ones its function reads."""
    exprs = " ".join(t["expr"] for t in panel["targets"])
    queried = set(re.findall(r"\b(?:nginx_auth_token_|authtokend_|process_)([a-z_]+)", exprs))
    read = {c for c in consts(panels[panel["id"]].__code__) if re.fullmatch(r"[a-z_]+", c)}
    if not queried <= read or not queried:
        sys.exit("panel %d %r: its queries name %s, render.py reads %s"
                 % (panel["id"], panel["title"], sorted(queried), sorted(read)))


graphs = [p for p in dashboard["panels"] if p["type"] != "row"]
rows = [p for p in dashboard["panels"] if p["type"] == "row"]
cols = 3
nrows = math.ceil(len(graphs) / cols)
fig, axes = plt.subplots(nrows, cols, figsize=(cols * 6, nrows * 3.2), squeeze=False)
for ax in axes.flat[len(graphs):]:
    ax.axis("off")
for ax, p in zip(axes.flat, graphs):
    if p["id"] not in panels:
        sys.exit("no function for panel %d %r" % (p["id"], p["title"]))
    check(p)
    lines = panels[p["id"]]()
    for name, values in sorted(lines.items()):
        ax.plot(T, values, label=name or p["title"], linewidth=1)
    unit = p["fieldConfig"]["defaults"]["unit"]
    ax.set_title(p["title"], fontsize=10, loc="left")
    ax.set_ylabel({"reqps": "req/s", "ops": "per s", "s": "seconds",
                   "percentunit": "ratio", "short": ""}.get(unit, unit), fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.set_xlim(0, T[-1])
    for (start, end, _), color in zip(events, ("red", "purple", "green")):
        ax.axvspan(start, end, color=color, alpha=0.07)
    ax.legend(fontsize=6, loc="upper left")
axes.flat[len(graphs) - 1].set_xlabel("seconds into the run", fontsize=8)
fig.suptitle("%s: %s, then %s. Shaded: %s" % (
    dashboard["title"], rows[0]["title"], rows[1]["title"],
    "; ".join("%s %d-%d s" % (what, start, end) for start, end, what in events)),
    fontsize=10)
fig.tight_layout(rect=(0, 0, 1, 0.98))
fig.savefig(out_path, dpi=80)
