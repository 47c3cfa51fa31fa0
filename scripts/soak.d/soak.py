#!/usr/bin/env python3
"""soak.py [MINUTES]: mixed load against one ferry while its world changes (run it
through scripts/soak, which builds ferry and sets FERRY_BIN / FERRY_BUILD).

Load, each kind in its own thread, every request checked (status, body bytes):
  http        new plain connection per request, /bytes/N
  http_ka     plain keep-alive connection: GET /bytes/N, POST /echo
  https       new TLS connection per request (full handshakes)
  https_ka    TLS keep-alive connection
  ws          WebSocket upgrade, then a few echoed messages through the tunnel
  tcp         tcp relay session to the echo pool: send 64 KiB, read it back
  slow        a head sent in pieces over ~1 s, then a 1 MiB body read slowly
  h2, h2c     h2load bursts (HTTP/2 over TLS with ALPN, and h2c with prior knowledge)
Chaos, from the main thread:
  a reload every RELOAD_S (POST /reload, the config alternating between variants);
  every KILL_S an http backend is SIGKILLed and restarted on its port DOWN_S later
  (and every third time an echo backend instead); every FLAP_S another http backend
  fails its health check for FLAP_DOWN_S. At most one backend of a pool is away at a
  time, so every pool always has one that is up.

Unexpected failure: any failed request, except one that was in flight while its own
backend was being killed: it ended after the SIGKILL and started before the process
was reaped (all its sockets closed) + KILL_EPSILON_S. "Its own backend" comes from the
response (X-Backend) or, when the client got no head, from ferry's access log (every
HTTP request carries an id in its query string); a tcp session's backend cannot be
known, so a tcp session in flight while an echo backend was killed is excused. A
refused or reset connection, a 5xx, a timeout, a wrong body at any other moment
(during a reload, a health flap, after a backend went away) is unexpected. h2load
bursts are counted as a whole: their failures are excused only up to the number of
their requests that the access log shows failing on a backend killed during the burst.

At the start (after a warm-up) and at the end, the load pauses until ferry has no
client connection left, and ferry's RSS and descriptors are read; descriptors are
told apart: client connections (none may be left), upstream connections (idle
keep-alive ones stay, up to the pools' bound) and the rest (listening sockets, files,
eventfds, epoll: may not grow by more than FD_SLACK). The run fails when a failure was
unexpected, RSS grew by more than RSS_GROWTH (relative) + RSS_SLACK_KIB, or
descriptors broke those rules.
"""

import collections
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "e2e"))
import ferrytest as ft  # noqa: E402

RELOAD_S = 3.0
KILL_S = 20.0
DOWN_S = 3.0
FLAP_S = 13.0
FLAP_DOWN_S = 4.0
WARMUP_S = 20.0
H2_EVERY_S = 10.0
RSS_GROWTH = 0.10
RSS_SLACK_KIB = 4096
FD_SLACK = 4            # descriptors other than connections (files, eventfds, ...)
MAX_IDLE_UPSTREAM = 2 * len(("web1", "web2", "web3")) * 32   # workers x backends x max_idle
# A request that starts this soon after its backend's death may still be sent on a
# pooled connection whose RST ferry's worker has not read yet (a non-idempotent one is
# then not re-sent); later than that, ferry must have seen it.
KILL_EPSILON_S = 0.1

HTTP_BACKENDS = ("web1", "web2", "web3")
ECHO_BACKENDS = ("echo1", "echo2")


def now():
    return time.monotonic()


