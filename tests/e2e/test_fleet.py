#!/usr/bin/env python3
"""Several ferry instances behind one balancer (README "Running several instances"):
with the same listeners.NAME.tls.ticket_keys_file they resume each other's TLS sessions
(TLS 1.2 tickets and TLS 1.3 PSK tickets), without it they do not; a rotation (a new
first key, the old one kept) and a reload keep old tickets resuming and issue new ones
under the new key; a broken or missing file rejects the reload and the running keys
keep working; a binary upgrade keeps the file's keys (and /healthz serving); /healthz
answers 503 while an instance drains after SIGTERM, and it still finishes its
requests. Behind HAProxy (the README's example): sessions resume on either instance,
and one that drains is taken out with no failed request."""

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402
import opsload  # noqa: E402
import haproxyenv as haproxy  # noqa: E402

VERSIONS = (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2)


def write_keys(path, keys, text=False):
    """Replaces the key file the way a rotation job does (write aside, rename): the
    80-byte keys back to back (nginx), or one base64 line each (HAProxy)."""
    data = b"".join(base64.b64encode(k) + b"\n" for k in keys) if text else b"".join(keys)
    new = path + ".new"
    fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.rename(new, path)
    return path


def key_path(name):
    return os.path.join(ft.tmpdir(), name)


