#!/usr/bin/env python3
"""The PROXY protocol: listeners that receive it (the client address replaces the
socket peer in X-Forwarded-For, the access log and the header sent on; missing,
malformed or late headers close; LOCAL uses the socket; proxy_protocol_from), and pools
that send it (tcp and http, v1 and v2, TLS TLVs, keep-alive connections per client)."""

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402
import h2client  # noqa: E402
from l4env import (ProxyBackend, connect_from, proxy_v1, proxy_v2, proxy_v2_local,  # noqa: E402
                   read_proxy_header)


def http_listener(pool, **extra):
    listener = {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http", "pool": pool}
    listener.update(extra)
    return listener


def config_with(listeners, pools, **top):
    config = {"workers": 2, "log": {"level": "debug", "access": "stdout"},
              "timeouts": {"client_header_ms": 1000, "drain_ms": 2000},
              "listeners": listeners, "pools": pools}
    config.update(top)
    return config


def access_lines(ferry):
    return [json.loads(line) for line in ferry.stdout().splitlines() if line.startswith("{")]


def get_over(sock, path="/headers"):
    c = ft.Client.over(sock)
    return c.request("GET", path)


# ---- receiving ---------------------------------------------------------------------

def test_v1_and_v2_headers_give_the_client_address_everywhere():
    with ft.Backend("b") as b:
        config = config_with({"h": http_listener("p", proxy_protocol=True)},
                             {"p": {"backends": [{"address": b.address}]}})
        with ft.Ferry(config) as f:
            port = f.port("h")
            for header, ip in ((proxy_v1("192.0.2.10", 40001, "10.0.0.1", 443), "192.0.2.10"),
                               (proxy_v2("2001:db8::7", 40002, "2001:db8::1", 443), "2001:db8::7"),
                               (proxy_v2("198.51.100.4", 40003, "10.0.0.1", 80,
                                         tlvs=b"\x04\x00\x02zz"), "198.51.100.4")):
                with ft.connect(port) as sock:
                    sock.sendall(header)
                    status, _, body = get_over(sock)
                assert status == 200, status
                assert ("x-forwarded-for: %s" % ip).encode() in body.lower(), body
            lines = ft.poll_until(lambda: len(access_lines(f)) >= 3 and access_lines(f),
                                  message="three access-log lines")
            assert [l["client"] for l in lines[:3]] == ["192.0.2.10", "2001:db8::7",
                                                       "198.51.100.4"], lines


def test_http2_streams_take_the_client_address_too():
    """h2c after a v2 header: every stream's X-Forwarded-For is the header's client."""
    with ft.Backend("b") as b:
        listener = http_listener("p", proxy_protocol=True, http2={"h2c": True})
        config = config_with({"h": listener}, {"p": {"backends": [{"address": b.address}]}})
        with ft.Ferry(config) as f:
            c = h2client.H2Conn(f.port("h"), preface=False)
            c.send_raw(proxy_v2("203.0.113.77", 4242, "10.0.0.1", 80))
            c.send_preface()
            for _ in range(2):
                st = c.get("/headers")
                assert st.status == 200, st
                assert b"X-Forwarded-For: 203.0.113.77" in st.data, st.data
            c.close()


def test_header_in_pieces_and_payload_in_the_same_segment():
    with ft.Backend("b") as b:
        config = config_with({"h": http_listener("p", proxy_protocol=True)},
                             {"p": {"backends": [{"address": b.address}]}})
        with ft.Ferry(config) as f:
            header = proxy_v2("203.0.113.5", 5555, "10.0.0.1", 80)
            with ft.connect(f.port("h")) as sock:
                for byte in header[:20]:
                    sock.sendall(bytes([byte]))
                    time.sleep(0.002)
                sock.sendall(header[20:] + b"GET /headers HTTP/1.1\r\nHost: x\r\n\r\n")
                c = ft.Client.over(sock)
                status, _, body = c.read_response()
            assert status == 200 and b"X-Forwarded-For: 203.0.113.5" in body, body


def test_missing_malformed_or_late_headers_close_the_connection():
    with ft.Backend("b") as b:
        config = config_with({"h": http_listener("p", proxy_protocol=True)},
                             {"p": {"backends": [{"address": b.address}]}})
        with ft.Ferry(config) as f:
            port = f.port("h")
            for bad in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                        b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\nGET / HTTP/1.1\r\n\r\n",
                        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 80\nGET / HTTP/1.1\r\n\r\n",
                        b"\r\n\r\n\x00\r\nQUIT\n\x22\x11\x00\x0c" + bytes(12)):
                got = ft.http_request(port, bad, timeout=3)
                assert got == b"", "answered without a valid header: %r" % got[:80]
            start = time.monotonic()
            with ft.connect(port) as sock:
                sock.sendall(b"PROXY TCP4 1.2.3.4")
                got = ft.read_until_close(sock, timeout=5)
            elapsed = time.monotonic() - start
            assert got == b"" and 0.8 < elapsed < 3.0, "closed after %.2fs: %r" % (elapsed, got)
            f.wait_log("incomplete header in time")
            f.wait_log("bad v1 port")
            assert b.stats()["app_requests"] == 0


