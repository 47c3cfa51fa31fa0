#!/usr/bin/env python3
"""Active health checks: rise/fall, traffic only to healthy backends, recovery."""

import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402


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


if __name__ == "__main__":
    ft.main()
