#!/usr/bin/env python3
"""TLS on http listeners, where ferry runs the handshake and the record I/O over the
socket itself (read-ahead, its own write event; see proxy/core/bev.h): versions,
handshake failures counted by reason, resumption, a client certificate required,
records read ahead (pipelining), a reader slower than the backend, a tunnel after
101."""

import base64
import os
import socket
import ssl
import sys
import threading
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)  # the TLS 1.1 probe

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402

MIB = 1024 * 1024


def web_config(backend, **tls_extra):
    """(config with one TLS http listener "web" in front of backend, its port)."""
    tls = {"certificates": [{"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY}]}
    tls.update(tls_extra)
    port = ft.free_port()
    config = {"admin": {"listen": "127.0.0.1:%d" % ft.free_port()}, "workers": 1,
              "log": {"access": "off"},
              "listeners": {"web": {"listen": "127.0.0.1:%d" % port, "mode": "http",
                                    "tls": tls, "pool": "web"}},
              "pools": {"web": {"backends": [{"address": backend.address}]}}}
    return config, port


def start(backend, **tls_extra):
    config, port = web_config(backend, **tls_extra)
    return ft.Ferry(config).start(), port


def context(version=None, **args):
    ctx = ft.client_tls_context(**args)
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def get_root(port, ctx, session=None):
    """GET / on a new connection -> (status, body, ssl session, was it resumed)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    with ctx.wrap_socket(sock, server_hostname="localhost", session=session) as tls:
        status, _, body = ft.Client.over(tls).request("GET", "/")
        return status, body, tls.session, tls.session_reused


def failures(f):
    """ferry_tls_handshake_failures_total by reason."""
    return {dict(labels)["reason"]: value for (name, labels), value in f.metrics().items()
            if name == "ferry_tls_handshake_failures_total"}


def test_versions_and_hostile_handshakes_are_counted_and_harmless():
    with ft.Backend("alpha") as b:
        f, port = start(b)
        with f:
            for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
                assert get_root(port, context(version))[:2] == (200, b"alpha\n")
            old = context(verify=False)
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
            old.set_ciphers("DEFAULT:@SECLEVEL=0")
            try:
                get_root(port, old)
                raise AssertionError("TLS 1.1 was accepted")
            except (ssl.SSLError, ConnectionResetError):
                pass
            silent = socket.create_connection(("127.0.0.1", port), timeout=5)
            ft.assert_garbage_hello_refused(port)
            # plain HTTP to the TLS port: an alert or a close, never an HTTP answer
            reply = ft.http_request(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert not reply.startswith(b"HTTP/"), reply
            assert get_root(port, context())[:2] == (200, b"alpha\n"), "a good client failed"
            silent.close()
            ft.poll_until(lambda: f.status()["connections"] == 0, message="all closed")
            counted = failures(f)
            assert counted.get("protocol_version", 0) >= 2, counted    # TLS 1.1, plain HTTP
            assert sum(counted.values()) >= 3, counted                 # + the garbage


def test_tls_handshake_must_finish_within_client_header_ms():
    """A client that sends nothing or half a ClientHello is closed after
    client_header_ms, not client_idle_ms, so its max_connections slot comes back (a
    client waiting in the backlog is served); one that finished its handshake then has
    the idle allowance for its first request."""
    with ft.Backend("alpha") as b:
        config, _ = web_config(b)
        config["limits"] = {"max_connections": 2}
        config["timeouts"] = {"client_header_ms": 1000, "client_idle_ms": 3600000}
        with ft.Ferry(config) as f:
            _, tls, stalled = ft.unfinished_handshakes_then_a_client(f, "web")
            with ft.Client.over(tls) as c:
                time.sleep(2.0)     # twice client_header_ms, idle after the handshake
                status, _, body = c.request("GET", "/")
                assert (status, body) == (200, b"alpha\n"), (status, body)
            for name, sock in stalled:
                with ft.Client.over(sock) as c:
                    assert c.is_closed_by_peer(1.0), "%s client still open" % name
            assert failures(f).get("timeout") == 2, failures(f)


def test_sessions_resume_with_tls12_and_tls13():
    with ft.Backend("alpha") as b:
        f, port = start(b)
        with f:
            for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
                ctx = context(version)
                _, _, session, reused = get_root(port, ctx)
                assert not reused
                status, body, _, reused = get_root(port, ctx, session)
                assert (status, body) == (200, b"alpha\n")
                assert reused, "%s session not resumed" % version


def test_required_client_certificate():
    with ft.Backend("alpha") as b:
        f, port = start(b, client_ca=ft.CA_CERT)       # client_ca alone = required
        with f:
            with_cert = context(cert=ft.CLIENT_CERT, key=ft.CLIENT_KEY)
            assert get_root(port, with_cert)[:2] == (200, b"alpha\n")
            try:
                status = get_root(port, context())[0]
            except (ssl.SSLError, ConnectionResetError, AssertionError):
                status = None
            assert status is None, "served without a client certificate"
            ft.poll_until(lambda: failures(f).get("certificate", 0) >= 1,
                          message="failure counted as certificate")


def test_requests_sent_as_many_small_records_are_all_answered_in_order():
    """Each request its own TLS record, all sent before reading: ferry reads several
    records per read(2) (read-ahead) and must not leave any in OpenSSL's buffer."""
    with ft.Backend("alpha") as b:
        f, port = start(b)
        with f, ft.Client(port, tls=True) as c:
            for i in range(64):
                c.send(b"GET /bytes/%d HTTP/1.1\r\nHost: a\r\n\r\n" % (100 + i))
            for i in range(64):
                status, _, body = c.read_response()
                assert status == 200 and body == ft.pattern_bytes(100 + i), i
            one_record = b"".join(b"GET /bytes/%d HTTP/1.1\r\nHost: a\r\n\r\n" % (10 + i)
                                  for i in range(200))
            c.send(one_record)
            for i in range(200):
                status, _, body = c.read_response()
                assert status == 200 and body == ft.pattern_bytes(10 + i), i


def test_a_request_in_the_same_flight_as_the_client_finished_is_answered():
    """The client's Finished and its first request arrive in one TCP write: the read
    that completes the handshake must go on to the request OpenSSL already holds."""
    with ft.Backend("alpha") as b:
        f, port = start(b)
        with f, socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = ft.client_tls_context().wrap_bio(incoming, outgoing,
                                                   server_hostname="localhost")
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    sock.sendall(outgoing.read())
                    incoming.write(sock.recv(65536))
            tls.write(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            sock.sendall(outgoing.read())       # Finished + request, one write
            reply = b""
            while b"alpha" not in reply:
                data = sock.recv(65536)
                assert data, "closed without an answer: %r" % reply
                incoming.write(data)
                try:
                    reply += tls.read(65536)
                except ssl.SSLWantReadError:
                    pass
            assert reply.startswith(b"HTTP/1.1 200"), reply


def test_a_reader_slower_than_the_backend_gets_every_byte():
    """The client's socket fills up: ferry waits for it to drain (its own write
    event), then the connection goes on with the next request."""
    n = 16 * MIB
    with ft.Backend("alpha") as b:
        f, port = start(b)
        with f:
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
            tls = ft.client_tls_context().wrap_socket(sock, server_hostname="localhost")
            with tls:
                c = ft.Client.over(tls, timeout=30.0)
                c.send(b"GET /bytes/%d HTTP/1.1\r\nHost: a\r\n\r\n" % n)
                time.sleep(0.5)         # let both socket buffers fill
                status, _, body = c.read_response()
                assert status == 200 and len(body) == n and body == ft.pattern_bytes(n)
                assert c.request("GET", "/")[:3:2] == (200, b"alpha\n")


def test_upgrade_tunnel_over_tls_relays_both_ways_and_ends_with_the_client():
    with ft.Backend("alpha") as b:
        f, port = start(b)
        with f, ft.Client(port, tls=True, timeout=20) as c:
            key = base64.b64encode(os.urandom(16)).decode()
            c.send(("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n" % key).encode())
            assert c.read_response()[0] == 101
            data = os.urandom(MIB)
            assert ft.send_while_reading(c.sock, data, len(data)) == data
            c.sock.shutdown(socket.SHUT_WR)     # TCP EOF without close_notify
            assert c.is_closed_by_peer(5)
            ft.poll_until(lambda: f.status()["connections"] == 0, message="tunnel closed")


def test_a_response_cut_by_the_backend_does_not_end_with_close_notify():
    """HTTP/1.0 client, chunked backend that dies mid-body: the client's response is
    delimited by the close, so the close must not look clean — no close_notify."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve_cut():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    threading.Thread(target=serve_cut, daemon=True).start()
    cut = type("B", (), {"address": "127.0.0.1:%d" % listener.getsockname()[1]})
    f, port = start(cut)
    with f, listener:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        ctx = ft.client_tls_context()
        with ctx.wrap_socket(sock, server_hostname="localhost", suppress_ragged_eofs=False) as tls:
            tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
            got, clean_end = b"", None
            while clean_end is None:
                try:
                    chunk = tls.recv(65536)
                except (ssl.SSLEOFError, ConnectionResetError):
                    clean_end = False
                    break
                if not chunk:
                    clean_end = True
                got += chunk
            assert got.startswith(b"HTTP/1.1 200") and got.endswith(b"hello"), got
            assert clean_end is False, "a cut response ended with close_notify"


if __name__ == "__main__":
    ft.main()
