#!/usr/bin/env python3
"""Config reload (SIGHUP and POST /reload): a new generation for new connections and
requests, rejected configs change nothing, listening sockets carried over, sessions
finish on the generation they hold, backend state kept (design.md, "Reload")."""

import json
import os
import signal
import socket
import ssl
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402


def http_config(port, backends, pool="p", extra_listeners=None, **extra):
    """Listener "web" on port, pool "p" with the given backends (Backend or address)."""
    listeners = {"web": {"listen": "127.0.0.1:%d" % port, "mode": "http", "pool": pool}}
    listeners.update(extra_listeners or {})
    config = {
        "workers": 2,
        "log": {"access": "off"},
        "listeners": listeners,
        "pools": {"p": {"backends": [backend_cfg(b) for b in backends]}},
    }
    config.update(extra)
    return config


def backend_cfg(b):
    return {"address": b.address, "name": b.name} if isinstance(b, ft.Backend) else {"address": b}


def with_admin(f, config):
    """config with f's admin listener, so that a reload keeps the API reachable."""
    config = json.loads(json.dumps(config))
    config["admin"] = f.config["admin"]
    return config


def who(port, target="/", timeout=None):
    """The X-Backend of one GET on a new connection."""
    raw = ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target).encode()
    status, headers, _ = ft.parse_response(ft.http_request(port, raw, timeout=timeout))
    assert status == 200, status
    return headers.get("x-backend")


def sighup_reload(f, config, generation):
    f.write_config(with_admin(f, config))
    f.reload()
    f.wait_log("reload ok generation=%d" % generation)


def admin_reload(f, config, generation):
    f.write_config(with_admin(f, config))
    code, _, body = f.admin("POST", "/reload")
    assert (code, json.loads(body)) == (200, {"ok": True, "generation": generation}), body


def wait_generation(f, generation):
    ft.poll_until(lambda: f.status()["generation"] == generation, timeout=10,
                  message="generation %d" % generation)


