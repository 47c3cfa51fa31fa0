#!/usr/bin/env python3
"""1,000 reloads under light traffic (the hardening issue): every request answered,
no leak (ASan's leak check when ferry exits, and flat RSS and descriptor counts),
and requests cost no more after 1,000 generations than after the first ones.

The config alternates between four variants, each a real change: a pool added and
removed, a route added and changed, weights and the balancing algorithm changed; a TLS
listener is kept throughout (its SSL_CTX is rebuilt by every reload). Reloads go back
to back through POST /reload, which answers once the new generation is published.
Meanwhile one client thread loops over a plain keep-alive connection, a new plain
connection, a kept TLS connection and a new TLS connection; and every 25th reload a
slow request is in flight, so old generations are still held when newer ones come.

Bounds (measured on the 2-core VM under ASan with other work running beside it; the
constants below say how): RSS may grow by RSS_GROWTH_KIB from reload RSS_BASELINE to
the last, descriptors by FD_SLACK (connections in flight), and the lower quartile of
request latency in the last 100 reloads may be at most LATENCY_FACTOR times that of reloads
101..200. The whole test takes 10-45 s under ASan (TSan: ~60 s).
"""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402

RELOADS = 1000
WARMUP = 100            # reloads before the latency baseline is taken
WINDOW = 100            # reloads whose requests make each latency sample
# ASan's quarantine holds freed memory back from reuse; a small one lets RSS settle
# sooner, so that what still grows is memory in use.
QUARANTINE_MB = 16
# RSS is compared between reload RSS_BASELINE and the last one. Measured (KiB, every
# 100 reloads, ASan): 54888 57384 59996 61248 61944 62676 63012 62744 63660 63924, or
# 50912 56544 59572 61508 60380 61776 62456 62744 65344 63700: ASan's allocator
# settling (it keeps what it once mapped) and swinging by a few MiB between samples;
# from reload 500 to any later sample at most +4.9 MiB in seven runs. The same test on
# the RelWithDebInfo build: 8180 -> 8320 KiB over 900 reloads, i.e. ferry itself is
# flat. A generation kept alive holds at least its SSL_CTX: 22 KiB in a plain build,
# 480 KiB under ASan (measured: 1,000 SSL_CTXs with the dev certificate), i.e. 240 MiB
# over 500 reloads; 16 MiB is far below that and 3x the largest swing seen.
RSS_BASELINE = 500
RSS_GROWTH_KIB = 16 * 1024
# Descriptors open: 28..34 at every sample, varying with the connections in flight
# (the load's new connections and their upstreams, a slow request, keep-alive churn
# between backends). One leaked per reload would add 500.
FD_SLACK = 8
# Latency is compared by its lower quartile: load from other processes on the shared
# 2-core VM adds delays to the upper half (medians moved 0.9x..1.9x between the two
# windows in repeated runs), while the quartile, closer to the cost of the request
# itself, moved 0.77x..1.32x. 3x keeps the noise out, while a per-generation cost (a
# list of generations walked per request, say) would grow it far more.
LATENCY_FACTOR = 3.0
LATENCY_QUANTILE = 0.25


