"""faultkit — what the fault-injection files (test_faults_*.py) share: the check that
ferry is healthy after a fault (Checkup), reloads racing the faults (Reloader), and how
a client tells a cut response from a whole one.

A fault case ends with Checkup.verify(): ferry_connections_active is back to 0, a
normal request is served promptly, /status answers, and ferry's descriptors and memory
are back within a bound of what they were before the case. Cases repeat their fault a
few times, so that a descriptor leaked per fault exceeds the bound.
"""

import contextlib
import functools
import json
import os
import socket
import ssl
import threading
import time

import ferrytest as ft

# A normal request after a fault: milliseconds, but this is a sanitizer build on a
# shared machine.
PROMPT_S = 2.0
# Descriptors a case may leave above its start: idle pooled upstream connections (the
# fault configs keep at most 2 per worker per backend; the baseline holds 1).
FD_SLACK = 1
# Memory a case may leave: the allocator keeps what ferry freed, and buffers reach their
# high-water marks (measured: 1-5 MiB per case). Memory leaks are LeakSanitizer's to
# find (ferry's exit reports them); this bound catches what grows with the bytes a
# fault moves (64 MiB of an upload held, say) or with the connections it leaves.
RSS_SLACK_KIB = 8 * 1024


def ferry_env():
    """Environment for the fault cases' ferry: ASan's quarantine (freed blocks held back
    to catch a use after free, 256 MiB by default) kept small, so that RSS measures
    what ferry holds, not what the bytes it moved once took."""
    return {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "detect_leaks=1") +
            ":quarantine_size_mb=4"}


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def active(f, listener):
    return ft.metric(f.metrics(), "ferry_connections_active", listener=listener)


def backends(f):
    """[(pool, backend status dict)] of /status."""
    return [(pool, b) for pool, p in f.status()["pools"].items() for b in p["backends"]]


def failures(f):
    """The failures counted against every backend (connects, responses, timeouts)."""
    return sum(b["failures"] for _, b in backends(f))


def read_to_end(sock, timeout=10.0):
    """Everything sock gets until the peer ends the connection: (bytes, "eof" | "reset").
    AssertionError when it does not end within timeout."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "connection not ended after %.1fs; got %r" % (timeout, bytes(data[:200]))
        sock.settimeout(left)
        try:
            chunk = sock.recv(262144)
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError):
            return bytes(data), "reset"
        if not chunk:
            return bytes(data), "eof"
        data += chunk


def assert_cut(data, how, status=200):
    """A client got a response the backend cut (`data`, ended by `how`): its head with
    `status`, and an end it cannot take for a whole response — a reset, or an EOF before
    the end its framing announced. A close-delimited body ended by a clean EOF would
    look whole, so that is a failure too."""
    _, code, headers, _ = ft._parse_head(data, 0)
    assert code == status, (code, data[:200])
    if how == "reset":
        return
    try:
        ft.parse_one(data, eof=True)
    except ft.Incomplete:
        return
    raise AssertionError("a cut response reached the client as a whole one (%s, %d bytes): %r"
                         % (headers, len(data), data[:200]))


def standalone(running):
    """A decorator: case(env) as a test, on a ferry of its own (the context running())
    when called without one, as ft.main() does; test_faults_reload.py passes its own."""
    def wrap(case):
        @functools.wraps(case)
        def test(env=None):
            if env is not None:
                return case(env)
            with running() as own:
                return case(own)
        return test
    return wrap


class Env:
    """What a fault case runs on: ferry `f` (its listener "web"), the backend `rb`, and
    how the case's Checkup measures: rss_slack_kib, and still() — a context in which
    nothing but the case moves ferry's descriptors or memory (test_faults_reload.py
    pauses its reloads in it)."""

    def __init__(self, f, rb):
        self.f, self.rb, self.port = f, rb, f.port("web")
        self.rss_slack_kib = RSS_SLACK_KIB
        self.still = contextlib.nullcontext

    def checkup(self, **kw):
        kw.setdefault("rss_slack_kib", self.rss_slack_kib)
        return Checkup(self.f, still=self.still, **kw)


class Checkup:
    """Ferry's state before a case; verify() checks it is healthy again after it.

    listener: the plain http listener a normal request goes to (GET `path`, answered
    `body`); tls: that listener is TLS. The baseline is taken after one such request,
    so that its pooled upstream connection is in it. still: see Env."""

    def __init__(self, f, listener="web", path="/ok", body=b"ok", tls=False,
                 rss_slack_kib=RSS_SLACK_KIB, fd_slack=FD_SLACK,
                 still=contextlib.nullcontext):
        self.f = f
        self.listener = listener
        self.path = path
        self.body = body
        self.tls = tls
        self.rss_slack_kib = rss_slack_kib
        self.fd_slack = fd_slack
        self.still = still
        self.served()
        with still():
            self.settle()
            self.fds = fd_count(f.pid)
            self.rss = ft.rss_kib(f.pid)

    def served(self):
        """A normal request on a new connection, answered promptly."""
        start = time.monotonic()
        with ft.Client(self.f.port(self.listener), tls=self.tls, timeout=5) as c:
            status, _, body = c.request("GET", self.path, headers={"Connection": "close"})
        took = time.monotonic() - start
        assert (status, body) == (200, self.body), (status, body[:200])
        assert took < PROMPT_S, "a normal request took %.2fs" % took

    def settle(self):
        ft.poll_until(lambda: active(self.f, self.listener) == 0, timeout=10,
                      message="ferry_connections_active{listener=%s} back to 0" % self.listener)

    def verify(self):
        self.settle()
        self.served()
        assert self.f.status()["generation"] >= 1
        with self.still():
            self._verify_resources()

    def _verify_resources(self):
        self.settle()
        fds = []
        try:
            ft.poll_until(lambda: fds.append(fd_count(self.f.pid)) or
                          fds[-1] <= self.fds + self.fd_slack, timeout=10)
        except AssertionError:
            raise AssertionError("ferry holds %d descriptors, %d before the case:\n%s" % (
                fds[-1], self.fds, "\n".join(sorted(self._fd_links())[:60])))
        grown = ft.rss_kib(self.f.pid) - self.rss
        if not ft.runs_under_tsan(self.f.pid):   # TSan's own memory grows with threads' history
            assert grown <= self.rss_slack_kib, "ferry's RSS grew by %d KiB in the case" % grown

    def _fd_links(self):
        out = []
        for fd in os.listdir("/proc/%d/fd" % self.f.pid):
            try:
                out.append("%s -> %s" % (fd, os.readlink("/proc/%d/fd/%s" % (self.f.pid, fd))))
            except OSError:
                pass
        return out


def write_atomically(f, config):
    """Ferry's config file replaced in one step (a reload never reads half of it)."""
    tmp = f.config_path + ".tmp"
    with open(tmp, "w") as out:
        json.dump(config, out, indent=2)
    os.replace(tmp, f.config_path)
    f.config = json.loads(json.dumps(config))