def is_refused(port):
    try:
        ft.connect(port, timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def listening_inode(port):
    inodes = ft._listening_inodes({port}).get(port, set())
    assert len(inodes) == 1, "port %d: listening sockets %r" % (port, inodes)
    return next(iter(inodes))


def reload_counts(f):
    """(ok, failed) from ferry_reloads_total."""
    m = f.metrics()
    return (int(ft.metric(m, "ferry_reloads_total", result="ok")),
            int(ft.metric(m, "ferry_reloads_total", result="failed")))


def backend_stat(f, name, pool="p"):
    for b in f.status()["pools"][pool]["backends"]:
        if b["name"] == name:
            return b
    raise AssertionError("no backend %s in pool %s" % (name, pool))


class Traffic(ft.ClientThreads):
    """Two client threads against an http port until stop(): one making a new
    connection per request, one sending keep-alive requests on one connection. Every
    refused connection, error or non-200 answer is counted as a failure."""

    def __init__(self, port, slow=False):
        super().__init__()
        self.port = port
        self.ok = {"new": 0, "keepalive": 0}
        self.failures = []
        self.threads = [threading.Thread(target=self._new_connections, args=("new", "/"),
                                         daemon=True),
                        threading.Thread(target=self._keepalive, daemon=True)]
        if slow:        # requests in flight hold older generations while reloads go on
            self.ok["slow"] = 0
            self.threads.append(threading.Thread(target=self._new_connections,
                                                 args=("slow", "/sleep/30"), daemon=True))

    def _count(self, kind, error=None):
        with self.lock:
            if error is None:
                self.ok[kind] += 1
            else:
                self.failures.append("%s: %s" % (kind, error))

    def _new_connections(self, kind, target):
        raw = b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target.encode()
        while not self.done.is_set():
            try:
                status = ft.parse_response(ft.http_request(self.port, raw))[0]
                self._count(kind, None if status == 200 else "status %d" % status)
            except Exception as e:          # refused, reset, incomplete response
                self._count(kind, repr(e))

    def _keepalive(self):
        client = None
        while not self.done.is_set():
            try:
                if client is None:
                    client = ft.Client(self.port)
                status = client.request("GET", "/", host="x")[0]
                self._count("keepalive", None if status == 200 else "status %d" % status)
                if client.closed_by_peer:
                    raise AssertionError("keep-alive connection closed by ferry")
            except Exception as e:
                self._count("keepalive", repr(e))
                if client is not None:
                    client.close()
                client = None
        if client is not None:
            client.close()

    def wait_progress(self, n=5, timeout=10):
        """Both clients completed n more requests (traffic really runs meanwhile)."""
        with self.lock:
            start = dict(self.ok)

        def moved():
            with self.lock:
                return all(self.ok[k] >= start[k] + n for k in start)
        ft.poll_until(moved, timeout=timeout, message="traffic progressing")

    def assert_clean(self):
        with self.lock:
            assert not self.failures, "%d failures: %s" % (len(self.failures), self.failures[:5])
            assert all(self.ok.values()), self.ok


# ---- switching ------------------------------------------------------------------

def test_sighup_switches_pool_for_new_requests():
    with ft.Backend("a") as a, ft.Backend("b") as b:
        port = ft.free_port()
        with ft.Ferry(http_config(port, [a])) as f:
            assert {who(port) for _ in range(3)} == {"a"}
            sighup_reload(f, http_config(port, [b]), 2)
            ft.poll_until(lambda: who(port) == "b", timeout=5, message="requests reach b")
            assert {who(port) for _ in range(6)} == {"b"}
            assert f.status()["generation"] == 2
            # a shows as draining while an older session still holds generation 1
            ft.poll_until(lambda: [x["name"] for x in f.status()["pools"]["p"]["backends"]]
                          == ["b"], timeout=5, message="only b in /status")
            # the thread count follows the config (test_ops_workers.py has the details)
            sighup_reload(f, http_config(port, [b], workers=1), 3)
            f.wait_log("workers: 1 serving (was 2)", timeout=2)
            assert who(port) == "b"


# ---- rejected configs -----------------------------------------------------------

def test_rejected_configs_change_nothing():
    garbage = os.path.join(ft.tmpdir(), "garbage.crt")
    with open(garbage, "w") as fh:
        fh.write("this is not a certificate\n")
    occupier = socket.socket()      # another process's socket, as far as ferry knows
    occupier.bind(("127.0.0.1", 0))
    occupier.listen(1)
    busy_port = occupier.getsockname()[1]
    with occupier, ft.Backend("a") as a, ft.Backend("b") as b:
        port = ft.free_port()
        with ft.Ferry(http_config(port, [a])) as f, ft.Client(port) as kept:
            assert kept.request("GET", "/", host="x")[1]["x-backend"] == "a"
            # chosen once ferry runs, so it cannot be the port its admin API took
            fresh_port = ft.free_port()

            def tls_listener(cert, key):
                return {"listen": "127.0.0.1:%d" % fresh_port, "mode": "http", "pool": "p",
                        "tls": {"certificates": [{"cert": cert, "key": key}]}}

            in_use = http_config(port, [b], extra_listeners={
                "fresh": {"listen": "127.0.0.1:%d" % fresh_port, "mode": "http", "pool": "p"},
                "busy": {"listen": "127.0.0.1:%d" % busy_port, "mode": "http", "pool": "p"}})
            cases = [
                ("syntax error", '{"listeners": {"web": ', f.config_path + ":1:"),
                ("unknown pool", http_config(port, [b], pool="nope"),
                 ("listeners.web.pool (line ", 'unknown pool "nope"')),
                ("address in use", in_use,
                 "listeners.busy.listen: 127.0.0.1:%d: cannot listen: Address already in use"
                 % busy_port),
                ("garbage certificate", http_config(port, [b], extra_listeners={
                    "tls": tls_listener(garbage, ft.SERVER_KEY)}),
                 "listeners.tls.tls.certificates[0].cert: %s: no PEM certificate" % garbage),
                ("missing certificate", http_config(port, [b], extra_listeners={
                    "tls": tls_listener(garbage + ".missing", ft.SERVER_KEY)}),
                 "listeners.tls.tls.certificates[0].cert: %s.missing: cannot open: "
                 "No such file or directory" % garbage),
                ("key of another certificate", http_config(port, [b], extra_listeners={
                    "tls": tls_listener(ft.SERVER_CERT, ft.RSA_KEY)}),
                 "listeners.tls.tls.certificates[0].key: %s: key does not match" % ft.RSA_KEY),
                ("unwritable access log", http_config(port, [b], log={
                    "access": os.path.join(garbage, "access.log")}),
                 "log.access: cannot open %s/access.log: Not a directory" % garbage),
            ]
            for i, (what, config, message) in enumerate(cases):
                if isinstance(config, str):
                    with open(f.config_path, "w") as fh:
                        fh.write(config)
                else:
                    f.write_config(with_admin(f, config))
                f.reload()
                ft.poll_until(lambda: reload_counts(f) == (0, i + 1), timeout=10,
                              message="%s: reload rejected" % what)
                prefix, rest = message if isinstance(message, tuple) else (message, "")
                log = f.wait_log("reload rejected: " + prefix, timeout=2)
                assert rest in log.split("reload rejected: " + prefix, 1)[1], (what, log)
                # the old generation keeps serving, new and kept-alive connections alike
                st = f.status()
                assert st["generation"] == 1, (what, st)
                assert set(st["listeners"]) == {"web"}, (what, st["listeners"])
                assert who(port) == "a", what
                assert kept.request("GET", "/", host="x")[1]["x-backend"] == "a", what
                assert not ft.is_listening(f.pid, fresh_port), "%s: %d left bound" % (
                    what, fresh_port)
            assert "reload ok" not in f.log()

            # once fixed, the same file loads as generation 2
            occupier.close()
            sighup_reload(f, in_use, 2)
            f.wait_listening([("127.0.0.1", fresh_port), ("127.0.0.1", busy_port)])
            assert who(fresh_port) == "b" and who(busy_port) == "b"


# ---- listening sockets ----------------------------------------------------------

def test_added_listener_accepts_and_removed_listener_refuses():
    with ft.Backend("a") as a:
        port, port2 = ft.free_port(), ft.free_port()
        two = {"web2": {"listen": "127.0.0.1:%d" % port2, "mode": "http", "pool": "p"}}
        with ft.Ferry(http_config(port, [a])) as f:
            assert is_refused(port2)
            admin_reload(f, http_config(port, [a], extra_listeners=two), 2)
            f.wait_listening([("127.0.0.1", port2)], timeout=5)
            ft.poll_until(lambda: who(port2) == "a", timeout=5, message="web2 serving")
            assert set(f.status()["listeners"]) == {"web", "web2"}

            only_two = http_config(port2, [a])     # "web" now on port2; port is gone
            admin_reload(f, only_two, 3)
            ft.poll_until(lambda: is_refused(port), timeout=5, message="removed port refused")
            assert who(port2) == "a"
            assert set(f.status()["listeners"]) == {"web"}

            # the address comes back: bound anew and serving
            admin_reload(f, http_config(port, [a]), 4)
            ft.poll_until(lambda: not is_refused(port) and who(port) == "a", timeout=5,
                          message="re-added port serving")
            ft.poll_until(lambda: is_refused(port2), timeout=5, message="port2 refused")


def test_unchanged_listener_is_never_closed_across_ten_reloads():
    with ft.Backend("a") as a, ft.Backend("b") as b:
        port = ft.free_port()
        spare = {"spare": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "tcp",
                           "pool": "p"}}
        with ft.Ferry(http_config(port, [a, b])) as f:
            inode = listening_inode(port)
            with Traffic(port) as traffic:
                traffic.wait_progress()
                for generation in range(2, 12):
                    # every other reload also adds or removes a listener and the weights
                    # change, so each generation really differs
                    config = http_config(port, [a, b],
                                         extra_listeners=spare if generation % 2 else None)
                    config["pools"]["p"]["backends"][generation % 2]["weight"] = generation
                    sighup_reload(f, config, generation)
                    traffic.wait_progress(n=3)
            traffic.assert_clean()
            assert listening_inode(port) == inode, "the listening socket was replaced"
            assert f.status()["generation"] == 11