class World:
    """The backends, ferry, the kill log and the per-request records."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.lock = threading.Lock()
        self.backends = {}
        self.kills = []                      # (name, t_signal, t_dead)
        self.away = set()                    # names killed or flapped right now
        self.ok = collections.Counter()
        self.failures = []                   # dict(kind, id, start, end, backend, error)
        self.h2_bursts = []                  # dict(kind, start, end, ids, failed, total)
        self.seq = 0
        self.ferry = None
        self.access_log = os.path.join(workdir, "access.log")

    def next_id(self, kind):
        with self.lock:
            self.seq += 1
            return "%s-%d" % (kind, self.seq)

    def record(self, kind, start, ok, rid=None, backend=None, error=None):
        with self.lock:
            if ok:
                self.ok[kind] += 1
            else:
                self.failures.append({"kind": kind, "id": rid, "start": start, "end": now(),
                                      "backend": backend, "error": error})

    def start_backends(self):
        for name in HTTP_BACKENDS:
            health = os.path.join(self.workdir, name + ".unhealthy")
            self.backends[name] = ft.Backend(name, health_file=health).start()
        for name in ECHO_BACKENDS:
            self.backends[name] = ft.Backend(name, mode="echo").start()

    def config(self, generation):
        b = self.backends
        web = [{"address": b[n].address, "name": n, "weight": 1 + (generation + i) % 3}
               for i, n in enumerate(HTTP_BACKENDS)]
        check = {"type": "http", "path": "/healthz", "interval_ms": 300, "timeout_ms": 250,
                 "rise": 1, "fall": 2}
        pools = {
            "web": {"balance": "round_robin" if generation % 2 else "least_conn",
                    "backends": web, "health_check": check, "retries": 2},
            "echo": {"balance": "least_conn",
                     "backends": [{"address": b[n].address, "name": n} for n in ECHO_BACKENDS],
                     "health_check": {"type": "tcp", "interval_ms": 300, "timeout_ms": 250,
                                      "rise": 1, "fall": 1}},
        }
        listeners = {
            "http": {"listen": "127.0.0.1:%d" % self.ports["http"], "mode": "http",
                     "pool": "web", "http2": {"h2c": True}},
            "https": {"listen": "127.0.0.1:%d" % self.ports["https"], "mode": "http",
                      "tls": {"certificates": [{"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY}]},
                      "pool": "web"},
            "tcp": {"listen": "127.0.0.1:%d" % self.ports["tcp"], "mode": "tcp", "pool": "echo"},
        }
        if generation % 3 == 0:      # a route to a second pool over the same backends
            pools["web_b"] = {"backends": list(reversed(web)), "health_check": check,
                              "retries": 2}
            listeners["http"]["routes"] = [{"match": {"path_prefix": "/echo"}, "pool": "web_b"},
                                           {"pool": "web"}]
            del listeners["http"]["pool"]
        return {"workers": 2, "log": {"access": self.access_log, "level": "warn"},
                "admin": {"listen": "127.0.0.1:%d" % self.ports["admin"]},
                "timeouts": {"connect_ms": 1000}, "listeners": listeners, "pools": pools}


# ---- load ------------------------------------------------------------------------

class Loader:
    def __init__(self, world):
        self.w = world
        self.stop = threading.Event()
        self.pause = threading.Event()          # set: threads park between requests
        self.parked = collections.Counter()
        self.parked_lock = threading.Lock()
        self.threads = []
        self.ctx = ft.client_tls_context()

    def spawn(self, name, fn):
        t = threading.Thread(target=self._loop, args=(name, fn), name=name, daemon=True)
        self.threads.append(t)
        t.start()

    def _loop(self, name, fn):
        state = {}
        while not self.stop.is_set():
            if self.pause.is_set():
                for c in state.values():
                    if hasattr(c, "close"):
                        c.close()
                state.clear()
                with self.parked_lock:
                    self.parked[name] = 1
                while self.pause.is_set() and not self.stop.is_set():
                    time.sleep(0.05)
                with self.parked_lock:
                    self.parked[name] = 0
                continue
            fn(state)
        for c in state.values():
            if hasattr(c, "close"):
                c.close()

    def all_parked(self):
        with self.parked_lock:
            return sum(self.parked.values()) == len(self.threads)

    # -- HTTP/1.1 ------------------------------------------------------------------
    def _http(self, kind, state, tls, keepalive):
        rid = self.w.next_id(kind)
        n = random.choice((0, 100, 4096, 65536, 300000))
        post = keepalive and random.random() < 0.3
        target = ("/echo?id=%s" if post else "/bytes/%d?id=%%s" % n) % rid
        start = now()
        backend = None
        c = None
        try:
            c = state.get("c")
            if c is None:
                c = ft.Client(self.w.ports["https" if tls else "http"],
                              context=self.ctx if tls else None, timeout=15)
                if keepalive:
                    state["c"] = c
            body = os.urandom(n) if post else b""
            headers = {} if keepalive else {"Connection": "close"}
            status, h, got = c.request("POST" if post else "GET", target, headers=headers,
                                       body=body, host="localhost")
            backend = h.get("x-backend")
            want = body if post else ft.pattern_bytes(n)
            if status != 200 or got != want:
                raise AssertionError("status %d, %d bytes (want %d)" % (status, len(got),
                                                                       len(want)))
            if keepalive and c.closed_by_peer:
                raise AssertionError("keep-alive connection closed by ferry")
            if not keepalive:
                c.close()
            self.w.record(kind, start, True)
        except Exception as e:
            state.pop("c", None)
            if c is not None:
                c.close()
            self.w.record(kind, start, False, rid, backend, repr(e)[:200])

    def http(self, state):
        self._http("http", state, False, False)

    def http_ka(self, state):
        self._http("http_ka", state, False, True)

    def https(self, state):
        self._http("https", state, True, False)

    def https_ka(self, state):
        self._http("https_ka", state, True, True)

    # -- WebSocket --------------------------------------------------------------------
    def ws(self, state):
        rid = self.w.next_id("ws")
        start = now()
        backend = None
        try:
            with ft.Client(self.w.ports["http"], timeout=15) as c:
                c.send(("GET /ws?id=%s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n" % rid).encode())
                status, h, _ = c.read_response()
                backend = h.get("x-backend")
                if status != 101:
                    raise AssertionError("upgrade answered %d" % status)
                for _ in range(random.randint(1, 20)):
                    msg = os.urandom(random.randint(1, 8192))
                    c.send(msg)
                    if c.read_exactly(len(msg)) != msg:
                        raise AssertionError("tunnel echoed other bytes")
                    time.sleep(random.random() * 0.05)
            self.w.record("ws", start, True)
        except Exception as e:
            self.w.record("ws", start, False, rid, backend, repr(e)[:200])

    # -- tcp ----------------------------------------------------------------------------
    def tcp(self, state):
        start = now()
        try:
            data = os.urandom(65536)
            with ft.connect(self.w.ports["tcp"], timeout=15) as s:
                got = ft.send_while_reading(s, data, len(data), timeout=15)
                if got != data:
                    raise AssertionError("echo differs")
                s.shutdown(socket.SHUT_WR)
                if ft.read_until_close(s, timeout=15) != b"":
                    raise AssertionError("bytes after the echo")
            self.w.record("tcp", start, True)
        except Exception as e:
            self.w.record("tcp", start, False, None, None, repr(e)[:200])

    # -- slow client ----------------------------------------------------------------------
    def slow(self, state):
        rid = self.w.next_id("slow")
        n = 1 << 20
        start = now()
        backend = None
        try:
            with ft.connect(self.w.ports["http"], timeout=15) as s:
                head = ("GET /bytes/%d?id=%s HTTP/1.1\r\nHost: localhost\r\n"
                        "Connection: close\r\n\r\n" % (n, rid)).encode()
                for i in range(0, len(head), 8):
                    s.sendall(head[i:i + 8])
                    time.sleep(0.1)
                data = bytearray()
                while True:
                    chunk = s.recv(16384)
                    if not chunk:
                        break
                    data += chunk
                    time.sleep(0.002)
            status, h, body = ft.parse_response(bytes(data))
            backend = h.get("x-backend")
            if status != 200 or body != ft.pattern_bytes(n):
                raise AssertionError("status %d, %d bytes" % (status, len(body)))
            self.w.record("slow", start, True)
        except Exception as e:
            self.w.record("slow", start, False, rid, backend, repr(e)[:200])

    # -- HTTP/2 bursts ----------------------------------------------------------------------
    def h2(self, state, kind="h2"):
        if state.get("next", 0) > now():
            time.sleep(0.1)
            return
        state["next"] = now() + H2_EVERY_S
        burst = self.w.next_id(kind)
        urifile = os.path.join(self.w.workdir, burst + ".uris")
        ids = ["%s.%d" % (burst, i) for i in range(400)]
        scheme, port = ("https", self.w.ports["https"]) if kind == "h2" \
            else ("http", self.w.ports["http"])
        with open(urifile, "w") as f:
            for rid in ids:
                f.write("%s://127.0.0.1:%d/bytes/%d?id=%s\n" % (
                    scheme, port, random.choice((0, 1000, 20000)), rid))
        start = now()
        res = subprocess.run(["h2load", "-c", "4", "-m", "8", "-n", str(len(ids)),
                              "-N", "20", "-i", urifile],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        os.unlink(urifile)
        out = res.stdout.decode(errors="replace")
        m = re.search(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, "
                      r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
        codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
        if not m or not codes:
            self.w.record(kind, start, False, burst, None, "h2load: %s" % out[-300:])
            return
        total = int(m.group(1))
        good = int(codes.group(1))
        with self.w.lock:
            self.w.ok[kind] += good
            if good < total:
                self.w.h2_bursts.append({"kind": kind, "id": burst, "start": start,
                                         "end": now(), "failed": total - good, "total": total,
                                         "summary": out[-400:]})

    def h2c(self, state):
        self.h2(state, "h2c")


# ---- chaos -------------------------------------------------------------------------

def kill_and_restart(w, name):
    b = w.backends[name]
    with w.lock:
        w.away.add(name)
        t_kill = now()
    b.kill()                    # SIGKILL, then reaped: its sockets are all closed now
    t_dead = now()
    time.sleep(DOWN_S)          # the backend stays away this long (not a synchronisation)
    fresh = ft.Backend(name, mode=b.mode, port=b.port, health_file=b.health_file)
    for _ in range(50):         # the port may linger a moment after SIGKILL
        try:
            fresh.start()
            break
        except AssertionError:
            time.sleep(0.1)
    else:
        raise SystemExit("soak: cannot restart backend %s on port %d" % (name, b.port))
    w.backends[name] = fresh
    with w.lock:
        w.kills.append((name, t_kill, t_dead))
        w.away.discard(name)


def flap(w, name):
    with w.lock:
        w.away.add(name)
    b = w.backends[name]
    b.set_healthy(False)
    time.sleep(FLAP_DOWN_S)
    b.set_healthy(True)
    with w.lock:
        w.away.discard(name)


def reload(w, generation):
    w.ferry.write_config(w.config(generation))
    code, _, body = w.ferry.admin("POST", "/reload", timeout=10)
    if code != 200 or json.loads(body).get("generation") != generation:
        raise SystemExit("soak: reload %d failed: %s %r" % (generation, code, body))


# ---- verdict -----------------------------------------------------------------------

def access_log_backends(path):
    """{request id: [(status, backend)]} from ferry's JSON access log."""
    found = collections.defaultdict(list)
    with open(path, errors="replace") as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            m = re.search(r"[?&]id=([\w.-]+)", e.get("path", ""))
            if m:
                found[m.group(1)].append((e.get("status"), e.get("backend")))
    return found


