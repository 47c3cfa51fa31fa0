#!/usr/bin/env python3
"""Worker threads and their wake-ups (proxy/ARCHITECTURE.md, "Threads" and "Connection
limit"): a new connection wakes one worker, not all of them; at limits.max_connections
a freed slot wakes one waiting worker, and every worker accepts again once slots free.

Wake-ups are counted as the worker threads' (named ferry-wN) voluntary context
switches in /proc/PID/task/*/status: a thread switches out voluntarily each time it
goes to sleep in epoll_wait, so each wake-up that found it asleep adds one."""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402

WORKERS = 4


def http_config(backend, **extra):
    config = {
        "workers": WORKERS,
        "log": {"access": "off"},
        "listeners": {"web": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http",
                              "pool": "p"}},
        "pools": {"p": {"backends": [{"address": backend.address}]}},
    }
    config.update(extra)
    return config


def worker_wakeups(pid):
    """{thread name: voluntary context switches} of ferry's worker threads."""
    found = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        name = fields["Name"].strip()
        if name.startswith("ferry-w"):
            found[name] = int(fields["voluntary_ctxt_switches"])
    return found


def wait_workers(f):
    return ft.poll_until(lambda: len(worker_wakeups(f.pid)) == WORKERS and worker_wakeups(f.pid),
                         timeout=10, message="%d threads named ferry-wN" % WORKERS)


def accepting_workers(pid, port):
    """How many workers accept on port now: a worker's event loop watches the listening
    socket (in its epoll instance, from /proc/PID/fdinfo) only while it accepts."""
    listening = ft._listening_inodes({port}).get(port, set())
    fds, epolls = set(), []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            if link.startswith("socket:[") and link[8:-1] in listening:
                fds.add(int(fd))
            elif link == "anon_inode:[eventpoll]":
                with open("/proc/%d/fdinfo/%s" % (pid, fd)) as info:
                    epolls.append({int(line.split()[1]) for line in info
                                   if line.startswith("tfd:")})
        except OSError:
            continue
    return sum(1 for watched in epolls if watched & fds)


def woken(before, after):
    """How many worker threads woke between two worker_wakeups() readings."""
    return sum(1 for name in after if after[name] > before[name])


def test_a_new_connection_wakes_one_worker_not_all():
    connections = 300
    with ft.Backend("a") as a, ft.Ferry(http_config(a)) as f:
        port = f.port("web")
        first = last = wait_workers(f)
        workers_woken = 0
        for _ in range(connections):
            with ft.connect(port) as sock:
                sock.shutdown(socket.SHUT_WR)
                assert ft.read_until_close(sock) == b""
            now = worker_wakeups(f.pid)
            workers_woken += woken(last, now)
            last = now
        per_connection = sum(last[n] - first[n] for n in last) / connections
        workers_per_connection = workers_woken / connections
        print("per connection: %.2f worker wake-ups, %.2f workers woken (%d workers)" % (
            per_connection, workers_per_connection, WORKERS))
        # One worker accepts, sees the EOF and closes: one or two wake-ups of that
        # worker (another one when it was busy). Waking every worker for every
        # connection costs at least WORKERS.
        assert workers_per_connection < 1.5, "%.2f workers woken per connection" % (
            workers_per_connection)
        assert per_connection < WORKERS - 1, "%.2f wake-ups per connection" % per_connection