def test_listener_and_backend_spelled_differently_are_the_same():
    """Addresses are compared parsed: a leading zero in a port, or another spelling of
    an IPv6 address, names the same socket (never "address in use") and the same
    backend (its counters go on)."""
    with ft.Backend("a") as a:
        port = ft.free_port()
        with ft.Ferry(http_config(port, [a.address])) as f:
            inode = listening_inode(port)
            assert who(port) == "a"
            config = http_config(port, ["127.0.0.1:0%d" % a.port])
            config["listeners"]["web"]["listen"] = "127.0.0.1:0%d" % port
            admin_reload(f, config, 2)
            assert listening_inode(port) == inode, "the listening socket was replaced"
            assert who(port) == "a"
            assert f.status()["pools"]["p"]["backends"][0]["requests"] == 2, \
                "the backend's counters restarted"


# ---- access log ------------------------------------------------------------------

def test_reload_keeps_an_unchanged_access_log_open_and_sigusr1_reopens_it():
    path = os.path.join(ft.tmpdir(), "access.log")
    rotated, other = path + ".1", path + ".other"

    def logged(where, target):
        who(port, target)
        ft.poll_until(lambda: os.path.exists(where) and target in open(where).read(),
                      timeout=5, message="%s logged in %s" % (target, where))

    with ft.Backend("a") as a:
        port = ft.free_port()
        config = http_config(port, [a], log={"access": path})
        with ft.Ferry(config) as f:
            logged(path, "/one")
            os.rename(path, rotated)
            sighup_reload(f, config, 2)         # same path: the open file stays in use
            logged(rotated, "/two")
            assert not os.path.exists(path), "the reload reopened an unchanged access log"
            f.send_signal(signal.SIGUSR1)       # rotation is SIGUSR1's job
            f.wait_log("access log reopened")
            logged(path, "/three")
            sighup_reload(f, http_config(port, [a], log={"access": other}), 3)
            logged(other, "/four")
            sighup_reload(f, http_config(port, [a], log={"access": "stdout"}), 4)
            who(port, "/five")
            ft.poll_until(lambda: "/five" in f.stdout(), timeout=5, message="/five on stdout")
            for name in (rotated, path, other):
                assert "/five" not in open(name).read(), name
            assert "/four" not in open(path).read() and "/two" not in open(path).read()