def killed_during(w, start, end, names):
    """Kills of one of names that overlap the request: it ended after the signal and
    started before the process was dead (+ KILL_EPSILON_S for ferry to see it)."""
    return [k for k in w.kills
            if k[0] in names and end >= k[1] and start <= k[2] + KILL_EPSILON_S]


def nearest_kill(w, t, names):
    """'+0.012s after web1 died' for a report line, or ''."""
    mine = [k for k in w.kills if k[0] in names]
    if not mine:
        return ""
    k = min(mine, key=lambda k: abs(t - k[2]))
    return " (%+.3fs from %s's death)" % (t - k[2], k[0])


def classify(w):
    log = access_log_backends(w.access_log)
    unexpected, excused = [], []
    for f in w.failures:
        if f["kind"] == "tcp":
            own = killed_during(w, f["start"], f["end"], ECHO_BACKENDS)
            reason = "in flight when echo backend %s was killed%s" % (
                own[0][0], nearest_kill(w, f["start"], {own[0][0]})) if own else None
        else:
            names = {f["backend"]} if f["backend"] else \
                {b for _, b in log.get(f["id"], []) if b}
            own = killed_during(w, f["start"], f["end"], names)
            reason = "in flight when its backend %s was killed%s" % (
                own[0][0], nearest_kill(w, f["start"], {own[0][0]})) if own else None
        if not reason:
            names = {f["backend"]} if f["backend"] else \
                {b for _, b in log.get(f["id"], []) if b} if f["id"] else set(ECHO_BACKENDS)
            f = dict(f, error=f["error"] + nearest_kill(w, f["start"], names) +
                     (" backend %s" % ",".join(sorted(names)) if names else " no backend known"))
        (excused if reason else unexpected).append(dict(f, reason=reason))
    for burst in w.h2_bursts:
        victims = 0
        for rid, entries in log.items():
            if rid.startswith(burst["id"] + "."):
                names = {b for status, b in entries if b and (status or 0) >= 500}
                if killed_during(w, burst["start"], burst["end"], names):
                    victims += 1
        item = dict(burst, error="%d of %d failed, %d on a killed backend" % (
            burst["failed"], burst["total"], victims))
        (excused if burst["failed"] <= victims else unexpected).append(item)
    return unexpected, excused


