#!/usr/bin/env python3
"""The PROXY protocol against a real peer: HAProxy from Debian in front of ferry
(send-proxy / send-proxy-v2 to listeners with proxy_protocol) and behind it
(accept-proxy on pools with proxy_protocol v1 / v2, plain and TLS), for http and tcp
listeners. Clients connect from 127.0.0.2 so that their address differs from every
proxy's (127.0.0.1)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402
from haproxyenv import HAPROXY_DEFAULTS, Haproxy, require_haproxy  # noqa: E402
from l4env import ProxyBackend, connect_from  # noqa: E402

CLIENT_IP = "127.0.0.2"


# What HAProxy answers behind ferry: the addresses its accept-proxy took.
ANSWER = ('    http-request return status 200 content-type text/plain lf-string '
          '"src=%[src] sport=%[src_port] dst=%[dst] dport=%[dst_port] '
          'authority=%[fc_pp_authority]"\n')


def behind_config(port, tls_port, pem):
    return HAPROXY_DEFAULTS + (
        "frontend plain\n    mode http\n    bind 127.0.0.1:%d accept-proxy\n" % port + ANSWER +
        "frontend tls\n    mode http\n    bind 127.0.0.1:%d accept-proxy ssl crt %s\n" % (
            tls_port, pem) + ANSWER)


def parse_answer(body):
    return dict(kv.split("=", 1) for kv in body.decode().split())


def combined_pem():
    path = os.path.join(ft.tmpdir(), "haproxy.pem")
    with open(path, "w") as out:
        for part in (ft.SERVER_CERT, ft.SERVER_KEY):
            with open(part) as f:
                out.write(f.read())
    return path


def ferry_config(listeners, pools):
    return {"workers": 1, "log": {"level": "debug", "access": "off"},
            "timeouts": {"drain_ms": 2000}, "listeners": listeners, "pools": pools}


def test_haproxy_behind_ferry_accepts_v1_and_v2():
    """ferry (http and tcp listeners) -> PROXY v1/v2 -> HAProxy accept-proxy: HAProxy
    sees the client's address and port, and the address it reached on ferry."""
    require_haproxy()
    hp_port, hp_tls = ft.free_port(), ft.free_port()
    with Haproxy(behind_config(hp_port, hp_tls, combined_pem()), [hp_port, hp_tls]):
        for version in ("v1", "v2"):
            listeners = {
                "h": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http", "pool": "hp"},
                "t": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "tcp", "pool": "hp"},
                "s": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http",
                      "pool": "hp_tls"},
            }
            pools = {"hp": {"backends": [{"address": "127.0.0.1:%d" % hp_port}],
                            "proxy_protocol": version},
                     "hp_tls": {"backends": [{"address": "127.0.0.1:%d" % hp_tls}],
                                "proxy_protocol": version,
                                "tls": {"ca": ft.CA_CERT, "sni": "localhost"}}}
            with ft.Ferry(ferry_config(listeners, pools)) as f:
                for name in ("h", "t", "s"):
                    sock = connect_from(CLIENT_IP, f.port(name))
                    sport = sock.getsockname()[1]
                    c = ft.Client.over(sock)
                    status, _, body = c.request("GET", "/", host="x")
                    c.close()
                    assert status == 200, (version, name, status, body)
                    got = parse_answer(body)
                    assert (got["src"], got["sport"], got["dst"], got["dport"]) == \
                        (CLIENT_IP, str(sport), "127.0.0.1", str(f.port(name))), \
                        (version, name, got)


def test_haproxy_behind_ferry_gets_the_sni_of_a_terminated_tls_client():
    require_haproxy()
    hp_port = ft.free_port()
    with Haproxy(behind_config(hp_port, ft.free_port(), combined_pem()), [hp_port]):
        tls = {"certificates": [{"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY}]}
        listeners = {"s": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http",
                           "pool": "hp", "tls": tls}}
        pools = {"hp": {"backends": [{"address": "127.0.0.1:%d" % hp_port}],
                        "proxy_protocol": "v2"}}
        with ft.Ferry(ferry_config(listeners, pools)) as f:
            c = ft.Client(f.port("s"), tls=True, server_hostname="localhost")
            status, _, body = c.request("GET", "/", host="localhost")
            c.close()
            assert status == 200, body
            assert parse_answer(body)["authority"] == "localhost", body


def test_haproxy_in_front_of_ferry_sends_v1_and_v2():
    """client -> HAProxy send-proxy(-v2) -> ferry listener with proxy_protocol: the
    client's address reaches X-Forwarded-For (http listener) and, passed on in
    ferry's own header, a PROXY backend (tcp listener)."""
    require_haproxy()
    pb = ProxyBackend(mode="echo")
    try:
        with ft.Backend("b") as b:
            listeners = {
                "h": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http", "pool": "web",
                      "proxy_protocol": True},
                "t": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "tcp", "pool": "pp",
                      "proxy_protocol": True, "proxy_protocol_from": ["127.0.0.1/32"]},
            }
            pools = {"web": {"backends": [{"address": b.address}]},
                     "pp": {"backends": [{"address": pb.address}], "proxy_protocol": "v2"}}
            with ft.Ferry(ferry_config(listeners, pools)) as f:
                for option in ("send-proxy", "send-proxy-v2"):
                    hp_http, hp_tcp = ft.free_port(), ft.free_port()
                    cfg = HAPROXY_DEFAULTS + (
                        "listen http\n    mode tcp\n    bind 127.0.0.1:%d\n"
                        "    server ferry 127.0.0.1:%d %s\n" % (hp_http, f.port("h"), option) +
                        "listen tcp\n    mode tcp\n    bind 127.0.0.1:%d\n"
                        "    server ferry 127.0.0.1:%d %s\n" % (hp_tcp, f.port("t"), option))
                    with Haproxy(cfg, [hp_http, hp_tcp]):
                        c = ft.Client.over(connect_from(CLIENT_IP, hp_http))
                        status, _, body = c.request("GET", "/headers", host="x")
                        c.close()
                        assert status == 200, (option, status)
                        assert ("X-Forwarded-For: %s" % CLIENT_IP).encode() in body, (option, body)
                        with connect_from(CLIENT_IP, hp_tcp) as sock:
                            sport = sock.getsockname()[1]
                            sock.sendall(b"ping")
                            assert sock.recv(4) == b"ping"
                        # (HAProxy's readiness probes made connections of their own)
                        h = ft.poll_until(lambda: [c for c in pb.connections
                                                   if c["src"] == CLIENT_IP], message="ours")[-1]
                        pb.connections.clear()
                        assert (h["src"], h["sport"], h["dport"]) == \
                            (CLIENT_IP, sport, hp_tcp), (option, h)
    finally:
        pb.stop()


if __name__ == "__main__":
    ft.main()
