#!/usr/bin/env python3
"""udp listeners under the operations of README "Reloading and upgrading": a change of
`workers` leaves no socket of the listener's SO_REUSEPORT group unread, a hot binary
upgrade hands the group over without losing a datagram, and a dry run test-binds a
new udp address."""

import json
import os
import shutil
import signal
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402
import opsload  # noqa: E402
from l4env import UdpBackend  # noqa: E402

CLIENTS = 48        # fresh flows per check: each lands on a socket of the group by hash


def udp_config(backend, workers):
    return {"workers": workers, "log": {"level": "info", "access": "off"},
            "timeouts": {"drain_ms": 3000},
            "listeners": {"u": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "udp",
                                "pool": "p", "udp": {"idle_ms": 1000}}},
            "pools": {"p": {"backends": [{"address": backend.address}]}}}


def udp_port(f):
    return ft.split_address(f.config["listeners"]["u"]["listen"])[1]


def unanswered(port, clients=CLIENTS, timeout=1.0):
    """How many of `clients` new client sockets (new source ports, so new flows spread
    over the group's sockets) got no reply."""
    lost = 0
    for i in range(clients):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        try:
            s.sendto(b"c%d" % i, ("127.0.0.1", port))
            if s.recvfrom(100)[0] != b"a:c%d" % i:
                lost += 1
        except socket.timeout:
            lost += 1
        finally:
            s.close()
    return lost


def reload_workers(f, workers, generation):
    config = f.config
    config["workers"] = workers
    f.write_config(config)
    f.reload()
    ft.poll_until(lambda: f.status()["generation"] == generation, timeout=10,
                  message="generation %d" % generation)


def test_changing_workers_leaves_no_socket_unread():
    """The group has one socket per worker at start (3). After 3 -> 1 the remaining
    worker reads all three (before, the sockets of the retired workers kept receiving
    their share of new clients and nobody read them); after 1 -> 4 every socket is
    still read."""
    a = UdpBackend("a")
    with ft.Ferry(udp_config(a, 3)) as f:
        port = udp_port(f)
        assert unanswered(port) == 0
        reload_workers(f, 1, 2)
        f.wait_log("workers: 1 serving (was 3)")
        assert unanswered(port) == 0, "a socket of the group is left unread"
        reload_workers(f, 4, 3)
        f.wait_log("workers: 4 serving (was 1)")
        assert unanswered(port) == 0
        st = f.status()
        assert st["listeners"]["u"]["udp"]["datagrams_dropped"] == 0, st["listeners"]["u"]
    a.stop()


def try_bind(sock, port):
    try:
        sock.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False


def test_dry_run_test_binds_a_new_udp_address():
    a = UdpBackend("a")
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # a port free for tcp too (one the kernel picked for udp may be some tcp
    # connection's), so that the tcp case below tests the protocol, not luck
    ft.poll_until(lambda: try_bind(busy, ft.free_port()), timeout=5,
                  message="a port free for udp and tcp")
    with ft.Ferry(udp_config(a, 2)) as f:
        config = f.config
        # the running udp address is carried over, not test-bound (it would fail)
        code, _, body = f.admin("POST", "/reload?dry_run=1")
        assert code == 200, body
        config["listeners"]["busy"] = {"listen": "127.0.0.1:%d" % busy.getsockname()[1],
                                       "mode": "udp", "pool": "p"}
        f.write_config(config)
        code, _, body = f.admin("POST", "/reload?dry_run=1")
        assert code == 400, body
        errors = json.loads(body)["errors"]
        assert len(errors) == 1 and errors[0].startswith("listeners.busy.listen: "), errors
        assert "Address already in use" in errors[0], errors
        # a tcp listener may take the same port number: another protocol's address
        config["listeners"]["busy"]["mode"] = "tcp"
        f.write_config(config)
        code, _, body = f.admin("POST", "/reload?dry_run=1")
        assert code == 200, body
        assert f.status()["generation"] == 1
    busy.close()
    a.stop()


class UdpLoad(ft.ClientThreads):
    """One client thread doing request-reply exchanges back to back, each from a fresh
    socket every 10 exchanges; counts the exchanges and the replies that never came."""

    def __init__(self, port):
        super().__init__()
        self.port, self.exchanges, self.lost = port, 0, 0
        self.threads = [threading.Thread(target=self._run, daemon=True)]

    def _run(self):
        s = None
        while not self.done.is_set():
            if self.exchanges % 10 == 0:
                if s:
                    s.close()
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.settimeout(2.0)
            payload = b"n%d" % self.exchanges
            s.sendto(payload, ("127.0.0.1", self.port))
            try:
                while s.recvfrom(100)[0] != b"a:" + payload:
                    pass
            except socket.timeout:
                self.lost += 1
            self.exchanges += 1
        s.close()

    def wait_progress(self, n):
        target = self.exchanges + n
        ft.poll_until(lambda: self.exchanges >= target, timeout=20,
                      message="%d more udp exchanges" % n)


def test_upgrade_hands_the_udp_group_over_without_losing_a_datagram():
    a = UdpBackend("a")
    binary = os.path.join(ft.tmpdir(), "ferry-udp-upgrade")
    shutil.copy2(ft.FERRY_BIN, binary)
    f = ft.Ferry(udp_config(a, 2), binary=binary)
    pids = []
    try:
        f.start()
        pids.append(f.pid)
        port = udp_port(f)
        with UdpLoad(port) as load:
            load.wait_progress(200)
            os.kill(f.pid, signal.SIGUSR2)
            new_pid = ft.poll_until(lambda: opsload.answering_pid(f, other_than=pids[0]),
                                    timeout=30,
                                    message="the new process answers /status")
            pids.append(new_pid)
            assert f.wait_exit(timeout=30) == 0, "the old process did not exit cleanly"
            load.wait_progress(200)
        print("udp exchanges across the upgrade: %d, lost %d" % (load.exchanges, load.lost))
        assert load.lost == 0, "%d of %d exchanges lost" % (load.lost, load.exchanges)
        assert unanswered(port) == 0
        assert f.status()["listeners"]["u"]["udp"]["datagrams_dropped"] == 0
    finally:
        if len(pids) > 1 and opsload.pid_running(pids[-1]):
            os.kill(pids[-1], signal.SIGTERM)
            ft.poll_until(lambda: not opsload.pid_running(pids[-1]), timeout=30,
                          message="the new process exits")
        f.kill()
        a.stop()
    ft._check_sanitizers("ferry", f.stderr())


if __name__ == "__main__":
    ft.main()
