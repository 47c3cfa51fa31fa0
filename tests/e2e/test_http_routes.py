#!/usr/bin/env python3
"""HTTP routing (host exact / *.suffix / path_prefix, first match wins, 404) and
keep-alive client connections following a reload."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402


def pools_for(*backends):
    return {b.name: {"backends": [{"address": b.address, "name": b.name}]} for b in backends}


def get(c, host, target="/"):
    c.send(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, host)).encode())
    status, headers, _ = c.read_response()
    return status, headers.get("x-backend")


def test_routes_match_host_wildcard_and_path_prefix_in_order():
    backends = [ft.Backend(n).start() for n in ("api", "wild", "static", "exact")]
    routes = [
        {"match": {"host": "api.example", "path_prefix": "/v1/"}, "pool": "api"},
        {"match": {"host": "*.example"}, "pool": "wild"},
        {"match": {"path_prefix": "/static/"}, "pool": "static"},
        {"match": {"host": "exact.test"}, "pool": "exact"},
    ]
    f = ft.Ferry({
        "admin": None, "workers": 1, "log": {"access": "off"},
        "listeners": {"web": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http",
                              "routes": routes}},
        "pools": pools_for(*backends),
    }).start()
    cases = [
        ("api.example", "/v1/users", 200, "api"),
        ("API.Example:8443", "/v1/x?y=1", 200, "api"),        # case and port ignored
        ("api.example", "/v2/users", 200, "wild"),           # path fails: next route
        ("a.b.c.example", "/", 200, "wild"),                 # any depth
        ("example", "/static/app.js", 200, "static"),        # *.example is not example
        ("nowhere.test", "/static/", 200, "static"),
        ("nowhere.test", "/static", 404, None),              # byte prefix, no slash
        ("exact.test.", "/", 200, "exact"),                  # trailing dot ignored
        ("EXACT.TEST:80", "/", 200, "exact"),
        ("sub.exact.test", "/", 404, None),                  # exact means exact
        ("other.test", "/", 404, None),
    ]
    try:
        with f, ft.Client(f.port("web")) as c:
            for host, target, status, backend in cases:
                assert get(c, host, target) == (status, backend), (host, target)
            # absolute-form: the target's authority routes, not Host
            assert get(c, "other.test", "http://api.example/v1/z") == (200, "api")
            assert get(c, "api.example", "http://elsewhere.test/v1/z") == (404, None)
            assert not c.closed_by_peer
    finally:
        for b in backends:
            b.stop()


def test_idle_keepalive_connections_follow_a_reload():
    a, b = ft.Backend("a").start(), ft.Backend("b").start()
    port_web, port_old = ft.free_port(), ft.free_port()

    def config(pool, with_old):
        listeners = {"web": {"listen": "127.0.0.1:%d" % port_web, "mode": "http", "pool": pool}}
        if with_old:
            listeners["old"] = {"listen": "127.0.0.1:%d" % port_old, "mode": "http", "pool": pool}
        return {"admin": None, "workers": 1, "log": {"access": "off"},
                "listeners": listeners, "pools": pools_for(a, b)}

    f = ft.Ferry(config("a", True)).start()
    with f, a, b, ft.Client(port_web) as c, ft.Client(port_old) as old:
        assert get(c, "x") == (200, "a")
        assert get(old, "x") == (200, "a")
        f.write_config(config("b", False))
        f.reload()
        f.wait_log("reload ok")
        # the same connection, still open, now reaches the new pool
        ft.poll_until(lambda: get(c, "x") == (200, "b"), message="request follows the reload")
        assert not c.closed_by_peer

        # the listener of `old` is gone: its connection is closed, not answered
        def old_closed():
            old.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                old.read_response(timeout=3)
                return False
            except AssertionError:
                return old.closed_by_peer
        ft.poll_until(old_closed, message="connection of the removed listener closed")


if __name__ == "__main__":
    ft.main()
