#!/usr/bin/env python3
"""Fault injection: misbehaving clients and running out of descriptors.

Clients that go away in the middle of their request body, in the middle of the
response, or in the middle of the TLS handshake (over HTTP/1.1 and HTTP/2, by close
and by reset): the backend connection is closed, not pooled (the backend sees a short
body and nothing after it), the backend is not blamed, handshake failures are counted
and their connection slots given back. 5,000 idle connections: all accepted, a bounded
cost each, a normal request still prompt, all released. A low RLIMIT_NOFILE: existing
connections keep working, no busy loop, accepts resume once descriptors are free, and
a socket ferry cannot open is not the backend's failure. Every case ends with
faultkit.Checkup. test_faults_reload.py runs these cases again while ferry reloads.
"""

import contextlib
import os
import resource
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultkit as fk  # noqa: E402
import ferrytest as ft  # noqa: E402
import h2client as h2  # noqa: E402
from rawbackend import OK, RawBackend  # noqa: E402

UPLOAD = 64 << 20       # announced, never sent whole
SENT = 256 << 10        # what the client sends (or reads) before it goes away
MAX_CONNECTIONS = 8     # fewer than the handshakes cut short: a lost slot shows
REPEAT = 2              # each way of going away, per protocol
IDLE = 5000
# ferry's memory per idle HTTP/1.1 connection in this (ASan) build: the session
# (struct http_session, 1088 bytes with its exchange), its two evbuffers, read event,
# timer and the exchange's head buffer (~0.7 KiB), each allocation padded with ASan's
# redzones and chunk header, 1/8 more for ASan's shadow memory, and libevent's
# per-descriptor map: measured 3.1 KiB (1.9 KiB without ASan). The bound leaves room
# for noise and fails if an idle connection kept a read buffer (16 KiB) or a
# bufferevent of its own.
IDLE_KIB_PER_CONNECTION = 5
EMFILE_CPU_SHARE = 0.10     # of one core, while accepts fail for lack of descriptors

SLOW = threading.Event()    # "/slow" answers once the test sets it


def sink_upload(conn, req):
    """Reads the whole body (or as much as comes before ferry closes), then "ok"."""
    conn.read_body(req)
    if req.body_received < req.content_length:
        return False
    return conn.send(OK)


def stream_download(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (1 << 40))
    conn.stream()


def slow(conn, req):
    conn.hold(SLOW)
    return conn.send(OK)


SCRIPTS = {"/upload": sink_upload, "/download": stream_download, "/slow": slow}


def fault_config(rb, health_check=None, **extra):
    """Listeners "web" (HTTP/1.1 and h2c), "tls" (TLS, ALPN h2 and http/1.1) and
    "tcp" (a relay) in front of the raw backend."""
    pool = {"backends": [{"address": rb.address, "name": "raw"}],
            "keepalive": {"max_idle": 2}, "retries": 0}
    if health_check:
        pool["health_check"] = health_check
    tls = {"certificates": [{"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY}],
           "alpn": ["h2", "http/1.1"]}
    config = {
        "workers": 1,
        "log": {"level": "info", "access": "off"},
        "limits": {"max_connections": MAX_CONNECTIONS},
        "listeners": {
            "web": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http",
                    "http2": {"h2c": True}, "pool": "raw"},
            "tls": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http", "tls": tls,
                    "pool": "raw"},
            "tcp": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "tcp", "pool": "raw"},
        },
        "pools": {"raw": pool},
    }
    config.update(extra)
    return config


@contextlib.contextmanager
def running(**config):
    with RawBackend(SCRIPTS) as rb, \
            ft.Ferry(fault_config(rb, **config), env=fk.ferry_env()) as f:
        yield fk.Env(f, rb)


standalone = fk.standalone(running)


def go_away(sock, how):
    """Closes sock: "close" (FIN) or "reset" (RST)."""
    if how == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def next_backend_conn(env, path, count_before):
    """The backend connection of the next request for path (after count_before)."""
    ft.poll_until(lambda: env.rb.requests_for(path) > count_before, timeout=10,
                  message="request for %s at the backend" % path)
    return env.rb.conn_for(path)


def assert_freed(conn, path):
    """Ferry closed the backend connection after path (never pooled it)."""
    assert conn.done.wait(10), "ferry still holds the backend connection: %r" % conn
    assert conn.peer_closed and conn.requests[-1].path == path, conn


