#!/usr/bin/env python3
"""demo_backend on its own (no ferry): the tool every other e2e test relies on must
itself put the right bytes on the wire."""

import base64
import hashlib
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402


def _send_in_thread(sock, data, half_close=True):
    def run():
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_echo_mode_returns_every_byte_then_closes_after_half_close():
    data = os.urandom(1024 * 1024) + ft.pattern_bytes(3 * 1024 * 1024)
    with ft.Backend("e", mode="echo") as b:
        with ft.connect(b.port, timeout=20) as sock:
            sender = _send_in_thread(sock, data)
            got = ft.read_until_close(sock, timeout=20)
            sender.join(5)
        assert len(got) == len(data), "echoed %d of %d bytes" % (len(got), len(data))
        assert got == data, "echoed bytes differ"


def test_echo_mode_stops_reading_when_client_does_not_read():
    total = 64 * 1024 * 1024
    data = ft.pattern_bytes(total)
    with ft.Backend("e", mode="echo") as b, ft.connect(b.port, timeout=30) as sock:
        rss_before = ft.rss_kib(b.pid)
        pusher = ft.Pusher(sock, total, data=data, shut_wr=True)
        sent = pusher.wait_stalled(timeout=15)
        assert sent < total // 2, "backend swallowed %d bytes unread" % sent
        grown = ft.rss_kib(b.pid) - rss_before
        assert grown < 16 * 1024, "backend grew %d KiB while the client did not read" % grown
        got = ft.read_until_close(sock, timeout=30)
        pusher.join(5)
        assert len(got) == total and got == data, "echoed %d of %d" % (len(got), total)


