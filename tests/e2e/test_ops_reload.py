#!/usr/bin/env python3
"""Operating reloads (README "Reloading and upgrading"): the dry run and its diff,
every error at once, all-or-nothing reloads, `ferry reload` / `ferry status` exit
codes, `ferry -t --diff`; the admin API's /healthz and cross-site refusal; the
operator metrics."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402


def config(port, backends, workers=1, **extra):
    c = {"workers": workers, "log": {"access": "off"},
         "timeouts": {"drain_ms": 5000},
         "listeners": {"web": {"listen": "127.0.0.1:%d" % port, "mode": "http", "pool": "p"}},
         "pools": {"p": {"backends": [{"address": b.address, "name": b.name} for b in backends]}}}
    c.update(extra)
    return c


def with_admin(f, c):
    c = json.loads(json.dumps(c))
    c["admin"] = f.config["admin"]
    return c


def write(f, c):
    f.write_config(with_admin(f, c))


def reload_counts(f):
    m = f.metrics()
    return (int(ft.metric(m, "ferry_reloads_total", result="ok")),
            int(ft.metric(m, "ferry_reloads_total", result="failed")))


def who(port):
    raw = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    status, headers, _ = ft.parse_response(ft.http_request(port, raw))
    assert status == 200, status
    return headers.get("x-backend")


def ferry_cmd(*args, timeout=60):
    res = subprocess.run([ft.FERRY_BIN, *args], cwd=ft.SRC, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=timeout)
    out, err = res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace")
    ft._check_sanitizers("ferry %s" % args[0], out + err)
    return res.returncode, out, err


def raw_admin(f, head):
    return ft.parse_response(ft.http_request(f.admin_port, head.encode()))


def occupied_port():
    """A socket of "another process" listening on a port: (socket, port)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, s.getsockname()[1]


# ---- dry run ---------------------------------------------------------------------

def test_dry_run_returns_the_exact_diff_and_changes_nothing():
    with ft.Backend("a") as a, ft.Backend("b") as b:
        port, port2 = ft.free_port(), ft.free_port()
        start = config(port, [a])
        start["listeners"]["api"] = {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http",
                                     "routes": [{"match": {"host": "one"}, "pool": "p"},
                                                {"pool": "p"}]}
        with ft.Ferry(start) as f:
            new = json.loads(json.dumps(start))
            new["listeners"]["w2"] = {"listen": "127.0.0.1:%d" % port2, "mode": "http",
                                      "pool": "p"}
            new["listeners"]["api"]["routes"] = [{"match": {"host": "two"}, "pool": "p"},
                                                 {"pool": "q"}]
            new["pools"]["p"]["backends"] = [{"address": a.address, "name": a.name, "weight": 3},
                                             {"address": b.address, "name": b.name}]
            new["pools"]["q"] = {"balance": "least_conn",
                                 "backends": [{"address": b.address}]}
            new["timeouts"]["drain_ms"] = 6000
            write(f, new)
            code, _, body = f.admin("POST", "/reload?dry_run=1")
            assert code == 200, body
            assert json.loads(body) == {"ok": True, "generation": 1, "diff": {
                "listeners": {"added": ["w2"], "removed": [], "changed": {"api": ["routes"]}},
                "routes": {"api": {"added": ["host=two"], "removed": ["host=one"],
                                   "changed": {"*": ["pool"]}}},
                "pools": {"added": ["q"], "removed": [], "changed": {"p": ["backends"]}},
                "backends": {"p": {"added": [b.address], "removed": [],
                                   "changed": {a.address: ["weight"]}}},
                "settings": ["timeouts.drain_ms"]}}, body
            # nothing moved: generation, listeners, counters, who serves
            st = f.status()
            assert st["generation"] == 1 and set(st["listeners"]) == {"web", "api"}, st
            assert not ft.is_listening(f.pid, port2)
            assert reload_counts(f) == (0, 0)
            assert {who(port) for _ in range(4)} == {"a"}
            # the same file really reloads, and says the same in the log
            code, _, body = f.admin("POST", "/reload")
            assert (code, json.loads(body)) == (200, {"ok": True, "generation": 2}), body
            f.wait_log("reload: backend changed: p/%s: weight" % a.address)
            f.wait_listening([("127.0.0.1", port2)])
            # an unchanged file: an empty diff
            code, _, body = f.admin("POST", "/reload?dry_run=1")
            assert code == 200 and json.loads(body)["generation"] == 2, body
            assert json.loads(body)["diff"]["listeners"] == {"added": [], "removed": [],
                                                             "changed": {}}, body