def config(backend, keys_file=None):
    tls = {"certificates": [{"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY}],
           "alpn": ["http/1.1"]}
    if keys_file:
        tls["ticket_keys_file"] = keys_file
    return {"workers": 2, "log": {"access": "off"}, "timeouts": {"drain_ms": 10000},
            "listeners": {"https": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http",
                                    "pool": "p", "tls": tls}},
            "pools": {"p": {"backends": [{"address": backend.address}]}}}


def tls_context(version):
    ctx = ft.client_tls_context()
    ctx.minimum_version = ctx.maximum_version = version
    return ctx


def connect(to, ctx, session=None):
    """One request on a new TLS connection to `to` (a Ferry: its https listener, or a
    port) -> (was the session resumed, the session the client holds afterwards: TLS
    1.3 tickets come after the handshake, so it is taken once the response arrived)."""
    port = to if isinstance(to, int) else to.port("https")
    sock = socket.create_connection(("127.0.0.1", port), timeout=5 * ft.SLOW)
    tls = ctx.wrap_socket(sock, server_hostname="localhost", session=session)
    with ft.Client.over(tls) as c:
        status, _, _ = c.request("GET", "/", headers={"Connection": "close"}, host="x")
        assert status == 200, status
        return tls.session_reused, tls.session


def new_session(to, ctx):
    reused, session = connect(to, ctx)
    assert not reused and session.has_ticket, "no ticket from %s" % to
    return session


def resumes(to, ctx, session):
    return connect(to, ctx, session)[0]


def ferry_cmd(*args):
    res = subprocess.run([ft.FERRY_BIN, *args], cwd=ft.SRC, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=60)
    out = res.stdout.decode(errors="replace")
    ft._check_sanitizers("ferry %s" % args[0], out)
    return res.returncode, out


def reload_ok(f):
    """`ferry reload`: returns once every worker serves the new generation."""
    rc, out = ferry_cmd("reload", "-c", f.config_path)
    assert rc == 0, (rc, out)


def healthz(f):
    code, _, body = f.admin("GET", "/healthz")
    return code, json.loads(body)["status"]


def test_two_instances_with_one_key_file_resume_each_others_sessions():
    keys = write_keys(key_path("fleet.key"), [os.urandom(80)])
    with ft.Backend("a") as be, ft.Ferry(config(be, keys), name="one") as one, \
            ft.Ferry(config(be, keys), name="two") as two:
        for version in VERSIONS:
            ctx = tls_context(version)
            assert resumes(two, ctx, new_session(one, ctx)), "%s: one -> two" % version.name
            assert resumes(one, ctx, new_session(two, ctx)), "%s: two -> one" % version.name
        for f in (one, two):
            assert ft.metric(f.metrics(), "ferry_tls_resumptions_total") == 2, f.name


def test_without_a_key_file_instances_do_not_resume_each_others_sessions():
    with ft.Backend("a") as be, ft.Ferry(config(be), name="one") as one, \
            ft.Ferry(config(be), name="two") as two:
        for version in VERSIONS:
            ctx = tls_context(version)
            session = new_session(one, ctx)
            assert not resumes(two, ctx, session), "%s resumed on another instance" % version
            assert resumes(one, ctx, session), "%s not resumed on its own instance" % version


def test_rotation_and_reload_keep_old_tickets_and_issue_new_ones_under_the_new_key():
    old_key, new_key = os.urandom(80), os.urandom(80)
    path = write_keys(key_path("rotated.key"), [old_key], text=True)
    with ft.Backend("a") as be, ft.Ferry(config(be, path), name="one") as one, \
            ft.Ferry(config(be, path), name="two") as two:
        ctxs = {v: tls_context(v) for v in VERSIONS}
        old = {v: new_session(one, ctxs[v]) for v in VERSIONS}

        write_keys(path, [new_key, old_key], text=True)
        reload_ok(one)
        reload_ok(two)
        renewed, fresh = {}, {}
        for v, ctx in ctxs.items():
            reused, renewed[v] = connect(two, ctx, old[v])
            assert reused, "%s: an old ticket did not resume after the rotation" % v.name
            fresh[v] = new_session(one, ctx)

        # only the new key left: what the rotated instances issued was under it
        write_keys(path, [new_key], text=True)
        reload_ok(one)
        for v, ctx in ctxs.items():
            assert resumes(one, ctx, fresh[v]), "%s: new ticket not under the new key" % v.name
            assert resumes(one, ctx, renewed[v]), "%s: renewed ticket not under the new key" \
                % v.name
            assert not resumes(one, ctx, old[v]), "%s: the dropped key still decrypts" % v.name


def test_a_broken_or_missing_key_file_rejects_the_reload_and_the_old_keys_keep_working():
    path = write_keys(key_path("broken.key"), [os.urandom(80)])
    field = "listeners.https.tls.ticket_keys_file: %s: " % path
    with ft.Backend("a") as be, ft.Ferry(config(be, path)) as f:
        ctx = tls_context(ssl.TLSVersion.TLSv1_3)
        session = new_session(f, ctx)

        with open(path, "wb") as fh:
            fh.write(os.urandom(79))
        rc, out = ferry_cmd("reload", "-c", f.config_path)
        assert rc == 1 and field + "79 bytes: not a whole number of 80-byte keys" in out, out
        assert resumes(f, ctx, session), "the running keys changed"

        os.remove(path)
        code, _, body = f.admin("POST", "/reload")
        errors = json.loads(body)["errors"]
        assert code == 400 and errors == [field + "cannot open: No such file or directory"], \
            (code, body)
        assert resumes(f, ctx, session), "the running keys changed"
        rc, out = ferry_cmd("-t", "-c", f.config_path)
        assert rc == 1 and field + "cannot open" in out, out
        assert f.status()["generation"] == 1


def test_a_missing_key_file_stops_ferry_at_start():
    with ft.Backend("a") as be:
        f = ft.Ferry(config(be, key_path("absent.key")))
        res = subprocess.run(ft.ferry_command("-c", f.config_path), cwd=ft.SRC,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        out = res.stdout.decode(errors="replace")
        assert res.returncode == 1, (res.returncode, out)
        assert "listeners.https.tls.ticket_keys_file: %s: cannot open" % key_path("absent.key") \
            in out, out


def test_a_key_file_others_may_read_is_warned_about():
    path = write_keys(key_path("open.key"), [os.urandom(80)])
    with ft.Backend("a") as be:
        cfg = config(be, path)
        rc, out = ft.Ferry.check(cfg)
        assert rc == 0 and "mode" not in out, out
        os.chmod(path, 0o644)
        rc, out = ft.Ferry.check(cfg)
        assert rc == 0, out
        assert "listeners.https.tls.ticket_keys_file: %s: mode 0644: others may access it" \
            % path in out, out


def test_an_upgraded_process_goes_on_with_the_file_keys():
    path = write_keys(key_path("upgrade.key"), [os.urandom(80)])
    binary = os.path.join(ft.tmpdir(), "ferry-fleet-upgrade")
    shutil.copy2(ft.FERRY_BIN, binary)
    with ft.Backend("a") as be, ft.Ferry(config(be, path), name="peer") as peer:
        f = ft.Ferry(config(be, path), binary=binary)
        new_pid = None
        try:
            f.start()
            ctx = tls_context(ssl.TLSVersion.TLSv1_3)
            session = new_session(f, ctx)
            f.send_signal(signal.SIGUSR2)
            new_pid = ft.poll_until(lambda: f.status()["pid"] != f.pid and f.status()["pid"],
                                    timeout=30, message="the new process answers /status")
            assert f.wait_exit(timeout=30) == 0
            assert healthz(f) == (200, "serving"), "an upgrade is no drain for the balancer"
            assert resumes(f, ctx, session), "the new process did not resume"
            assert resumes(peer, ctx, new_session(f, ctx)), "the new process left the file"
        finally:
            f.kill()
            if new_pid and opsload.pid_running(new_pid):
                os.kill(new_pid, signal.SIGTERM)
                ft.poll_until(lambda: not opsload.pid_running(new_pid), timeout=30,
                              message="process %d exits" % new_pid)


def test_healthz_says_draining_while_an_instance_finishes_its_requests():
    keys = write_keys(key_path("drain.key"), [os.urandom(80)])
    with ft.Backend("a") as be, ft.Ferry(config(be, keys), name="one") as one, \
            ft.Ferry(config(be, keys), name="two") as two:
        assert healthz(one) == (200, "serving") and healthz(two) == (200, "serving")
        result = {}

        def slow_request():
            # long enough to be still running after the checks below on a slow machine
            with ft.Client(one.port("https"), tls=True, timeout=15) as c:
                result["status"] = c.request("GET", "/sleep/4000",
                                             headers={"Connection": "close"}, host="x")[0]
        client = threading.Thread(target=slow_request)
        client.start()
        ft.poll_until(lambda: one.status()["pools"]["p"]["backends"][0]["active"] == 1,
                      message="the request reached the backend")
        one.send_signal(signal.SIGTERM)
        ft.poll_until(lambda: healthz(one) == (503, "draining"), message="one says draining")
        assert "status" not in result, "the request finished before the check"
        assert healthz(two) == (200, "serving")
        client.join(15)
        assert result.get("status") == 200, result
        assert one.wait_exit(timeout=15) == 0


TOKEN = "fleet-token"


def haproxy_in_front(port, instances):
    """The README's HAProxy example: TCP mode, the PROXY protocol to ferry, /healthz on
    the admin port with the token, a refused connection retried on another ferry."""
    servers = "".join("    server %s 127.0.0.1:%d check port %d\n" % (
        f.name, f.port("https"), f.admin_port) for f in instances)
    return haproxy.HAPROXY_DEFAULTS + (
        "backend ferries\n    mode tcp\n    balance roundrobin\n"
        "    option httpchk\n"
        '    http-check send meth GET uri /healthz hdr Authorization "Bearer %s"\n' % TOKEN +
        "    http-check expect status 200\n"
        # a check gets 2 s (not inter) and two must fail: a healthy ferry slow to answer
        # one on a loaded machine stays in; a draining one (503 at once) goes in ~0.4 s
        "    timeout check 2s\n"
        "    default-server inter 200ms fall 2 rise 1 send-proxy-v2\n"
        "    retries 2\n    option redispatch 1\n" + servers +
        "frontend front\n    mode tcp\n    bind 127.0.0.1:%d\n" % port +
        "    default_backend ferries\n")


def behind_a_balancer(backend, keys):
    cfg = config(backend, keys)
    cfg["admin"] = {"listen": "127.0.0.1:%d" % ft.free_port(), "token": TOKEN}
    cfg["listeners"]["https"].update(proxy_protocol=True, proxy_protocol_from=["127.0.0.1/32"])
    return cfg


def resumptions(f):
    return ft.metric(f.metrics(token=TOKEN), "ferry_tls_resumptions_total")


def test_behind_haproxy_sessions_resume_on_either_instance_and_a_drain_fails_nothing():
    haproxy.require_haproxy()
    keys = write_keys(key_path("haproxy.key"), [os.urandom(80)])
    front = ft.free_port()
    with ft.Backend("a") as be, ft.Ferry(behind_a_balancer(be, keys), name="one") as one, \
            ft.Ferry(behind_a_balancer(be, keys), name="two") as two, \
            haproxy.Haproxy(haproxy_in_front(front, (one, two)), [front]) as lb:
        ctx = tls_context(ssl.TLSVersion.TLSv1_3)
        session = new_session(front, ctx)
        for _ in range(4):      # round robin: two on each instance
            assert resumes(front, ctx, session), "not resumed through the balancer"
        assert resumptions(one) >= 1 and resumptions(two) >= 1, "one instance did all"

        result = {}

        def slow_request():
            with ft.Client(front, tls=True, timeout=15) as c:
                result["status"] = c.request("GET", "/sleep/1500",
                                             headers={"Connection": "close"}, host="x")[0]
        client = threading.Thread(target=slow_request)
        client.start()
        busy = ft.poll_until(lambda: [f for f in (one, two) if f.status(token=TOKEN)[
            "pools"]["p"]["backends"][0]["active"] == 1], message="the request is in flight")[0]
        busy.send_signal(signal.SIGTERM)
        ft.poll_until(lambda: "is DOWN" in open(lb.log_path).read(),
                      message="haproxy takes the draining ferry out")
        for _ in range(10):
            connect(front, ctx)     # a 200 each, from the instance still serving
        client.join(15)
        assert result.get("status") == 200, result
        assert busy.wait_exit(timeout=15) == 0


if __name__ == "__main__":
    ft.main()