def test_local_command_uses_the_socket_address():
    with ft.Backend("b") as b:
        config = config_with({"h": http_listener("p", proxy_protocol=True)},
                             {"p": {"backends": [{"address": b.address}]}})
        with ft.Ferry(config) as f:
            with connect_from("127.0.0.3", f.port("h")) as sock:
                sock.sendall(proxy_v2_local() + b"PROXY-looking payload is not read twice")
                sock.sendall(b"\r\n")
                got = ft.read_until_close(sock, timeout=3)
            assert got.startswith(b"HTTP/1.1 400"), got[:80]
            with connect_from("127.0.0.3", f.port("h")) as sock:
                sock.sendall(proxy_v2_local())
                status, _, body = get_over(sock)
            assert status == 200 and b"X-Forwarded-For: 127.0.0.3" in body, body


def test_proxy_protocol_from_only_those_peers_send_a_header():
    with ft.Backend("b") as b:
        listener = http_listener("p", proxy_protocol=True, proxy_protocol_from=["127.0.0.2/32"])
        config = config_with({"h": listener}, {"p": {"backends": [{"address": b.address}]}})
        with ft.Ferry(config) as f:
            port = f.port("h")
            with connect_from("127.0.0.2", port) as sock:       # the balancer
                sock.sendall(proxy_v1("192.0.2.77", 1234, "10.0.0.1", 80))
                status, _, body = get_over(sock)
            assert status == 200 and b"X-Forwarded-For: 192.0.2.77" in body, body
            with connect_from("127.0.0.2", port) as sock:       # ... must send one
                sock.sendall(b"GET /headers HTTP/1.1\r\nHost: x\r\n\r\n")
                assert ft.read_until_close(sock, timeout=3) == b""
            with connect_from("127.0.0.4", port) as sock:       # a direct client
                status, _, body = get_over(sock)
            assert status == 200 and b"X-Forwarded-For: 127.0.0.4" in body, body
            with connect_from("127.0.0.4", port) as sock:       # cannot claim an address
                sock.sendall(proxy_v1("192.0.2.66", 1, "10.0.0.1", 80) +
                             b"GET /headers HTTP/1.1\r\nHost: x\r\n\r\n")
                got = ft.read_until_close(sock, timeout=3)
            assert got.startswith(b"HTTP/1.1 400") and b"192.0.2.66" not in got, got[:200]


def test_tcp_listener_passes_the_received_address_on():
    pb = ProxyBackend(mode="echo")
    try:
        config = config_with(
            {"t": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "tcp", "pool": "p",
                   "proxy_protocol": True}},
            {"p": {"backends": [{"address": pb.address}], "proxy_protocol": "v1"}})
        with ft.Ferry(config) as f:
            with ft.connect(f.port("t")) as sock:
                sock.sendall(proxy_v2("192.0.2.200", 6000, "198.51.100.1", 25) + b"EHLO x\r\n")
                assert sock.recv(100) == b"EHLO x\r\n"
            h = pb.wait_connections(1)[0]
            assert (h["version"], h["src"], h["sport"], h["dst"], h["dport"]) == \
                (1, "192.0.2.200", 6000, "198.51.100.1", 25), h
    finally:
        pb.stop()


# ---- sending -----------------------------------------------------------------------

def test_tcp_pool_sends_v1_and_v2_with_the_client_address():
    for version in ("v1", "v2"):
        pb = ProxyBackend(mode="echo")
        try:
            config = config_with(
                {"t": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "tcp", "pool": "p"}},
                {"p": {"backends": [{"address": pb.address}], "proxy_protocol": version}})
            with ft.Ferry(config) as f:
                with connect_from("127.0.0.2", f.port("t")) as sock:
                    sport = sock.getsockname()[1]
                    sock.sendall(b"hello")
                    assert sock.recv(100) == b"hello"
                h = pb.wait_connections(1)[0]
                assert h["version"] == int(version[1]), h
                assert (h["src"], h["sport"], h["dst"], h["dport"]) == \
                    ("127.0.0.2", sport, "127.0.0.1", f.port("t")), h
        finally:
            pb.stop()


