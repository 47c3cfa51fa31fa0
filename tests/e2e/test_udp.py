#!/usr/bin/env python3
"""udp listeners: flows (affinity, idle end, responses, max_flows), datagrams intact,
ICMP port unreachable as a passive failure, reload, metrics and /status, drain."""

import json
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402
from l4env import UdpBackend, udp_exchange, wait_status  # noqa: E402


def udp_config(backends, udp=None, workers=2, **pool_extra):
    pool = {"backends": [{"address": b} for b in backends]}
    pool.update(pool_extra)
    listener = {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "udp", "pool": "p"}
    if udp is not None:
        listener["udp"] = udp
    # Open flows hold a graceful stop up to drain_ms: keep it short here.
    return {"workers": workers, "log": {"level": "debug", "access": "off"},
            "timeouts": {"drain_ms": 1000},
            "listeners": {"u": listener}, "pools": {"p": pool}}


def udp_port(ferry):
    return ft.split_address(ferry.config["listeners"]["u"]["listen"])[1]


def start(config):
    return ft.Ferry(config).start()


def flows_active(ferry):
    return ferry.status()["listeners"]["u"]["udp"]["flows_active"]


def test_datagrams_pass_whole_and_a_flow_keeps_its_backend():
    a, b = UdpBackend("a"), UdpBackend("b")
    with start(udp_config([a.address, b.address])) as f:
        port = udp_port(f)
        seen = set()
        for client in range(6):
            replies = udp_exchange(port, [b"q%d" % i for i in range(5)])
            names = {r.split(b":")[0] for r in replies}
            assert len(names) == 1, "one flow went to several backends: %r" % replies
            name = names.pop()
            assert replies == [name + b":q%d" % i for i in range(5)], replies
            seen.add(replies[0][:1])
        assert seen == {b"a", b"b"}, "round robin across flows: %r" % seen
        for size in (1, 1400, 9000, 65507):
            data = os.urandom(size) if size >= 100 else b"x" * size
            got = udp_exchange(port, [data])[0]
            want = data if size >= 100 else got[:2] + data
            assert got == want, "datagram of %d bytes came back as %d bytes" % (size, len(got))
    a.stop()
    b.stop()


def test_wildcard_listener_answers_from_the_address_the_client_sent_to():
    """A 0.0.0.0 listener: the client sends to 127.0.0.3 and its connected socket takes
    answers only from there (the kernel alone would answer from 127.0.0.1)."""
    a = UdpBackend("a")
    config = udp_config([a.address])
    port = ft.free_port()
    config["listeners"]["u"]["listen"] = "0.0.0.0:%d" % port
    with start(config):
        for target in ("127.0.0.3", "127.0.0.1"):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(3)
            s.connect((target, port))
            s.send(b"w")
            assert s.recv(100) == b"a:w", target
            s.close()
    a.stop()


def test_ipv6_listener_and_backend():
    try:
        a = UdpBackend("a6", host="::1")
    except OSError as e:
        raise ft.Skip("no IPv6 loopback: %s" % e)
    config = udp_config([a.address])
    port = ft.free_port("::1")
    config["listeners"]["u"]["listen"] = "[::1]:%d" % port
    with start(config):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.sendto(b"six", ("::1", port))
        assert s.recvfrom(100)[0] == b"a6:six"
        s.close()
    a.stop()


