#!/usr/bin/env python3
"""Fault injection while ferry reloads: the cases of test_faults_backend.py and
test_faults_client.py again, each with SIGHUP reloads racing it (faultkit.Reloader:
the config alternates with a variant that adds a pool and routes, each reload applied
before the next, and a prober connects all along). The same assertions, plus: no
connection refused, no reload failed. 5,000 idle connections are held across reloads,
then used (their next request takes the newest generation); running out of
descriptors, a reload is rejected without harm and goes through once they are back.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultkit as fk  # noqa: E402
import ferrytest as ft  # noqa: E402
import test_faults_backend as backend_faults  # noqa: E402
import test_faults_client as client_faults  # noqa: E402

IDLE_USED = 200         # idle connections that send a request after the reloads


def variant(config):
    """What a reload alternates the config with: the same listeners and backends, and
    routes sending Host spare.test to a pool of its own, "spare" (so a reload rebuilds
    routing, pools and balancers, and carries the backend's state and pooled
    connections). "spare" pools no connections: the cases count descriptors."""
    other = json.loads(json.dumps(config))
    backend = other["pools"]["raw"]["backends"][0]["address"]
    other["pools"]["spare"] = {"backends": [{"address": backend, "name": "spare"}],
                               "keepalive": {"max_idle": 0}}
    for listener in other["listeners"].values():
        if listener["mode"] == "http":
            listener["routes"] = [{"match": {"host": "spare.test"}, "pool": "spare"},
                                  {"pool": listener.pop("pool")}]
    return other


def reload_to(f, config):
    """One reload to config, applied."""
    generation = f.status()["generation"]
    fk.write_atomically(f, config)
    f.reload()
    f.wait_log("reload ok generation=%d" % (generation + 1))


def spare_requests(f):
    pools = f.status()["pools"]
    return pools["spare"]["backends"][0]["requests"] if "spare" in pools else 0


def run_cases(env, cases):
    """Each case while ferry reloads; again (a few times at most) until a reload was
    applied while it ran."""
    with fk.Reloader(env.f, variant(env.f.config), env.port).race(env) as reloader:
        for case in cases:
            for _ in range(8):
                before = reloader.reloads
                case(env)
                if reloader.reloads > before:
                    break
            else:
                raise AssertionError("no reload during %s" % case.__name__)
    print("%d reloads, %d probes" % (reloader.reloads, reloader.probes))


def test_misbehaving_backends_while_reloading():
    """Every case of test_faults_backend.py, over HTTP/1.1 and HTTP/2, reloads racing."""
    with backend_faults.running() as env:
        run_cases(env, backend_faults.CASES)


def test_clients_gone_while_reloading():
    """Clients gone mid-body, mid-response and mid-handshake, reloads racing."""
    with client_faults.running() as env:
        run_cases(env, client_faults.CASES)


def test_5000_idle_connections_held_across_reloads():
    """Idle sessions keep the generation they were accepted on until their next
    request: across reloads each still costs a few KiB, the ones used afterwards are
    routed by the newest generation, and closing them all releases every old
    generation (descriptors back where they were)."""
    n = client_faults.IDLE
    client_faults.raise_nofile(2 * n + 1000)
    with client_faults.running(limits={"max_connections": 2 * n}) as env:
        other = variant(env.f.config)
        reloader = fk.Reloader(env.f, other, env.port).race(env)

        def use_after_reloads(socks):
            reloader.wait(3)
            reloader.stop()
            reload_to(env.f, other)     # the newest generation routes Host spare.test
            before = spare_requests(env.f)
            for sock in socks[:IDLE_USED]:
                sock.sendall(b"GET /ok HTTP/1.1\r\nHost: spare.test\r\n\r\n")
            for sock in socks[:IDLE_USED]:
                got = ft.Client.over(sock).read_response()
                assert got[::2] == (200, b"ok"), got
            assert spare_requests(env.f) - before == IDLE_USED, env.f.status()

        with reloader:
            client_faults.idle_connections(env, n, while_open=use_after_reloads)


def test_out_of_descriptors_while_reloading():
    """A reload that comes while ferry has no descriptor left is rejected (it cannot
    read the config), changing nothing; the case goes on as without it; once
    descriptors are back, reloads go through."""
    with client_faults.running(**client_faults.SCARCE) as env:
        f = env.f
        first = json.loads(json.dumps(f.config))
        generation = f.status()["generation"]

        def reload_while_out():
            fk.write_atomically(f, variant(first))
            f.reload()
            f.wait_log("reload rejected: cannot open %s: Too many open files" % f.config_path)

        client_faults.out_of_descriptors(env, while_out=reload_while_out)
        assert ft.metric(f.metrics(), "ferry_reloads_total", result="failed") == 1
        assert f.status()["generation"] == generation
        with fk.Reloader(f, first, env.port) as reloader:
            reloader.wait(2)
        assert f.status()["generation"] >= generation + 2


if __name__ == "__main__":
    ft.main()