def broken_config(port, a, garbage, busy_port):
    """Two bad certificates (garbage, missing) and a port another process holds."""
    c = config(port, [a])
    c["listeners"].update({
        "bad1": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http", "pool": "p",
                 "tls": {"certificates": [{"cert": garbage, "key": ft.SERVER_KEY}]}},
        "bad2": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http", "pool": "p",
                 "tls": {"certificates": [{"cert": garbage + ".missing", "key": ft.SERVER_KEY}]}},
        "busy": {"listen": "127.0.0.1:%d" % busy_port, "mode": "http", "pool": "p"}})
    return c


def expected_errors(garbage, busy_port):
    return [
        "listeners.bad1.tls.certificates[0].cert: %s: no PEM certificate" % garbage,
        "listeners.bad2.tls.certificates[0].cert: %s.missing: cannot open: No such file or "
        "directory" % garbage,
        "listeners.busy.listen: 127.0.0.1:%d: cannot listen: Address already in use" % busy_port,
    ]


def assert_errors(errors, want):
    assert len(errors) == len(want), errors
    for got, prefix in zip(sorted(errors), sorted(want)):
        assert got.startswith(prefix), (got, prefix)


def test_every_error_at_once_in_a_dry_run_a_reload_and_ferry_t():
    garbage = os.path.join(ft.tmpdir(), "garbage.crt")
    with open(garbage, "w") as fh:
        fh.write("not a certificate\n")
    occupier, busy_port = occupied_port()
    with occupier, ft.Backend("a") as a:
        port = ft.free_port()
        with ft.Ferry(config(port, [a])) as f:
            broken = broken_config(port, a, garbage, busy_port)
            write(f, broken)
            want = expected_errors(garbage, busy_port)
            for path in ("/reload?dry_run=1", "/reload"):
                code, _, body = f.admin("POST", path)
                reply = json.loads(body)
                assert code == 400 and reply["ok"] is False, body
                assert_errors(reply["errors"], want)
            st = f.status()
            assert st["generation"] == 1 and set(st["listeners"]) == {"web"}, st
            for name in ("bad1", "bad2"):
                assert not ft.is_listening(f.pid, ft.split_address(
                    broken["listeners"][name]["listen"])[1])
            assert reload_counts(f) == (0, 1)       # the dry run counts as no reload
            assert who(port) == "a"
            # ferry -t: every certificate problem (it binds nothing)
            rc, out = ft.Ferry.check(broken)
            assert rc == 1, out
            assert_errors([line for line in out.splitlines() if line], want[:2])
            # ferry -t --diff: against the running ferry, whose ports are not "in use"
            rc, out, err = ferry_cmd("-t", "-c", f.config_path, "--diff")
            assert rc == 1 and not out, (out, err)
            assert_errors([line for line in err.splitlines() if line], want)


def test_a_reload_applies_nothing_unless_everything_succeeds():
    occupier, busy_port = occupied_port()
    new_log = os.path.join(ft.tmpdir(), "atomic-access.log")
    with occupier, ft.Backend("a") as a:
        port = ft.free_port()
        with ft.Ferry(config(port, [a])) as f:
            c = config(port, [a], workers=3, log={"access": new_log})
            admin_port = ft.free_port()
            c["listeners"]["busy"] = {"listen": "127.0.0.1:%d" % busy_port, "mode": "http",
                                      "pool": "p"}
            c["admin"] = {"listen": "127.0.0.1:%d" % admin_port}
            with open(f.config_path, "w") as fh:     # f keeps talking to the old address
                json.dump(c, fh)
            f.reload()
            f.wait_log("reload rejected: listeners.busy.listen")
            # neither the access log, nor the admin address, nor the workers moved
            assert not os.path.exists(new_log), "the access log was opened"
            assert not ft.is_listening(f.pid, admin_port), "the new admin address was bound"
            st = f.status()
            assert st["generation"] == 1 and len(st["workers"]) == 1, st
            who(port)
            assert not os.path.exists(new_log)


# ---- ferry reload, ferry status, ferry -t --diff --------------------------------