def test_flow_ends_after_idle_ms_and_responses():
    a = UdpBackend("a")
    # idle_ms leaves a slow machine time for the /status that sees the flow open
    with start(udp_config([a.address], udp={"idle_ms": 1000})) as f:
        port = udp_port(f)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.sendto(b"hi", ("127.0.0.1", port))
        assert s.recvfrom(100)[0] == b"a:hi"
        assert flows_active(f) == 1
        start_t = time.monotonic()
        wait_status(f, lambda st: st["listeners"]["u"]["udp"]["flows_active"] == 0, "idle flow ended")
        assert time.monotonic() - start_t < 4.0
        s.close()
    with start(udp_config([a.address], udp={"responses": 1, "idle_ms": 60000})) as f:
        port = udp_port(f)
        for i in range(20):
            assert udp_exchange(port, [b"dns%d" % i]) == [b"a:dns%d" % i]
        wait_status(f, lambda st: st["listeners"]["u"]["udp"]["flows_active"] == 0,
                    "flows ended at their answer")
        # counted after the batch that sent them: the client may read the last one first
        wait_status(f, lambda st: st["listeners"]["u"]["udp"]["datagrams_out"] == 20,
                    "20 answers counted")
        st = f.status()["listeners"]["u"]
        assert st["accepted"] == 20 and st["udp"]["datagrams_out"] == 20, st
        # Queries sent before the first answer: each expects its own (nginx's
        # proxy_responses), so the flow ends after the third answer, not the first.
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        for i in range(3):
            s.sendto(b"m%d" % i, ("127.0.0.1", port))
        assert sorted(s.recvfrom(100)[0] for _ in range(3)) == [b"a:m0", b"a:m1", b"a:m2"]
        s.close()
        wait_status(f, lambda st: st["listeners"]["u"]["udp"]["flows_active"] == 0,
                    "the flow ended at its last answer")
    a.stop()


def test_a_reload_that_shortens_idle_ms_ends_new_flows_on_time():
    """A flow keeps the generation it started on. After a reload from idle_ms 8000 to
    1000, a flow of the new generation ends after its 1000 ms although a flow of the
    old one, older in the activity list, has seconds to go. (1000 ms: a slow machine
    has time for the /status that sees both flows open.)"""
    a = UdpBackend("a")
    config = udp_config([a.address], udp={"idle_ms": 8000}, workers=1)
    with start(config) as f:
        port = udp_port(f)
        assert udp_exchange(port, [b"old"]) == [b"a:old"]
        config["admin"] = f.config["admin"]
        config["listeners"]["u"]["udp"]["idle_ms"] = 1000
        generation = f.status()["generation"] + 1
        f.write_config(config)
        code, _, body = f.admin("POST", "/reload")
        assert code == 200 and json.loads(body)["generation"] == generation, body
        began = time.monotonic()
        assert udp_exchange(port, [b"new"]) == [b"a:new"]
        assert flows_active(f) == 2
        wait_status(f, lambda st: st["listeners"]["u"]["udp"]["flows_active"] == 1,
                    "the new flow ended")
        ended = time.monotonic() - began
        assert 0.95 <= ended < 4.0, "the 1000 ms flow ended after %.2f s" % ended
        wait_status(f, lambda st: st["listeners"]["u"]["udp"]["flows_active"] == 0,
                    "the old flow ended", timeout=12)
    a.stop()


def test_max_flows_drops_new_clients_and_counts_them():
    a = UdpBackend("a")
    with start(udp_config([a.address], udp={"max_flows": 2, "idle_ms": 60000}, workers=1)) as f:
        port = udp_port(f)
        keep = []
        for i in range(2):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(2)
            s.sendto(b"x", ("127.0.0.1", port))
            assert s.recvfrom(100)[0] == b"a:x"
            keep.append(s)
        third = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        third.settimeout(0.5)
        third.sendto(b"y", ("127.0.0.1", port))
        try:
            got = third.recvfrom(100)[0]
        except socket.timeout:
            got = None
        assert got is None, "a third flow was served beyond max_flows: %r" % got
        st = wait_status(f, lambda st: st["listeners"]["u"]["udp"]["flows_dropped"] >= 1, "drop counted")
        assert st["listeners"]["u"]["udp"]["flows_active"] == 2
        m = f.metrics()
        assert ft.metric(m, "ferry_udp_flows_dropped_total", listener="u") >= 1
        assert ft.metric(m, "ferry_udp_flows_active", listener="u") == 2
        keep[0].sendto(b"z", ("127.0.0.1", port))      # existing flows still work
        assert keep[0].recvfrom(100)[0] == b"a:z"
        for s in keep + [third]:
            s.close()
    a.stop()


