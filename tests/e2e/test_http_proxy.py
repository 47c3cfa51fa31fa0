#!/usr/bin/env python3
"""HTTP reverse proxy: keep-alive, pipelining, streaming bodies both ways, HTTP/1.0,
header rewriting, Expect: 100-continue, WebSocket upgrade, access log, graceful stop."""

import base64
import hashlib
import json
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402

MIB = 1024 * 1024


def proxy_config(*backends, access="off", **pool_extra):
    port = ft.free_port()
    pool = {"backends": [{"address": b.address, "name": b.name} for b in backends]}
    pool.update(pool_extra)
    return {
        "admin": None,
        "workers": 1,
        "log": {"level": "info", "access": access, "format": "json"},
        "listeners": {"web": {"listen": "127.0.0.1:%d" % port, "mode": "http", "pool": "web"}},
        "pools": {"web": pool},
    }


def start(*backends, **kw):
    for b in backends:
        b.start()
    f = ft.Ferry(proxy_config(*backends, **kw)).start()
    return f, f.port("web")


def test_keepalive_100_requests_use_few_backend_connections():
    b = ft.Backend("alpha")
    f, port = start(b)
    with f, b, ft.Client(port) as c:
        for i in range(100):
            status, headers, body = c.request("GET", "/status/200" if i % 2 else "/")
            assert status == 200, (i, status)
            assert headers.get("x-backend") == "alpha"
            assert "connection" not in headers, headers
        assert not c.closed_by_peer
        stats = b.stats()
        assert stats["app_requests"] == 100, stats
        # one pooled connection does the work (+1 for this /__stats request)
        assert stats["connections"] <= 3, stats


def test_head_204_and_304_responses_have_no_body_and_keep_the_connection():
    b = ft.Backend("alpha")
    f, port = start(b)
    with f, b, ft.Client(port) as c:
        status, headers, body = c.request("HEAD", "/bytes/1000")
        assert status == 200 and headers["content-length"] == "1000" and body == b""
        status, headers, body = c.request("HEAD", "/chunked/1000")
        assert status == 200 and "transfer-encoding" not in headers and body == b""
        for code in (204, 304):
            status, headers, body = c.request("GET", "/status/%d" % code)
            assert status == code and body == b"" and "content-length" not in headers
        # nothing stray was left on the connection in between
        status, _, body = c.request("GET", "/")
        assert status == 200 and body == b"alpha\n"
        assert b.stats()["connections"] <= 3


