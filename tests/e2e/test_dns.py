#!/usr/bin/env python3
"""DNS over UDP through ferry, with real servers and a real client from Debian:
two dnsmasq serving one zone on two loopback ports are the pool, dig asks through a
udp listener (responses 1: a flow ends at its answer). One dnsmasq stopped: the
queries keep being answered."""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402
from l4env import DnsmasqProcess, wait_status  # noqa: E402


class Dnsmasq(DnsmasqProcess):
    """dnsmasq in the foreground on 127.0.0.1:port (UDP and TCP), no system files:
    www.example.test A 192.0.2.1 and who.example.test TXT NAME."""

    def __init__(self, name):
        self.name = name
        self.port = ft.free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.log = os.path.join(ft.tmpdir(), "dnsmasq-%s.log" % name)
        self.proc = None

    def start(self):
        return self._launch(["--conf-file=/dev/null", "--user=root",
                             "--host-record=www.example.test,192.0.2.1",
                             "--txt-record=who.example.test,%s" % self.name])


def dig(port, name, rtype="A", tries=1, timeout=2):
    """dig's short answer through 127.0.0.1:port (UDP), or None. dig notes a try that
    timed out in a ";;" line before the answer of the next."""
    res = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), name, rtype, "+short",
                          "+tries=%d" % tries, "+timeout=%d" % timeout, "+notcp"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    answers = [line for line in res.stdout.decode().splitlines()
               if line.strip() and not line.startswith(";")]
    return "\n".join(answers) if res.returncode == 0 and answers else None


def require_tools():
    for tool in ("dnsmasq", "dig"):
        if not shutil.which(tool):
            raise ft.Skip("%s is not installed (scripts/install-deps installs it)" % tool)


def dns_config(servers):
    return {"workers": 2, "log": {"level": "info", "access": "off"},
            "timeouts": {"drain_ms": 2000},
            "listeners": {"dns": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "udp",
                                  "pool": "dns", "udp": {"responses": 1, "idle_ms": 5000}}},
            "pools": {"dns": {"backends": [{"address": s.address} for s in servers],
                              "health_check": {"type": "tcp", "interval_ms": 200,
                                               "timeout_ms": 100, "rise": 1, "fall": 2}}}}


def test_dig_through_ferry_reaches_both_servers():
    require_tools()
    a, b = Dnsmasq("alpha").start(), Dnsmasq("beta").start()
    try:
        with ft.Ferry(dns_config([a, b])) as f:
            port = ft.split_address(f.config["listeners"]["dns"]["listen"])[1]
            for _ in range(6):
                assert dig(port, "www.example.test") == "192.0.2.1"
            who = {dig(port, "who.example.test", "TXT") for _ in range(6)}
            assert who == {'"alpha"', '"beta"'}, who
            st = wait_status(f, lambda st: st["listeners"]["dns"]["udp"]["flows_active"] == 0,
                             "flows ended at their answers")
            udp = st["listeners"]["dns"]["udp"]
            assert udp["datagrams_in"] == udp["datagrams_out"] == 12, udp
    finally:
        a.stop()
        b.stop()


def test_one_server_stopped_queries_keep_being_answered():
    require_tools()
    a, b = Dnsmasq("alpha").start(), Dnsmasq("beta").start()
    try:
        with ft.Ferry(dns_config([a, b])) as f:
            port = ft.split_address(f.config["listeners"]["dns"]["listen"])[1]
            assert dig(port, "www.example.test") == "192.0.2.1"
            b.stop()
            # dig retries (a new flow each try): no query is lost for good.
            for i in range(10):
                assert dig(port, "www.example.test", tries=3, timeout=1) == "192.0.2.1", i
            wait_status(f, lambda st: st["pools"]["dns"]["backends"][1]["state"] == "down",
                        "the stopped server marked down")
            for _ in range(10):
                assert dig(port, "who.example.test", "TXT", tries=1) == '"alpha"'
    finally:
        a.stop()
        b.stop()


if __name__ == "__main__":
    ft.main()