# ---- sessions finish on their generation ----------------------------------------

def test_tcp_relay_open_across_reloads_keeps_working():
    with ft.Backend("a", mode="echo") as a, ft.Backend("b", mode="echo") as b:
        port = ft.free_port()
        config = http_config(port, [a])
        config["listeners"]["web"]["mode"] = "tcp"
        with ft.Ferry(config) as f, ft.connect(port) as relay:
            relay.sendall(b"one")
            assert relay.recv(3) == b"one"
            ft.poll_until(lambda: backend_stat(f, "a")["active"] == 1, timeout=5,
                          message="relay to a counted")
            config["pools"]["p"]["backends"] = [backend_cfg(b)]
            sighup_reload(f, config, 2)
            relay.sendall(b"two")
            assert relay.recv(3) == b"two"
            with ft.connect(port) as other:      # a new connection goes to b
                other.sendall(b"new")
                assert other.recv(3) == b"new"
                assert backend_stat(f, "b")["requests"] == 1

            # the listener goes away entirely: the relay still holds generation 2
            other_port = ft.free_port()
            config["listeners"] = {"elsewhere": dict(config["listeners"]["web"],
                                                     listen="127.0.0.1:%d" % other_port)}
            sighup_reload(f, config, 3)
            # the relay still holds generation 2, yet the dropped port refuses at once
            assert is_refused(port), "a port dropped by the reload still accepts"
            relay.sendall(b"three")
            assert relay.recv(5) == b"three"
            relay.shutdown(socket.SHUT_WR)
            assert ft.read_until_close(relay) == b""


def test_http_request_in_flight_during_reload_completes():
    with ft.Backend("a") as a, ft.Backend("b") as b:
        port = ft.free_port()
        with ft.Ferry(http_config(port, [a])) as f, ft.Client(port) as c:
            c.send(b"GET /sleep/500 HTTP/1.1\r\nHost: x\r\n\r\n")
            ft.poll_until(lambda: backend_stat(f, "a")["active"] == 1, timeout=5,
                          message="request in flight to a")
            admin_reload(f, http_config(port, [b]), 2)
            status, headers, _ = c.read_response()
            assert (status, headers["x-backend"]) == (200, "a")
            assert not c.closed_by_peer
            # the next request on the same connection follows the new generation
            assert c.request("GET", "/", host="x")[1]["x-backend"] == "b"


