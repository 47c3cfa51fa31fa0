#!/usr/bin/env python3
"""Active health checks: rise/fall, traffic only to healthy backends, recovery."""

import os
import resource
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402
from rawbackend import RawBackend  # noqa: E402


def config(backends, check):
    return {
        "workers": 1,
        "log": {"access": "off"},
        "listeners": {"tcp": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "tcp",
                              "pool": "p"}},
        "pools": {"p": {"backends": [{"address": b.address, "name": b.name} for b in backends],
                        "health_check": check}},
    }


def state_of(f, name):
    for b in f.status()["pools"]["p"]["backends"]:
        if b["name"] == name:
            return b["state"]
    raise AssertionError("no backend %s" % name)


def answer(port):
    raw = ft.http_request(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return ft.parse_response(raw)[2].strip().decode()


HTTP_CHECK = {"type": "http", "path": "/healthz", "interval_ms": 100, "timeout_ms": 80,
              "rise": 2, "fall": 2}


def test_failing_http_check_takes_backend_out_and_rise_brings_it_back():
    health = os.path.join(ft.tmpdir(), "a-unhealthy")
    with ft.Backend("a", health_file=health) as a, ft.Backend("b") as b:
        with ft.Ferry(config([a, b], HTTP_CHECK)) as f:
            port = f.port("tcp")
            a.set_healthy(False)
            ft.poll_until(lambda: state_of(f, "a") == "down", timeout=5, message="a down")
            f.wait_log("backend p/a down: GET /healthz answered 503 (2/2)")
            assert {answer(port) for _ in range(6)} == {"b"}, "traffic reached a down backend"
            a.set_healthy(True)
            ft.poll_until(lambda: state_of(f, "a") == "up", timeout=5, message="a up again")
            assert {answer(port) for _ in range(6)} == {"a", "b"}


def test_tcp_check_marks_a_stopped_backend_down():
    with ft.Backend("a", mode="echo") as a, ft.Backend("b", mode="echo") as b:
        check = {"type": "tcp", "interval_ms": 100, "timeout_ms": 80, "rise": 1, "fall": 1}
        with ft.Ferry(config([a, b], check)) as f:
            assert state_of(f, "a") == "up"
            a.stop()
            ft.poll_until(lambda: state_of(f, "a") == "down", timeout=5, message="a down")
            assert state_of(f, "b") == "up"


def test_backend_that_never_answers_fails_by_timeout():
    with ft.Backend("a") as a:
        check = dict(HTTP_CHECK, path="/hang", fall=1)
        with ft.Ferry(config([a], check)) as f:
            ft.poll_until(lambda: state_of(f, "a") == "down", timeout=5, message="a down")
            f.wait_log("no answer after 80 ms")


def test_failing_backend_goes_down_though_reloads_come_faster_than_its_checks():
    """Orchestrators reload every few seconds: a reload that leaves a check as it was
    carries its streak (and its probe in flight) over, so a backend failing its check
    goes down after `fall` failures however often the config is reloaded."""
    health = os.path.join(ft.tmpdir(), "a-failing")
    with ft.Backend("a", health_file=health) as a, ft.Backend("b") as b:
        check = {"type": "http", "path": "/healthz", "interval_ms": 300, "timeout_ms": 200,
                 "rise": 1, "fall": 3}
        cfg = config([a, b], check)
        with ft.Ferry(cfg) as f:
            cfg["admin"] = f.config["admin"]
            a.set_healthy(False)
            start = time.monotonic()
            generation = 1
            while state_of(f, "a") != "down":
                assert time.monotonic() - start < 5, "a still up after 5 s of reloads"
                generation += 1
                # each generation differs (a weight), the check does not
                cfg["pools"]["p"]["backends"][1]["weight"] = generation % 5 + 1
                f.write_config(cfg)
                code, _, body = f.admin("POST", "/reload")
                assert code == 200, body
                time.sleep(0.2)
            print("a down after %.2f s and %d reloads" % (time.monotonic() - start,
                                                         generation - 1))


def limit_to_lowest_free_descriptor(pid, hard):
    """Lowers pid's RLIMIT_NOFILE to its lowest free descriptor number, so that every
    new descriptor fails with EMFILE. A probe's socket open at the first look frees
    its number below the limit when it closes: look again until none does."""
    limit = None
    for _ in range(4):
        fds = {int(x) for x in os.listdir("/proc/%d/fd" % pid)}
        lowest_free = min(set(range(len(fds) + 1)) - fds)
        if limit is not None and lowest_free >= limit:
            return
        limit = lowest_free if limit is None else min(limit, lowest_free)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, hard))
        time.sleep(0.3)


