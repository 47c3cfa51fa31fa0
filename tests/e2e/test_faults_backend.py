#!/usr/bin/env python3
"""Fault injection: misbehaving backends (a scripted raw-socket backend, rawbackend.py).

A backend that resets while the request body still arrives, or in the middle of the
response; that hangs in the middle of a body; whose head is larger than
max_header_bytes; whose body is longer or shorter than its Content-Length; whose
chunked encoding is invalid; that sends 1xx before its answer, or a body after a 204 or
a 304. Each case checks what an HTTP/1.1 client sees (a response cut short ends in a way
the client can tell: an EOF before the announced end, or a reset — never a clean, whole
response) and what an HTTP/2 client sees on the same fault (RST_STREAM, and the
connection goes on), that bytes a backend sent beyond its response reach neither the
client nor the next request, and that ferry is healthy afterwards (faultkit.Checkup).

Each case also runs on a ferry it is given (CASES), so that test_faults_reload.py runs
them again while ferry reloads.
"""

import contextlib
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultkit as fk  # noqa: E402
import ferrytest as ft  # noqa: E402
import h2client as h2  # noqa: E402
from rawbackend import RawBackend  # noqa: E402

MAX_HEADER_BYTES = 4096
RESPONSE_MS = 800           # upstream_response_ms: a body that stops is cut after this
BIG = 1 << 20               # a body announced and never sent whole
UPLOAD = 64 << 20           # more than every buffer between client and backend holds
REPEAT = 3                  # each fault, over HTTP/1.1, per case

LENGTH_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
CLOSE_HEAD = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
PART = b"p" * 32768
CHUNK = b"%x\r\n%s\r\n" % (len(PART), PART)
# What a backend sends beyond its response: a whole response of its own, which a
# reused connection would hand to the next request.
SMUGGLED = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"

NEVER = threading.Event()   # a hanging backend waits for this (or for ferry's close)
LATE = threading.Event()    # set by the test: now send what comes after the response


# ---- the backend's scripts ------------------------------------------------------------

def reset_mid_request(conn, req):
    conn.read_body(req, limit=65536)
    conn.reset()


def cut(head, part, end):
    """Sends head and part of the body, then ends: "reset", "eof" or "hang"."""
    def script(conn, req):
        conn.read_body(req)
        conn.send(head + part)
        if end == "reset":
            conn.reset()
        elif end == "eof":
            conn.close()
        else:
            conn.hold(NEVER)
    return script


def then_keep(data):
    """Sends data and waits for the next request, as if all was well."""
    def script(conn, req):
        conn.read_body(req)
        conn.send(data)
        return True
    return script


def then_late(data, extra):
    """Sends data; once the test sets LATE, sends extra; then waits for a request."""
    def script(conn, req):
        conn.read_body(req)
        conn.send(data)
        conn.hold(LATE)
        conn.send(extra)
        return True
    return script