def h2_ok(c):
    s = c.get("/ok")
    assert (s.status, bytes(s.data)) == (200, b"ok"), s


# ---- clients that go away ------------------------------------------------------------

@standalone
def test_client_gone_in_the_middle_of_its_request_body(env):
    """The backend gets a short body, then ferry's close: nothing follows on that
    connection (not pooled), and no failure is counted against it."""
    check = env.checkup()
    failures = fk.failures(env.f)
    for how in ("close", "reset") * REPEAT:
        n = env.rb.requests_for("/upload")
        sock = ft.connect(env.port)
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % UPLOAD
                     + b"u" * SENT)
        conn = next_backend_conn(env, "/upload", n)
        ft.poll_until(lambda: conn.requests[-1].body_received > 0, timeout=10)
        go_away(sock, how)
        assert_freed(conn, "/upload")
        assert conn.requests[-1].body_received < UPLOAD, conn
    for how in ("stream reset", "connection closed"):
        n = env.rb.requests_for("/upload")
        c = h2.H2Conn(env.port)
        sid = c.request("POST", "/upload", headers=[("content-length", str(UPLOAD))],
                        end_stream=False)
        c.send_data(sid, b"u" * SENT)
        c.wait(lambda: env.rb.requests_for("/upload") > n and
               env.rb.conn_for("/upload").requests[-1].body_received > 0,
               what="body at the backend")
        conn = env.rb.conn_for("/upload")
        if how == "stream reset":
            c.reset_stream(sid)
            c.flush()
            assert_freed(conn, "/upload")
            h2_ok(c)
        c.close()
        assert_freed(conn, "/upload")
    assert fk.failures(env.f) == failures, env.f.status()
    check.verify()


@standalone
def test_client_gone_in_the_middle_of_the_response(env):
    """A client that stops reading and goes: ferry frees both connections, the
    backend's writes fail, ferry_connections_active is back to 0, no failure counted."""
    # Once before measuring: the first time several streams' buffers are full at once,
    # the allocator maps memory that it keeps for the next time (without this, RSS
    # grew by 8-9 MiB in this case twice under full-suite load, past the bound).
    close_with_downloads(env, 4)
    check = env.checkup()
    failures = fk.failures(env.f)
    for how in ("close", "reset") * REPEAT:
        n = env.rb.requests_for("/download")
        sock = ft.connect(env.port)
        sock.sendall(b"GET /download HTTP/1.1\r\nHost: x\r\n\r\n")
        got = 0
        while got < SENT:
            chunk = sock.recv(65536)
            assert chunk, "closed after %d bytes" % got
            got += len(chunk)
        conn = next_backend_conn(env, "/download", n)
        go_away(sock, how)
        assert_freed(conn, "/download")
    n = env.rb.requests_for("/download")
    with h2.H2Conn(env.port) as c:
        s = c.stream(c.request("GET", "/download", keep_data=False))
        c.wait(lambda: s.received >= SENT, what="some of the download")
        conn = next_backend_conn(env, "/download", n)
        c.reset_stream(s.id)
        c.flush()
        assert_freed(conn, "/download")
        h2_ok(c)
    # a connection closed with several streams under way: every one is freed
    close_with_downloads(env, 4)
    assert fk.failures(env.f) == failures, env.f.status()
    check.verify()


def close_with_downloads(env, n_streams):
    """An HTTP/2 connection closed while n_streams downloads are under way; every
    backend connection is freed."""
    n = env.rb.requests_for("/download")
    c = h2.H2Conn(env.port)
    streams = [c.stream(c.request("GET", "/download", keep_data=False))
               for _ in range(n_streams)]
    c.wait(lambda: all(s.received > 0 for s in streams), what="every download started")
    c.close()
    ft.poll_until(lambda: env.rb.requests_for("/download") == n + n_streams, timeout=10)
    for conn in env.rb.conns_with("/download")[-n_streams:]:
        assert_freed(conn, "/download")


def tls_failures(f):
    m = f.metrics()
    return {dict(labels)["reason"]: value for (name, labels), value in m.items()
            if name == "ferry_tls_handshake_failures_total"}


