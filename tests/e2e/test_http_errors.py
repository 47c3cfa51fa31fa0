#!/usr/bin/env python3
"""HTTP proxy errors: every status ferry generates, timeouts, request smuggling
attempts, broken and truncated backend responses, dead pooled connections."""

import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402


def proxy_config(backends, timeouts=None, limits=None, **pool_extra):
    pool = {"backends": backends}
    pool.update(pool_extra)
    cfg = {
        "admin": None,
        "workers": 1,
        "log": {"level": "info", "access": "off"},
        "listeners": {"web": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http",
                              "pool": "web"}},
        "pools": {"web": pool},
    }
    if timeouts:
        cfg["timeouts"] = timeouts
    if limits:
        cfg["limits"] = limits
    return cfg


def entries(*backends, **kw):
    out = []
    for b in backends:
        e = {"address": b.address, "name": b.name}
        e.update(kw)
        out.append(e)
    return out


def status_and_closed(port, raw, timeout=5.0):
    """Sends raw; returns (status, headers, body, seconds until the close)."""
    start = time.monotonic()
    got = ft.http_request(port, raw, timeout=timeout)
    elapsed = time.monotonic() - start
    assert elapsed < timeout, "connection not closed within %.1fs: %r" % (timeout, got[:200])
    status, headers, body = ft.parse_response(got)
    return status, headers, body, elapsed


def assert_rejected(port, raw, expected):
    status, headers, body, _ = status_and_closed(port, raw)
    assert status == expected, (raw[:120], status, body)
    assert headers.get("connection") == "close", headers
    assert body.startswith(b"%d " % expected), body


