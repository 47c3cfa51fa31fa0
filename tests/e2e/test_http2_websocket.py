#!/usr/bin/env python3
"""WebSocket over HTTP/2 (RFC 8441): ferry offers SETTINGS_ENABLE_CONNECT_PROTOCOL; an
extended CONNECT with :protocol websocket goes to the backend as the HTTP/1.1 upgrade
request it stands for, its 101 comes back as a 200 on the stream, and the stream's
DATA and the backend's bytes are relayed both ways, with flow control, beside other
streams of the connection, for as long as tcp_idle_ms allows. A backend that does not
upgrade, another :protocol, or http2.websocket false each get a clear answer."""

import hashlib
import os
import socket
import sys
import time

# python3-h2, the library (h2client, ferry's raw-frame client, is imported as h2 below)
from h2 import config as h2_config, connection as h2_connection, events as h2_events

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402
import h2client as h2  # noqa: E402
import h2env  # noqa: E402
from rawbackend import RawBackend  # noqa: E402

ENABLE_CONNECT_PROTOCOL = 0x8       # RFC 8441 §3
CONNECT_ERROR = 0xa                 # RFC 9113 §7: a tunnel's TCP side broke


def started(*backends, **config):
    for b in backends:
        b.start()
    return h2env.proxy(h2env.h2_config(*backends, **config)).start()


def open_websocket(c, path="/ws", protocol="websocket", headers=()):
    """An extended CONNECT as browsers send it (RFC 8441 §4); returns the stream id."""
    sid = c.new_stream_id()
    c.send_headers(sid, [(":method", "CONNECT"), (":protocol", protocol),
                         (":scheme", "https" if c.tls else "http"), (":path", path),
                         (":authority", "localhost"), ("sec-websocket-version", "13")]
                   + list(headers))
    return sid


def active_upstreams(p):
    return p.status()["pools"]["web"]["backends"][0]["active"]


def test_websocket_over_h2_relays_both_ways_beside_other_streams():
    h2env.ferry_only("RFC 8441 (HAProxy's reference run is not set up for it)")
    b = ft.Backend("alpha")
    with started(b) as p, b, h2.H2Conn(p.port("tls"), tls=True, timeout=30) as c:
        c.wait(lambda: c.settings_received, what="the server's SETTINGS")
        assert c.peer_settings.get(ENABLE_CONNECT_PROTOCOL) == 1, c.peer_settings
        sid = open_websocket(c)
        ws = c.stream(sid)
        c.wait(lambda: ws.headers is not None or ws.done, what="the tunnel's answer")
        assert ws.status == 200 and not ws.done, ws
        assert ws.header("x-backend") == "alpha"
        # HTTP/1.1's upgrade fields stay on the backend side
        assert not {"sec-websocket-accept", "upgrade", "connection"} & set(ws.names()), ws.headers
        c.send_data(sid, b"hello over h2")
        c.wait(lambda: bytes(ws.data) == b"hello over h2", what="the echo")
        # more than the windows hold, while another stream is answered
        big = os.urandom(3 * 1024 * 1024)
        c.send_data(sid, big)
        assert c.get("/").status == 200
        want = len(b"hello over h2") + len(big)
        c.wait(lambda: len(ws.data) >= want, timeout=60, what="3 MiB echoed")
        assert hashlib.sha256(bytes(ws.data[13:])).digest() == hashlib.sha256(big).digest()
        assert active_upstreams(p) == 1
        c.reset_stream(sid)         # the client goes: so does the backend connection
        c.flush()
        ft.poll_until(lambda: active_upstreams(p) == 0, message="the tunnel's upstream closed")
        assert c.get("/").status == 200


def test_python_h2_opens_a_websocket_and_ends_it_cleanly():
    """Another implementation's client state machine (python3-h2, which sends :protocol
    only once the server's SETTINGS allow it) against ferry: 200, an echo, and a clean
    end after its END_STREAM."""
    h2env.ferry_only("RFC 8441 (HAProxy's reference run is not set up for it)")
    b = ft.Backend("alpha")
    with started(b) as p, b, socket.create_connection(("127.0.0.1", p.port("plain")),
                                                      timeout=10) as sock:
        conn = h2_connection.H2Connection(h2_config.H2Configuration(client_side=True))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        seen = []

        def run_until(predicate):
            while not predicate():
                data = sock.recv(65536)
                assert data, "ferry closed the connection: %r" % seen
                for event in conn.receive_data(data):
                    seen.append(event)
                    if isinstance(event, h2_events.DataReceived):
                        conn.acknowledge_received_data(event.flow_controlled_length,
                                                       event.stream_id)
                sock.sendall(conn.data_to_send())

        def has(kind):
            return [e for e in seen if isinstance(e, kind)]
        run_until(lambda: has(h2_events.RemoteSettingsChanged))
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"),
                                (":scheme", "http"), (":path", "/ws"),
                                (":authority", "localhost"), ("sec-websocket-version", "13")])
        sock.sendall(conn.data_to_send())
        run_until(lambda: has(h2_events.ResponseReceived) or has(h2_events.StreamReset))
        assert dict(has(h2_events.ResponseReceived)[0].headers)[b":status"] == b"200", seen
        conn.send_data(sid, b"ping!", end_stream=True)
        sock.sendall(conn.data_to_send())
        run_until(lambda: has(h2_events.StreamEnded) or has(h2_events.StreamReset))
        assert not has(h2_events.StreamReset), seen
        assert b"".join(e.data for e in has(h2_events.DataReceived)) == b"ping!"