def test_bytes_route_is_streamed_not_built_in_memory():
    with ft.Backend("a") as b, ft.Client(b.port, timeout=10) as c:
        rss_before = ft.rss_kib(b.pid)
        c.send(b"GET /bytes/200000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        got = c.read_exactly(100000)
        assert got.startswith(b"HTTP/1.1 200 OK\r\n"), got[:100]
        assert b"Content-Length: 200000000\r\n" in got, got[:300]
        grown = ft.rss_kib(b.pid) - rss_before
        assert grown < 16 * 1024, "backend grew %d KiB for an unread 200 MB body" % grown


def test_echo_mode_keeps_echoing_while_client_does_not_half_close():
    with ft.Backend("e", mode="echo") as b:
        with ft.connect(b.port) as sock:
            for msg in (b"one", b"two" * 1000, b"three"):
                sock.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    got += sock.recv(65536)
                assert got == msg, "round trip %r" % got[:20]


def test_root_answers_name_and_x_backend():
    with ft.Backend("alpha") as b:
        raw = b.request(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, headers, body = ft.parse_response(raw)
        assert status == 200, raw
        assert body == b"alpha\n", body
        assert headers["x-backend"] == "alpha", headers
        assert headers["connection"] == "close", headers
        status, _, body = ft.parse_response(b.request(
            b"GET /some/other/path?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
        assert (status, body) == (200, b"alpha\n"), (status, body)


def test_echo_route_returns_request_body():
    body = ft.pattern_bytes(100000, 7)
    with ft.Backend("a") as b, ft.Client(b.port) as c:
        status, headers, got = c.request("POST", "/echo", body=body)
        assert status == 200 and got == body, (status, len(got))
        assert headers["content-length"] == str(len(body)), headers
        status, _, got = c.request("POST", "/echo", body=b"")
        assert status == 200 and got == b"", (status, got)


def _chunked(data, sizes):
    out, pos, k = [], 0, 0
    while pos < len(data):
        n = sizes[k % len(sizes)]
        k += 1
        part = data[pos:pos + n]
        out.append(b"%x;ext=1\r\n" % len(part) + part + b"\r\n")
        pos += n
    out.append(b"0\r\nX-Trailer: t\r\n\r\n")
    return b"".join(out)


def test_sha256_of_chunked_1mib_upload():
    data = os.urandom(1024 * 1024)
    body = _chunked(data, [1, 4096, 65536, 333, 16384 * 5])
    head = (b"POST /sha256 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n")
    with ft.Backend("a") as b, ft.connect(b.port, timeout=20) as sock:
        sender = _send_in_thread(sock, head + body, half_close=False)
        raw = ft.read_until_close(sock, timeout=20)
        sender.join(5)
    status, _, got = ft.parse_response(raw)
    assert status == 200, raw[:200]
    assert got == b"%s %d\n" % (hashlib.sha256(data).hexdigest().encode(), len(data)), got


def test_sha256_of_content_length_body_and_empty_body():
    data = os.urandom(300000)
    with ft.Backend("a") as b, ft.Client(b.port, timeout=20) as c:
        status, _, got = c.request("POST", "/sha256", body=data)
        assert got == b"%s %d\n" % (hashlib.sha256(data).hexdigest().encode(), len(data)), got
        status, _, got = c.request("GET", "/sha256")
        assert got == b"%s 0\n" % hashlib.sha256(b"").hexdigest().encode(), got


def test_bytes_streams_pattern_with_content_length():
    n = 1024 * 1024
    with ft.Backend("a") as b, ft.Client(b.port, timeout=20) as c:
        status, headers, body = c.request("GET", "/bytes/%d" % n)
        assert status == 200 and headers["content-length"] == str(n), headers
        assert body == ft.pattern_bytes(n), "pattern mismatch"
        status, headers, body = c.request("GET", "/bytes/0")
        assert (status, body, headers["content-length"]) == (200, b"", "0")


def test_chunked_route_sends_chunks_of_at_most_16k():
    n = 100000
    with ft.Backend("a") as b:
        raw = b.request(b"GET /chunked/%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % n)
    status, headers, body = ft.parse_response(raw)
    assert status == 200 and headers["transfer-encoding"] == "chunked", headers
    assert "content-length" not in headers, headers
    assert body == ft.pattern_bytes(n), "pattern mismatch"
    wire = raw[raw.index(b"\r\n\r\n") + 4:]
    sizes = []
    while True:
        eol = wire.index(b"\r\n")
        size = int(wire[:eol], 16)
        sizes.append(size)
        wire = wire[eol + 2 + size + 2:]
        if size == 0:
            break
    assert sizes == [16384] * 6 + [1696, 0], sizes
    assert wire == b"", wire


def test_chunked_route_to_http10_is_close_delimited():
    with ft.Backend("a") as b:
        raw = b.request(b"GET /chunked/5000 HTTP/1.0\r\n\r\n")
    status, headers, body = ft.parse_response(raw)
    assert "transfer-encoding" not in headers and headers["connection"] == "close", headers
    assert body == ft.pattern_bytes(5000)


def test_close_delimited_and_close_mid_and_garbage():
    with ft.Backend("a") as b:
        raw = b.request(b"GET /close-delimited/70000 HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = ft.parse_response(raw)
        assert "content-length" not in headers and "transfer-encoding" not in headers, headers
        assert body == ft.pattern_bytes(70000), len(body)

        raw = b.request(b"GET /close-mid HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, rest = raw.partition(b"\r\n\r\n")
        assert b"Content-Length: 1000" in head and rest == ft.pattern_bytes(10), raw

        raw = b.request(b"GET /garbage HTTP/1.1\r\nHost: x\r\n\r\n")
        assert raw == b"NOT HTTP AT ALL\r\n\r\n", raw


def test_status_route():
    with ft.Backend("a") as b, ft.Client(b.port) as c:
        status, _, body = c.request("GET", "/status/503")
        assert (status, body) == (503, b"status 503\n"), (status, body)
        c.send(b"GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = c.read_response()
        assert status == 204 and "content-length" not in headers, headers
        status, _, body = c.request("GET", "/status/404")
        assert status == 404, status
        assert c.buf == b"", "204 must carry no body: %r" % c.buf
        status, _, _ = c.request("GET", "/status/99")
        assert status == 400, status


def test_reject_route_answers_before_the_body_then_resets():
    with ft.Backend("a") as b, socket.create_connection(("127.0.0.1", b.port), timeout=5) as sock:
        sock.sendall(b"POST /reject/413 HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"
                     + b"u" * 100000)
        c = ft.Client.over(sock)
        status, headers, body = c.read_response()
        assert (status, body) == (413, b"Content Too Large\n"), (status, body)
        assert headers["connection"] == "close", headers
        # closed outright with the body unread: a reset, not a FIN after lingering
        try:
            for _ in range(100):
                sock.sendall(b"u" * 65536)
            raise AssertionError("the backend took 6 MB more of a body it rejected")
        except (ConnectionResetError, BrokenPipeError):
            pass


def test_sleep_answers_after_delay_and_hang_never():
    with ft.Backend("a") as b:
        with ft.Client(b.port) as c:
            start = time.monotonic()
            status, _, body = c.request("GET", "/sleep/300")
            took = time.monotonic() - start
            assert status == 200 and 0.28 <= took < 3, (status, took)
        with ft.Client(b.port) as c:
            c.send(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
            assert not c.is_closed_by_peer(timeout=0.5), "/hang closed"
            assert c.buf == b"", c.buf


def test_headers_returns_request_head_exactly():
    head = (b"GET /headers?x=1 HTTP/1.1\r\nHost: example\r\nX-Forwarded-For: 10.0.0.1\r\n"
            b"X-Odd:   spaced   \r\n\r\n")
    with ft.Backend("a") as b, ft.Client(b.port) as c:
        c.send(head)
        status, _, body = c.read_response()
        assert status == 200 and body == head, body


def test_stats_counts_connections_and_requests():
    with ft.Backend("a") as b:
        with ft.Client(b.port) as c:
            for _ in range(3):
                assert c.request("GET", "/")[0] == 200
        b.request(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        s = b.stats()
        # 2 connections + the stats one; 3 + 1 health + the stats request itself.
        assert s["connections"] == 3 and s["requests"] == 5, s
        assert s["healthz"] == 1 and s["stats"] == 1 and s["app_requests"] == 3, s
        s = b.stats()
        assert s["connections"] == 4 and s["requests"] == 6 and s["app_requests"] == 3, s


def test_keep_alive_serves_many_requests_on_one_connection():
    with ft.Backend("k") as b:
        with ft.Client(b.port) as c:
            for i in range(20):
                status, headers, body = c.request("GET", "/bytes/%d" % (i * 1000))
                assert status == 200 and body == ft.pattern_bytes(i * 1000), i
                assert "connection" not in headers, headers
        s = b.stats()
        assert s["connections"] == 2 and s["requests"] == 21, s


def test_pipelined_requests_answered_in_order():
    reqs = (b"GET /sleep/100 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            b"GET /chunked/20000 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /status/202 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            b"GET /never-answered HTTP/1.1\r\nHost: x\r\n\r\n")
    with ft.Backend("p") as b:
        raw = b.request(reqs)
    got = [(s, body) for s, _, body in ft.parse_responses(raw)]
    assert got == [(200, b"slept 100\n"), (200, b"hello"), (200, ft.pattern_bytes(20000)),
                   (202, b"status 202\n")], got


def test_http10_closes_unless_keep_alive():
    with ft.Backend("a") as b:
        raw = b.request(b"GET / HTTP/1.0\r\n\r\n", timeout=3)
        assert ft.parse_response(raw)[1]["connection"] == "close"
        with ft.Client(b.port) as c:
            c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, _ = c.read_response()
            assert headers["connection"] == "keep-alive", headers
            c.send(b"GET / HTTP/1.0\r\n\r\n")
            c.read_response()
            assert c.is_closed_by_peer(), "HTTP/1.0 without keep-alive stayed open"


def test_expect_100_continue_before_body():
    with ft.Backend("a") as b, ft.Client(b.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
               b"Expect: 100-continue\r\n\r\n")
        interim = c.read_exactly(len(b"HTTP/1.1 100 Continue\r\n\r\n"))
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n", interim
        c.send(b"ping")
        status, _, body = c.read_response()
        assert (status, body) == (200, b"ping"), (status, body)


def test_healthz_follows_health_file():
    flag = os.path.join(ft.tmpdir(), "down-flag")
    with ft.Backend("h", health_file=flag) as b, ft.Client(b.port) as c:
        assert c.request("GET", "/healthz")[:3:2] == (200, b"ok\n")
        b.set_healthy(False)
        assert c.request("GET", "/healthz")[0] == 503
        b.set_healthy(True)
        assert c.request("GET", "/healthz")[0] == 200


def test_websocket_upgrade_then_raw_echo():
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    with ft.Backend("w") as b, ft.Client(b.port) as c:
        c.send(("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n" % key).encode() + b"early")
        status, headers, _ = c.read_response()
        assert status == 101, status
        assert headers["upgrade"].lower() == "websocket", headers
        expected = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        assert expected == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        assert headers["sec-websocket-accept"] == expected, headers
        assert c.read_exactly(5) == b"early"
        blob = os.urandom(200000)
        c.send(blob)
        assert c.read_exactly(len(blob), timeout=10) == blob
        c.sock.shutdown(socket.SHUT_WR)
        assert c.is_closed_by_peer(), "tunnel not closed after client EOF"


def test_ws_without_upgrade_headers_is_refused():
    with ft.Backend("w") as b, ft.Client(b.port) as c:
        assert c.request("GET", "/ws")[0] == 426


def test_malformed_requests_get_400_and_close():
    bad = [b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",            # space before colon
           b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",   # obs-fold
           b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",              # bare CR
           b"GET /  HTTP/1.1\r\n\r\n",                         # two spaces
           b"GET / HTTP/2.0\r\n\r\n",
           b"POST /echo HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
           b"POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
           b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
           b"GET /bytes/12x HTTP/1.1\r\n\r\n"]
    with ft.Backend("a") as b:
        for raw in bad:
            resp = b.request(raw, timeout=3)
            status, headers, _ = ft.parse_response(resp)
            assert status == 400 and headers["connection"] == "close", (raw, resp)
        resp = b.request(b"POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", timeout=3)
        assert ft.parse_response(resp)[0] == 501, resp


def test_oversized_head_gets_431():
    with ft.Backend("a") as b:
        raw = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (70 * 1024) + b"\r\n\r\n"
        resp = b.request(raw, timeout=5)
        assert ft.parse_response(resp)[0] == 431, resp[:100]
        raw = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (60 * 1024) + b"\r\n\r\n"
        assert ft.parse_response(b.request(raw + b"GET / HTTP/1.1\r\nConnection: close"
                                           b"\r\n\r\n"))[0] == 200


def test_tls_mode_with_curl():
    with ft.Backend("secure", tls=True) as b:
        rc, out, err = ft.curl(["--cacert", ft.CA_CERT,
                                "https://localhost:%d/bytes/300000" % b.port])
        assert rc == 0, err
        assert out == ft.pattern_bytes(300000), len(out)
        with ft.Client(b.port, tls=True) as c:
            for _ in range(3):
                status, headers, body = c.request("POST", "/echo", body=b"x" * 50000)
                assert status == 200 and body == b"x" * 50000, status
        rc, out, err = ft.curl(["--cacert", ft.CA_CERT, "-H", "Connection: close",
                                "https://localhost:%d/__stats" % b.port])
        assert rc == 0 and b'"connections": 3' in out, (rc, out, err)


def test_ipv6_listen():
    with ft.Backend("six", host="::1") as b:
        assert b.address.startswith("[::1]:"), b.address
        status, _, body = ft.parse_response(b.request(
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
        assert (status, body) == (200, b"six\n")


def test_idle_ms_closes_idle_keep_alive_connections():
    with ft.Backend("i", extra=["--idle-ms", "200"]) as b, ft.Client(b.port) as c:
        start = time.monotonic()    # before the request: its answer starts the idle time
        assert c.request("GET", "/")[0] == 200
        assert c.is_closed_by_peer(timeout=3), "idle connection kept open"
        assert time.monotonic() - start >= 0.19     # a timer may round a little


def test_sigterm_with_open_connections_exits_zero():
    b = ft.Backend("t").start()
    clients = [ft.Client(b.port) for _ in range(3)]
    try:
        clients[0].send(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        clients[1].send(b"GET /bytes/100000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        clients[1].read_exactly(1000)
        assert b.stop() == 0
    finally:
        for c in clients:
            c.close()


if __name__ == "__main__":
    ft.main()
