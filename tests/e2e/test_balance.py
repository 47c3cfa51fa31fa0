#!/usr/bin/env python3
"""Balancing with real backends: hash affinity, sticky sessions (HTTP/1.1 and HTTP/2),
backups, draining through the admin API, random_two, slow start, and the state a
reload leaves alone (design.md, "Contract added for stage 2")."""

import hashlib
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402


def config(backends, workers=2, **pool):
    """An http listener "web" in front of pool "p" (Backend objects or dicts)."""
    listed = [{"address": b.address, "name": b.name} if isinstance(b, ft.Backend) else b
              for b in backends]
    return {
        "workers": workers,
        "log": {"access": "off"},
        "listeners": {"web": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http",
                              "pool": "p"}},
        "pools": {"p": dict(pool, backends=listed)},
    }


def get(port, path="/", headers=None):
    """One GET on a new connection -> (status, headers, body)."""
    head = "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" % path
    for name, value in (headers or {}).items():
        head += "%s: %s\r\n" % (name, value)
    return ft.parse_response(ft.http_request(port, (head + "\r\n").encode()))


def who(port, path="/", headers=None):
    status, h, _ = get(port, path, headers)
    assert status == 200, status
    return h["x-backend"]


def reload(f, cfg):
    generation = f.status()["generation"] + 1
    f.write_config(cfg)
    code, _, body = f.admin("POST", "/reload")
    assert (code, json.loads(body)) == (200, {"ok": True, "generation": generation}), body