def test_v2_carries_sni_and_alpn_when_ferry_terminated_tls():
    pb = ProxyBackend(mode="echo")
    try:
        tls = {"certificates": [{"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY}],
               "alpn": ["smtp", "imap"]}
        config = config_with(
            {"t": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "tcp", "pool": "p",
                   "tls": tls}},
            {"p": {"backends": [{"address": pb.address}], "proxy_protocol": "v2"}})
        with ft.Ferry(config) as f:
            ctx = ft.client_tls_context(alpn=["imap"])
            with ft.connect(f.port("t"), context=ctx, server_hostname="localhost") as sock:
                sock.sendall(b"a1 NOOP\r\n")
                assert sock.recv(100) == b"a1 NOOP\r\n"
            h = pb.wait_connections(1)[0]
            assert h["tlvs"].get(0x01) == b"imap", h
            assert h["tlvs"].get(0x02) == b"localhost", h
            assert h["tlvs"][0x20][5:8] == b"\x21\x00\x07" and h["tlvs"][0x20][8:] == b"TLSv1.3", h
    finally:
        pb.stop()


def test_http_keep_alive_connections_are_not_shared_between_clients():
    pb = ProxyBackend(mode="http")
    try:
        config = config_with({"h": http_listener("p")},
                             {"p": {"backends": [{"address": pb.address}], "proxy_protocol": "v2",
                                    "keepalive": {"max_idle": 8}}}, workers=1)
        with ft.Ferry(config) as f:
            port = f.port("h")
            a = ft.Client.over(connect_from("127.0.0.2", port))
            b = ft.Client.over(connect_from("127.0.0.3", port))
            bodies = []
            for client in (a, b, a, b, a):
                status, _, body = client.request("GET", "/")
                assert status == 200, status
                bodies.append(body.decode())
            conns = [dict(kv.split("=") for kv in body.split()) for body in bodies]
            assert [c["src"] for c in conns] == ["127.0.0.2", "127.0.0.3", "127.0.0.2",
                                                 "127.0.0.3", "127.0.0.2"], bodies
            assert conns[0]["conn"] == conns[2]["conn"] == conns[4]["conn"], \
                "a client's keep-alive connection was not reused: %r" % bodies
            assert conns[1]["conn"] == conns[3]["conn"] != conns[0]["conn"], bodies
            a.close()
            # The client left: its backend connection goes too, never to another client.
            c = ft.Client.over(connect_from("127.0.0.4", port))
            status, _, body = c.request("GET", "/")
            got = dict(kv.split("=") for kv in body.decode().split())
            assert got["src"] == "127.0.0.4" and got["conn"] not in (conns[0]["conn"],
                                                                    conns[1]["conn"]), body
            b.close()
            c.close()
            assert len(pb.connections) == 3, pb.connections
    finally:
        pb.stop()


def test_health_checks_send_a_local_header():
    pb = ProxyBackend(mode="echo")
    try:
        config = config_with(
            {"t": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "tcp", "pool": "p"}},
            {"p": {"backends": [{"address": pb.address}], "proxy_protocol": "v2",
                   "health_check": {"type": "tcp", "interval_ms": 200, "timeout_ms": 100}}})
        with ft.Ferry(config):
            h = pb.wait_connections(1)[0]
            assert h["version"] == 2 and h["command"] == "LOCAL", h
    finally:
        pb.stop()


def test_v1_backend_reads_exactly_one_header():
    """A raw backend reading the header itself (not the helper): the header is one
    line, then the client's bytes, nothing in between."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    try:
        config = config_with(
            {"t": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "tcp", "pool": "p"}},
            {"p": {"backends": [{"address": "127.0.0.1:%d" % srv.getsockname()[1]}],
                   "proxy_protocol": "v1"}})
        with ft.Ferry(config) as f:
            with ft.connect(f.port("t")) as sock:
                sport = sock.getsockname()[1]
                sock.sendall(b"DATA")
                srv.settimeout(5)
                conn, _ = srv.accept()
                conn.settimeout(5)
                h = read_proxy_header(conn)
                assert conn.recv(4) == b"DATA"
                conn.close()
            assert (h["src"], h["sport"]) == ("127.0.0.1", sport), h
    finally:
        srv.close()


if __name__ == "__main__":
    ft.main()