def test_ferry_out_of_descriptors_takes_no_backend_down():
    """socket() failing in ferry (EMFILE) says nothing about a backend: neither the
    requests that cannot connect nor the probes that cannot open a socket count as the
    backend's failures, and it stays up."""
    with ft.Backend("a") as a:
        port = ft.free_port()
        check = dict(HTTP_CHECK, rise=1, fall=1)
        cfg = {
            "workers": 1,
            "log": {"access": "off"},
            "listeners": {"web": {"listen": "127.0.0.1:%d" % port, "mode": "http",
                                  "pool": "p"}},
            "pools": {"p": {"backends": [{"address": a.address, "name": "a"}],
                            "health_check": check, "retries": 0,
                            "keepalive": {"max_idle": 0}}},
        }
        with ft.Ferry(cfg) as f:
            with ft.Client(port) as client:
                assert client.request("GET", "/")[0] == 200
                soft, hard = resource.prlimit(f.pid, resource.RLIMIT_NOFILE)
                limit_to_lowest_free_descriptor(f.pid, hard)
                try:
                    statuses = [client.request("GET", "/")[0] for _ in range(5)]
                    time.sleep(0.5)     # several probes' worth: none could open a socket
                finally:
                    resource.prlimit(f.pid, resource.RLIMIT_NOFILE, (soft, hard))
            assert statuses == [503] * 5, statuses
            st = f.status()["pools"]["p"]["backends"][0]
            assert (st["state"], st["failures"]) == ("up", 0), st
            f.wait_log("Too many open files")


def backend_status(f, name):
    for b in f.status()["pools"]["p"]["backends"]:
        if b["name"] == name:
            return b
    raise AssertionError("no backend %s" % name)


def http_config(backends, check=None, workers=2, **pool):
    cfg = {
        "workers": workers,
        "log": {"access": "off"},
        "listeners": {"web": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http",
                              "pool": "p"}},
        "pools": {"p": dict(pool, backends=[{"address": b.address, "name": b.name}
                                            for b in backends])},
    }
    if check:
        cfg["pools"]["p"]["health_check"] = check
    return cfg


class Load(ft.ClientThreads):
    """Client threads sending GET / on keep-alive connections until stop(); every
    answer is kept as (monotonic time, status, X-Backend)."""

    def __init__(self, port, threads=4):
        super().__init__()
        self.port = port
        self.answers = []
        self.errors = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self):
        while not self.done.is_set():
            try:
                with ft.Client(self.port) as c:
                    for _ in range(50):
                        if self.done.is_set():
                            return
                        status, headers, _ = c.request("GET", "/")
                        with self.lock:
                            self.answers.append((time.monotonic(), status,
                                                 headers.get("x-backend")))
            except Exception as e:      # noqa: BLE001 - every failure counts
                with self.lock:
                    self.errors.append(repr(e))


    def count(self, backend=None):
        with self.lock:
            return sum(1 for _, _, b in self.answers if backend is None or b == backend)

    def last(self, backend):
        with self.lock:
            return max(t for t, _, b in self.answers if b == backend)