def test_ferry_reload_exit_codes():
    occupier, busy_port = occupied_port()
    with occupier, ft.Backend("a") as a, ft.Backend("b") as b:
        port = ft.free_port()
        with ft.Ferry(config(port, [a])) as f:
            rc, out, err = ferry_cmd("status", "-c", f.config_path)
            assert rc == 0 and "serving, generation 1" in out, (rc, out, err)

            write(f, config(port, [a, b]))
            rc, out, err = ferry_cmd("reload", "-c", f.config_path)
            assert rc == 0, (rc, out, err)
            assert out.splitlines() == ["reloaded: generation 2 serves",
                                        "  pool changed: p: backends",
                                        "  backend added: p/%s" % b.address], out
            st = f.status()
            assert st["generation"] == 2 and all(w["generation"] == 2 for w in st["workers"])

            broken = config(port, [a])
            broken["listeners"]["busy"] = {"listen": "127.0.0.1:%d" % busy_port, "pool": "p"}
            write(f, broken)
            rc, out, err = ferry_cmd("reload", "-c", f.config_path)
            assert rc == 1 and not out, (rc, out, err)
            assert "rejected, nothing changed" in err and \
                "listeners.busy.listen: 127.0.0.1:%d: cannot listen" % busy_port in err, err
            assert f.status()["generation"] == 2

            with open(f.config_path, "w") as fh:
                fh.write('{"listeners": ')        # not JSON: no admin address in it
            rc, out, err = ferry_cmd("reload", "-c", f.config_path)
            assert rc == 3 and "127.0.0.1:9901" in err and "ferry.json:1:" in err, (rc, out, err)

            write(f, config(port, [b]))
            rc, out, err = ferry_cmd("-t", "-c", f.config_path, "--diff")
            assert rc == 0, (rc, out, err)
            assert out.splitlines() == ["ok", "pool changed: p: backends",
                                        "backend removed: p/%s" % a.address], out
            assert f.status()["generation"] == 2
        # the daemon is gone
        for cmd in ("reload", "status"):
            rc, out, err = ferry_cmd(cmd, "-c", f.config_path)
            assert rc == 3 and "Connection refused" in err and "is ferry running" in err, \
                (cmd, rc, out, err)


# ---- admin hygiene ----------------------------------------------------------------

def test_healthz_says_serving_then_draining():
    with ft.Backend("a") as a:
        port = ft.free_port()
        # the request outlasts the checks below on a slow machine; the drain outlasts it
        cfg = config(port, [a], timeouts={"drain_ms": 15000})
        with ft.Ferry(cfg) as f, ft.Client(port) as slow:
            code, _, body = f.admin("GET", "/healthz")
            assert (code, json.loads(body)) == (200, {"status": "serving"}), body
            slow.send(b"GET /sleep/6000 HTTP/1.1\r\nHost: x\r\n\r\n")
            ft.poll_until(lambda: f.status()["pools"]["p"]["backends"][0]["active"] == 1,
                          message="request in flight")
            f.send_signal(signal.SIGTERM)
            ft.poll_until(lambda: f.admin("GET", "/healthz")[0] == 503, timeout=5,
                          message="/healthz 503 while draining")
            assert json.loads(f.admin("GET", "/healthz")[2]) == {"status": "draining"}
            assert slow.read_response(timeout=15)[0] == 200
            assert f.wait_exit() == 0


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def test_stop_grace_ms_serves_on_while_healthz_says_draining():
    """With timeouts.stop_grace_ms, SIGTERM turns /healthz to 503 at once while the
    listener goes on accepting and serving (new connections and kept-alive ones) and
    a binary upgrade is refused; only when the grace ends does ferry drain: new
    connections are refused, and it exits 0."""
    grace_s = 4.0       # what the checks in the grace need, with room on a slow machine
    with ft.Backend("a") as a:
        port = ft.free_port()
        cfg = config(port, [a])
        cfg["timeouts"]["stop_grace_ms"] = int(grace_s * 1000)
        with ft.Ferry(cfg) as f, ft.Client(port) as kept:
            assert kept.request("GET", "/")[0] == 200
            signalled = time.monotonic()
            f.send_signal(signal.SIGTERM)
            ft.poll_until(lambda: f.admin("GET", "/healthz")[0] == 503, timeout=5,
                          message="/healthz 503 in the grace")
            assert f.status()["state"] == "draining"
            assert who(port) == "a", "a new connection in the grace is not served"
            assert kept.request("GET", "/")[0] == 200
            f.send_signal(signal.SIGUSR2)
            f.wait_log("SIGUSR2: ferry is stopping; ignored")
            rc, _, err = ferry_cmd("upgrade", "-c", f.config_path, timeout=20)
            assert rc == 1 and "ferry is stopping" in err, (rc, err)
            assert not refused(port)
            ft.poll_until(lambda: refused(port), timeout=grace_s + 10,
                          message="new connections refused once the grace ended")
            assert time.monotonic() - signalled >= grace_s
            f.wait_log("stop_grace_ms elapsed: draining")
            assert f.wait_exit() == 0