def sample(samples, name, **labels):
    """The one sample of `name` whose labels include these (backend samples also carry
    the address)."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert len(found) == 1, "%s%r: %r" % (name, labels, found)
    return found[0]


def backend(f, name, pool="p"):
    for b in f.status()["pools"][pool]["backends"]:
        if b["name"] == name:
            return b
    raise AssertionError("no backend %s" % name)


# ---- hash -------------------------------------------------------------------------

def test_hash_on_a_header_keeps_each_key_on_one_backend_across_a_reload():
    with ft.Backend("a") as a, ft.Backend("b") as b, ft.Backend("c") as c:
        cfg = config([a, b, c], balance="hash", hash_key="header:X-User")
        with ft.Ferry(cfg) as f:
            port = f.port("web")
            first = {}
            for user in range(20):
                seen = {who(port, headers={"X-User": "user-%d" % user}) for _ in range(4)}
                assert len(seen) == 1, (user, seen)
                first[user] = seen.pop()
            assert len(set(first.values())) == 3, first    # the keys spread
            # without the header: round-robin
            assert {who(port) for _ in range(6)} == {"a", "b", "c"}
            cfg["admin"] = f.config["admin"]
            cfg["pools"]["p"]["retries"] = 2               # a change, not to the backends
            reload(f, cfg)
            for user in range(20):
                assert who(port, headers={"X-User": "user-%d" % user}) == first[user], user


def test_hash_on_a_cookie_the_uri_and_the_source_address():
    with ft.Backend("a") as a, ft.Backend("b") as b, ft.Backend("c") as c:
        for key, vary in (("cookie:session", lambda i: {"Cookie": "x=1; session=s%d" % i}),
                          ("uri", None), ("source_ip", None)):
            cfg = config([a, b, c], balance="hash", hash_key=key)
            with ft.Ferry(cfg) as f:
                port = f.port("web")
                if vary:
                    owners = {i: {who(port, headers=vary(i)) for _ in range(3)} for i in range(12)}
                    assert all(len(o) == 1 for o in owners.values()), owners
                    assert len(set().union(*owners.values())) > 1, owners
                elif key == "uri":
                    # the query is not part of the key
                    for n in range(8):
                        seen = {who(port, "/item/%d?v=%d" % (n, v)) for v in range(3)}
                        assert len(seen) == 1, (n, seen)
                else:
                    # every request comes from 127.0.0.1
                    assert len({who(port, "/x%d" % n) for n in range(9)}) == 1


# For tests that take a backend down on purpose (it then answers its check with a 503
# at once) and need the others to stay up: a healthy backend under ASan on a loaded
# machine is slow to answer a probe now and then, so a probe gets 250 ms and one
# failure alone takes nothing down.
FLIP_CHECK = {"type": "http", "path": "/healthz", "interval_ms": 300, "timeout_ms": 250,
              "rise": 1, "fall": 2}


def test_hash_key_of_a_down_backend_moves_and_comes_back():
    health = os.path.join(ft.tmpdir(), "b-down")
    check = FLIP_CHECK
    with ft.Backend("a") as a, ft.Backend("b", health_file=health) as b, ft.Backend("c") as c:
        cfg = config([a, b, c], balance="hash", hash_key="header:X-User", health_check=check)
        with ft.Ferry(cfg) as f:
            port = f.port("web")
            owner = {u: who(port, headers={"X-User": "u%d" % u}) for u in range(30)}
            assert "b" in owner.values()
            b.set_healthy(False)
            ft.poll_until(lambda: backend(f, "b")["state"] == "down", timeout=5, message="b down")
            for u, o in owner.items():
                now = who(port, headers={"X-User": "u%d" % u})
                assert now != "b" and (o == "b" or now == o), (u, o, now)
            b.set_healthy(True)
            ft.poll_until(lambda: backend(f, "b")["state"] == "up", timeout=5, message="b up")
            assert {u: who(port, headers={"X-User": "u%d" % u}) for u in owner} == owner


def test_hash_on_sni_for_tls_passthrough():
    with ft.Backend("a", tls=True) as a, ft.Backend("b", tls=True) as b, \
            ft.Backend("c", tls=True) as c:
        port = ft.free_port()
        cfg = {
            "workers": 2, "log": {"access": "off"},
            "listeners": {"tls": {"listen": "127.0.0.1:%d" % port, "mode": "tcp", "pool": "p"}},
            "pools": {"p": {"balance": "hash", "hash_key": "sni",
                            "backends": [{"address": x.address, "name": x.name}
                                         for x in (a, b, c)]}},
        }
        with ft.Ferry(cfg):
            def via(name):
                raw = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                reply = ft.http_request(port, raw, server_hostname=name,
                                        context=ft.client_tls_context(verify=False))
                return ft.parse_response(reply)[1]["x-backend"]
            owners = {n: {via("svc%d.example" % n) for _ in range(3)} for n in range(9)}
            assert all(len(o) == 1 for o in owners.values()), owners
            assert len(set().union(*owners.values())) > 1, owners


# ---- sticky sessions ---------------------------------------------------------------

COOKIE = re.compile(r"^srv=([0-9a-f]{16}); Path=/; HttpOnly(; Max-Age=(\d+))?$")


def sticky_cookie(headers):
    value = headers.get("set-cookie")
    assert value and COOKIE.match(value), value
    return value.split(";")[0]


def test_sticky_cookie_follows_survives_a_reload_and_moves_when_its_backend_goes_down():
    health = {n: os.path.join(ft.tmpdir(), "%s-sticky-down" % n) for n in "abc"}
    check = FLIP_CHECK
    with ft.Backend("a", health_file=health["a"]) as a, \
            ft.Backend("b", health_file=health["b"]) as b, \
            ft.Backend("c", health_file=health["c"]) as c:
        by_name = {"a": a, "b": b, "c": c}
        cfg = config([a, b, c], sticky={"cookie": "srv", "ttl_s": 600}, health_check=check)
        with ft.Ferry(cfg) as f:
            port = f.port("web")
            status, h, _ = get(port)
            first = h["x-backend"]
            cookie = sticky_cookie(h)
            assert h["set-cookie"].endswith("; Max-Age=600"), h["set-cookie"]
            assert a.address.split(":")[0] not in cookie and str(a.port) not in cookie
            for _ in range(8):
                status, h, _ = get(port, headers={"Cookie": "app=1; " + cookie})
                assert (status, h["x-backend"]) == (200, first)
                assert "set-cookie" not in h, h     # already right: not written again
            # the backend never sees ferry's cookie, only the application's
            _, h, body = get(port, "/headers", headers={"Cookie": "app=1; " + cookie + "; z=2"})
            assert h["x-backend"] == first
            assert b"Cookie: app=1; z=2\r\n" in body and b"srv=" not in body, body
            cfg["admin"] = f.config["admin"]
            cfg["pools"]["p"]["retries"] = 2
            reload(f, cfg)
            assert who(port, headers={"Cookie": cookie}) == first
            by_name[first].set_healthy(False)
            ft.poll_until(lambda: backend(f, first)["state"] == "down", timeout=5,
                          message="%s down" % first)
            status, h, _ = get(port, headers={"Cookie": cookie})
            assert status == 200 and h["x-backend"] != first, h
            moved = sticky_cookie(h)
            assert moved != cookie
            assert {who(port, headers={"Cookie": moved}) for _ in range(4)} == {h["x-backend"]}
            # a cookie ferry never wrote is ignored (and replaced)
            status, h, _ = get(port, headers={"Cookie": "srv=127.0.0.1:1"})
            assert status == 200 and sticky_cookie(h)


def test_renaming_a_backend_keeps_it_and_moves_its_sticky_sessions():
    """A reload that gives the same address a new name keeps the backend (its counters
    go on) under the new name, which the admin API then takes; a cookie naming it by
    the old name is ignored and rewritten (the README: renaming moves sessions)."""
    with ft.Backend("a") as a, ft.Backend("b") as b:
        cfg = config([a, b], sticky={"cookie": "srv"}, workers=1)
        with ft.Ferry(cfg) as f:
            port = f.port("web")
            answers = [get(port)[1] for _ in range(4)]
            old = next(sticky_cookie(h) for h in answers if h["x-backend"] == "a")
            served = backend(f, "a")["requests"]
            cfg["admin"] = f.config["admin"]
            cfg["pools"]["p"]["backends"][0]["name"] = "renamed"
            reload(f, cfg)
            names = [x["name"] for x in f.status()["pools"]["p"]["backends"]]
            assert names == ["renamed", "b"], names
            assert backend(f, "renamed")["requests"] == served
            status, h, _ = get(port, headers={"Cookie": old})
            assert status == 200 and sticky_cookie(h) != old, h
            code, _, reply = f.admin("POST", "/pools/p/backends/renamed/drain")
            assert code == 200, reply
            assert {who(port) for _ in range(4)} == {"b"}


def test_sticky_cookie_on_a_websocket_upgrade():
    """The 101 of an upgrade carries the cookie too, and an upgrade that sends it back
    reaches the same backend (a WebSocket client reconnecting to its session)."""
    def upgrade(port, cookie=None):
        with ft.Client(port) as c:
            c.send(("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n%s\r\n"
                    % ("Cookie: %s\r\n" % cookie if cookie else "")).encode())
            status, headers, _ = c.read_response()
            assert status == 101, status
            return headers
    with ft.Backend("a") as a, ft.Backend("b") as b:
        with ft.Ferry(config([a, b], sticky={"cookie": "srv"})) as f:
            port = f.port("web")
            h = upgrade(port)
            cookie, first = sticky_cookie(h), h["x-backend"]
            for _ in range(4):
                h = upgrade(port, cookie)
                assert h["x-backend"] == first, h
                assert "set-cookie" not in h, h     # already right: not written again


def test_sticky_cookie_over_http2():
    import h2client
    with ft.Backend("a") as a, ft.Backend("b") as b:
        cfg = config([a, b], sticky={"cookie": "srv"})
        cfg["listeners"]["web"]["http2"] = {"h2c": True}
        with ft.Ferry(cfg) as f:
            with h2client.H2Conn(f.port("web")) as c:
                s = c.get("/")
                assert s.status == 200, s
                cookie = s.header("set-cookie")
                assert cookie and COOKIE.match(cookie), cookie
                pair = cookie.split(";")[0]
                first = s.header("x-backend")
                for _ in range(4):
                    s = c.get("/headers", headers=[("cookie", "a=1"), ("cookie", pair),
                                                   ("cookie", "b=2")])
                    assert (s.status, s.header("x-backend")) == (200, first), s
                    assert s.header("set-cookie") is None
                    assert b"cookie: a=1; b=2\r\n" in s.data and b"srv=" not in s.data, s.data


# ---- backup --------------------------------------------------------------------------

def test_backup_serves_only_while_no_primary_can():
    health = {n: os.path.join(ft.tmpdir(), "%s-primary-down" % n) for n in "ab"}
    check = FLIP_CHECK
    with ft.Backend("a", health_file=health["a"]) as a, \
            ft.Backend("b", health_file=health["b"]) as b, ft.Backend("standby") as s:
        backends = [{"address": a.address, "name": "a"}, {"address": b.address, "name": "b"},
                    {"address": s.address, "name": "standby", "backup": True}]
        with ft.Ferry(config(backends, health_check=check)) as f:
            port = f.port("web")
            assert {who(port) for _ in range(10)} == {"a", "b"}
            a.set_healthy(False)
            ft.poll_until(lambda: backend(f, "a")["state"] == "down", timeout=5, message="a down")
            assert {who(port) for _ in range(6)} == {"b"}
            b.set_healthy(False)
            ft.poll_until(lambda: backend(f, "b")["state"] == "down", timeout=5, message="b down")
            assert {who(port) for _ in range(6)} == {"standby"}
            assert backend(f, "standby")["backup"] is True
            a.set_healthy(True)
            ft.poll_until(lambda: backend(f, "a")["state"] == "up", timeout=5, message="a up")
            assert {who(port) for _ in range(6)} == {"a"}
            assert s.stats()["app_requests"] == 6


# ---- drain -----------------------------------------------------------------------------

def test_drain_through_the_admin_api_lets_the_upload_in_flight_finish():
    with ft.Backend("a") as a, ft.Backend("b") as b:
        with ft.Ferry(config([b, a])) as f:
            port = f.port("web")
            body = ft.pattern_bytes(2 * 1024 * 1024)
            # round-robin starts with b: the upload goes there
            with ft.connect(port, timeout=20) as up:
                up.sendall(b"POST /sha256 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                           b"Content-Length: %d\r\n\r\n" % len(body) + body[:65536])
                ft.poll_until(lambda: backend(f, "b")["active"] == 1, timeout=5,
                              message="the upload at b")
                code, _, reply = f.admin("POST", "/pools/p/backends/%s/drain" % b.address)
                assert (code, json.loads(reply)) == (200, {"ok": True}), reply
                assert backend(f, "b")["state"] == "draining"
                before = b.stats()["app_requests"]
                assert {who(port) for _ in range(20)} == {"a"}
                assert b.stats()["app_requests"] == before, "b got a new request"
                up.sendall(body[65536:])
                status, h, digest = ft.parse_response(ft.read_until_close(up, timeout=20))
            assert (status, h["x-backend"]) == (200, "b")
            assert digest.split()[0].decode() == hashlib.sha256(body).hexdigest(), digest
            assert sample(f.metrics(), "ferry_backend_draining", pool="p", backend="b") == 1
            code, _, reply = f.admin("POST", "/pools/p/backends/b/enable")   # by name
            assert (code, json.loads(reply)) == (200, {"ok": True}), reply
            assert backend(f, "b")["state"] == "up"
            assert {who(port) for _ in range(4)} == {"a", "b"}
            code, _, _ = f.admin("POST", "/pools/p/backends/127.0.0.1:1/drain")
            assert code == 404
            code, _, _ = f.admin("POST", "/pools/nope/backends/%s/drain" % b.address)
            assert code == 404


def test_drain_in_the_config_and_what_a_reload_does_to_the_api_s_word():
    with ft.Backend("a") as a, ft.Backend("b") as b:
        cfg = config([a, {"address": b.address, "name": "b", "drain": True}])
        with ft.Ferry(cfg) as f:
            port = f.port("web")
            assert backend(f, "b")["state"] == "draining"
            assert {who(port) for _ in range(6)} == {"a"}
            assert f.admin("POST", "/pools/p/backends/b/enable")[0] == 200
            assert {who(port) for _ in range(6)} == {"a", "b"}
            cfg["admin"] = f.config["admin"]
            cfg["pools"]["p"]["retries"] = 0
            reload(f, cfg)      # "drain": true unchanged: the API's word stands
            assert backend(f, "b")["state"] == "up"
            cfg["pools"]["p"]["backends"][1]["drain"] = False
            reload(f, cfg)
            assert f.admin("POST", "/pools/p/backends/b/drain")[0] == 200
            cfg["pools"]["p"]["backends"][1]["drain"] = True
            reload(f, cfg)
            assert backend(f, "b")["state"] == "draining"
            cfg["pools"]["p"]["backends"][1]["drain"] = False
            reload(f, cfg)      # the config changed: it decides
            assert backend(f, "b")["state"] == "up"
            m = f.metrics()
            # drained by the config, then by the API; enabled by the API, then by the config
            assert sample(m, "ferry_backend_transitions_total", pool="p", backend="b",
                          to="draining") == 2
            assert sample(m, "ferry_backend_transitions_total", pool="p", backend="b",
                          to="up") == 2


# ---- random_two, slow start, rotation -----------------------------------------------------

def test_random_two_spreads_by_weight():
    with ft.Backend("a") as a, ft.Backend("b") as b:
        backends = [{"address": a.address, "name": "a", "weight": 1},
                    {"address": b.address, "name": "b", "weight": 3}]
        with ft.Ferry(config(backends, balance="random_two")) as f:
            port = f.port("web")
            seen = [who(port) for _ in range(200)]
            assert f.status()["pools"]["p"]["balance"] == "random_two"
            print("random_two: a %d, b %d of 200" % (seen.count("a"), seen.count("b")))
            assert 20 <= seen.count("a") <= 80, seen.count("a")


def test_backend_added_by_a_reload_starts_slowly():
    with ft.Backend("a") as a, ft.Backend("b") as b:
        cfg = config([a], slow_start_ms=4000, workers=1)
        with ft.Ferry(cfg) as f:
            port = f.port("web")
            cfg["admin"] = f.config["admin"]
            cfg["pools"]["p"]["backends"].append({"address": b.address, "name": "b"})
            reload(f, cfg)
            assert backend(f, "b")["weight_percent"] < 40, backend(f, "b")
            seen = [who(port) for _ in range(40)]
            print("slow start: b got %d of the first 40 requests" % seen.count("b"))
            assert 1 <= seen.count("b") <= 14, seen
            ft.poll_until(lambda: backend(f, "b")["weight_percent"] == 100, timeout=8,
                          message="b at full weight")
            seen = [who(port) for _ in range(40)]
            assert seen.count("b") == 20, seen


def test_unchanged_pool_keeps_its_rotation_across_reloads():
    with ft.Backend("a") as a, ft.Backend("b") as b, ft.Backend("c") as c:
        cfg = config([a, b, c], workers=1)
        cfg["pools"]["other"] = {"backends": [{"address": a.address}]}
        with ft.Ferry(cfg) as f:
            port = f.port("web")
            cfg["admin"] = f.config["admin"]
            seen = [who(port)]
            for retries in range(5):
                cfg["pools"]["other"]["retries"] = retries      # another pool changes
                reload(f, cfg)
                seen.append(who(port))
            assert seen == ["a", "b", "c", "a", "b", "c"], seen


if __name__ == "__main__":
    ft.main()