def test_client_errors_400_413_414_431_501_505():
    b = ft.Backend("alpha").start()
    f = ft.Ferry(proxy_config(entries(b), limits={"max_body_bytes": 1000})).start()
    port = f.port("web")
    with f, b:
        assert_rejected(port, b"GET / HTTP/1.1\r\nHost: a\r\nNo colon here\r\n\r\n", 400)
        assert_rejected(port, b"GET / HTTP/1.1\r\n\r\n", 400)                 # no Host
        assert_rejected(port, b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400)
        assert_rejected(port, b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n", 413)
        assert_rejected(port, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"400\r\n" + b"x" * 1024 + b"\r\n400\r\n" + b"x" * 1024 + b"\r\n0\r\n\r\n", 413)
        assert_rejected(port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414)
        assert_rejected(port, b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n", 431)
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
        assert_rejected(port, b"GET / HTTP/1.1\r\nHost: a\r\n" + many + b"\r\n", 431)
        assert_rejected(port, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501)
        assert_rejected(port, b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505)
        # within the limit all is well
        with ft.Client(port) as c:
            assert c.request("POST", "/echo", body=b"y" * 1000)[2] == b"y" * 1000
        # only the chunked 413 reached the backend (its head went before the body)
        assert b.stats()["app_requests"] == 2


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"

SMUGGLING = [
    ("CL and TE", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("TE and CL", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                  b"Content-Length: 5\r\n\r\n0\r\n\r\n"),
    ("differing CL", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                     b"Content-Length: 41\r\n\r\nhello"),
    ("CL list", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 41\r\n\r\nhello"),
    ("CL sign", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello"),
    ("TE chunked, identity", b"POST / HTTP/1.1\r\nHost: a\r\n"
                             b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"),
    ("TE xchunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"),
    ("TE folded", b"POST / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n Transfer-Encoding: chunked\r\n\r\n"
                  b"0\r\n\r\n"),
    ("TE space before colon", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"
                              b"0\r\n\r\n"),
    ("TE twice", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("TE vertical tab", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n"),
    ("TE in HTTP/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("bare LF", b"POST / HTTP/1.1\nHost: a\nContent-Length: 0\n\n"),
]


def test_smuggling_attempts_get_400_and_reach_no_backend():
    b = ft.Backend("alpha").start()
    f = ft.Ferry(proxy_config(entries(b))).start()
    port = f.port("web")
    with f, b:
        for name, raw in SMUGGLING:
            status, headers, _, _ = status_and_closed(port, raw + SMUGGLED)
            assert status == 400, (name, status)
            assert headers.get("connection") == "close", name
        assert b.stats()["app_requests"] == 0


def test_chunk_size_overflow_gets_400_and_no_second_request():
    b = ft.Backend("alpha").start()
    f = ft.Ferry(proxy_config(entries(b))).start()
    port = f.port("web")
    with f, b:
        for size in (b"10000000000000000", b"ffffffffffffffff0", b"-1", b"0x10"):
            raw = (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
                   size + b"\r\nabc\r\n0\r\n\r\n" + SMUGGLED)
            status, _, _, _ = status_and_closed(port, raw)
            assert status == 400, (size, status)
        # the head of each may have reached the backend, the smuggled request never
        assert b.stats()["app_requests"] <= 4


def test_404_when_no_route_matches():
    b = ft.Backend("alpha").start()
    cfg = proxy_config(entries(b))
    cfg["listeners"]["web"] = {"listen": cfg["listeners"]["web"]["listen"], "mode": "http",
                               "routes": [{"match": {"host": "app.example"}, "pool": "web"}]}
    f = ft.Ferry(cfg).start()
    with f, b, ft.Client(f.port("web")) as c:
        status, headers, body = c.request("GET", "/", host="other.example")
        assert status == 404 and body == b"404 Not Found\n"
        assert "connection" not in headers      # no body to skip: the connection goes on
        assert c.request("GET", "/", host="app.example")[0] == 200
        assert b.stats()["app_requests"] == 1


def test_408_for_a_slow_request_head():
    b = ft.Backend("alpha").start()
    f = ft.Ferry(proxy_config(entries(b), timeouts={"client_header_ms": 600})).start()
    with f, b, ft.connect(f.port("web")) as sock:
        start = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
        # trickling more bytes does not extend the deadline (slowloris)
        for piece in (b"X-A: 1\r\n", b"X-B: 2\r\n"):
            time.sleep(0.1)
            try:
                sock.sendall(piece)
            except OSError:     # a stalled client came after the 408: read it
                break
        got = ft.read_until_close(sock, timeout=5)
        elapsed = time.monotonic() - start
        status, headers, _ = ft.parse_response(got)
        assert status == 408 and headers["connection"] == "close"
        assert 0.55 < elapsed < 2.5, elapsed
        assert b.stats()["app_requests"] == 0


def test_idle_keepalive_connection_is_closed_silently():
    b = ft.Backend("alpha").start()
    f = ft.Ferry(proxy_config(entries(b), timeouts={"client_idle_ms": 300})).start()
    with f, b, ft.Client(f.port("web")) as c:
        assert c.request("GET", "/")[0] == 200
        start = time.monotonic()
        assert c.is_closed_by_peer(5)
        assert c.buf == b"" and time.monotonic() - start < 2.0


def _config_with_admin(backend, **timeouts):
    cfg = proxy_config(entries(backend), timeouts=timeouts)
    cfg["admin"] = {"listen": "127.0.0.1:%d" % ft.free_port()}
    return cfg


def _small_window_client(f):
    """A socket connected to ferry (and accepted) that takes little at a time, in small
    segments (which keep the kernel's send buffer on ferry's side small too): most of
    what it does not read stays in ferry's output."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    sock.connect(("127.0.0.1", f.port("web")))
    ft.poll_until(lambda: f.status()["connections"] == 1, message="connection accepted")
    return sock


def _seconds_until_closed(f, sock, limit=4.0):
    """Sends a byte every 250 ms, as a client that never reads but keeps its
    connection busy; returns how long until ferry has closed it (None: not in limit)."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        try:
            sock.sendall(b"x")
        except OSError:
            pass        # ferry reset the connection (it had unread bytes)
        if f.status()["connections"] == 0:
            return time.monotonic() - start
        time.sleep(0.25)
    return None


def test_client_that_never_reads_its_last_response_is_closed_though_it_keeps_sending():
    """The last response (Connection: close) has all left the backend: flushing it
    waits client_idle_ms for the client to take some. Bytes the client sends meanwhile
    do not count, or one that never reads would hold its slot while it trickles."""
    b = ft.Backend("alpha").start()
    f = ft.Ferry(_config_with_admin(b, client_idle_ms=1000)).start()
    with f, b, _small_window_client(f) as sock:
        # it fits in ferry's output under the high watermark (so ferry goes on reading
        # the client) but not in the kernel's buffers (had they taken it all, ferry
        # would close at once, which fails the check below too)
        sock.sendall(b"GET /bytes/200000 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        closed_after = _seconds_until_closed(f, sock)
        assert closed_after is not None, "still open after 4 s of a client that never reads"
        assert 0.9 < closed_after < 2.0, closed_after


def test_client_that_stops_reading_a_response_body_is_closed_and_the_backend_not_blamed():
    """A response body held up by a client that does not read: after client_idle_ms
    without it taking any (what it sends does not count) ferry closes the client, and
    the backend, which only waited for room, gets no failure."""
    b = ft.Backend("alpha").start()
    f = ft.Ferry(_config_with_admin(b, client_idle_ms=1000)).start()
    with f, b, _small_window_client(f) as sock:
        sock.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: a\r\n\r\n" % (256 * 1024 * 1024))
        closed_after = _seconds_until_closed(f, sock)
        assert closed_after is not None, "still open after 4 s of a client that never reads"
        assert 0.9 < closed_after < 2.0, closed_after
        backend = f.status()["pools"]["web"]["backends"][0]
        assert backend["failures"] == 0 and backend["state"] == "up", backend


def _upload_to_reject(port, body, before_answer=None):
    """POSTs body to the backend's /reject/413 through ferry, which answers at once
    and resets the connection; before_answer(pusher) runs once the upload is under way.
    Returns ferry's answer (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /reject/413 HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n"
                     % len(body))
        pusher = ft.Pusher(sock, len(body), data=body)
        if before_answer:
            before_answer(pusher)
        status, _, got = ft.Client.over(sock, timeout=10).read_response()
        sock.shutdown(socket.SHUT_RDWR)
        pusher.join(5)
        return status, got


def test_early_answer_to_an_upload_reaches_the_client_though_the_backend_resets():
    """A backend answers an upload at once (413, Connection: close) without reading it
    and closes, so the kernel resets the connection while ferry still sends the body.
    What the backend sent before stays readable: that answer is the client's (never a
    502), and the backend, which is healthy, gets no failure."""
    b = ft.Backend("alpha").start()
    f = ft.Ferry(_config_with_admin(b)).start()
    body = b"u" * (8 * 1024 * 1024)

    def answer_while_ferry_sleeps(pusher):
        # ferry has filled the connection and waits to write more; it wakes to the
        # answer and the reset together, and its pending write fails first
        pusher.wait_stalled()
        os.kill(f.pid, signal.SIGSTOP)
        try:
            os.kill(b.pid, signal.SIGCONT)
            ft.poll_until(lambda: b.stats()["active"] == 1, message="backend answered and reset")
        finally:
            os.kill(f.pid, signal.SIGCONT)

    with f, b:
        os.kill(b.pid, signal.SIGSTOP)      # until ferry has sent what it can
        try:
            got = _upload_to_reject(f.port("web"), body, answer_while_ferry_sleeps)
            assert got == (413, b"Content Too Large\n"), got
        finally:
            os.kill(b.pid, signal.SIGCONT)
        # and as it comes: which of ferry's reads and writes sees the reset first varies
        for _ in range(5):
            got = _upload_to_reject(f.port("web"), body)
            assert got == (413, b"Content Too Large\n"), got
        backend = f.status()["pools"]["web"]["backends"][0]
        assert backend["failures"] == 0 and backend["state"] == "up", backend


def test_502_when_backend_refuses_and_503_once_passively_down():
    port_nobody = ft.free_port()
    f = ft.Ferry(proxy_config([{"address": "127.0.0.1:%d" % port_nobody}])).start()
    with f:
        for _ in range(3):
            status, _, _, elapsed = status_and_closed(
                f.port("web"), b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            assert status == 502 and elapsed < 1.0, (status, elapsed)
        # three consecutive failures mark the only backend down: nothing is eligible
        status, _, _, _ = status_and_closed(
            f.port("web"), b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert status == 503


def test_retry_goes_to_the_next_backend_on_connect_failure():
    b = ft.Backend("alpha").start()
    dead = {"address": "127.0.0.1:%d" % ft.free_port(), "name": "dead"}
    f = ft.Ferry(proxy_config([dead] + entries(b), retries=1)).start()
    with f, b, ft.Client(f.port("web")) as c:
        for _ in range(4):
            status, headers, _ = c.request("GET", "/")
            assert status == 200 and headers["x-backend"] == "alpha"


def test_502_for_garbage_response():
    b = ft.Backend("alpha").start()
    f = ft.Ferry(proxy_config(entries(b))).start()
    with f, b, ft.Client(f.port("web")) as c:
        status, _, body = c.request("GET", "/garbage")
        assert status == 502 and body == b"502 Bad Gateway\n"
        assert c.request("GET", "/")[0] == 200


def test_503_when_every_backend_is_at_max_connections():
    b = ft.Backend("alpha").start()
    f = ft.Ferry(proxy_config(entries(b, max_connections=1))).start()
    with f, b, ft.Client(f.port("web")) as busy, ft.Client(f.port("web")) as c:
        busy.send(b"GET /hang HTTP/1.1\r\nHost: a\r\n\r\n")
        ft.poll_until(lambda: b.stats()["app_requests"] == 1, message="/hang in flight")
        status, _, body = c.request("GET", "/")
        assert status == 503 and body == b"503 Service Unavailable\n"
        busy.close()
        # the slot comes back once the hanging request is gone
        ft.poll_until(lambda: c.request("GET", "/")[0] == 200, message="slot freed")


def test_504_when_backend_does_not_answer():
    b = ft.Backend("alpha").start()
    f = ft.Ferry(proxy_config(entries(b), timeouts={"upstream_response_ms": 300})).start()
    with f, b, ft.Client(f.port("web")) as c:
        start = time.monotonic()
        status, _, body = c.request("GET", "/hang")
        assert status == 504 and body == b"504 Gateway Timeout\n"
        assert 0.25 < time.monotonic() - start < 2.0
        assert c.request("GET", "/")[0] == 200


def test_backend_closing_mid_response_closes_the_client():
    b = ft.Backend("alpha").start()
    f = ft.Ferry(proxy_config(entries(b))).start()
    with f, b:
        start = time.monotonic()
        got = ft.http_request(f.port("web"), b"GET /close-mid HTTP/1.1\r\nHost: a\r\n\r\n")
        assert time.monotonic() - start < 3.0, "client not closed"
        head, _, body = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 1000" in head
        assert 0 < len(body) < 1000, len(body)


def test_pooled_connection_closed_by_backend_while_idle_is_not_used():
    # idle from its accept on: ferry must have sent the first request by then
    b = ft.Backend("alpha", extra=["--idle-ms", str(100 * ft.SLOW)]).start()
    f = ft.Ferry(proxy_config(entries(b))).start()
    with f, b, ft.Client(f.port("web")) as c:
        assert c.request("GET", "/")[0] == 200
        # the backend drops the idle connection (only /__stats' own one stays open), and
        # ferry sees it go (it closes its end: slow under valgrind, where the POST could
        # otherwise overtake the FIN and meet the keep-alive race no proxy can close)
        ft.poll_until(lambda: b.stats()["active"] == 1, message="backend closed idle connection")
        ft.poll_until(lambda: ft.connections_to(f.pid, b.port) == 0,
                      message="ferry dropped the idle connection")
        # a POST is never re-sent, so it only succeeds if the dead connection was dropped
        status, _, body = c.request("POST", "/echo", body=b"abc")
        assert status == 200 and body == b"abc"


class ForgetfulBackend:
    """Answers the first request on each connection (keep-alive), then closes the
    connection when the second one arrives, without answering: a backend whose idle
    timeout races with our reuse."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.connections = 0
        self.requests = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn):
        buf = b""
        served = 0
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                self.requests.append(head.split(b" ")[0].decode())
                if served == 1:
                    return
                served += 1
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def close(self):
        self.sock.close()


def test_reused_connection_failing_before_response_is_resent_only_when_safe():
    fb = ForgetfulBackend()
    f = ft.Ferry(proxy_config([{"address": fb.address}], retries=0)).start()
    try:
        with f, ft.Client(f.port("web")) as c:
            assert c.request("GET", "/")[2] == b"ok"
            # reuses the pooled connection, which dies: re-sent on a fresh one
            status, _, body = c.request("GET", "/")
            assert status == 200 and body == b"ok"
            assert fb.requests == ["GET", "GET", "GET"] and fb.connections == 2
            # a POST on the (again) pooled connection is not repeated: 502
            status, _, _ = c.request("POST", "/", body=b"x")
            assert status == 502
            assert fb.requests == ["GET", "GET", "GET", "POST"], fb.requests
    finally:
        fb.close()


if __name__ == "__main__":
    ft.main()