def tcp_sockets():
    """{inode: (local port, remote port, state hex)} of every TCP socket on the host."""
    found = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, remote = fields[1], fields[2]
                found[fields[9]] = (int(local.rsplit(":", 1)[1], 16),
                                    int(remote.rsplit(":", 1)[1], 16), fields[3])
    return found


def fd_breakdown(w):
    """ferry's descriptors by what they are: client connections, upstream connections
    (idle keep-alive ones are kept, up to keepalive.max_idle per worker and backend),
    and the rest (listening sockets, files, eventfds, epoll, pipes)."""
    pid = w.ferry.pid
    sockets = tcp_sockets()
    listener_ports = set(w.ports.values())
    backend_ports = {b.port for b in w.backends.values()}
    counts = collections.Counter()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        entry = sockets.get(link[8:-1]) if link.startswith("socket:[") else None
        if entry and entry[2] != "0A" and entry[1] in backend_ports:
            counts["upstream"] += 1
        elif entry and entry[2] != "0A" and entry[0] in listener_ports:
            counts["client"] += 1
        else:
            counts["other"] += 1
    return counts


def quiesce(w, loader, timeout=60):
    """Parks the load and waits until ferry holds no client connection."""
    loader.pause.set()
    ft.poll_until(loader.all_parked, timeout=timeout, interval=0.1, message="load parked")

    def idle():
        st = w.ferry.status()
        return all(l.get("active", 0) == 0 for l in st["listeners"].values())
    ft.poll_until(idle, timeout=timeout, interval=0.2, message="ferry idle")
    return ft.rss_kib(w.ferry.pid), fd_breakdown(w)


