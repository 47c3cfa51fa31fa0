#!/usr/bin/env python3
"""The L4 relay (tcp listeners): integrity, half-close, retries, limits, drain."""

import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402


def tcp_config(backends, port=None, retries=1, **extra):
    config = {
        "workers": 2,
        "log": {"level": "debug", "access": "off"},
        "listeners": {"tcp": {"listen": "127.0.0.1:%d" % (port or ft.free_port()),
                              "mode": "tcp", "pool": "p"}},
        "pools": {"p": {"backends": [{"address": a} for a in backends], "retries": retries}},
    }
    config.update(extra)
    return config


def dead_address():
    """A loopback port nothing listens on (connect is refused)."""
    return "127.0.0.1:%d" % ft.free_port()


def send_then_half_close(sock, data):
    def run():
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def echo_roundtrip(port, data=b"ping\n", timeout=5.0):
    with ft.connect(port, timeout=timeout) as sock:
        sender = send_then_half_close(sock, data)
        got = ft.read_until_close(sock, timeout=timeout)
        sender.join(timeout)
    return got


def test_one_mib_echo_is_byte_exact():
    data = os.urandom(1024 * 1024)
    with ft.Backend("e", mode="echo") as b, ft.Ferry(tcp_config([b.address])) as f:
        got = echo_roundtrip(f.port("tcp"), data, timeout=20)
        assert len(got) == len(data), "echoed %d of %d bytes" % (len(got), len(data))
        assert got == data, "echoed bytes differ"


def test_plain_relay_moves_onto_splice_and_stays_byte_exact():
    """Between two plain sockets the relay switches to splice(2) (zero-copy); 8 MiB
    each way, written while reading, must still come back intact and in order."""
    data = os.urandom(8 * 1024 * 1024)
    with ft.Backend("e", mode="echo") as b, ft.Ferry(tcp_config([b.address])) as f:
        assert echo_roundtrip(f.port("tcp"), data, timeout=30) == data
        f.wait_log("relaying -> splicing")


def test_half_close_reaches_backend_and_reply_still_arrives():
    """Client shuts its write side; the backend sees EOF, answers, and only then the
    connection ends: both directions of a half-closed relay keep working."""
    with ft.Backend("e", mode="echo") as b, ft.Ferry(tcp_config([b.address])) as f:
        with ft.connect(f.port("tcp")) as sock:
            sock.sendall(b"half")
            sock.shutdown(socket.SHUT_WR)
            got = ft.read_until_close(sock, timeout=5)
        assert got == b"half", got


def test_refused_backend_is_retried_on_the_other():
    with ft.Backend("e", mode="echo") as b:
        config = tcp_config([dead_address(), b.address], retries=1)
        config["pools"]["p"]["balance"] = "round_robin"
        with ft.Ferry(config) as f:
            for i in range(6):
                msg = b"try %d" % i
                assert echo_roundtrip(f.port("tcp"), msg) == msg, "attempt %d failed" % i


def test_all_backends_down_closes_client_promptly():
    config = tcp_config([dead_address(), dead_address()], retries=1)
    with ft.Ferry(config) as f:
        start = time.monotonic()
        with ft.connect(f.port("tcp")) as sock:
            sock.sendall(b"anyone?")
            got = ft.read_until_close(sock, timeout=5)
        elapsed = time.monotonic() - start
        assert got == b"", got
        assert elapsed < 1.0, "closed after %.2fs" % elapsed
        f.wait_log("no backend reachable")


def test_max_connections_leaves_extra_clients_in_backlog_until_a_slot_frees():
    config = tcp_config([], limits={"max_connections": 2})
    with ft.Backend("e", mode="echo") as b:
        config["pools"]["p"]["backends"] = [{"address": b.address}]
        with ft.Ferry(config) as f:
            port = f.port("tcp")
            first, second = ft.connect(port), ft.connect(port)
            for s in (first, second):
                s.sendall(b"x")
                assert s.recv(1) == b"x"
            third = ft.connect(port)   # completes in the kernel backlog
            third.sendall(b"3")
            third.settimeout(0.5)
            try:
                early = third.recv(1)
            except socket.timeout:
                early = None
            assert early is None, "third connection served beyond max_connections: %r" % early
            first.close()
            third.settimeout(5)
            assert third.recv(1) == b"3", "third connection not served after a slot freed"
            assert f.status()["connections"] == 2
            second.close()
            third.close()


