#!/usr/bin/env python3
"""HTTP/2 and operations: idle h2 connections survive a reload and their next streams
follow the new config; SIGTERM sends GOAWAY, finishes the streams in flight, exits 0;
the access log's proto, the proto label of ferry_http_responses_total, and /status's
per-listener http2 counts."""

import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402
import h2client as h2  # noqa: E402
import h2env  # noqa: E402

# The spellings the lead engineer may still change, each in one place.
PROTO_LABEL = {"http/1.1": "HTTP/1.1", "h2": "HTTP/2.0"}   # ferry_http_responses_total{proto=}
STATUS_HTTP2 = "http2"        # /status: listeners.NAME.http2 = {"connections", "streams"}


def http2_status(f, listener):
    return f.status()["listeners"][listener][STATUS_HTTP2]


def test_idle_h2_connection_survives_a_reload_and_follows_the_new_config():
    h2env.ferry_only("reload keeps idle connections (HAProxy closes them)")
    a, b = ft.Backend("alpha").start(), ft.Backend("beta").start()
    config = h2env.h2_config(a)
    with ft.Ferry(config) as f, a, b, h2.H2Conn(f.port("tls"), tls=True) as c, \
            ft.Client(f.port("plain")) as h1:
        assert c.get("/").header("x-backend") == "alpha"
        assert h1.request("GET", "/")[1]["x-backend"] == "alpha"
        new = json.loads(json.dumps(config))
        new["admin"] = f.config["admin"]
        new["pools"] = {"web": {"backends": [{"address": b.address, "name": b.name}]},
                        "api": {"backends": [{"address": a.address, "name": a.name}]}}
        for listener in new["listeners"].values():
            del listener["pool"]
            listener["routes"] = [{"match": {"host": "api.localhost"}, "pool": "api"},
                                  {"pool": "web"}]
        f.write_config(new)
        f.reload()
        f.wait_log("reload ok generation=2")
        assert c.get("/").header("x-backend") == "beta"
        assert c.get("/", authority="api.localhost").header("x-backend") == "alpha"
        assert h1.request("GET", "/")[1]["x-backend"] == "beta"     # the same as HTTP/1.1
        assert c.goaway is None and not c.closed, c.summary()


def test_sigterm_sends_goaway_finishes_streams_in_flight_and_exits_0():
    b = ft.Backend("alpha").start()
    p = h2env.proxy(h2env.h2_config(b, timeouts={"drain_ms": 5000})).start()
    graceful = getattr(p, "graceful_signal", signal.SIGTERM)
    with p, b, h2.H2Conn(p.port("plain")) as busy, h2.H2Conn(p.port("tls"), tls=True) as idle:
        assert idle.get("/").status == 200
        first = busy.get("/")
        assert first.status == 200
        in_flight = busy.request("GET", "/sleep/1500")
        busy.wait(lambda: b.stats()["app_requests"] >= 3, what="the slow request at the backend")
        p.proc.send_signal(graceful)
        busy.wait(lambda: busy.goaway, what="GOAWAY")
        assert busy.goaway[1] == h2.NO_ERROR and busy.goaway[0] >= in_flight, busy.goaway
        late = busy.request("GET", "/")
        s = busy.response(in_flight, timeout=10)
        assert (s.status, s.data) == (200, b"slept 1500\n"), s
        assert busy.wait_closed(timeout=10), busy.summary()
        # RFC 9113 §6.8: a first GOAWAY may announce 2^31-1; the last one names the last
        # stream processed, and a stream past it is not served
        last = busy.goaways[-1][0]
        assert last == max(sid for sid, st in busy.streams.items() if st.status), busy.goaways
        assert (busy.stream(late).status is None) == (late > last), (busy.goaways, busy.stream(late))
        assert idle.wait_closed(timeout=10) and idle.goaway is not None, idle.summary()
        p.proc.wait(timeout=10)
        assert p.stop() == 0