def test_under_load_a_backend_failing_its_check_stops_getting_traffic_in_time():
    """4 client threads; b starts failing its check. No client request fails, b is
    judged down within fall x interval_ms + 10% (the jitter: every probe is
    interval_ms +-10% after the last), and from that verdict on b gets no more
    traffic."""
    health = os.path.join(ft.tmpdir(), "b-failing-under-load")
    interval, fall = 500, 3
    check = {"type": "http", "path": "/healthz", "interval_ms": interval, "timeout_ms": 300,
             "rise": 1, "fall": fall}
    with ft.Backend("a") as a, ft.Backend("b", health_file=health) as b:
        with ft.Ferry(http_config([a, b], check)) as f:
            with Load(f.port("web")) as load:
                ft.poll_until(lambda: load.count("a") > 20 and load.count("b") > 20, timeout=10,
                              message="traffic to both")
                start = time.monotonic()
                b.set_healthy(False)

                def down_at():
                    # the time is taken after /status said down: the verdict came before
                    down = backend_status(f, "b")["state"] == "down"
                    return time.monotonic() if down else None
                t_down = ft.poll_until(down_at, timeout=10, message="b down")
                time.sleep(0.5)     # traffic goes on after the verdict: none may reach b
            bound = fall * interval * 1.1
            verdict_ms = (t_down - start) * 1000
            eject_ms = (load.last("b") - start) * 1000
            print("time to eject under load: %.0f ms after the check started failing, "
                  "judged down after %.0f ms (bound %.0f ms); %d requests, %d failed" % (
                      eject_ms, verdict_ms, bound, load.count(), len(load.errors)))
            assert load.errors == [], load.errors[:5]
            assert all(status == 200 for _, status, _ in load.answers)
            # The bound is the worst case of the probes alone; a loaded machine (late
            # timers, probe round trips, 4 client threads) gets 0.5 s on top. What b
            # answers after the verdict was sent to it before: 0.2 s for that to land.
            assert verdict_ms <= bound + 500, (verdict_ms, bound)
            assert load.last("b") <= t_down + 0.2, (eject_ms, verdict_ms)
            st = backend_status(f, "b")
            assert st["down_reason"] == "GET /healthz answered 503 (3/3)", st
            assert st["check"]["result"] == "fail", st
            assert st["check"]["detail"] == "GET /healthz answered 503", st


def test_expect_body_and_what_status_and_metrics_say():
    health = os.path.join(ft.tmpdir(), "a-body")
    check = {"type": "http", "path": "/healthz", "expect_body": "ok", "interval_ms": 100,
             "timeout_ms": 80, "rise": 1, "fall": 2}
    with ft.Backend("a", health_file=health) as a, ft.Backend("b") as b:
        with ft.Ferry(http_config([a, b], check)) as f:
            ft.poll_until(lambda: backend_status(f, "a")["check"]["result"] == "pass", timeout=5,
                          message="a passes")
            a.set_health_body("degraded\n")   # 200, but not what the check expects
            ft.poll_until(lambda: backend_status(f, "a")["state"] == "down", timeout=5,
                          message="a down")
            st = backend_status(f, "a")
            assert st["down_reason"] == \
                'GET /healthz answered 200 without "ok" in its body (2/2)', st
            a.set_health_body("all ok\n")
            ft.poll_until(lambda: backend_status(f, "a")["state"] == "up", timeout=5,
                          message="a up")
            st = backend_status(f, "a")
            assert "down_reason" not in st, st
            assert st["transitions"] == {"up": 1, "down": 1, "draining": 0}, st
            m = f.metrics()
            labels = {"pool": "p", "backend": "a", "address": a.address}
            assert ft.metric(m, "ferry_backend_transitions_total", to="down", **labels) == 1
            assert ft.metric(m, "ferry_backend_transitions_total", to="up", **labels) == 1
            assert ft.metric(m, "ferry_health_checks_total", result="fail", **labels) >= 2
            assert ft.metric(m, "ferry_health_checks_total", result="pass", **labels) >= 2
            assert ft.metric(m, "ferry_health_checks_total", result="skipped", **labels) == 0


def test_initial_down_waits_for_rise_passing_checks():
    check = {"type": "http", "path": "/healthz", "interval_ms": 1000, "timeout_ms": 200,
             "rise": 2, "fall": 1, "initial": "down"}
    with ft.Backend("a") as a:
        with ft.Ferry(http_config([a], check)) as f:
            # The second passing check comes one interval after start; a slow
            # machine may get there before the request, so the 503 is asserted
            # only when the backend was still down after the request was answered.
            raw = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            status = ft.parse_response(ft.http_request(f.port("web"), raw))[0]
            st = backend_status(f, "a")
            if st["state"] == "down":
                assert "health_check.initial" in st["down_reason"], st
                assert status == 503, status
            ft.poll_until(lambda: backend_status(f, "a")["state"] == "up", timeout=5,
                          message="a up after 2 passing checks")
            assert backend_status(f, "a")["check"]["counts"]["pass"] >= 2