def test_port_unreachable_is_a_passive_failure():
    """A backend with nothing on its port answers with ICMP port unreachable: the
    flow's connected socket reports it, the failures take the backend down, and new
    flows go to the other one."""
    dead = "127.0.0.1:%d" % ft.free_port()
    a = UdpBackend("a")
    with start(udp_config([dead, a.address], udp={"idle_ms": 60000})) as f:
        port = udp_port(f)
        answered = 0
        for i in range(12):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(0.3)
            s.sendto(b"p%d" % i, ("127.0.0.1", port))
            try:
                answered += s.recvfrom(100)[0] == b"a:p%d" % i
            except socket.timeout:
                pass
            s.close()
        st = wait_status(f, lambda st: st["pools"]["p"]["backends"][0]["state"] == "down",
                         "refusing backend marked down")
        assert st["pools"]["p"]["backends"][0]["failures"] >= 3, st
        for i in range(5):
            assert udp_exchange(port, [b"after%d" % i]) == [b"a:after%d" % i]
        assert answered >= 6, "only %d of 12 answered" % answered
        f.wait_log("refused a datagram (port unreachable)")
    a.stop()


def test_reload_keeps_flows_on_their_backend():
    a, b = UdpBackend("a"), UdpBackend("b")
    with start(udp_config([a.address], udp={"idle_ms": 60000})) as f:
        config = f.config
        port = udp_port(f)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.sendto(b"1", ("127.0.0.1", port))
        assert s.recvfrom(100)[0] == b"a:1"
        config["pools"]["p"]["backends"] = [{"address": b.address}]
        f.write_config(config)
        f.reload()
        wait_status(f, lambda st: st["generation"] == 2, "reloaded")
        s.sendto(b"2", ("127.0.0.1", port))
        assert s.recvfrom(100)[0] == b"a:2", "the flow left its backend on reload"
        assert udp_exchange(port, [b"new"]) == [b"b:new"], "a new flow uses the new generation"
        s.close()
    a.stop()
    b.stop()


def test_removing_the_listener_stops_it_and_sigterm_exits():
    a = UdpBackend("a")
    config = udp_config([a.address], udp={"idle_ms": 60000})
    config["listeners"]["t"] = {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "tcp",
                                "pool": "p"}
    with start(config) as f:
        config = f.config
        port = udp_port(f)
        assert udp_exchange(port, [b"x"]) == [b"a:x"]
        del config["listeners"]["u"]
        f.write_config(config)
        f.reload()
        wait_status(f, lambda st: st["generation"] == 2, "reloaded")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.5)
        s.sendto(b"y", ("127.0.0.1", port))
        try:
            got = s.recvfrom(100)[0]
        except (socket.timeout, ConnectionRefusedError):
            got = None
        s.close()
        assert got is None, "a removed udp listener still answered: %r" % got
        assert f.stop(signal.SIGTERM) == 0
    a.stop()


def test_sigterm_lets_open_flows_finish():
    a = UdpBackend("a")
    config = udp_config([a.address], udp={"idle_ms": 60000})
    config["timeouts"]["drain_ms"] = 1500
    with start(config) as f:
        port = udp_port(f)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.sendto(b"1", ("127.0.0.1", port))
        assert s.recvfrom(100)[0] == b"a:1"
        f.send_signal(signal.SIGTERM)
        f.wait_log("draining")
        s.sendto(b"2", ("127.0.0.1", port))
        assert s.recvfrom(100)[0] == b"a:2", "an open flow stopped at SIGTERM"
        s.close()
        assert f.wait_exit(timeout=10) == 0
    a.stop()


if __name__ == "__main__":
    ft.main()