def variant(i, port, tls_port, a, b):
    """Config variant i % 4 (the admin listener is added by Ferry / with_admin)."""
    pools = {"p": {"backends": [{"address": a.address, "name": "a"}]}}
    web = {"listen": "127.0.0.1:%d" % port, "mode": "http"}
    kind = i % 4
    if kind == 0:
        web["pool"] = "p"
    elif kind == 1:         # pool q added, a route to it
        pools["q"] = {"backends": [{"address": b.address, "name": "b"}]}
        web["routes"] = [{"match": {"path_prefix": "/q/"}, "pool": "q"}, {"pool": "p"}]
    elif kind == 2:         # the route changed; p gets b too, weighted, least_conn
        pools["q"] = {"backends": [{"address": b.address, "name": "b"}]}
        pools["p"] = {"balance": "least_conn", "backends": [
            {"address": a.address, "name": "a", "weight": 3},
            {"address": b.address, "name": "b", "weight": 1}]}
        web["routes"] = [{"match": {"host": "q.localhost"}, "pool": "q"}, {"pool": "p"}]
    else:                   # q removed again, p back to round robin over both
        pools["p"] = {"backends": [{"address": a.address, "name": "a"},
                                   {"address": b.address, "name": "b", "weight": 2}]}
        web["pool"] = "p"
    tls = {"listen": "127.0.0.1:%d" % tls_port, "mode": "http", "pool": "p",
           "tls": {"certificates": [{"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY}]}}
    return {"workers": 2, "log": {"access": "off"}, "listeners": {"web": web, "tls": tls},
            "pools": pools}


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Load(ft.ClientThreads):
    """One client thread, four kinds of request in turn, each timed and tagged with
    the number of reloads done when it started. Any error or non-200 is a failure."""

    KINDS = ("keepalive", "new", "tls_keepalive", "tls_new")
    join_s = 30.0

    def __init__(self, port, tls_port):
        super().__init__()
        self.port, self.tls_port = port, tls_port
        self.reloads = 0                 # set by the reloading thread
        self.samples = []                # (reloads, kind, seconds)
        self.failures = []
        self.ctx = ft.client_tls_context()
        self.threads = [threading.Thread(target=self._run, daemon=True)]

    def _one(self, kind, clients):
        target = "/q/x" if len(self.samples) % 3 == 0 else "/"
        if kind in ("new", "tls_new"):
            c = ft.Client(self.tls_port if kind == "tls_new" else self.port,
                          context=self.ctx if kind == "tls_new" else None)
            try:
                return c.request("GET", target, host="localhost",
                                 headers={"Connection": "close"})[0]
            finally:
                c.close()
        if clients.get(kind) is None:
            clients[kind] = ft.Client(self.tls_port if kind == "tls_keepalive" else self.port,
                                      context=self.ctx if kind == "tls_keepalive" else None)
        status = clients[kind].request("GET", target, host="localhost")[0]
        if clients[kind].closed_by_peer:
            raise AssertionError("keep-alive connection closed by ferry")
        return status

    def _run(self):
        clients = {}
        n = 0
        while not self.done.is_set():
            kind = self.KINDS[n % len(self.KINDS)]
            n += 1
            at = self.reloads
            start = time.monotonic()
            try:
                status = self._one(kind, clients)
                if status != 200:
                    raise AssertionError("status %d" % status)
                self.samples.append((at, kind, time.monotonic() - start))
            except Exception as e:           # refused, reset, timeout, bad status
                self.failures.append("reload %d %s: %r" % (at, kind, e))
                old = clients.pop(kind, None)
                if old is not None:
                    old.close()
        for c in clients.values():
            c.close()

    def latency(self, first, last, quantile):
        """A latency quantile (s) of requests started with first..last reloads done;
        kinds weigh alike (the quantile per kind, then their mean)."""
        per_kind = []
        for kind in self.KINDS:
            times = sorted(s for at, k, s in self.samples if first <= at <= last and k == kind)
            assert len(times) >= 5, "only %d %s requests in reloads %d..%d" % (
                len(times), kind, first, last)
            per_kind.append(times[int(quantile * (len(times) - 1))])
        return sum(per_kind) / len(per_kind)


def slow_request(port, results):
    try:
        raw = b"GET /sleep/300 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        results.append(ft.parse_response(ft.http_request(port, raw, timeout=30))[0])
    except Exception as e:
        results.append(repr(e))


def test_thousand_reloads_under_light_traffic():
    saved = os.environ.get("ASAN_OPTIONS")
    os.environ["ASAN_OPTIONS"] = "%s:quarantine_size_mb=%d" % (
        saved or "detect_leaks=1", QUARANTINE_MB)
    try:
        run_thousand_reloads()
    finally:
        if saved is None:
            del os.environ["ASAN_OPTIONS"]
        else:
            os.environ["ASAN_OPTIONS"] = saved


def run_thousand_reloads():
    with ft.Backend("a") as a, ft.Backend("b") as b:
        port, tls_port = ft.free_port(), ft.free_port()
        f = ft.Ferry(variant(0, port, tls_port, a, b))
        admin = f.config["admin"]
        slow = []
        slow_threads = []
        with f, Load(port, tls_port) as load:
            ft.poll_until(lambda: len(load.samples) >= 20, timeout=10, message="traffic")
            started = time.monotonic()
            rss, fds = {}, {}
            for i in range(1, RELOADS + 1):
                config = variant(i, port, tls_port, a, b)
                config["admin"] = admin
                f.write_config(config)
                code, _, body = f.admin("POST", "/reload", timeout=10)
                assert (code, json.loads(body)) == (200, {"ok": True, "generation": i + 1}), \
                    (i, code, body)
                load.reloads = i
                if i % 25 == 0:
                    t = threading.Thread(target=slow_request, args=(port, slow), daemon=True)
                    t.start()
                    slow_threads.append(t)
                if i % 100 == 0:
                    rss[i], fds[i] = ft.rss_kib(f.pid), fd_count(f.pid)
            elapsed = time.monotonic() - started
            # a few more requests on the last generation, so the last window is full
            ft.poll_until(lambda: sum(1 for s in load.samples if s[0] == RELOADS) >= 8,
                          timeout=10, message="requests after the last reload")
        for t in slow_threads:
            t.join(30)
        windows = ((WARMUP + 1, WARMUP + WINDOW), (RELOADS - WINDOW + 1, RELOADS))
        first, last = (load.latency(lo, hi, LATENCY_QUANTILE) for lo, hi in windows)
        medians = [1000 * load.latency(lo, hi, 0.5) for lo, hi in windows]
        print("%d reloads in %.1fs (%.1f ms each); %d requests, %d failed; "
              "RSS %d -> %d KiB; fds %d -> %d; latency p25 %.2f -> %.2f ms (median %.2f -> %.2f)" % (
                  RELOADS, elapsed, 1000 * elapsed / RELOADS, len(load.samples),
                  len(load.failures), rss[RSS_BASELINE], rss[RELOADS], fds[RSS_BASELINE],
                  fds[RELOADS],
                  1000 * first, 1000 * last, medians[0], medians[1]), flush=True)
        print("RSS KiB every 100 reloads: %s" % " ".join(str(rss[k]) for k in sorted(rss)))
        print("fds every 100 reloads: %s" % " ".join(str(fds[k]) for k in sorted(fds)))
        assert not load.failures, "%d failed requests: %s" % (len(load.failures),
                                                              load.failures[:5])
        assert slow == [200] * len(slow_threads), slow
        assert rss[RELOADS] - rss[RSS_BASELINE] <= RSS_GROWTH_KIB, (rss, RSS_GROWTH_KIB)
        assert fds[RELOADS] <= fds[RSS_BASELINE] + FD_SLACK, fds
        assert last <= LATENCY_FACTOR * first, (first, last, LATENCY_FACTOR)


if __name__ == "__main__":
    ft.main(per_test_timeout=280)
