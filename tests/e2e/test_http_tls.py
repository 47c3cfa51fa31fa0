#!/usr/bin/env python3
"""HTTP over TLS: X-Forwarded-Proto, X-Client-Cert-Subject from verified client
certificates only, TLS to backends with pooled connections, large bodies through TLS
on both sides."""

import hashlib
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402

MIB = 1024 * 1024


def tls_listener(port, **extra):
    tls = {"certificates": [{"cert": "certs/dev/localhost.crt", "key": "certs/dev/localhost.key"}]}
    tls.update(extra)
    return {"listen": "127.0.0.1:%d" % port, "mode": "http", "tls": tls, "pool": "web"}


def config(backend, listener, pool_tls=None):
    pool = {"backends": [{"address": backend.address, "name": backend.name}]}
    if pool_tls:
        pool["tls"] = pool_tls
    return {"admin": None, "workers": 1, "log": {"access": "off"},
            "listeners": {"web": listener}, "pools": {"web": pool}}


def headers_seen(c, extra=""):
    c.send(("GET /headers HTTP/1.1\r\nHost: localhost\r\n%s\r\n" % extra).encode())
    status, _, body = c.read_response()
    assert status == 200, status
    seen = {}
    for line in body.decode().split("\r\n")[1:]:
        if line:
            name, _, value = line.partition(":")
            seen.setdefault(name.strip().lower(), []).append(value.strip())
    return seen


def test_client_cert_subject_only_from_a_verified_certificate():
    b = ft.Backend("alpha").start()
    port = ft.free_port()
    f = ft.Ferry(config(b, tls_listener(port, client_ca="certs/dev/ca.crt",
                                        verify_client="optional"))).start()
    with f, b:
        with_cert = ft.client_tls_context(cert=ft.CLIENT_CERT, key=ft.CLIENT_KEY)
        with ft.Client(port, context=with_cert) as c:
            seen = headers_seen(c, "X-Client-Cert-Subject: CN=spoofed\r\n")
            assert seen["x-forwarded-proto"] == ["https"]
            subject = seen["x-client-cert-subject"]
            assert len(subject) == 1 and "CN=" in subject[0] and "spoofed" not in subject[0]
        with ft.Client(port, tls=True) as c:
            seen = headers_seen(c, "X-Client-Cert-Subject: CN=spoofed\r\n")
            assert "x-client-cert-subject" not in seen, seen
            assert seen["x-forwarded-proto"] == ["https"]


def test_tls_to_backends_reuses_pooled_connections():
    b = ft.Backend("alpha", tls=True).start()
    port = ft.free_port()
    f = ft.Ferry(config(b, tls_listener(port),
                        pool_tls={"verify": True, "ca": "certs/dev/ca.crt", "sni": "localhost"})
                 ).start()
    with f, b, ft.Client(port, tls=True) as c:
        for _ in range(30):
            status, headers, body = c.request("GET", "/")
            assert status == 200 and body == b"alpha\n"
        stats = b.stats()
        assert stats["app_requests"] == 30 and stats["connections"] <= 3, stats


def test_large_bodies_through_tls_on_both_sides():
    b = ft.Backend("alpha", tls=True).start()
    port = ft.free_port()
    f = ft.Ferry(config(b, tls_listener(port),
                        pool_tls={"verify": True, "ca": "certs/dev/ca.crt", "sni": "localhost"})
                 ).start()
    data = os.urandom(4 * MIB)
    with f, b, ft.Client(port, tls=True, timeout=30) as c:
        status, _, body = c.request("POST", "/sha256", body=data)
        assert status == 200
        assert body.split() == [hashlib.sha256(data).hexdigest().encode(), b"%d" % len(data)]
        status, _, body = c.request("GET", "/chunked/%d" % (4 * MIB))
        assert status == 200 and body == ft.pattern_bytes(4 * MIB)
        # pipelined requests over TLS come back in order
        c.send(b"GET /bytes/100000 HTTP/1.1\r\nHost: a\r\n\r\n" * 5)
        for _ in range(5):
            status, _, body = c.read_response()
            assert status == 200 and body == ft.pattern_bytes(100000)


def test_tls_backend_that_accepts_and_never_answers_times_out():
    """The TLS handshake to the backend is bounded by connect_ms too: 504, not a hang."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    backend = type("B", (), {"address": "127.0.0.1:%d" % silent.getsockname()[1], "name": "mute"})
    port = ft.free_port()
    cfg = config(backend, {"listen": "127.0.0.1:%d" % port, "mode": "http", "pool": "web"},
                 pool_tls={"verify": False})
    cfg["timeouts"] = {"connect_ms": 300, "upstream_response_ms": 1000}
    with silent, ft.Ferry(cfg):
        started = time.monotonic()
        reply = ft.http_request(port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                                timeout=10)
        assert reply.startswith(b"HTTP/1.1 504"), reply[:100]
        assert time.monotonic() - started < 5


if __name__ == "__main__":
    ft.main()