def is_closed_by_peer(sock, timeout):
    """True when the peer's EOF (or a reset) arrives within timeout."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except socket.timeout:
        return False
    except ConnectionResetError:
        pass
    return True


def test_tls_handshake_must_finish_within_client_header_ms():
    """On a tcp listener with tls, a client that sends nothing or half a ClientHello
    is closed after client_header_ms, not tcp_idle_ms, so max_connections slots (shared
    with every listener) come back: a client waiting in the backlog is served."""
    with ft.Backend("e", mode="echo") as b:
        config = tcp_config([b.address], limits={"max_connections": 2},
                            timeouts={"client_header_ms": 1000, "tcp_idle_ms": 3600000})
        config["listeners"]["tcp"]["tls"] = {
            "certificates": [{"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY}]}
        with ft.Ferry(config) as f:
            _, tls, stalled = ft.unfinished_handshakes_then_a_client(f, "tcp")
            with tls:
                tls.sendall(b"ping")
                assert tls.recv(4) == b"ping"
            for name, sock in stalled:
                assert is_closed_by_peer(sock, 1.0), "%s client still open" % name
                sock.close()
            timeouts = ft.metric(f.metrics(), "ferry_tls_handshake_failures_total",
                                 reason="timeout")
            assert timeouts == 2, timeouts


def test_sigterm_drains_an_open_relay_then_exits_zero():
    with ft.Backend("e", mode="echo") as b:
        f = ft.Ferry(tcp_config([b.address]))
        f.start()
        sock = ft.connect(f.port("tcp"))
        sock.sendall(b"before")
        assert sock.recv(6) == b"before"
        f.send_signal(signal.SIGTERM)
        f.wait_log("SIGTERM: draining")
        sock.sendall(b"during")
        assert sock.recv(6) == b"during", "relay stopped working during drain"
        assert f.is_running(), "ferry exited while a relay was open"
        refused = False
        try:
            ft.connect(f.port("tcp"), timeout=2).close()
        except OSError:
            refused = True
        assert refused, "a new connection was accepted during drain"
        sock.close()
        rc = f.stop(timeout=10)
        assert rc == 0, "exit code %s" % rc


def test_drain_timeout_cuts_relay_and_still_exits_zero():
    with ft.Backend("e", mode="echo") as b:
        config = tcp_config([b.address])
        config["timeouts"] = {"drain_ms": 300}
        f = ft.Ferry(config)
        f.start()
        with ft.connect(f.port("tcp")) as sock:
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
            start = time.monotonic()
            f.send_signal(signal.SIGTERM)
            f.proc.wait(10)
            elapsed = time.monotonic() - start
            assert f.proc.returncode == 0, f.proc.returncode
            assert elapsed < 5, "exit took %.1fs" % elapsed
            assert ft.read_until_close(sock, timeout=5) == b""
        f.stop()


def test_idle_relay_is_closed_after_tcp_idle_ms():
    with ft.Backend("e", mode="echo") as b:
        config = tcp_config([b.address], timeouts={"tcp_idle_ms": 300})
        with ft.Ferry(config) as f, ft.connect(f.port("tcp")) as sock:
            # from before the last activity (it cannot be sooner), so a slow reply
            # cannot shorten the idle time seen here; ferry's clock is coarse (a jiffy)
            start = time.monotonic()
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
            assert ft.read_until_close(sock, timeout=5) == b""
            elapsed = time.monotonic() - start
            assert 0.28 <= elapsed < 3, "closed after %.2fs" % elapsed


def test_slow_reader_does_not_make_ferry_buffer_everything():
    """The client sends but never reads; the echo backend stalls, so the relay must stop
    reading from the client: sending stalls (the kernel's socket buffers fill, a few
    MiB each on loopback) and ferry's own memory stays flat."""
    total = 256 * 1024 * 1024
    with ft.Backend("e", mode="echo") as b, ft.Ferry(tcp_config([b.address])) as f:
        before = ft.rss_kib(f.pid)
        with ft.connect(f.port("tcp")) as sock:
            sock.setblocking(False)
            sent, chunk = 0, b"z" * 65536
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and sent < total:
                try:
                    sent += sock.send(chunk)
                except BlockingIOError:
                    time.sleep(0.01)
            grown = ft.rss_kib(f.pid) - before
            assert sent < total // 2, "ferry accepted %d bytes from a stalled relay" % sent
            assert grown < 16 * 1024, "ferry grew by %d KiB for a stalled relay" % grown


def test_round_robin_spreads_connections_over_backends():
    with ft.Backend("a", mode="echo") as a, ft.Backend("b", mode="echo") as b:
        with ft.Ferry(tcp_config([a.address, b.address])) as f:
            for i in range(10):
                assert echo_roundtrip(f.port("tcp"), b"%d" % i) == b"%d" % i
            backends = f.status()["pools"]["p"]["backends"]
            counts = sorted(x["requests"] for x in backends)
            assert counts == [5, 5], counts


def test_ipv6_listener_and_backend():
    with ft.Backend("e6", mode="echo", host="::1") as b:
        config = tcp_config([b.address])
        config["listeners"]["tcp"]["listen"] = "[::1]:%d" % ft.free_port("::1")
        with ft.Ferry(config) as f:
            with ft.connect(f.port("tcp"), host="::1") as sock:
                sock.sendall(b"six")
                sock.shutdown(socket.SHUT_WR)
                assert ft.read_until_close(sock) == b"six"


if __name__ == "__main__":
    ft.main()