def test_the_clients_end_of_stream_reaches_the_backend_and_its_close_ends_the_stream():
    """END_STREAM from the client is the tunnel's half-close: the backend (an echo) gets
    its EOF after every byte, answers the rest and closes; the stream then ends
    cleanly (END_STREAM, no reset)."""
    h2env.ferry_only("RFC 8441 (HAProxy's reference run is not set up for it)")
    b = ft.Backend("alpha")
    with started(b) as p, b, h2.H2Conn(p.port("plain"), timeout=30) as c:
        sid = open_websocket(c)
        ws = c.stream(sid)
        c.wait(lambda: ws.status == 200, what="the tunnel")
        c.send_data(sid, b"last words", end_stream=True)
        c.wait(lambda: ws.done, what="the stream's end")
        assert (bytes(ws.data), ws.ended, ws.reset) == (b"last words", True, None), ws
        ft.poll_until(lambda: active_upstreams(p) == 0, message="the tunnel's upstream closed")


def test_a_websocket_tunnel_lives_by_tcp_idle_ms_not_upstream_response_ms():
    h2env.ferry_only("ferry's timeouts")
    b = ft.Backend("alpha")
    timeouts = {"upstream_response_ms": 300, "tcp_idle_ms": 1500}
    with started(b, timeouts=timeouts) as p, b, h2.H2Conn(p.port("plain"), timeout=30) as c:
        sid = open_websocket(c)
        ws = c.stream(sid)
        c.wait(lambda: ws.status == 200, what="the tunnel")
        quiet_until = time.monotonic() + 0.8    # longer than upstream_response_ms
        while time.monotonic() < quiet_until:
            c.step(0.05)
        assert not ws.done, ws
        c.send_data(sid, b"still here")
        c.wait(lambda: bytes(ws.data) == b"still here", what="the echo after 0.8 s idle")
        idle_from = time.monotonic()
        c.wait(lambda: ws.done, timeout=10, what="the idle tunnel ended")
        assert time.monotonic() - idle_from >= 1.4, "ended before tcp_idle_ms"
        assert ws.reset == CONNECT_ERROR, ws
        assert c.get("/").status == 200     # the connection lives on


def test_a_backend_that_does_not_upgrade_gets_502_and_its_errors_pass():
    h2env.ferry_only("ferry's answers")
    b = ft.Backend("alpha")
    with started(b) as p, b, h2.H2Conn(p.port("plain")) as c:
        # "/" answers 200 without 101: to the client a 2xx would mean an open tunnel
        ok = c.stream(open_websocket(c, path="/"))
        c.wait(lambda: ok.done, what="the answer")
        assert ok.status == 502, ok
        denied = c.stream(open_websocket(c, path="/status/403"))
        c.wait(lambda: denied.done, what="the answer")
        assert denied.status == 403, denied
        other = c.stream(open_websocket(c, protocol="webtransport"))
        c.wait(lambda: other.done, what="the answer")
        assert other.status == 501, other
        assert b.stats()["app_requests"] == 2
        assert c.get("/").status == 200


def test_data_before_the_200_waits_for_the_upgrade_and_never_reaches_a_refusal():
    """A client's DATA before its 200 are the tunnel's, not the upgrade request's body:
    they wait for the 101. When the backend refuses (404), they never reach it: sent
    behind the GET, they would be a second request that bypassed ferry (smuggled)."""
    h2env.ferry_only("ferry's tunnels")
    b = ft.Backend("alpha")
    smuggled = b"GET /headers HTTP/1.1\r\nHost: x\r\nX-Client-Cert-Subject: CN=admin\r\n\r\n"
    with started(b) as p, b, h2.H2Conn(p.port("plain")) as c:
        refused = open_websocket(c, path="/status/404")
        c.send_data(refused, smuggled, end_stream=True)
        c.wait(lambda: c.stream(refused).done, what="the refusal")
        assert c.stream(refused).status == 404, c.stream(refused)
        early = open_websocket(c)
        c.send_data(early, b"sent before the 200")
        ws = c.stream(early)
        c.wait(lambda: bytes(ws.data) == b"sent before the 200", what="the early bytes echoed")
        assert ws.status == 200, ws
        assert b.stats()["app_requests"] == 2     # /status/404 and /ws: nothing smuggled