SCRIPTS = {
    "/reset-mid-request": reset_mid_request,
    "/reset-mid-length": cut(LENGTH_HEAD, PART, "reset"),
    "/reset-mid-chunked": cut(CHUNKED_HEAD, CHUNK, "reset"),
    "/reset-mid-close": cut(CLOSE_HEAD, PART, "reset"),
    "/hang-mid-body": cut(LENGTH_HEAD, PART, "hang"),
    "/short-length": cut(LENGTH_HEAD, PART, "eof"),
    "/short-chunked": cut(CHUNKED_HEAD, CHUNK, "eof"),
    "/huge-head": then_keep(b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * (2 * MAX_HEADER_BYTES) +
                            b"\r\nContent-Length: 2\r\n\r\nok"),
    "/many-headers": then_keep(b"HTTP/1.1 200 OK\r\n" +
                               b"".join(b"X-H%d: v\r\n" % i for i in range(150)) +
                               b"Content-Length: 2\r\n\r\nok"),
    "/longer": then_keep(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" + SMUGGLED),
    "/longer-late": then_late(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", SMUGGLED),
    "/bad-chunk-size": then_keep(CHUNKED_HEAD + b"zz\r\nhello\r\n0\r\n\r\n"),
    "/bad-chunk-end": then_keep(CHUNKED_HEAD + b"5\r\nhello!!\r\n0\r\n\r\n"),
    "/interim": then_keep(b"HTTP/1.1 100 Continue\r\n\r\n"
                          b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                          b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"),
    "/no-content-stray": then_keep(b"HTTP/1.1 204 No Content\r\n\r\n" + SMUGGLED),
    "/not-modified-stray": then_keep(b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n" +
                                     SMUGGLED),
    "/no-content-late": then_late(b"HTTP/1.1 204 No Content\r\n\r\n", SMUGGLED),
}


# ---- ferry in front of it ----------------------------------------------------------------

def fault_config(rb):
    """Listener "web" (HTTP/1.1, and HTTP/2 by prior knowledge) -> pool "raw"."""
    return {
        "workers": 1,
        "log": {"level": "info", "access": "off"},
        "timeouts": {"upstream_response_ms": RESPONSE_MS},
        "limits": {"max_header_bytes": MAX_HEADER_BYTES},
        "listeners": {"web": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http",
                              "http2": {"h2c": True}, "pool": "raw"}},
        "pools": {"raw": {"backends": [{"address": rb.address, "name": "raw"}],
                          "keepalive": {"max_idle": 2}, "retries": 0}},
    }



@contextlib.contextmanager
def running():
    with RawBackend(SCRIPTS) as rb, ft.Ferry(fault_config(rb), env=fk.ferry_env()) as f:
        yield fk.Env(f, rb)


def get(path, close=False):
    return ("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (
        path, "Connection: close\r\n" if close else "")).encode()


def h1(env, raw):
    """raw on a new connection: (what came back, "eof" | "reset")."""
    with ft.connect(env.port) as sock:
        sock.sendall(raw)
        return fk.read_to_end(sock)


def expect(c, path, status, body):
    """GET path on the Client c answers status and body."""
    got = c.request("GET", path)
    assert got[::2] == (status, body), "GET %s: %r" % (path, got)


def ok(env):
    with ft.Client(env.port) as c:
        expect(c, "/ok", 200, b"ok")


def h2_ok(c):
    s = c.get("/ok")
    assert (s.status, bytes(s.data)) == (200, b"ok"), s


def backend_let_go(env, path):
    """The backend connection that served path: ferry closed it after that request
    (it may have come from the pool, but goes back to none)."""
    conn = env.rb.conn_for(path)
    assert conn.done.wait(10), "ferry still holds the backend connection of %s: %r" % (path, conn)
    assert conn.peer_closed and conn.requests[-1].path == path, conn
    return conn


# ---- the cases -------------------------------------------------------------------------

standalone = fk.standalone(running)


@standalone
def test_reset_while_the_request_body_arrives(env):
    """502 (the backend never answered), and the client connection closes: the rest
    of its body has nowhere to go. Over HTTP/2 the stream gets the 502."""
    check = env.checkup()
    for _ in range(REPEAT):
        with ft.connect(env.port) as sock:
            sock.sendall(b"POST /reset-mid-request HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: %d\r\n\r\n" % UPLOAD)
            ft.Pusher(sock, UPLOAD)
            data, _ = fk.read_to_end(sock)
        status, headers, _ = ft.parse_response(data)
        assert (status, headers.get("connection")) == (502, "close"), data[:300]
        ok(env)
    with h2.H2Conn(env.port) as c:
        s = c.response(c.request("POST", "/reset-mid-request", body=b"z" * BIG))
        assert s.status == 502, s
        h2_ok(c)
    check.verify()


@standalone
def test_reset_in_the_middle_of_the_response(env):
    """Length, chunked and close-delimited bodies cut by a reset: the HTTP/1.1 client
    can tell (the close-delimited one only by a reset of its own); an HTTP/2 stream is
    reset, never ended."""
    check = env.checkup()
    paths = ("/reset-mid-length", "/reset-mid-chunked", "/reset-mid-close")
    for _ in range(REPEAT):
        for path in paths:
            fk.assert_cut(*h1(env, get(path)))
            ok(env)
    with h2.H2Conn(env.port) as c:
        for path in paths:
            s = c.get(path)
            assert s.status == 200 and s.reset == h2.INTERNAL_ERROR and not s.ended, (path, s)
            h2_ok(c)
    check.verify()


@standalone
def test_hang_in_the_middle_of_the_body(env):
    """The body stops: cut after upstream_response_ms, and the backend connection is
    closed, not kept."""
    check = env.checkup()
    for _ in range(2):
        start = time.monotonic()
        data, how = h1(env, get("/hang-mid-body"))
        took = time.monotonic() - start
        fk.assert_cut(data, how)
        assert RESPONSE_MS / 1000 * 0.9 < took < RESPONSE_MS / 1000 + 3, took
        backend_let_go(env, "/hang-mid-body")
        ok(env)
    with h2.H2Conn(env.port) as c:
        s = c.get("/hang-mid-body")
        assert s.status == 200 and s.reset == h2.INTERNAL_ERROR and not s.ended, s
        h2_ok(c)
    check.verify()


@standalone
def test_response_head_over_the_limits(env):
    """A head over max_header_bytes, or with more than max_headers fields: 502, the
    client connection goes on, the backend connection does not. Ferry's 502 to a
    HEAD request has no body (else the client would read it as the start of the next
    response)."""
    check = env.checkup()
    with ft.Client(env.port) as c:
        for _ in range(REPEAT):
            for path in ("/huge-head", "/many-headers"):
                status, _, body = c.request("GET", path)
                assert status == 502, (path, status, body)
                backend_let_go(env, path)
                expect(c, "/ok", 200, b"ok")
            status, headers, _ = c.request("HEAD", "/huge-head")
            assert status == 502, (status, headers)
            expect(c, "/ok", 200, b"ok")
    with h2.H2Conn(env.port) as c:
        for path in ("/huge-head", "/many-headers"):
            assert c.get(path).status == 502
            h2_ok(c)
        s = c.get("/huge-head", method="HEAD")
        assert s.status == 502 and s.received == 0 and s.ended, s
        h2_ok(c)
    check.verify()


@standalone
def test_body_longer_than_its_content_length(env):
    """The client gets Content-Length bytes; what follows (a whole response, sent with
    the body or after ferry pooled the connection) reaches neither it nor the next
    request, which goes to another backend connection."""
    check = env.checkup()
    with ft.Client(env.port) as c:
        for _ in range(REPEAT):
            expect(c, "/longer", 200, b"hello")
            expect(c, "/ok", 200, b"ok")
            backend_let_go(env, "/longer")
            LATE.clear()
            expect(c, "/longer-late", 200, b"hello")
            LATE.set()
            backend_let_go(env, "/longer-late")
            expect(c, "/ok", 200, b"ok")
    with h2.H2Conn(env.port) as c:
        for path in ("/longer", "/longer-late"):
            LATE.clear()
            s = c.get(path)
            LATE.set()
            assert (s.status, bytes(s.data)) == (200, b"hello") and s.ended, s
            if path == "/longer-late":      # the stray bytes are on their way only now
                backend_let_go(env, path)
            h2_ok(c)
            backend_let_go(env, path)
    check.verify()


@standalone
def test_body_shorter_than_its_content_length(env):
    """The backend closes before the announced end (length or last chunk): the client
    sees the connection end early; an HTTP/2 stream is reset."""
    check = env.checkup()
    for _ in range(REPEAT):
        for path in ("/short-length", "/short-chunked"):
            fk.assert_cut(*h1(env, get(path)))
            ok(env)
    with h2.H2Conn(env.port) as c:
        for path in ("/short-length", "/short-chunked"):
            s = c.get(path)
            assert s.status == 200 and s.reset == h2.INTERNAL_ERROR and not s.ended, (path, s)
            h2_ok(c)
    check.verify()


@standalone
def test_invalid_chunked_encoding(env):
    """A bad chunk size, or chunk data not followed by CRLF: the response is cut where
    the encoding broke (no last chunk for the client), the backend connection closed."""
    check = env.checkup()
    for _ in range(REPEAT):
        for path in ("/bad-chunk-size", "/bad-chunk-end"):
            fk.assert_cut(*h1(env, get(path)))
            backend_let_go(env, path)
            ok(env)
    with h2.H2Conn(env.port) as c:
        for path in ("/bad-chunk-size", "/bad-chunk-end"):
            s = c.get(path)
            assert s.status == 200 and s.reset == h2.INTERNAL_ERROR and not s.ended, (path, s)
            h2_ok(c)
    check.verify()


@standalone
def test_interim_responses_then_the_final_one(env):
    """100 and 103 before the answer: an HTTP/1.1 client gets them, then the final
    response, and its connection goes on; HTTP/2 gets them as informational HEADERS."""
    check = env.checkup()
    for _ in range(REPEAT):
        data, how = h1(env, get("/interim", close=True))
        assert how == "eof" and b"HTTP/1.1 103 Early Hints\r\n" in data, data[:300]
        assert ft.parse_response(data)[::2] == (200, b"final")
        with ft.Client(env.port) as c:
            expect(c, "/interim", 200, b"final")
            expect(c, "/ok", 200, b"ok")
    with h2.H2Conn(env.port) as c:
        s = c.get("/interim")
        interim = [dict(fields)[":status"] for fields in s.informational]
        assert "103" in interim and (s.status, bytes(s.data)) == (200, b"final"), (interim, s)
        h2_ok(c)
    check.verify()


@standalone
def test_stray_body_after_204_and_304(env):
    """A body after a 204, a 304 or an answer to HEAD (with it, or after ferry pooled
    the connection) is not the next response: the next request on the same client
    connection gets its own answer, from another backend connection."""
    check = env.checkup()
    with ft.Client(env.port) as c:
        for _ in range(REPEAT):
            for path, status in (("/no-content-stray", 204), ("/not-modified-stray", 304)):
                expect(c, path, status, b"")
                expect(c, "/ok", 200, b"ok")
                backend_let_go(env, path)
            got = c.request("HEAD", "/longer")    # "hello" and a response after it
            assert (got[0], got[1].get("content-length"), got[2]) == (200, "5", b""), got
            expect(c, "/ok", 200, b"ok")
            backend_let_go(env, "/longer")
            LATE.clear()
            expect(c, "/no-content-late", 204, b"")
            LATE.set()
            backend_let_go(env, "/no-content-late")
            expect(c, "/ok", 200, b"ok")
    with h2.H2Conn(env.port) as c:
        for path, status in (("/no-content-stray", 204), ("/not-modified-stray", 304),
                             ("/no-content-late", 204)):
            LATE.clear()
            s = c.get(path)
            LATE.set()
            assert s.status == status and s.ended and not s.data, s
            if path == "/no-content-late":
                backend_let_go(env, path)
            h2_ok(c)
            backend_let_go(env, path)
        s = c.get("/longer", method="HEAD")
        assert s.status == 200 and s.ended and not s.data, s
        h2_ok(c)
        backend_let_go(env, "/longer")
    check.verify()


CASES = [test_reset_while_the_request_body_arrives, test_reset_in_the_middle_of_the_response,
         test_hang_in_the_middle_of_the_body, test_response_head_over_the_limits,
         test_body_longer_than_its_content_length, test_body_shorter_than_its_content_length,
         test_invalid_chunked_encoding, test_interim_responses_then_the_final_one,
         test_stray_body_after_204_and_304]


if __name__ == "__main__":
    ft.main()
