"""HAProxy from Debian as a peer in e2e tests: the PROXY protocol interop tests and
the fleet behind a balancer."""

import os
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402


class Haproxy:
    """haproxy -db -f CONFIG in the foreground; `ports` are its bind ports."""

    def __init__(self, config_text, ports):
        self.path = os.path.join(ft.tmpdir(), "haproxy-%d.cfg" % ports[0])
        with open(self.path, "w") as f:
            f.write(config_text)
        self.ports = ports
        self.log_path = self.path + ".log"
        self.proc = None

    def __enter__(self):
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(["haproxy", "-db", "-f", self.path], stdout=log,
                                         stderr=subprocess.STDOUT)
        for port in self.ports:
            try:
                ft.wait_port("127.0.0.1", port, timeout=10)
            except AssertionError:
                self.proc.kill()
                raise AssertionError("haproxy did not start:\n" + open(self.log_path).read())
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGUSR1)   # soft stop
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return False


def require_haproxy():
    if not shutil.which("haproxy"):
        raise ft.Skip("haproxy is not installed (scripts/install-deps installs it)")


HAPROXY_DEFAULTS = """
global
    maxconn 100
defaults
    timeout connect 2s
    timeout client 10s
    timeout server 10s
"""