def test_refused_upgrades_and_a_silent_backend_do_not_eject_or_hang():
    """Any client can ask an application without WebSocket for one: its 2xx answers
    (502 to the client) count nothing against the backend, which stays up. A backend
    that never answers the upgrade gets 504 after upstream_response_ms, whatever the
    client keeps sending."""
    h2env.ferry_only("ferry's passive health")
    b = ft.Backend("alpha")
    pool = {"passive": {"failures": 2, "eject_ms": 60000, "on_5xx": True}}
    with started(b, pool=pool, timeouts={"upstream_response_ms": 500}) as p, b, \
            h2.H2Conn(p.port("plain")) as c:
        for _ in range(4):
            ws = c.stream(open_websocket(c, path="/"))
            c.wait(lambda: ws.done, what="the answer")
            assert ws.status == 502, ws
        backend = p.status()["pools"]["web"]["backends"][0]
        assert backend["state"] == "up" and backend["failures"] == 0, backend
        assert c.get("/").status == 200
        silent = open_websocket(c, path="/hang")
        started_at = time.monotonic()
        for _ in range(8):      # activity from the client does not stretch the wait
            c.send_data(silent, b"x")
            c.step(0.1)
        c.wait(lambda: c.stream(silent).done, what="the 504")
        assert c.stream(silent).status == 504, c.stream(silent)
        assert time.monotonic() - started_at < 3.0


def test_websockets_per_connection_are_bounded():
    h2env.ferry_only("ferry's limits")
    b = ft.Backend("alpha")
    with started(b) as p, b, h2.H2Conn(p.port("plain"), timeout=30) as c:
        open_ones = [c.stream(open_websocket(c)) for _ in range(32)]
        c.wait(lambda: all(s.status == 200 for s in open_ones), what="32 tunnels")
        extra = c.stream(open_websocket(c))
        c.wait(lambda: extra.done, what="the 33rd answered")
        assert extra.status == 503, extra
        c.reset_stream(open_ones[0].id)
        c.flush()
        ft.poll_until(lambda: active_upstreams(p) == 31, message="one tunnel closed")
        again = c.stream(open_websocket(c))
        c.wait(lambda: again.status == 200, what="a tunnel in the freed place")


def test_trailers_on_a_websocket_reset_it_and_a_reload_can_turn_websockets_off():
    """A tunnel's stream carries DATA only (RFC 9113 §8.5): HEADERS after the 200 reset
    it. A reload to http2.websocket false reaches a connection whose SETTINGS still
    offer WebSockets: its next one is answered 501."""
    h2env.ferry_only("ferry's config")
    b = ft.Backend("alpha")
    with started(b) as p, b, h2.H2Conn(p.port("plain")) as c:
        ws = c.stream(open_websocket(c))
        c.wait(lambda: ws.status == 200, what="the tunnel")
        c.send_headers(ws.id, [("x-trailer", "1")], end_stream=True)
        c.wait(lambda: ws.done, what="the reset")
        assert ws.reset == h2.PROTOCOL_ERROR, ws
        cfg = p.config
        cfg["listeners"]["plain"]["http2"]["websocket"] = False
        p.write_config(cfg)
        p.reload()
        ft.poll_until(lambda: p.status()["generation"] == 2, message="the reload applied")
        later = c.stream(open_websocket(c))
        c.wait(lambda: later.done, what="the answer")
        assert later.status == 501, later
        assert c.get("/").status == 200


def switching_with_a_wrong_accept(conn, req):
    """A 101 that does not answer the key ferry sent (RFC 6455 §4.2.2)."""
    assert req.headers.get("sec-websocket-key"), req.headers
    conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Accept: bm90IHRoZSBhbnN3ZXI=\r\n\r\n")


def test_a_101_that_does_not_answer_ferrys_key_is_a_502():
    """ferry keyed the upgrade, so ferry checks the answer, as a WebSocket client must:
    the HTTP/2 client cannot (it never saw the key)."""
    h2env.ferry_only("ferry's answers")
    with RawBackend({"/ws": switching_with_a_wrong_accept}) as rb:
        cfg = h2env.h2_config()
        cfg["pools"]["web"]["backends"] = [{"address": rb.address, "name": "raw"}]
        with ft.Ferry(cfg) as p, h2.H2Conn(p.port("plain")) as c:
            ws = c.stream(open_websocket(c))
            c.wait(lambda: ws.done, what="the answer")
            assert ws.status == 502, ws
            assert "Sec-WebSocket-Accept does not answer the key" in p.stderr(), p.log()


def test_http2_websocket_false_offers_no_extended_connect():
    h2env.ferry_only("ferry's config")
    b = ft.Backend("alpha")
    with started(b, http2={"websocket": False}) as p, b, h2.H2Conn(p.port("plain")) as c:
        c.wait(lambda: c.settings_received, what="the server's SETTINGS")
        assert ENABLE_CONNECT_PROTOCOL not in c.peer_settings, c.peer_settings
        ws = c.stream(open_websocket(c))
        c.wait(lambda: ws.done, what="the refusal")
        assert ws.reset == h2.PROTOCOL_ERROR, ws
        assert b.stats()["app_requests"] == 0
        assert c.get("/").status == 200


if __name__ == "__main__":
    ft.main()