@standalone
def test_client_gone_in_the_middle_of_the_tls_handshake(env):
    """Half a ClientHello then FIN; a whole one then FIN; a whole one, the server's
    answer read, then RST: each is one handshake failure ("closed"), and its slot
    comes back (more of them than limits.max_connections, then a normal request)."""
    check = env.checkup(listener="tls", tls=True)
    before = tls_failures(env.f)
    hello = ft.client_hello()
    ways = ("half hello", "hello", "hello, answer, reset")
    for way in ways * (MAX_CONNECTIONS // len(ways) + 1):
        sock = ft.connect(env.f.port("tls"))
        sock.sendall(hello[:len(hello) // 2] if way == "half hello" else hello)
        if way.endswith("reset"):
            assert sock.recv(5)[:1] == b"\x16", "no handshake record from ferry"
        go_away(sock, "reset" if way.endswith("reset") else "close")
    attempts = len(ways) * (MAX_CONNECTIONS // len(ways) + 1)
    check.settle()
    after = tls_failures(env.f)
    assert sum(after.values()) - sum(before.values()) == attempts, (before, after)
    assert after["closed"] - before["closed"] == attempts, (before, after)
    check.verify()


CASES = [test_client_gone_in_the_middle_of_its_request_body,
         test_client_gone_in_the_middle_of_the_response,
         test_client_gone_in_the_middle_of_the_tls_handshake]


# ---- descriptors -----------------------------------------------------------------------

def raise_nofile(want):
    """This process's soft RLIMIT_NOFILE raised to at least want (ferry inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return
    if hard != resource.RLIM_INFINITY and hard < want:
        raise ft.Skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, want))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def open_idle(port, n, accepted, batch=1000):
    """n connections to port, opened in batches that ferry accepts before the next
    (accepted() counts them), so that none waits for a SYN retransmission."""
    socks = []
    while len(socks) < n:
        for _ in range(min(batch, n - len(socks))):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        ft.poll_until(lambda: accepted() >= len(socks), timeout=30,
                      message="%d connections accepted" % len(socks))
    return socks


def close_in_batches(f, socks, batch=250):
    """Closes socks a batch at a time, each batch gone from ferry before the next: a
    bounded number of connections ending at once (each reads its EOF into a fresh
    buffer)."""
    for i in range(0, len(socks), batch):
        for sock in socks[i:i + batch]:
            sock.close()
        left = len(socks) - min(i + batch, len(socks))
        ft.poll_until(lambda: fk.active(f, "web") <= left, timeout=30,
                      message="%d connections left" % left)


def idle_connections(env, n, while_open=None):
    """n idle connections: all accepted, one descriptor and at most
    IDLE_KIB_PER_CONNECTION each; a normal request served meanwhile; all released
    once closed, with what they took as the only memory left (the allocator keeps what
    ferry freed)."""
    check = env.checkup(rss_slack_kib=n * IDLE_KIB_PER_CONNECTION + env.rss_slack_kib)
    with env.still():
        rss = h2.settled_rss_kib(env.f.pid)
    socks = open_idle(env.port, n, lambda: fk.active(env.f, "web"))
    try:
        with env.still():
            ft.poll_until(lambda: fk.active(env.f, "web") == n, timeout=10,
                          message="%d connections active" % n)
            assert fk.fd_count(env.f.pid) == check.fds + n, "more than a descriptor each"
            per_connection = (h2.settled_rss_kib(env.f.pid) - rss) / n
        print("RSS per idle connection: %.2f KiB" % per_connection)
        if not ft.runs_under_tsan(env.f.pid):     # its shadow memory is 2-4x the rest
            assert per_connection <= IDLE_KIB_PER_CONNECTION, per_connection
        check.served()
        if while_open:
            while_open(socks)
        close_in_batches(env.f, socks)
    finally:
        for sock in socks:
            sock.close()
    check.verify()


def test_5000_idle_connections_cost_little_and_are_all_released():
    """All accepted (max_connections allows them), one descriptor and a few KiB each,
    a normal request still prompt, ferry_connections_active back to 0 once closed."""
    raise_nofile(2 * IDLE + 1000)
    with running(limits={"max_connections": 2 * IDLE}) as env:
        idle_connections(env, IDLE)


# rise: a backend taken down would still be down when /status can be read again
SCARCE = {"health_check": {"type": "http", "path": "/ok", "interval_ms": 300,
                           "timeout_ms": 250, "rise": 20, "fall": 3},
          "limits": {"max_connections": 1000}}


def test_out_of_descriptors_keeps_connections_and_blames_no_backend():
    """RLIMIT_NOFILE runs out while two clients' requests hold the pooled upstream
    connections. With one descriptor left, a new client is accepted but no upstream
    socket can be opened for it: an HTTP client gets 503 (each HTTP/2 stream too) and
    a tcp client is closed, promptly, and no failure is counted (nor by the health
    check, which cannot open its socket either). Then idle clients take everything:
    accepting pauses without spinning, existing connections go on, and once clients
    close, accepts resume."""
    with running(**SCARCE) as env:
        out_of_descriptors(env)


def fewest_fds(pid, seconds):
    """The fewest descriptors pid had open, sampled over `seconds`."""
    fewest, deadline = fk.fd_count(pid), time.monotonic() + seconds
    while time.monotonic() < deadline:
        fewest = min(fewest, fk.fd_count(pid))
        time.sleep(0.005)
    return fewest


def out_of_descriptors(env, while_out=None):
    """The case above on env (a ferry running with SCARCE); while_out() runs while
    ferry has no descriptor left."""
    f = env.f
    check = env.checkup()
    a, b, c = (ft.Client(env.port) for _ in range(3))
    SLOW.clear()
    slow_requests(env, a, b)
    SLOW.set()
    assert a.read_response()[0] == b.read_response()[0] == 200
    assert c.request("GET", "/ok")[0] == 200       # two pooled connections now
    SLOW.clear()
    slow_requests(env, a, b)                        # and both in use
    _, hard = resource.prlimit(f.pid, resource.RLIMIT_NOFILE)
    # The count without a health probe's socket (one every interval_ms, open up to
    # timeout_ms): counted with one, the limit would leave two descriptors once it
    # closed, and a late client would get its upstream connection.
    resource.prlimit(f.pid, resource.RLIMIT_NOFILE, (fewest_fds(f.pid, 0.4) + 1, hard))

    for _ in range(3):      # one descriptor left: accepted, then no upstream socket
        start = time.monotonic()
        with ft.Client(env.port) as late:
            status, _, _ = late.request("GET", "/ok", headers={"Connection": "close"})
        assert status == 503 and time.monotonic() - start < fk.PROMPT_S, status
        with h2.H2Conn(env.port) as late:
            assert [late.get("/ok").status for _ in range(2)] == [503, 503]
        with ft.connect(f.port("tcp")) as relayed:
            relayed.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            assert fk.read_to_end(relayed, timeout=5)[0] == b""

    hogs = [ft.connect(env.port) for _ in range(8)]     # the rest wait in the backlog
    ft.poll_until(lambda: any(h2.holds_connection(f.pid, env.port, hog.getsockname()[1])
                              for hog in hogs), timeout=10,
                  message="an idle client took the last descriptor")
    before, start = ft.cpu_seconds(f.pid), time.monotonic()
    for _ in range(3):
        got = c.request("GET", "/ok")
        assert got[0] == 503, got
    time.sleep(1.0)                     # the measuring window, not a wait
    used = (ft.cpu_seconds(f.pid) - before) / (time.monotonic() - start)
    print("CPU while out of descriptors: %.1f%% of a core" % (100 * used))
    assert used < EMFILE_CPU_SHARE, "%.0f%% of a core while out of descriptors" % (
        100 * used)
    if while_out:
        while_out()
    SLOW.set()
    for client in (a, b):
        got = client.read_response()
        assert got[::2] == (200, b"ok"), got

    for sock in hogs:           # frees one descriptor; the rest were never accepted
        sock.close()
    with ft.Client(env.port, timeout=10) as new:
        got = new.request("GET", "/ok")
        assert got[::2] == (200, b"ok"), got
    resource.prlimit(f.pid, resource.RLIMIT_NOFILE, (hard, hard))
    for client in (a, b, c):
        client.close()
    status = f.status()
    raw = status["pools"]["raw"]["backends"][0]
    assert (raw["state"], raw["failures"]) == ("up", 0), status
    check.verify()


def slow_requests(env, *clients):
    """Each client sends GET /slow; returns once the backend has them all."""
    n = env.rb.requests_for("/slow")
    for client in clients:
        client.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    ft.poll_until(lambda: env.rb.requests_for("/slow") == n + len(clients), timeout=10,
                  message="/slow requests at the backend")


if __name__ == "__main__":
    ft.main()