PROBE_EVERY_S = 0.01
# Reloads cost memory in the ASan build: 200 reloads of a small config on an idle
# ferry grow its RSS by ~16 MiB, levelling off (the allocator's caches and quarantine;
# the same 200 reloads grow a release build by 0.15 MiB).
RSS_RELOADS_KIB = 16 * 1024


class Reloader:
    """Reloads ferry (SIGHUP) over and over while a case runs, alternating its config
    with `other` (same listeners; a config that changes what a reload rebuilds), each
    reload applied before the next. Meanwhile a prober connects to `port` again and
    again: no connection may be refused while listeners are carried over.

        with Reloader(f, other, port) as r:
            case(...)
        # on exit: reloads happened, none failed, nothing refused
    """

    def __init__(self, f, other, port):
        self.f = f
        self.configs = [json.loads(json.dumps(f.config)), json.loads(json.dumps(other))]
        for config in self.configs:
            config["admin"] = f.config["admin"]
        self.port = port
        self.reloads = 0
        self.refused = 0
        self.probes = 0
        self.error = None
        self._stop = threading.Event()
        self._reloading = threading.Lock()  # held through one reload, see paused()
        self._probing = threading.Lock()
        self._threads = [threading.Thread(target=self._reload, daemon=True),
                         threading.Thread(target=self._probe, daemon=True)]

    def _reloads_done(self):
        m = self.f.metrics()
        return sum(ft.metric(m, "ferry_reloads_total", result=r) for r in ("ok", "failed"))

    def _reload(self):
        try:
            done = self._reloads_done()
            while not self._stop.is_set():
                with self._reloading:
                    write_atomically(self.f, self.configs[(self.reloads + 1) % 2])
                    self.f.reload()
                    ft.poll_until(lambda: self._reloads_done() > done, timeout=10,
                                  message="reload %d applied" % (self.reloads + 1))
                    done += 1
                    self.reloads += 1
        except BaseException as e:          # noqa: B036 - reported by stop()
            self.error = e

    def _probe(self):
        while not self._stop.is_set():
            with self._probing:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                except ConnectionRefusedError:
                    self.refused += 1
                except OSError:
                    pass
                self.probes += 1
            self._stop.wait(PROBE_EVERY_S)

    @contextlib.contextmanager
    def paused(self):
        """Neither reloads nor probes inside (a measurement that needs ferry still)."""
        with self._reloading, self._probing:
            yield

    def race(self, env):
        """Makes env's cases measure around the reloads (fk.Env.still) and allow for
        what reloads cost in this build: RSS_RELOADS_KIB."""
        env.still = self.paused
        env.rss_slack_kib = RSS_SLACK_KIB + RSS_RELOADS_KIB
        return self

    def wait(self, n, timeout=20.0):
        """Until at least n more reloads are done."""
        target = self.reloads + n
        ft.poll_until(lambda: self.reloads >= target or self.error, timeout=timeout,
                      message="%d reloads" % n)

    def __enter__(self):
        self.failed_before = ft.metric(self.f.metrics(), "ferry_reloads_total", result="failed")
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(15)
        if self.error:
            raise self.error
        assert self.reloads > 0, "no reload ran during the case"
        assert self.refused == 0, "%d of %d connections refused during reloads" % (
            self.refused, self.probes)
        m = self.f.metrics()
        failed = ft.metric(m, "ferry_reloads_total", result="failed") - self.failed_before
        assert failed == 0, "%d reloads failed:\n%s" % (failed, self.f.log()[-3000:])

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self._stop.set()
            return False
        self.stop()
        return False
