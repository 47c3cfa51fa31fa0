#!/usr/bin/env python3
"""`workers` on reload (README "Reloading and upgrading"): a raised count starts worker
threads that accept at once, a lowered one retires the newest (they stop accepting,
their connections finish), with no failed request under load."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402
import opsload  # noqa: E402


def config(port, backend, workers):
    return {"workers": workers, "log": {"access": "off"},
            "timeouts": {"drain_ms": 5000, "client_idle_ms": 3000},
            "listeners": {"web": {"listen": "127.0.0.1:%d" % port, "mode": "http", "pool": "p"}},
            "pools": {"p": {"backends": [{"address": backend.address}]}}}


def reload_to(f, c, generation):
    c = json.loads(json.dumps(c))
    c["admin"] = f.config["admin"]
    f.write_config(c)
    code, _, body = f.admin("POST", "/reload")
    assert (code, json.loads(body)) == (200, {"ok": True, "generation": generation}), body


def accepted(f):
    """{worker id: connections accepted} of the workers that serve."""
    return {w["id"]: w["accepted"] for w in f.status()["workers"] if w["state"] == "serving"}


def test_workers_one_two_one_under_load():
    with ft.Backend("a") as a:
        port = ft.free_port()
        with ft.Ferry(config(port, a, 1)) as f, opsload.Load(port) as load:
            load.wait_progress(n=150)
            assert list(accepted(f)) == [0]

            reload_to(f, config(port, a, 2), 2)
            f.wait_log("workers: 2 serving (was 1)")
            # each worker takes the new generation when it wakes, after the reload's answer
            ft.poll_until(lambda: [(w["id"], w["state"], w["generation"])
                                   for w in f.status()["workers"]] ==
                          [(0, "serving", 2), (1, "serving", 2)],
                          message="both workers serve generation 2")
            base = accepted(f)
            # both threads take connections (EPOLLEXCLUSIVE wakes whichever sleeps)
            ft.poll_until(lambda: all(n > base[i] + 20 for i, n in accepted(f).items()),
                          timeout=60, message="both workers accepting")
            load.wait_progress(n=150)
            two = accepted(f)

            reload_to(f, config(port, a, 1), 3)
            f.wait_log("worker 1: retiring")
            load.wait_progress(n=150)
            f.wait_log("worker 1: retired", timeout=15)
            st = f.status()
            assert [(w["id"], w["state"]) for w in st["workers"]] == [(0, "serving")], st
            load.wait_progress(n=150)
        print("accepted per worker with 2 workers: %s; load: %s" % (two, load.summary()))
        load.assert_clean()
        assert "ERROR" not in f.stderr()


def test_a_worker_that_cannot_start_rejects_the_reload():
    with ft.Backend("a") as a:
        port = ft.free_port()
        # the first worker is pthread_create #1 (the daemon starts no other thread)
        env = ft.fault_env(pthread_create_fail_at=2)
        with ft.Ferry(config(port, a, 1), env=env) as f:
            c = config(port, a, 2)
            c["admin"] = f.config["admin"]
            c["log"]["access"] = os.path.join(ft.tmpdir(), "never.log")
            f.write_config(c)
            code, _, body = f.admin("POST", "/reload")
            assert code == 400, body
            assert json.loads(body)["errors"] == [
                "workers: cannot start worker 1 of 2: pthread_create: Resource temporarily "
                "unavailable"], body
            st = f.status()
            assert st["generation"] == 1 and len(st["workers"]) == 1, st
            assert not os.path.exists(c["log"]["access"])
            ft.http_request(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


if __name__ == "__main__":
    ft.main()