def test_access_log_says_http_2_0_for_streams_and_http_1_x_for_the_rest():
    h2env.ferry_only("the access log is ferry's")
    b = ft.Backend("alpha").start()
    with ft.Ferry(h2env.h2_config(b, access="stdout")) as f, b:
        with h2.H2Conn(f.port("tls"), tls=True) as c:
            assert c.get("/bytes/11").status == 200
        with h2.H2Conn(f.port("plain")) as c:
            assert c.get("/bytes/12").status == 200
        assert ft.Client(f.port("plain")).request("GET", "/bytes/13")[0] == 200
        raw = b"GET /bytes/14 HTTP/1.0\r\nHost: a\r\n\r\n"
        assert ft.parse_response(ft.http_request(f.port("plain"), raw))[0] == 200

        def lines():
            found = {}
            for line in f.stdout().splitlines():
                if line.startswith("{"):
                    entry = json.loads(line)
                    found[entry["path"]] = entry
            return found if len(found) >= 4 else None
        entries = ft.poll_until(lines, message="4 access log lines")
        got = {path: (entries[path]["listener"], entries[path]["proto"], entries[path]["status"])
               for path in ("/bytes/11", "/bytes/12", "/bytes/13", "/bytes/14")}
        assert got == {"/bytes/11": ("tls", "HTTP/2.0", 200), "/bytes/12": ("plain", "HTTP/2.0", 200),
                       "/bytes/13": ("plain", "HTTP/1.1", 200),
                       "/bytes/14": ("plain", "HTTP/1.0", 200)}, got


def test_responses_total_has_a_proto_label():
    h2env.ferry_only("/metrics is ferry's")
    b = ft.Backend("alpha").start()
    with ft.Ferry(h2env.h2_config(b)) as f, b:
        with h2.H2Conn(f.port("tls"), tls=True) as c:
            for _ in range(3):
                assert c.get("/").status == 200
            assert c.get("/status/404").status == 404
        with ft.Client(f.port("tls"), tls=True) as c:
            for _ in range(2):
                assert c.request("GET", "/")[0] == 200
        with h2.H2Conn(f.port("plain")) as c:
            assert c.get("/").status == 200

        def counts():
            m = f.metrics()
            return [m.get(("ferry_http_responses_total", frozenset(
                        {"listener": listener, "proto": proto, "class": cls}.items())), 0)
                    for listener, proto, cls in (("tls", PROTO_LABEL["h2"], "2xx"),
                                                 ("tls", PROTO_LABEL["h2"], "4xx"),
                                                 ("tls", PROTO_LABEL["http/1.1"], "2xx"),
                                                 ("plain", PROTO_LABEL["h2"], "2xx"),
                                                 ("plain", PROTO_LABEL["http/1.1"], "2xx"))]
        want = [3, 1, 2, 1, 0]
        ft.poll_until(lambda: counts() == want, timeout=5, message="counts %r" % want)


def test_status_shows_http2_connections_and_streams_per_listener():
    h2env.ferry_only("/status is ferry's")
    b = ft.Backend("alpha").start()
    with ft.Ferry(h2env.h2_config(b)) as f, b:
        assert http2_status(f, "plain") == {"connections": 0, "streams": 0}
        one, two = h2.H2Conn(f.port("plain")), h2.H2Conn(f.port("plain"))
        h1 = ft.Client(f.port("plain"))
        assert h1.request("GET", "/")[0] == 200          # HTTP/1.1: not counted
        # long enough to be still running when a slow machine's /status comes
        sleepers = [(one, one.request("GET", "/sleep/5000")),
                    (one, one.request("GET", "/sleep/5000")),
                    (two, two.request("GET", "/sleep/5000"))]
        for c in (one, two):
            c.flush()
        ft.poll_until(lambda: http2_status(f, "plain") == {"connections": 2, "streams": 3},
                      timeout=5, message="2 connections, 3 streams")
        assert http2_status(f, "tls") == {"connections": 0, "streams": 0}
        for c, sid in sleepers:
            assert c.response(sid).status == 200
        ft.poll_until(lambda: http2_status(f, "plain") == {"connections": 2, "streams": 0},
                      timeout=5, message="2 connections, no stream")
        one.close()
        two.close()
        h1.close()
        ft.poll_until(lambda: http2_status(f, "plain") == {"connections": 0, "streams": 0},
                      timeout=5, message="no connection")


if __name__ == "__main__":
    ft.main()