def main():
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    if not shutil.which("h2load"):
        raise SystemExit("soak: h2load not found (scripts/install-deps --soak)")
    workdir = ft.tmpdir()
    w = World(workdir)
    w.ports = {k: ft.free_port() for k in ("http", "https", "tcp", "admin")}
    w.start_backends()
    generation = 1
    w.ferry = ft.Ferry(w.config(generation), name="soak-ferry").start()
    loader = Loader(w)
    for kind in ("http", "http_ka", "https", "https_ka", "ws", "tcp", "slow", "h2", "h2c"):
        loader.spawn(kind, getattr(loader, kind))

    time.sleep(WARMUP_S)        # warm-up: pools, caches and the allocator fill up
    rss0, fds0 = quiesce(w, loader)
    loader.pause.clear()
    print("soak: %.0f min; ferry pid %d; start (idle, after %.0fs warm-up): RSS %d KiB, "
          "fds %s" % (minutes, w.ferry.pid, WARMUP_S, rss0, dict(fds0)), flush=True)

    begin = now()
    end = begin + minutes * 60
    next_reload, next_kill, next_flap, next_report = (begin + RELOAD_S, begin + KILL_S,
                                                      begin + FLAP_S, begin + 60)
    kills = 0
    chaos = []
    while now() < end:
        t = now()
        if t >= next_reload:
            generation += 1
            reload(w, generation)
            next_reload = t + RELOAD_S
        if t >= next_kill and not any(th.is_alive() for th in chaos if th.name == "kill"):
            kills += 1
            pool = ECHO_BACKENDS if kills % 3 == 0 else HTTP_BACKENDS
            with w.lock:
                candidates = [n for n in pool if n not in w.away]
            if candidates and (pool == ECHO_BACKENDS or len(w.away & set(HTTP_BACKENDS)) == 0):
                th = threading.Thread(target=kill_and_restart, args=(w, random.choice(candidates)),
                                      name="kill", daemon=True)
                th.start()
                chaos.append(th)
            next_kill = t + KILL_S
        if t >= next_flap and not any(th.is_alive() for th in chaos if th.name == "flap"):
            with w.lock:
                candidates = [n for n in HTTP_BACKENDS if n not in w.away]
                busy = bool(w.away & set(HTTP_BACKENDS))
            if candidates and not busy:
                th = threading.Thread(target=flap, args=(w, random.choice(candidates)),
                                      name="flap", daemon=True)
                th.start()
                chaos.append(th)
            next_flap = t + FLAP_S
        if t >= next_report:
            with w.lock:
                print("soak: %4.1f min  generation %d  kills %d  requests %d  failed %d  "
                      "RSS %d KiB  fds %d" % ((t - begin) / 60, generation, len(w.kills),
                                              sum(w.ok.values()), len(w.failures),
                                              ft.rss_kib(w.ferry.pid),
                                              len(os.listdir("/proc/%d/fd" % w.ferry.pid))),
                      flush=True)
            next_report = t + 60
        chaos = [th for th in chaos if th.is_alive()]
        time.sleep(0.05)
    for th in chaos:
        th.join(30)
    rss1, fds1 = quiesce(w, loader)
    loader.stop.set()
    for th in loader.threads:
        th.join(180)
    rc = w.ferry.stop()
    for b in list(w.backends.values()):
        b.kill()

    unexpected, excused = classify(w)
    print("\nsoak: %.1f min, %d reloads (generation %d), %d backend kills, ferry exit %s" % (
        (now() - begin) / 60, generation - 1, generation, len(w.kills), rc))
    print("requests by kind (ok):")
    for kind in ("http", "http_ka", "https", "https_ka", "ws", "tcp", "slow", "h2", "h2c"):
        print("  %-9s %9d" % (kind, w.ok[kind]))
    print("  %-9s %9d" % ("total", sum(w.ok.values())))
    print("failures excused (in flight on a backend when it was killed): %d" % len(excused))
    for f in excused[:10]:
        print("  %s %s: %s (%s)" % (f["kind"], f["id"], f["error"], f["reason"]))
    print("unexpected failures: %d" % len(unexpected))
    for f in unexpected[:30]:
        print("  %s %s at %.1fs: %s" % (f["kind"], f["id"], f["start"] - begin, f["error"]))
    rss_ok = rss1 <= rss0 * (1 + RSS_GROWTH) + RSS_SLACK_KIB
    # idle: no client connection; upstream ones at most the keep-alive pools' bound
    fd_ok = (fds1["client"] == 0 and fds1["other"] <= fds0["other"] + FD_SLACK and
             fds1["upstream"] <= MAX_IDLE_UPSTREAM)
    print("RSS  start %d KiB, end %d KiB (%+.1f%%)%s" % (
        rss0, rss1, 100.0 * (rss1 - rss0) / rss0, "" if rss_ok else "  GREW"))
    print("fds  start %d, end %d%s" % (sum(fds0.values()), sum(fds1.values()),
                                       "" if fd_ok else "  GREW"))
    for what in ("client", "upstream", "other"):
        print("  %-8s start %4d, end %4d" % (what, fds0[what], fds1[what]))
    good = not unexpected and rss_ok and fd_ok and rc == 0
    print("soak: %s" % ("PASS" if good else "FAIL"))
    if good:
        subprocess.run(["rm", "-rf", workdir])
    else:
        print("scratch files (access log, ferry logs) kept in %s" % workdir)
    return 0 if good else 1


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