def test_passive_ejection_on_5xx_lasts_eject_ms():
    fail = os.path.join(ft.tmpdir(), "a-fails")
    # long enough for the checks below to run while a is out, on a slow machine too
    passive = {"failures": 3, "eject_ms": 3000, "on_5xx": True}
    with ft.Backend("a", fail_file=fail) as a, ft.Backend("b") as b:
        with ft.Ferry(http_config([a, b], passive=passive, workers=1)) as f:
            port = f.port("web")

            def ask():
                raw = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                status, headers, _ = ft.parse_response(ft.http_request(port, raw))
                return status, headers.get("x-backend")
            a.set_failing(True)
            # a is ejected during the 5th request: between these two times
            before = time.monotonic()
            answers = [ask() for _ in range(6)]     # a fails 3 times, then is ejected
            after = time.monotonic()
            assert answers.count((500, "a")) == 3, answers
            assert backend_status(f, "a")["state"] == "down"
            reason = backend_status(f, "a")["down_reason"]
            assert reason.startswith("3 consecutive failures (passive)"), reason
            a.set_failing(False)
            assert {ask() for _ in range(6)} == {(200, "b")}
            ft.poll_until(lambda: ask() == (200, "a"), timeout=10, message="a back")
            back = time.monotonic()
            print("passive ejection: a back %.0f-%.0f ms after it was ejected "
                  "(eject_ms 3000)" % ((back - after) * 1000, (back - before) * 1000))
            assert back - before >= 3.0, back - before
            assert back - after <= 4.0, back - after


def error_cut_short(conn, req):
    """A 500 whose body ends early: one bad response, two things wrong with it."""
    conn.send(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100\r\n\r\n" +
              b"x" * 10)
    conn.close()


def test_a_5xx_cut_short_is_one_passive_failure_not_two():
    """With on_5xx a 5xx counts against its backend; the same response breaking off
    afterwards must not count again: with failures 2, one such answer leaves the
    backend up."""
    passive = {"failures": 2, "eject_ms": 60000, "on_5xx": True}
    with RawBackend({"/cut": error_cut_short}) as rb:
        cfg = http_config([], passive=passive, retries=0, workers=1)
        cfg["pools"]["p"]["backends"] = [{"address": rb.address, "name": "raw"}]
        with ft.Ferry(cfg) as f:
            raw = b"GET /cut HTTP/1.1\r\nHost: x\r\n\r\n"
            reply = ft.http_request(f.port("web"), raw)
            assert reply.startswith(b"HTTP/1.1 500"), reply[:80]
            st = backend_status(f, "raw")
            assert (st["failures"], st["state"]) == (1, "up"), st
            ok = ft.http_request(f.port("web"), b"GET / HTTP/1.1\r\nHost: x\r\n"
                                 b"Connection: close\r\n\r\n")
            assert ok.startswith(b"HTTP/1.1 200"), ok[:80]


def test_passively_ejected_backend_with_checks_returns_after_eject_ms_and_a_passing_check():
    fail = os.path.join(ft.tmpdir(), "a-fails-checked")
    health = os.path.join(ft.tmpdir(), "a-checked-health")
    check = {"type": "http", "path": "/healthz", "interval_ms": 200, "timeout_ms": 100,
             "rise": 3, "fall": 3}
    passive = {"failures": 2, "eject_ms": 1000, "on_5xx": True}
    with ft.Backend("a", fail_file=fail, health_file=health) as a, ft.Backend("b") as b:
        with ft.Ferry(http_config([a, b], check, passive=passive, workers=1)) as f:
            port = f.port("web")
            raw = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            a.set_failing(True)

            def ejected_at():
                # the ejection comes with a 500 to the request that precedes the first
                # "down": no sooner than that request was sent
                sent = time.monotonic()
                ft.http_request(port, raw)
                return sent if backend_status(f, "a")["state"] == "down" else None
            ejected = ft.poll_until(ejected_at, timeout=5, message="a ejected")
            seen_down = time.monotonic()
            a.set_failing(False)    # its checks pass all along
            ft.poll_until(lambda: backend_status(f, "a")["state"] == "up", timeout=5,
                          message="a back")
            back = time.monotonic()
            print("passive ejection with checks: back %.0f-%.0f ms after the ejection "
                  "(eject_ms 1000, one passing check after it)" % (
                      (back - seen_down) * 1000, (back - ejected) * 1000))
            assert back - ejected >= 0.99, back - ejected     # ferry counts whole ms
            # at most eject_ms and one interval_ms (+10%), with room for a slow machine
            assert back - seen_down <= (1000 + 200 * 1.1 + 800) / 1000, back - seen_down


if __name__ == "__main__":
    ft.main()