def test_pipelined_requests_are_answered_in_order():
    b = ft.Backend("alpha")
    f, port = start(b)
    with f, b:
        raw = (b"GET /status/201 HTTP/1.1\r\nHost: a\r\n\r\n"
               b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
               b"GET /bytes/70000 HTTP/1.1\r\nHost: a\r\n\r\n"
               b"GET /chunked/3000 HTTP/1.1\r\nHost: a\r\n\r\n"
               b"GET /status/404 HTTP/1.1\r\nHost: a\r\n\r\n"
               b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        got = ft.http_request(port, raw, timeout=10)
        responses = ft.parse_responses(got)
        assert [r[0] for r in responses] == [201, 200, 200, 200, 404, 200], responses
        assert responses[1][2] == b"hello"
        assert responses[2][2] == ft.pattern_bytes(70000)
        assert responses[3][2] == ft.pattern_bytes(3000)
        assert responses[3][1]["transfer-encoding"] == "chunked"
        assert responses[5][1]["connection"] == "close"
        assert b.stats()["app_requests"] == 6


def _sha256_of(status, body):
    assert status == 200, (status, body)
    digest, length = body.split()
    return digest.decode(), int(length)


def test_10mib_posts_with_content_length_and_chunked_reach_backend_intact():
    data = os.urandom(10 * MIB)
    want = (hashlib.sha256(data).hexdigest(), len(data))
    b = ft.Backend("alpha")
    f, port = start(b)
    with f, b, ft.Client(port, timeout=30) as c:
        status, _, body = c.request("POST", "/sha256", body=data)
        assert _sha256_of(status, body) == want
        c.send(b"POST /sha256 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        step = 100000
        for i in range(0, len(data), step):
            piece = data[i:i + step]
            c.send(b"%x;ext=1\r\n" % len(piece) + piece + b"\r\n")
        c.send(b"0\r\nX-Trailer: t\r\n\r\n")
        status, _, body = c.read_response(timeout=30)
        assert _sha256_of(status, body) == want
        # the connection goes on afterwards
        assert c.request("GET", "/")[0] == 200


def test_10mib_download_is_intact_with_length_and_chunked():
    n = 10 * MIB
    b = ft.Backend("alpha")
    f, port = start(b)
    with f, b, ft.Client(port, timeout=30) as c:
        status, headers, body = c.request("GET", "/bytes/%d" % n)
        assert status == 200 and headers["content-length"] == str(n)
        assert body == ft.pattern_bytes(n)
        status, headers, body = c.request("GET", "/chunked/%d" % n)
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        assert body == ft.pattern_bytes(n)


def test_slow_reader_download_does_not_grow_ferry_memory():
    """Back-pressure: a client that does not read stalls the backend, not ferry's RSS."""
    n = 1024 * MIB
    b = ft.Backend("alpha")
    f, port = start(b)

    with f, b:
        before = ft.rss_kib(f.pid)
        with ft.connect(port, timeout=30) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: a\r\n\r\n" % n)
            head = sock.recv(1000)
            assert head.startswith(b"HTTP/1.1 200"), head
            samples = []
            ft.poll_until(lambda: samples.append(ft.rss_kib(f.pid)) or
                          (len(samples) > 5 and samples[-1] == samples[-4]),
                          timeout=20, interval=0.1, message="ferry RSS settles")
            # socket buffers and ferry's watermarks hold a few MiB; not the GiB
            assert samples[-1] - before < 32 * 1024, "ferry grew %d KiB" % (samples[-1] - before)
        with ft.Client(port) as c:
            assert c.request("GET", "/")[0] == 200


def test_a_plain_reader_slower_than_the_backend_gets_every_byte():
    """The plain client's socket fills up: ferry waits for it to drain (its write event
    is made then), every byte arrives in order, and the connection goes on."""
    n = 16 * MIB
    b = ft.Backend("alpha")
    f, port = start(b)
    with f, b:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        with ft.Client.over(sock, timeout=30.0) as c:
            c.send(b"GET /bytes/%d HTTP/1.1\r\nHost: a\r\n\r\n" % n)
            time.sleep(0.5)         # let both socket buffers fill
            status, _, body = c.read_response()
            assert status == 200 and len(body) == n and body == ft.pattern_bytes(n)
            assert c.request("GET", "/")[:3:2] == (200, b"alpha\n")


def test_upload_to_a_backend_that_does_not_read_is_not_buffered():
    """Back-pressure the other way: ferry stops reading the client when the backend
    does not take the body."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stub = ft.Backend("stub")
    stub.port = listener.getsockname()[1]
    f = ft.Ferry(proxy_config(stub)).start()
    try:
        with f, ft.connect(f.port("web"), timeout=30) as sock:
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n"
                         % (1024 * MIB))
            pusher = ft.Pusher(sock, 1024 * MIB)
            sent = pusher.wait_stalled(timeout=20)
            # kernel buffers on both hops plus ferry's high watermark, not the GiB
            assert sent < 64 * MIB, "ferry took %d bytes the backend never read" % sent
            # the backend goes away (its queued connection is reset): ferry lets go too
            listener.close()
            assert ft.read_until_close(sock, timeout=10).startswith(b"HTTP/1.1 502")
            pusher.join(5)
    finally:
        listener.close()


def _read_repeats(sock, unit, have, total, timeout):
    """Reads from sock until `have` (bytes already read) plus what comes makes `total`
    bytes, and asserts that all of it is `unit` over and over."""
    block = unit * (262144 // len(unit) + 2)
    assert have == block[:len(have)], "answer out of order: %r" % have[:300]
    got = len(have)
    deadline = time.monotonic() + timeout
    while got < total:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        chunk = sock.recv(min(262144, total - got))
        assert chunk, "closed after %d of %d bytes" % (got, total)
        at = got % len(unit)
        assert chunk == block[at:at + len(chunk)], "answer out of order at byte %d" % got
        got += len(chunk)


def test_pipelined_requests_ferry_answers_itself_stop_being_read_while_unread():
    """Back-pressure without a backend: requests ferry answers itself (404 for an
    unrouted host, 501 for CONNECT), pipelined by a client that does not read, make
    ferry stop reading that client at the high watermark instead of queueing answers
    without limit; once the client reads, every answer comes, in order."""
    if ft.VALGRIND:
        raise ft.Skip("40 MiB of requests take too long under memcheck")
    b = ft.Backend("alpha").start()
    cfg = proxy_config(b)
    del cfg["listeners"]["web"]["pool"]
    cfg["listeners"]["web"]["routes"] = [{"match": {"host": "a.test"}, "pool": "web"}]
    f = ft.Ferry(cfg).start()
    pair = (b"GET / HTTP/1.1\r\nHost: b.test\r\n\r\n"
            b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n")
    count = 40 * MIB // len(pair)
    with f, b, socket.socket() as sock:
        before = ft.rss_kib(f.pid)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        sock.connect(("127.0.0.1", f.port("web")))
        pusher = ft.Pusher(sock, count * len(pair), data=pair * count)
        sent = pusher.wait_stalled(timeout=30)
        grown = ft.rss_kib(f.pid) - before
        # kernel buffers on the way plus ferry's watermarks (and ASan's quarantine of
        # what ferry freed), not the 40 MiB nor the answers to them
        assert sent < 16 * MIB, "ferry read %d bytes of requests whose answers wait" % sent
        assert grown < 32 * 1024, "ferry grew %d KiB" % grown
        # reading lets ferry go on: the answers to all the pairs, in order
        c = ft.Client.over(sock, timeout=30)
        assert [c.read_response()[0] for _ in range(2)] == [404, 501]
        unit = (b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n"
                b"\r\n404 Not Found\n"
                b"HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain\r\n"
                b"Content-Length: 20\r\n\r\n501 Not Implemented\n")
        _read_repeats(sock, unit, bytes(c.buf), (count - 1) * len(unit), timeout=120)
        c.buf.clear()
        pusher.join(10)
        assert pusher.sent == count * len(pair)
        assert c.request("GET", "/", host="a.test")[:3:2] == (200, b"alpha\n")


def test_http10_client_gets_dechunked_close_delimited_response():
    b = ft.Backend("alpha")
    f, port = start(b)
    with f, b:
        # the backend answers 1.1 requests chunked; ferry always asks it in 1.1
        got = ft.http_request(port, b"GET /chunked/100000 HTTP/1.0\r\n\r\n", timeout=10)
        head, _, body = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"transfer-encoding" not in head.lower(), head
        assert b"connection: close" in head.lower(), head
        assert body == ft.pattern_bytes(100000)


def test_http10_keepalive_client_is_kept_alive():
    b = ft.Backend("alpha")
    f, port = start(b)
    with f, b, ft.Client(port) as c:
        for _ in range(3):
            c.send(b"GET /bytes/100 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, body = c.read_response()
            assert status == 200 and body == ft.pattern_bytes(100)
            assert headers["connection"].lower() == "keep-alive", headers
        assert not c.closed_by_peer
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        status, headers, _ = c.read_response()
        assert headers["connection"] == "close"
        assert c.is_closed_by_peer()


def test_a_client_that_said_close_is_closed_at_once_one_that_sent_more_lingers():
    """Connection: close and nothing after it: ferry closes without waiting for the
    client's FIN (as nginx does). Bytes after that request: ferry shuts its write side
    and reads until the client closes, so that its close cannot reset the response."""
    b = ft.Backend("alpha").start()
    config = proxy_config(b)
    config["admin"] = {"listen": "127.0.0.1:%d" % ft.free_port()}
    f = ft.Ferry(config).start()
    port = f.port("web")
    with f, b:
        with ft.connect(port) as done:
            done.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            assert ft.read_until_close(done).startswith(b"HTTP/1.1 200")
            # the client still holds its socket; the linger would last 2 s (from before
            # the EOF read above: 1.5 s leaves a slow machine room and still tells)
            ft.poll_until(lambda: f.status()["connections"] == 0, timeout=1.5,
                          message="closed at once")
        # bytes after the last request: linger
        assert_lingers(f, port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                                b"GET / HTTP/1.1\r\n", 200)
    # a body not all sent when the answer came (502: the backend is down): linger
    config["pools"]["web"]["backends"] = [{"address": "127.0.0.1:%d" % ft.free_port()}]
    with ft.Ferry(config) as f:
        assert_lingers(f, f.port("web"), b"POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                                         b"Content-Length: 1000000\r\n\r\n", 502)


def assert_lingers(f, port, request, status):
    with ft.connect(port) as sock:
        sock.sendall(request)
        reply = ft.read_until_close(sock)
        assert reply.startswith(b"HTTP/1.1 %d" % status), reply[:100]
        time.sleep(0.5)
        assert f.status()["connections"] == 1, "closed without lingering"
    # our close ends the linger well before its 2 s
    ft.poll_until(lambda: f.status()["connections"] == 0, timeout=1.0,
                  message="closed after the client")


def _backend_saw(c, extra_headers, host="example.com:8080", target="/headers"):
    head = "GET %s HTTP/1.1\r\nHost: %s\r\n" % (target, host)
    for name, value in extra_headers:
        head += "%s: %s\r\n" % (name, value)
    c.send(head.encode() + b"\r\n")
    status, _, body = c.read_response()
    assert status == 200, status
    lines = body.decode().split("\r\n")
    fields = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            fields.setdefault(name.strip().lower(), []).append(value.strip())
    return lines[0], fields


def test_forwarded_headers_are_set_and_spoofed_ones_replaced():
    b = ft.Backend("alpha").start()
    cfg = proxy_config(b)
    v6_port = ft.free_port("::1")
    cfg["listeners"]["v6"] = {"listen": "[::1]:%d" % v6_port, "mode": "http", "pool": "web"}
    f = ft.Ferry(cfg).start()
    with f, b, ft.Client(f.port("web")) as c, ft.Client(v6_port, host="::1") as c6:
        line, fields = _backend_saw(c, [
            ("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-For", "198.51.100.1"),
            ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "evil.example"),
            ("X-Client-Cert-Subject", "CN=admin")])
        assert line == "GET /headers HTTP/1.1"
        assert fields["x-forwarded-for"] == ["203.0.113.7, 198.51.100.1, 127.0.0.1"], fields
        assert fields["x-forwarded-proto"] == ["http"]
        assert fields["x-forwarded-host"] == ["example.com:8080"]
        assert fields["host"] == ["example.com:8080"]
        assert "x-client-cert-subject" not in fields
        line, fields = _backend_saw(c, [])
        assert fields["x-forwarded-for"] == ["127.0.0.1"]
        # IPv6 clients appear as bare addresses
        line, fields = _backend_saw(c6, [], host="[::1]:%d" % v6_port)
        assert fields["x-forwarded-for"] == ["::1"], fields
        assert fields["x-forwarded-host"] == ["[::1]:%d" % v6_port]


def test_absolute_form_target_reaches_the_backend_in_origin_form_with_its_host():
    """RFC 9112 §3.2.2: the target's authority wins over Host. The backend gets an
    origin-form target and that one name, the one ferry routed by, as Host and
    X-Forwarded-Host."""
    b = ft.Backend("alpha")
    f, port = start(b)
    with f, b, ft.Client(port) as c:
        line, fields = _backend_saw(c, [], host="b.test", target="http://a.test/headers?x=1")
        assert line == "GET /headers?x=1 HTTP/1.1", line
        assert fields["host"] == ["a.test"], fields
        assert fields["x-forwarded-host"] == ["a.test"], fields
        line, fields = _backend_saw(c, [], host="b.test", target="HTTPS://a.test:8443/headers")
        assert line == "GET /headers HTTP/1.1" and fields["host"] == ["a.test:8443"], fields
        # userinfo in the target is refused
        c.send(b"GET http://u@a.test/headers HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert c.read_response()[0] == 400


def test_hop_by_hop_headers_are_stripped_both_ways():
    b = ft.Backend("alpha")
    f, port = start(b)
    with f, b, ft.Client(port) as c:
        _, fields = _backend_saw(c, [
            ("Connection", "keep-alive, X-Private"), ("X-Private", "secret"),
            ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"), ("Trailer", "X-Checksum"), ("Upgrade", "h2c"),
            ("X-Kept", "yes")])
        for name in ("connection", "x-private", "keep-alive", "proxy-connection", "te",
                     "trailer", "upgrade"):
            assert name not in fields, (name, fields)
        assert fields["x-kept"] == ["yes"]
        # response side: /ws without an upgrade answers 426 with Upgrade + Connection
        status, headers, _ = c.request("GET", "/ws")
        assert status == 426
        assert "upgrade" not in headers and "connection" not in headers, headers
        assert not c.closed_by_peer


def test_websocket_upgrade_becomes_a_tunnel():
    b = ft.Backend("alpha")
    f, port = start(b)
    with f, b, ft.Client(port) as c:
        key = base64.b64encode(os.urandom(16)).decode()
        c.send(("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
        status, headers, _ = c.read_response()
        assert status == 101, status
        assert headers["upgrade"].lower() == "websocket"
        assert headers["connection"].lower() == "upgrade"
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        assert headers["sec-websocket-accept"] == accept
        # the backend echoes every byte after 101; frames are just bytes to ferry
        frame = b"\x81\x85\x01\x02\x03\x04" + bytes(x ^ m for x, m in zip(b"hello", b"\x01\x02\x03\x04\x01"))
        c.send(frame)
        assert c.read_exactly(len(frame)) == frame
        big = os.urandom(3 * MIB)
        threading.Thread(target=c.send, args=(big,), daemon=True).start()
        assert c.read_exactly(len(big), timeout=20) == big
        c.sock.shutdown(socket.SHUT_WR)
        assert c.is_closed_by_peer(5)


def test_expect_100_continue_is_passed_through():
    b = ft.Backend("alpha")
    f, port = start(b)
    body = os.urandom(300000)
    with f, b, ft.Client(port) as c:
        c.send(b"POST /sha256 HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body))
        deadline = time.monotonic() + 5
        while b"\r\n\r\n" not in c.buf:
            c._fill(deadline)
        assert bytes(c.buf).startswith(b"HTTP/1.1 100 Continue\r\n"), c.buf
        del c.buf[:c.buf.index(b"\r\n\r\n") + 4]
        c.send(body)
        status, _, got = c.read_response()
        assert _sha256_of(status, got) == (hashlib.sha256(body).hexdigest(), len(body))


def test_sigusr1_reopens_the_access_log_file_after_rotation():
    path = os.path.join(ft.tmpdir(), "access-%d.log" % os.getpid())
    rotated = path + ".1"
    b = ft.Backend("alpha")
    f, port = start(b, access=path)
    with f, b, ft.Client(port) as c:
        c.request("GET", "/before")
        ft.poll_until(lambda: os.path.exists(path) and "/before" in open(path).read(),
                      message="first line in the access log")
        os.rename(path, rotated)
        f.send_signal(signal.SIGUSR1)
        f.wait_log("access log reopened")
        c.request("GET", "/after")
        ft.poll_until(lambda: os.path.exists(path) and "/after" in open(path).read(),
                      message="line after rotation in the new file")
        assert "/after" not in open(rotated).read(), "written to the rotated file"


def test_access_log_line_per_request_is_json():
    b = ft.Backend("alpha")
    f, port = start(b, access="stdout")
    with f, b, ft.Client(port) as c:
        c.request("GET", '/status/201?q="x"')
        c.request("POST", "/echo", body=b"12345")
        c.send(b"GET /status/202 HTTP/1.0\r\n\r\n")
        c.read_response()
        out = ft.poll_until(lambda: f.stdout().count("\n") >= 3 and f.stdout(),
                            message="three access log lines")
        entries = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert len(entries) == 3, out
        first, second, third = entries
        assert first["method"] == "GET" and first["path"] == '/status/201?q="x"'
        assert first["proto"] == "HTTP/1.1" and third["proto"] == "HTTP/1.0", entries
        assert first["status"] == 201 and first["backend"] == "alpha"
        assert first["client"] == "127.0.0.1" and first["listener"] == "web"
        assert first["bytes"] > 0 and first["total_ms"] >= first["upstream_ms"] >= 0
        assert "T" in first["time"] and first["time"].endswith("Z")
        assert second["method"] == "POST" and second["status"] == 200


def test_sigterm_finishes_request_in_flight_then_exits_zero():
    b = ft.Backend("alpha")
    f, port = start(b)
    with b:
        idle = ft.Client(port)
        assert idle.request("GET", "/")[0] == 200
        busy = ft.Client(port)
        busy.send(b"GET /sleep/600 HTTP/1.1\r\nHost: a\r\n\r\n")
        ft.poll_until(lambda: b.stats()["app_requests"] >= 2, message="request in flight")
        f.send_signal(signal.SIGTERM)
        # the idle keep-alive connection is closed at once
        assert idle.is_closed_by_peer(5)
        status, headers, body = busy.read_response(timeout=10)
        assert status == 200 and body == b"slept 600\n"
        assert headers["connection"] == "close"
        assert busy.is_closed_by_peer(5)
        idle.close()
        busy.close()
        # ferry exits by itself once the drain is done (no second signal)
        assert f.proc.wait(10) == 0, f.log()
        assert f.stop() == 0


if __name__ == "__main__":
    ft.main()