def test_at_the_limit_each_freed_slot_wakes_one_worker():
    limit, steps = 8, 4
    with ft.Backend("a") as a, \
            ft.Ferry(http_config(a, limits={"max_connections": limit})) as f:
        port = f.port("web")
        wait_workers(f)
        holders = [ft.Client(port) for _ in range(limit)]
        for c in holders:
            assert c.request("GET", "/")[0] == 200
        # Each of these waits in the backlog; the worker woken for it finds no slot
        # and stops accepting, until no worker accepts.
        waiting = [ft.Client(port) for _ in range(steps)]
        ft.poll_until(lambda: accepting_workers(f.pid, port) == 0, timeout=10,
                      message="every worker waiting for a slot")

        woken_per_step = []
        for i in range(steps):
            before = worker_wakeups(f.pid)
            accepted = f.status()["listeners"]["web"]["accepted"]
            holders[i].close()
            ft.poll_until(lambda: f.status()["listeners"]["web"]["accepted"] == accepted + 1,
                          timeout=10, message="a waiting connection accepted")
            ft.poll_until(lambda: f.status()["connections"] == limit, timeout=10,
                          message="the closed connection's slot released")
            woken_per_step.append(woken(before, worker_wakeups(f.pid)))
        print("workers woken per freed slot: %s (%d workers)" % (woken_per_step, WORKERS))
        # The worker whose client closed wakes to see it; the daemon wakes one waiting
        # worker for the slot (the same one, sometimes).
        assert max(woken_per_step) <= 2, woken_per_step

        for c in waiting:       # accepted while others waited: served
            assert c.request("GET", "/")[0] == 200
        for c in holders[steps:] + waiting:
            c.close()
        ft.poll_until(lambda: accepting_workers(f.pid, port) == WORKERS, timeout=10,
                      message="all %d workers accepting again" % WORKERS)
        for _ in range(2 * WORKERS):
            with ft.Client(port) as c:
                assert c.request("GET", "/")[0] == 200


def test_a_worker_that_cannot_start_stops_ferry_cleanly_while_clients_are_connected():
    """Worker 2 of 3 cannot start (its pthread_create fails) while workers 0 and 1 run
    with clients connected: ferry says why and exits 1. Stopping workers reach each
    other (a freed slot wakes a waiting worker), so none may be freed before every
    thread has ended. The scene, set with tests/support/faultinject.c: worker 1 serves
    both clients, at max_connections, and both workers wait for a slot; worker 1 is
    held at its next wake-up until worker 0 has ended, then closes its clients, and
    the slot it frees wakes worker 0."""
    scratch = ft.tmpdir()
    hold_failure, hold_w0, hold_w1 = (os.path.join(scratch, name)
                                      for name in ("hold-failure", "hold-w0", "hold-w1"))
    for path in (hold_failure, hold_w0):
        open(path, "w").close()
    env = ft.fault_env(pthread_create_fail_at=3, pthread_create_gate=hold_failure,
                       epoll_wait_gate="ferry-w0=%s,ferry-w1=%s" % (hold_w0, hold_w1))

    def held(path):
        return os.path.exists(path + ".held")

    with ft.Backend("a") as a:
        config = http_config(a, workers=3, limits={"max_connections": 2})
        f = ft.Ferry(config, env=env).start()
        port = f.port("web")
        ft.poll_until(lambda: held(hold_w0) and len(worker_wakeups(f.pid)) == 2,
                      message="worker 0 held, worker 1 running")
        clients = [ft.Client(port) for _ in range(2)]
        for c in clients:
            assert c.request("GET", "/")[0] == 200      # worker 1: worker 0 is held
        ft.poll_until(lambda: accepting_workers(f.pid, port) == 1,
                      message="worker 1 waiting for a slot")
        open(hold_w1, "w").close()
        os.unlink(hold_w0)
        waiting = ft.connect(port)
        ft.poll_until(lambda: accepting_workers(f.pid, port) == 0,
                      message="worker 0 woken for a third client, waiting for a slot")

        os.unlink(hold_failure)
        ft.poll_until(lambda: held(hold_w1) and "ferry-w0" not in worker_wakeups(f.pid),
                      message="worker 0 ended, worker 1 held")
        os.unlink(hold_w1)
        assert f.wait_exit() == 1
        assert "cannot start worker 2 of 3: pthread_create: Resource temporarily " \
               "unavailable" in f.stderr(), f.log()
        for c in clients:
            assert c.is_closed_by_peer(), "a client left open"
            c.close()
        waiting.close()

if __name__ == "__main__":
    ft.main()
