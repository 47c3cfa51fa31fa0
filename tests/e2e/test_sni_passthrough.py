#!/usr/bin/env python3
"""TLS passthrough: a tcp listener without tls routes by the ClientHello's SNI and
relays the encrypted bytes untouched to the backend, which terminates TLS itself."""

import os
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402


def config(a, b, c):
    return {
        "workers": 1,
        "log": {"level": "debug", "access": "off"},
        "listeners": {"sni": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "tcp",
                              "routes": [{"match": {"sni": "a.test"}, "pool": "a"},
                                         {"match": {"sni": "*.b.test"}, "pool": "b"},
                                         {"pool": "c"}]}},
        "pools": {n: {"backends": [{"address": be.address}]}
                  for n, be in (("a", a), ("b", b), ("c", c))},
    }


def backend_name(port, server_hostname):
    """GET / over TLS to whichever backend ferry picked; that backend answers its name."""
    ctx = ft.client_tls_context(verify=False)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return ft.parse_response(ft.read_until_close(tls))[2].strip().decode()


def test_clienthello_sni_picks_the_pool_and_tls_passes_through():
    with ft.Backend("a", tls=True) as a, ft.Backend("b", tls=True) as b, \
            ft.Backend("c", tls=True) as c, ft.Ferry(config(a, b, c)) as f:
        port = f.port("sni")
        assert backend_name(port, "a.test") == "a"
        assert backend_name(port, "A.TEST") == "a"
        assert backend_name(port, "x.b.test") == "b"
        assert backend_name(port, "deep.x.b.test") == "b"
        assert backend_name(port, "other.example") == "c"
        assert backend_name(port, None) == "c", "no SNI goes to the route without sni"


class TricklingSocket:
    """A socket whose writes leave in tiny pieces (TCP_NODELAY, a pause between them),
    so ferry sees the ClientHello arrive a few bytes at a time."""

    def __init__(self, sock, piece):
        self.sock, self.piece = sock, piece

    def __getattr__(self, name):
        return getattr(self.sock, name)

    def send(self, data, flags=0):
        data = data[:self.piece]
        n = self.sock.send(data, flags)
        time.sleep(0.0005)
        return n

    def sendall(self, data, flags=0):
        view = memoryview(data)
        while view:
            view = view[self.send(view, flags):]


def test_clienthello_trickled_in_small_pieces_still_routes():
    """ferry waits for the bytes the hello's own length fields say are needed instead
    of re-parsing on every read; the result must be the same route."""
    with ft.Backend("a", tls=True) as a, ft.Backend("b", tls=True) as b, \
            ft.Backend("c", tls=True) as c, ft.Ferry(config(a, b, c)) as f:
        raw = socket.create_connection(("127.0.0.1", f.port("sni")), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ft.client_tls_context(verify=False).wrap_bio(incoming, outgoing,
                                                           server_hostname="x.b.test")
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = outgoing.read()
        trickle = TricklingSocket(raw, 7)
        trickle.sendall(hello)
        log = f.wait_log("with server name x.b.test -> b")
        raw.close()
        parses = log.count("ClientHello incomplete")
        pieces = (len(hello) + 6) // 7
        assert parses <= 3, "hello of %d bytes in %d pieces parsed %d times before whole" % (
            len(hello), pieces, parses)


def test_client_that_never_sends_a_clienthello_is_closed_after_client_header_ms():
    with ft.Backend("a", tls=True) as a:
        cfg = config(a, a, a)
        cfg["pools"] = {"a": {"backends": [{"address": a.address}]}}
        for route in cfg["listeners"]["sni"]["routes"]:
            route["pool"] = "a"
        cfg["timeouts"] = {"client_header_ms": 300}
        with ft.Ferry(cfg) as f, ft.connect(f.port("sni")) as sock:
            sock.sendall(b"\x16\x03\x01\x00")     # a record header cut short
            assert ft.read_until_close(sock, timeout=5) == b""
            # /__stats counts its own connection: nothing else reached the backend.
            assert a.stats()["connections"] == 1, "a backend was contacted without a ClientHello"


if __name__ == "__main__":
    ft.main()