def test_tls_connection_lives_across_reload_and_new_handshakes_get_the_new_certificate():
    def config(port, cert, key, backend):
        c = http_config(port, [backend])
        c["listeners"]["web"]["tls"] = {"certificates": [{"cert": cert, "key": key}]}
        return c

    def peer_cert(sock):
        return sock.getpeercert(binary_form=True)

    with ft.Backend("a") as a, ft.Backend("b") as b:
        port = ft.free_port()
        with open(ft.SERVER_CERT) as fh:
            ec_der = ssl.PEM_cert_to_DER_cert(fh.read())
        with open(ft.RSA_CERT) as fh:
            rsa_der = ssl.PEM_cert_to_DER_cert(fh.read())
        with ft.Ferry(config(port, ft.SERVER_CERT, ft.SERVER_KEY, a)) as f, \
                ft.Client(port, tls=True) as kept:
            assert peer_cert(kept.sock) == ec_der
            assert kept.request("GET", "/", host="x")[1]["x-backend"] == "a"
            admin_reload(f, config(port, ft.RSA_CERT, ft.RSA_KEY, b), 2)
            # the open TLS connection goes on, its next request on the new generation
            assert kept.request("GET", "/", host="x")[1]["x-backend"] == "b"
            assert kept.request("GET", "/bytes/100000", host="x")[2] == ft.pattern_bytes(100000)
            with ft.connect(port, tls=True) as fresh:
                assert peer_cert(fresh) == rsa_der, "new handshake got the old certificate"


def test_backend_counters_and_health_carry_over():
    health = os.path.join(ft.tmpdir(), "c-unhealthy")
    check = {"type": "http", "path": "/healthz", "interval_ms": 200, "timeout_ms": 150,
             "rise": 1, "fall": 2}
    with ft.Backend("a") as a, ft.Backend("b") as b, \
            ft.Backend("c", health_file=health) as c:
        port = ft.free_port()
        config = http_config(port, [a, c])
        config["pools"]["p"]["health_check"] = check
        with ft.Ferry(config) as f:
            c.set_healthy(False)
            ft.poll_until(lambda: backend_stat(f, "c")["state"] == "down", timeout=5,
                          message="c down")
            for _ in range(6):
                assert who(port) == "a"
            assert backend_stat(f, "a")["requests"] == 6
            config["pools"]["p"]["backends"].append(backend_cfg(b))
            admin_reload(f, config, 2)
            assert backend_stat(f, "a")["requests"] == 6, "counters reset by the reload"
            assert backend_stat(f, "c")["state"] == "down", "health reset by the reload"
            assert backend_stat(f, "b")["requests"] == 0
            seen = [who(port) for _ in range(6)]
            assert sorted(seen) == ["a"] * 3 + ["b"] * 3, seen
            assert backend_stat(f, "a")["requests"] == 9
            c.set_healthy(True)
            ft.poll_until(lambda: backend_stat(f, "c")["state"] == "up", timeout=5,
                          message="c back up after the reload")


# ---- many reloads ---------------------------------------------------------------

def test_twenty_quick_reloads_under_traffic():
    with ft.Backend("a") as a, ft.Backend("b") as b:
        port = ft.free_port()
        # probes in flight when a reload replaces the checker; never enough failures
        # (a slow probe under ASan) to take a backend down
        check = {"type": "http", "path": "/healthz", "interval_ms": 100, "timeout_ms": 90,
                 "rise": 1, "fall": 100}
        with ft.Ferry(http_config(port, [a, b])) as f:
            with Traffic(port, slow=True) as traffic:
                traffic.wait_progress()
                for generation in range(2, 22):
                    config = http_config(port, [a, b] if generation % 3 else [b, a])
                    if generation % 2:
                        config["pools"]["p"]["health_check"] = check
                    config["pools"]["p"]["balance"] = (
                        "least_conn" if generation % 4 < 2 else "round_robin")
                    admin_reload(f, config, generation)
                traffic.wait_progress()
            traffic.assert_clean()
            st = f.status()
            assert st["generation"] == 21
            assert sum(x["requests"] for x in st["pools"]["p"]["backends"]) >= \
                sum(traffic.ok.values())
            assert f.is_running()
        # leaving the with-block stopped ferry (SIGTERM, exit 0) and checked its stderr
        # for sanitizer reports: every generation was freed