def test_a_second_sigterm_ends_the_stop_grace():
    with ft.Backend("a") as a:
        port = ft.free_port()
        cfg = config(port, [a])
        cfg["timeouts"]["stop_grace_ms"] = 3600000
        with ft.Ferry(cfg) as f:
            f.send_signal(signal.SIGTERM)
            ft.poll_until(lambda: f.admin("GET", "/healthz")[0] == 503, timeout=5,
                          message="/healthz 503 in the grace")
            assert who(port) == "a"
            f.send_signal(signal.SIGTERM)
            assert f.wait_exit(timeout=15) == 0
            assert "SIGTERM: draining" in f.stderr(), f.log()


def test_cross_site_posts_are_refused_and_change_nothing():
    with ft.Backend("a") as a:
        port = ft.free_port()
        with ft.Ferry(config(port, [a])) as f:
            for extra in ("Origin: https://evil.example\r\n",
                          "Content-Type: application/x-www-form-urlencoded\r\n",
                          "Content-Type: text/plain\r\n"):
                code, _, body = raw_admin(f, "POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\n%s"
                                             "Content-Length: 0\r\n\r\n" % extra)
                assert code == 403, (extra, code, body)
            assert f.status()["generation"] == 1
            code, _, _ = raw_admin(f, "POST /reload HTTP/1.1\r\nHost: a\r\n"
                                      "Content-Type: application/json\r\nContent-Length: 0\r\n\r\n")
            assert code == 200 and f.status()["generation"] == 2
        token = "s3cret"
        c = config(port, [a], admin={"listen": "127.0.0.1:%d" % ft.free_port(), "token": token})
        with ft.Ferry(c) as f:
            code, _, _ = raw_admin(f, "POST /reload HTTP/1.1\r\nHost: a\r\nOrigin: https://ops\r\n"
                                      "Authorization: Bearer %s\r\nContent-Length: 0\r\n\r\n" % token)
            assert code == 200


def test_admin_beyond_loopback_without_token_is_warned_about():
    with ft.Backend("a") as a:
        port = ft.free_port()
        c = config(port, [a], admin={"listen": "0.0.0.0:%d" % ft.free_port()})
        with ft.Ferry(c) as f:
            f.wait_log("is not a loopback address and admin.token is not set")
            assert "warn" in f.stderr()
            c["admin"]["token"] = "t"
            f.write_config(c)
            f.reload()
            f.wait_log("reload ok generation=2")
            assert f.stderr().count("is not a loopback address") == 1
        with ft.Ferry(config(port, [a])) as f:
            assert "loopback" not in f.stderr()


# ---- metrics ----------------------------------------------------------------------

def test_operator_metrics():
    with ft.Backend("a") as a:
        port = ft.free_port()
        before = time.time()
        with ft.Ferry(config(port, [a])) as f:
            for target in ("/", "/", "/sleep/300"):
                raw = ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target).encode()
                ft.parse_response(ft.http_request(port, raw))
            m = f.metrics()
            name = "ferry_http_request_duration_seconds"
            assert ft.metric(m, name + "_count", listener="web") == 3
            assert ft.metric(m, name + "_bucket", listener="web", le="+Inf") == 3
            assert ft.metric(m, name + "_bucket", listener="web", le="0.25") == 2
            assert ft.metric(m, name + "_bucket", listener="web", le="1") == 3
            assert 0.29 <= ft.metric(m, name + "_sum", listener="web") < 2
            bounds = sorted(float(dict(k[1])["le"]) for k in m
                            if k[0] == name + "_bucket" and dict(k[1])["le"] != "+Inf")
            assert bounds == [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], bounds
            assert ft.metric(m, "ferry_build_info", version="0.1.0") == 1
            started = ft.metric(m, "ferry_config_last_reload_success_timestamp_seconds")
            assert before - 1 <= started <= time.time() + 1, started
            assert ft.metric(m, "ferry_worker_connections_accepted_total", worker="0") == 3
            time.sleep(1.1)     # the timestamp has a resolution of a second
            f.admin("POST", "/reload?dry_run=1")
            assert ft.metric(f.metrics(), "ferry_config_last_reload_success_timestamp_seconds") \
                == started, "a dry run is no reload"
            f.admin("POST", "/reload")
            assert ft.metric(f.metrics(),
                             "ferry_config_last_reload_success_timestamp_seconds") > started


if __name__ == "__main__":
    ft.main()
