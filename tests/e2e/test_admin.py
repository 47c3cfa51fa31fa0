#!/usr/bin/env python3
"""The admin API: GET /status, GET /metrics, POST /reload, the bearer token and the
answers to requests it does not serve (design.md, "Admin API")."""

import json
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402


def dead_address():
    """A loopback port nothing listens on (connect is refused)."""
    return "127.0.0.1:%d" % ft.free_port()


def web_config(backend, dead=None, https=False, **extra):
    """An http listener "web" routing /dead/ to pool "dead" (when given) and host
    known.test to pool "p"; anything else is a 404 from ferry. Optionally an https
    listener on pool "p", and a tcp listener "raw" on pool "p"."""
    routes = []
    pools = {"p": {"backends": [{"address": backend.address, "name": backend.name}]}}
    if dead:
        routes.append({"match": {"path_prefix": "/dead/"}, "pool": "dead"})
        pools["dead"] = {"backends": [{"address": dead, "name": "dead"}], "retries": 0}
    routes.append({"match": {"host": "known.test"}, "pool": "p"})
    listeners = {
        "web": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http", "routes": routes},
        "raw": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "tcp", "pool": "p"},
    }
    if https:
        listeners["secure"] = {
            "listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http", "pool": "p",
            "tls": {"certificates": [{"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY}]}}
    config = {"workers": 2, "log": {"access": "off"}, "listeners": listeners, "pools": pools}
    config.update(extra)
    return config


def get(port, target="/", host="known.test", tls=False):
    raw = ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (target, host)).encode()
    return ft.parse_response(ft.http_request(port, raw, tls=tls))


def backend_entry(status, pool, name):
    for b in status["pools"][pool]["backends"]:
        if b["name"] == name:
            return b
    raise AssertionError("no backend %s in pool %s: %r" % (name, pool, status["pools"]))


def wait_idle(f):
    """Counters are updated as connections end: wait until none is open."""
    ft.poll_until(lambda: f.status()["connections"] == 0, timeout=5,
                  message="all client connections closed")


# ---- GET /status ----------------------------------------------------------------

def test_status_reports_generation_config_listeners_and_pools():
    dead = dead_address()
    with ft.Backend("a") as a, ft.Ferry(web_config(a, dead=dead)) as f:
        st = f.status()
        assert st["generation"] == 1, st
        assert st["config"] == f.config_path, st["config"]
        assert isinstance(st["uptime_s"], int) and 0 <= st["uptime_s"] < 60, st["uptime_s"]
        web, raw = st["listeners"]["web"], st["listeners"]["raw"]
        assert web["listen"] == f.config["listeners"]["web"]["listen"], web
        assert (web["mode"], raw["mode"]) == ("http", "tcp"), st["listeners"]
        assert (web["active"], web["accepted"], raw["accepted"]) == (0, 0, 0), st["listeners"]
        assert st["pools"]["p"]["balance"] == "round_robin", st["pools"]
        pa = backend_entry(st, "p", "a")
        assert pa == {"name": "a", "address": a.address, "state": "up", "weight": 1,
                      "active": 0, "requests": 0, "failures": 0, "backup": False,
                      "weight_percent": 100,
                      "transitions": {"up": 0, "down": 0, "draining": 0}}, pa

        for _ in range(4):
            status, headers, _ = get(f.port("web"))
            assert (status, headers.get("x-backend")) == (200, "a")
        with ft.connect(f.port("raw")) as sock:      # one connection through the relay
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert ft.parse_response(ft.read_until_close(sock))[0] == 200
        status, _, _ = get(f.port("web"), "/dead/x")
        assert status == 502, status
        wait_idle(f)

        st = f.status()
        assert st["listeners"]["web"]["accepted"] == 5, st["listeners"]
        assert st["listeners"]["raw"]["accepted"] == 1, st["listeners"]
        assert st["listeners"]["web"]["active"] == 0
        pa = backend_entry(st, "p", "a")
        assert (pa["requests"], pa["failures"], pa["active"]) == (5, 0, 0), pa
        dd = backend_entry(st, "dead", "dead")
        assert (dd["address"], dd["failures"], dd["state"]) == (dead, 1, "up"), dd

        # an open connection is counted as active while it lasts
        with ft.Client(f.port("web")) as c:
            assert c.request("GET", "/", host="known.test")[0] == 200
            ft.poll_until(lambda: f.status()["listeners"]["web"]["active"] == 1, timeout=5,
                          message="the open keep-alive connection counted as active")
        wait_idle(f)
        assert f.status()["listeners"]["web"]["accepted"] == 6


# ---- GET /metrics ---------------------------------------------------------------

def test_metrics_count_responses_backends_connections_and_tls():
    with ft.Backend("a") as a, ft.Ferry(web_config(a, dead=dead_address(), https=True)) as f:
        before = f.metrics()
        for listener in ("web", "raw", "secure"):
            assert ft.metric(before, "ferry_connections_accepted_total", listener=listener) == 0
        assert ft.metric(before, "ferry_tls_handshakes_total") == 0
        assert ft.metric(before, "ferry_generation") == 1

        for _ in range(5):
            assert get(f.port("web"))[0] == 200
        for _ in range(3):
            assert get(f.port("web"), host="unknown.test")[0] == 404     # no route
        assert get(f.port("web"), "/status/404")[0] == 404               # the backend's
        assert get(f.port("web"), "/dead/")[0] == 502
        assert get(f.port("secure"), tls=True)[0] == 200
        wait_idle(f)

        m = f.metrics()
        web = {c: ft.metric(m, "ferry_http_responses_total", listener="web", proto="HTTP/1.1",
                            **{"class": c})
               for c in ("1xx", "2xx", "3xx", "4xx", "5xx")}
        assert web == {"1xx": 0, "2xx": 5, "3xx": 0, "4xx": 4, "5xx": 1}, web
        for proto in ("HTTP/1.0", "HTTP/2.0"):
            assert ft.metric(m, "ferry_http_responses_total", listener="web", proto=proto,
                             **{"class": "2xx"}) == 0
        assert ft.metric(m, "ferry_http_responses_total", listener="secure", proto="HTTP/1.1",
                         **{"class": "2xx"}) == 1
        assert ft.metric(m, "ferry_connections_accepted_total", listener="web") == 10
        assert ft.metric(m, "ferry_connections_accepted_total", listener="secure") == 1
        assert ft.metric(m, "ferry_connections_active", listener="web") == 0
        labels = {"pool": "p", "backend": "a", "address": a.address}
        assert ft.metric(m, "ferry_backend_requests_total", **labels) == 7      # 5 + 404 + https
        assert ft.metric(m, "ferry_backend_failures_total", **labels) == 0
        assert ft.metric(m, "ferry_backend_up", **labels) == 1
        dead_labels = {"pool": "dead", "backend": "dead",
                       "address": f.config["pools"]["dead"]["backends"][0]["address"]}
        assert ft.metric(m, "ferry_backend_failures_total", **dead_labels) == 1
        assert ft.metric(m, "ferry_tls_handshakes_total") == 1
        assert ft.metric(m, "ferry_bytes_total", listener="web", direction="out") > 0

        assert ft.metric(m, "ferry_reloads_total", result="ok") == 0
        assert f.admin("POST", "/reload")[0] == 200
        with open(f.config_path, "w") as fh:
            fh.write("{ not json")
        assert f.admin("POST", "/reload")[0] == 400
        m = f.metrics()
        assert ft.metric(m, "ferry_reloads_total", result="ok") == 1
        assert ft.metric(m, "ferry_reloads_total", result="failed") == 1
        assert ft.metric(m, "ferry_generation") == 2
        # counters live with the listening socket and the backend: a reload keeps them
        assert ft.metric(m, "ferry_connections_accepted_total", listener="web") == 10
        assert ft.metric(m, "ferry_backend_requests_total", **labels) == 7
        # bytes in: exactly what the clients sent (plaintext on TLS listeners)
        for listener, tls in (("web", False), ("secure", True)):
            before_in = ft.metric(m, "ferry_bytes_total", listener=listener, direction="in")
            request = b"GET /?%s HTTP/1.1\r\nHost: known.test\r\nConnection: close\r\n\r\n" % (
                b"x" * 300)
            reply = ft.http_request(f.port(listener), request, tls=tls)
            assert reply.startswith(b"HTTP/1.1 200"), reply[:100]
            ft.poll_until(lambda: ft.metric(f.metrics(), "ferry_bytes_total", listener=listener,
                                         direction="in") == before_in + len(request),
                          timeout=5, message="bytes in counted exactly on %s" % listener)


def test_metrics_escape_backend_names_from_the_config():
    odd = 'web "one" \\ the\nfirst{}'
    with ft.Backend("a") as a:
        config = web_config(a)
        config["pools"]["p"]["backends"][0]["name"] = odd
        with ft.Ferry(config) as f:
            assert get(f.port("web"))[0] == 200
            m = f.metrics()
            assert ft.metric(m, "ferry_backend_requests_total", pool="p", backend=odd,
                          address=a.address) == 1
            assert backend_entry(f.status(), "p", odd)["requests"] == 1


# ---- POST /reload ---------------------------------------------------------------

def test_post_reload_switches_generation_and_pool():
    with ft.Backend("a") as a, ft.Backend("b") as b, ft.Ferry(web_config(a)) as f:
        assert get(f.port("web"))[1]["x-backend"] == "a"
        config = web_config(b)
        config["listeners"], config["admin"] = f.config["listeners"], f.config["admin"]
        f.write_config(config)
        code, headers, body = f.admin("POST", "/reload")
        assert code == 200, (code, body)
        assert headers["content-type"] == "application/json", headers
        assert json.loads(body) == {"ok": True, "generation": 2}, body
        assert f.status()["generation"] == 2
        assert {get(f.port("web"))[1]["x-backend"] for _ in range(4)} == {"b"}
        assert json.loads(f.admin("POST", "/reload")[2]) == {"ok": True, "generation": 3}


def assert_rejected(f, expected_fragments):
    code, headers, body = f.admin("POST", "/reload")
    assert code == 400, (code, body)
    assert headers["content-type"] == "application/json", headers
    answer = json.loads(body)
    assert answer["ok"] is False and isinstance(answer["errors"], list), answer
    for fragment in expected_fragments:
        assert any(fragment in e for e in answer["errors"]), (fragment, answer)
    return answer["errors"]


def assert_still_serving(f, backend_name, generation):
    assert f.status()["generation"] == generation
    for _ in range(3):
        status, headers, _ = get(f.port("web"))
        assert (status, headers.get("x-backend")) == (200, backend_name)


def test_post_reload_rejects_a_syntax_error_and_keeps_serving():
    with ft.Backend("a") as a, ft.Ferry(web_config(a)) as f:
        with open(f.config_path, "w") as fh:
            fh.write('{\n  "listeners": {\n    "web": }\n')
        errors = assert_rejected(f, [f.config_path + ":3:"])
        assert len(errors) == 1, errors
        assert_still_serving(f, "a", 1)
        f.wait_log("reload rejected: " + f.config_path + ":3:")


def test_post_reload_rejects_semantic_errors_together_and_keeps_serving():
    with ft.Backend("a") as a, ft.Ferry(web_config(a)) as f:
        good = f.config
        bad = json.loads(json.dumps(good))
        bad["listeners"]["raw"]["pool"] = "nope"
        bad["pools"]["p"]["backends"][0]["weight"] = 300
        f.write_config(bad)
        assert_rejected(f, ['listeners.raw.pool', 'unknown pool "nope"',
                            "pools.p.backends[0].weight", "300"])
        assert_still_serving(f, "a", 1)
        # the failure consumed no generation number
        f.write_config(good)
        assert json.loads(f.admin("POST", "/reload")[2]) == {"ok": True, "generation": 2}


# ---- admin.token ----------------------------------------------------------------

def test_token_is_required_on_every_endpoint():
    with ft.Backend("a") as a:
        config = web_config(a)
        config["admin"] = {"listen": "127.0.0.1:%d" % ft.free_port(), "token": "s3cret"}
        with ft.Ferry(config) as f:
            for method, path in (("GET", "/status"), ("GET", "/metrics"), ("POST", "/reload"),
                                 ("GET", "/nope")):
                for token in (None, "wrong", "s3cre", "s3cretX"):
                    code, headers, _ = f.admin(method, path, token=token)
                    assert code == 401, (method, path, token, code)
                    assert headers.get("www-authenticate", "").startswith("Bearer"), headers
            raw = b"GET /status HTTP/1.1\r\nHost: a\r\nAuthorization: Basic czNjcmV0\r\n\r\n"
            assert ft.parse_response(ft.http_request(f.admin_port, raw))[0] == 401
            # the unauthorised POST /reload did not reload
            assert f.status(token="s3cret")["generation"] == 1
            assert f.admin("GET", "/metrics", token="s3cret")[0] == 200
            assert f.admin("GET", "/nope", token="s3cret")[0] == 404
            code, _, body = f.admin("POST", "/reload", token="s3cret")
            assert (code, json.loads(body)) == (200, {"ok": True, "generation": 2}), body

            # a reload that changes the token: the new one is required from then on
            config = f.config
            config["admin"]["token"] = "n3w"
            f.write_config(config)
            assert f.admin("POST", "/reload", token="s3cret")[0] == 200
            assert f.admin("GET", "/status", token="s3cret")[0] == 401
            assert f.status(token="n3w")["generation"] == 3


# ---- admin settings follow a reload --------------------------------------------

def test_reload_moves_the_api_to_a_new_address_and_can_turn_it_off():
    reload_raw = b"POST /reload HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
    with ft.Backend("a") as a, ft.Ferry(web_config(a)) as f:
        old_port = f.admin_port
        config = f.config
        with socket.socket() as occupier:     # another process's socket on the new address
            occupier.bind(("127.0.0.1", 0))
            occupier.listen(1)
            busy = "127.0.0.1:%d" % occupier.getsockname()[1]
            config["admin"] = {"listen": busy}
            f.write_config(config)
            code, _, body = ft.parse_response(ft.http_request(old_port, reload_raw))
            assert (code, json.loads(body)["errors"]) == (400, [
                "admin.listen: %s: cannot listen: Address already in use" % busy]), body
        config["admin"] = {"listen": "127.0.0.1:%d" % old_port}
        f.write_config(config)
        assert f.status()["generation"] == 1

        new_port = ft.free_port()
        config["admin"] = {"listen": "127.0.0.1:%d" % new_port}
        f.write_config(config)       # f.admin_port follows the file from here on
        code, _, body = ft.parse_response(ft.http_request(old_port, reload_raw))
        assert (code, json.loads(body)) == (200, {"ok": True, "generation": 2}), body
        f.wait_listening([("127.0.0.1", new_port)], timeout=5)
        assert f.status()["generation"] == 2
        ft.poll_until(lambda: not ft.is_listening(f.pid, old_port), timeout=5,
                      message="old admin port closed")
        f.wait_log("admin listen=127.0.0.1:%d" % new_port)

        # turned off: the port closes, and a connection accepted before gets nothing
        early = ft.connect(new_port)
        f.status()      # accepted after `early` (the backlog is FIFO): early is accepted
        config["admin"] = None
        f.write_config(config)
        f.reload()
        f.wait_log("reload ok generation=3")
        ft.poll_until(lambda: not ft.is_listening(f.pid, new_port), timeout=5,
                      message="admin turned off")
        early.sendall(b"GET /status HTTP/1.1\r\nHost: a\r\n\r\n")
        assert ft.parse_response(ft.read_until_close(early))[0] == 401
        early.close()
        assert get(f.port("web"))[0] == 200

        config["admin"] = {"listen": "127.0.0.1:%d" % old_port}
        f.write_config(config)
        f.reload()
        f.wait_listening([("127.0.0.1", old_port)], timeout=5)
        assert f.status()["generation"] == 4


# ---- what the API does not serve ------------------------------------------------

def raw_admin(f, raw, timeout=5.0):
    return ft.parse_response(ft.http_request(f.admin_port, raw, timeout=timeout))


def test_wrong_method_unknown_path_and_bad_requests():
    with ft.Backend("a") as a, ft.Ferry(web_config(a)) as f:
        for method, path, expected in (("GET", "/reload", 405), ("POST", "/status", 405),
                                       ("POST", "/metrics", 405), ("DELETE", "/status", 405),
                                       ("GET", "/nope", 404), ("GET", "/statusx", 404),
                                       ("GET", "/", 404), ("GET", "/status?pretty=1", 400),
                                       ("GET", "/metrics?x", 400),
                                       ("POST", "/reload?dry_run=2", 400),
                                       ("POST", "/reload?dry_run=1&x=1", 400),
                                       ("POST", "/reload?force=1", 400),
                                       ("GET", "/healthz?x", 400)):
            code, headers, _ = f.admin(method, path)
            assert code == expected, (method, path, code)
            if code == 405:
                assert "allow" in headers, (method, path, headers)
        assert f.status()["generation"] == 1, \
            "GET /reload and POST /reload with an unknown parameter must not reload"

        for raw in (b"GARBAGE\r\n\r\n", b"GET /status HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",
                    b"GET /status HTTP/1.1\r\n\r\n",                  # no Host in 1.1
                    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64):  # TLS hello
            code = raw_admin(f, raw)[0]
            assert code == 400, (raw[:30], code)

        huge = b"GET /status HTTP/1.1\r\nHost: a\r\nX-Big: " + b"x" * 20000 + b"\r\n\r\n"
        code = raw_admin(f, huge)[0]
        assert code in (431, 400), code
        many = b"GET /status HTTP/1.1\r\nHost: a\r\n" + b"".join(
            b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n"
        assert raw_admin(f, many)[0] in (431, 400)

        # the head split in many small writes is still one request
        with ft.connect(f.admin_port) as sock:
            for piece in (b"GET /sta", b"tus HTTP/1.1\r", b"\nHost: a\r\n", b"\r\n"):
                sock.sendall(piece)
            status, _, body = ft.parse_response(ft.read_until_close(sock))
            assert status == 200 and json.loads(body)["generation"] == 1

        # a client that connects and leaves, and one that sends half a head and leaves
        ft.connect(f.admin_port).close()
        with ft.connect(f.admin_port) as sock:
            sock.sendall(b"GET /status HT")
        assert f.is_running()
        assert f.status()["generation"] == 1
        assert get(f.port("web"))[0] == 200


# ---- exhaustion ------------------------------------------------------------------

ADMIN_TIMEOUT_S = 5.0   # proxy/admin/admin.c ADMIN_TIMEOUT_MS: from accept to the end
ADMIN_MAX_CONNS = 16    # proxy/admin/admin.c ADMIN_MAX_CONNS


def test_deadline_runs_from_accept_even_for_a_trickling_client():
    """A byte a second never completes the head; the connection still ends
    ADMIN_TIMEOUT_S after accept (a per-byte timeout would hold it for hours)."""
    with ft.Backend("a") as a, ft.Ferry(web_config(a)) as f:
        closed_after = None
        with ft.connect(f.admin_port) as sock:
            start = time.monotonic()
            for byte in b"GET /status HTTP/1.1\r\n"[:int(ADMIN_TIMEOUT_S) + 3]:
                try:
                    sock.sendall(bytes([byte]))
                    sock.settimeout(1.0)        # paces the trickle, sees the close at once
                    got = sock.recv(4096)
                except socket.timeout:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    got = b""
                assert got == b"", "answered an incomplete head: %r" % got
                closed_after = time.monotonic() - start
                break
        assert closed_after is not None, "still open after %.1fs of trickling" % (
            time.monotonic() - start)
        assert ADMIN_TIMEOUT_S - 0.5 <= closed_after < ADMIN_TIMEOUT_S + 1.5, closed_after
        assert f.status()["generation"] == 1


def test_connections_beyond_the_cap_wait_in_the_backlog():
    """ADMIN_MAX_CONNS idle connections held: one more is accepted (and answered) only
    when one of them closes, not accept-then-close."""
    with ft.Backend("a") as a, ft.Ferry(web_config(a)) as f:
        idle = [ft.connect(f.admin_port) for _ in range(ADMIN_MAX_CONNS)]
        ft.poll_until(lambda: ft.accepted_connections(f.pid, f.admin_port) == ADMIN_MAX_CONNS,
                      timeout=ADMIN_TIMEOUT_S / 2, message="every idle connection accepted")
        held_since = time.monotonic()
        extra = ft.connect(f.admin_port)        # completes in the kernel backlog
        extra.sendall(b"GET /status HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        extra.settimeout(0.5)
        try:
            early = extra.recv(1)
        except socket.timeout:
            early = None
        assert early is None, "connection %d served beyond the cap: %r" % (
            ADMIN_MAX_CONNS + 1, early)
        assert ft.accepted_connections(f.pid, f.admin_port) == ADMIN_MAX_CONNS
        idle.pop().close()
        status, _, body = ft.parse_response(ft.read_until_close(extra, timeout=3))
        assert status == 200 and json.loads(body)["generation"] == 1, (status, body)
        # served because a slot freed, not because the idle ones timed out
        assert time.monotonic() - held_since < ADMIN_TIMEOUT_S - 1, "served too late"
        extra.close()
        for sock in idle:
            sock.close()
        assert f.status()["generation"] == 1


def test_out_of_descriptors_pauses_admin_accepts_instead_of_spinning():
    """accept(2) on the admin socket failing with EMFILE leaves it readable: ferry
    must pause accepting there (as the workers do), not burn a core, and serve the
    waiting client once descriptors are free again."""
    if ft.VALGRIND:
        raise ft.Skip("valgrind keeps descriptors of its own under ferry's limit, and its "
                      "CPU figures mean nothing")
    with ft.Backend("a") as a, ft.Ferry(web_config(a, workers=1)) as f:
        in_use = len(os.listdir("/proc/%d/fd" % f.pid))
        _, hard = resource.prlimit(f.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(f.pid, resource.RLIMIT_NOFILE, (in_use + 8, hard))
        # Idle HTTP clients take what is left (the surplus waits in the backlog).
        hogs = [ft.connect(f.port("web")) for _ in range(12)]
        f.wait_log("Too many open files")
        before, start = ft.cpu_seconds(f.pid), time.monotonic()
        waiting = ft.connect(f.admin_port)      # its accept fails at once
        waiting.sendall(b"GET /status HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        time.sleep(1.0)                         # the measuring window, not a wait
        used = (ft.cpu_seconds(f.pid) - before) / (time.monotonic() - start)
        assert used < 0.3, "ferry used %.0f%% of a core while out of descriptors" % (
            100 * used)
        f.wait_log("admin: accept: Too many open files; pausing")
        for sock in hogs:
            sock.close()
        status, _, body = ft.parse_response(ft.read_until_close(waiting, timeout=5))
        assert status == 200 and json.loads(body)["generation"] == 1, (status, body)
        waiting.close()
        assert f.status()["generation"] == 1


if __name__ == "__main__":
    ft.main()