def test_removed_backend_drains_then_leaves():
    """A backend a reload removed shows as draining in /status while a request to it
    is in flight, takes no new one, and is gone once that request finished."""
    with ft.Backend("a") as a, ft.Backend("b") as b:
        port = ft.free_port()
        with ft.Ferry(http_config(port, [b, a])) as f:
            slow = {}
            # long enough to be still in flight after the checks below on a slow machine
            t = threading.Thread(target=lambda: slow.update(
                who=who(port, "/sleep/4000", timeout=15)))
            t.start()
            ft.poll_until(lambda: backend_stat(f, "b")["active"] == 1, timeout=5,
                          message="the slow request at b")
            admin_reload(f, http_config(port, [a]), 2)
            names = [(x["name"], x["state"]) for x in f.status()["pools"]["p"]["backends"]]
            assert names == [("a", "up"), ("b", "draining")], names
            assert {who(port) for _ in range(4)} == {"a"}
            t.join(15)
            assert slow == {"who": "b"}, slow
            ft.poll_until(lambda: len(f.status()["pools"]["p"]["backends"]) == 1, timeout=5,
                          message="b gone from /status")


def open_descriptors(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_thousand_reloads_keep_descriptors_memory_and_backend_state_flat():
    """A thousand reloads, a request through a TLS pool after each, backend b removed
    and added back every other time: ferry keeps no idle connection or keep-alive
    bucket per generation (its descriptors stay flat), forgets a removed backend (its
    memory stays flat once the allocator settled), and a re-added backend starts
    afresh."""
    with ft.Backend("a", tls=True) as a, ft.Backend("b", tls=True) as b:
        port = ft.free_port()

        def config(with_b):
            c = http_config(port, [a, b] if with_b else [a])
            c["pools"]["p"]["tls"] = {"ca": ft.CA_CERT, "sni": "localhost"}
            return c

        # ASan keeps freed memory aside (256 MiB by default), which would hide a leak
        # in RSS: a small quarantine still finds use-after-free of recent frees.
        asan = os.environ.get("ASAN_OPTIONS", "detect_leaks=1") + ":quarantine_size_mb=4"
        with ft.Ferry(config(True), env={"ASAN_OPTIONS": asan}) as f:
            with ft.Client(port) as client:
                def get():
                    status, headers, _ = client.request("GET", "/")
                    assert status == 200, status
                    return headers["x-backend"]

                assert {get(), get()} == {"a", "b"}
                baseline = open_descriptors(f.pid)
                rss = {}
                for generation in range(2, 1002):
                    admin_reload(f, config(generation % 2 == 1), generation)
                    if generation % 2 == 1:
                        # b came back: a fresh backend, not the one removed before
                        assert backend_stat(f, "b")["requests"] == 0, backend_stat(f, "b")
                    get()
                    if generation in (501, 1001):
                        rss[generation - 1] = ft.rss_kib(f.pid)
                get()
                grown = open_descriptors(f.pid) - baseline
                print("descriptors: %d before, %+d after 1000 reloads; RSS %d KiB after 500, "
                      "%d KiB after 1000" % (baseline, grown, rss[500], rss[1000]))
                assert grown <= 8, "%d more descriptors after 1000 reloads" % grown
                # Under ASan RSS swings by a few MiB between samples even with a small
                # quarantine (+4.6 MiB once in a full parallel run); a release build
                # stays flat (9592 KiB after 500 reloads, after 1000 and after 3000).
                # A leak of one SSL_CTX per generation would be 240 MiB here.
                assert rss[1000] - rss[500] <= 8192, rss


if __name__ == "__main__":
    ft.main()
