#!/usr/bin/env python3
"""Hot binary upgrade (README "Reloading and upgrading"): SIGUSR2 starts the binary at
the path ferry was started from, with the listening sockets, the admin socket and the
TLS ticket keys; the old process drains and exits once the new one serves. Under
continuous load: no failed request, no refused connection; TLS sessions resume on the
new process. A new binary that fails to start leaves the old one serving."""

import os
import shutil
import signal
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402
import opsload  # noqa: E402


def config(backend):
    tls = {"certificates": [{"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY}],
           "alpn": ["http/1.1"]}
    return {"workers": 2, "log": {"access": "off"},
            "timeouts": {"drain_ms": 5000, "client_idle_ms": 2000},
            "listeners": {
                "http": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http", "pool": "p"},
                "https": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http", "pool": "p",
                          "tls": tls}},
            "pools": {"p": {"backends": [{"address": backend.address}]}}}


def installed_binary(name):
    """A copy of ferry at a path of its own: the "installed" binary an upgrade replaces."""
    path = os.path.join(ft.tmpdir(), name)
    shutil.copy2(ft.FERRY_BIN, path)
    return path


def replace(path, content=None):
    """Puts a new file at path the way a package upgrade does (write aside, rename)."""
    new = path + ".new"
    if content is None:
        shutil.copy2(ft.FERRY_BIN, new)
    else:
        with open(new, "w") as fh:
            fh.write(content)
        os.chmod(new, stat.S_IRWXU)
    os.rename(new, path)


def stop_pid(pid, timeout=30):
    os.kill(pid, signal.SIGTERM)
    ft.poll_until(lambda: not opsload.pid_running(pid), timeout=timeout,
                  message="process %d exits" % pid)


UPGRADES = 3


def upgrade_once(f, pid):
    """SIGUSR2 to pid after replacing the binary; returns (new pid, seconds until the old
    process was gone)."""
    replace(f.binary)
    started = time.monotonic()
    os.kill(pid, signal.SIGUSR2)
    new_pid = ft.poll_until(lambda: opsload.answering_pid(f, other_than=pid), timeout=30,
                            message="a new process answers /status")
    if pid == f.pid:
        assert f.wait_exit(timeout=30) == 0, "the old process did not exit cleanly"
    else:
        ft.poll_until(lambda: not opsload.pid_running(pid), timeout=30,
                      message="old process %d exits" % pid)
    return new_pid, time.monotonic() - started


def test_upgrades_under_load_fail_nothing_and_tls_sessions_resume():
    with ft.Backend("a") as a:
        f = ft.Ferry(config(a), binary=installed_binary("ferry-upgrade"))
        pids = []
        try:
            f.start()
            pids.append(f.pid)
            http, https = f.port("http"), f.port("https")
            ctx, session = opsload.resumable_session(https)
            assert opsload.resumes(https, ctx, session), "no resumption before the upgrade"
            times = []
            with opsload.Load(http) as plain, opsload.Load(https, tls=True) as tls:
                for _ in range(UPGRADES):
                    plain.wait_progress(n=100)
                    tls.wait_progress(n=20)
                    new_pid, seconds = upgrade_once(f, pids[-1])
                    pids.append(new_pid)
                    times.append(seconds)
                plain.wait_progress(n=100)
                tls.wait_progress(n=20)
            print("%d upgrades (%s), old process gone after %s s; http: %s; https: %s" % (
                UPGRADES, " -> ".join(map(str, pids)), ", ".join("%.2f" % t for t in times),
                plain.summary(), tls.summary()))
            plain.assert_clean()
            tls.assert_clean()
            st = f.status()
            assert st["pid"] == pids[-1] and st["state"] == "serving", st
            assert [p for p in pids if opsload.pid_running(p)] == [pids[-1]], pids
            # a session the first process made resumes on the last: the keys came along
            assert opsload.resumes(https, ctx, session), "the ticket did not resume"
            log = f.log()
            for old, new in zip(pids, pids[1:]):
                assert "upgrade: new process %d serves; this one (%d) drains" % (new, old) in log
                assert "upgrade: taking over from process %d" % old in log, log
            assert "upgrade failed" not in log, log
        finally:
            if len(pids) > 1 and opsload.pid_running(pids[-1]):
                stop_pid(pids[-1])
            f.kill()
        ft._check_sanitizers("ferry", f.stderr())


def test_ferry_upgrade_to_a_binary_that_exits_leaves_the_old_one_serving():
    with ft.Backend("a") as a:
        f = ft.Ferry(config(a), binary=installed_binary("ferry-broken-upgrade"))
        with f:
            http = f.port("http")
            with opsload.Load(http) as load:
                load.wait_progress()
                replace(f.binary, "#!/bin/sh\necho 'new ferry: cannot start' >&2\nexit 1\n")
                res = subprocess.run([ft.FERRY_BIN, "upgrade", "-c", f.config_path], cwd=ft.SRC,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
                err = res.stderr.decode()
                assert res.returncode == 1, (res.returncode, err)
                assert "exited with status 1" in err and "goes on serving" in err, err
                load.wait_progress()
            load.assert_clean()
            f.wait_log("upgrade failed: new process")
            st = f.status()
            assert st["pid"] == f.pid and st["state"] == "serving", st
            assert st["upgrade"]["failures"] == 1, st["upgrade"]
            # a fixed binary then upgrades
            replace(f.binary)
            res = subprocess.run([ft.FERRY_BIN, "upgrade", "-c", f.config_path], cwd=ft.SRC,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
            assert res.returncode == 0, res.stderr.decode()
            new_pid = f.status()["pid"]
            try:
                assert new_pid != f.pid
                assert f.wait_exit(timeout=30) == 0
            finally:
                stop_pid(new_pid)


def test_a_stop_calls_off_an_upgrade_whose_new_process_does_not_serve_yet():
    """SIGTERM while the new binary has not said it serves: the upgrade is called off
    (the new process is killed), since it would otherwise take over from a process told
    to stop and serve on; the old process stops as asked and exits 0."""
    with ft.Backend("a") as a:
        f = ft.Ferry(config(a), binary=installed_binary("ferry-slow-upgrade"))
        with f:
            pid_file = os.path.join(ft.tmpdir(), "slow-upgrade.pid")
            # a new binary that never says it serves
            replace(f.binary, "#!/bin/sh\necho $$ > %s\nexec sleep 60\n" % pid_file)
            os.kill(f.pid, signal.SIGUSR2)
            ft.poll_until(lambda: os.path.exists(pid_file) and open(pid_file).read().strip(),
                          message="the new process started")
            new_pid = int(open(pid_file).read())
            assert f.status()["upgrade"]["state"] == "starting", f.status()["upgrade"]
            f.send_signal(signal.SIGTERM)
            f.wait_log("upgrade called off: ferry is stopping")
            ft.poll_until(lambda: not opsload.pid_running(new_pid), timeout=10,
                          message="the new process killed")
            assert f.wait_exit(timeout=30) == 0


if __name__ == "__main__":
    ft.main()
