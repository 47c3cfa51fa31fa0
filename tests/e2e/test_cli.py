#!/usr/bin/env python3
"""The command line: -t, --version, --help, and clear failures instead of crashes."""

import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402


def minimal(port=None):
    return {"listeners": {"l": {"listen": "127.0.0.1:%d" % (port or ft.free_port()),
                                "mode": "tcp", "pool": "p"}},
            "pools": {"p": {"backends": [{"address": "127.0.0.1:9"}]}}}


def run(*args):
    res = subprocess.run([ft.FERRY_BIN, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=15, cwd=ft.SRC)
    return res.returncode, res.stdout.decode(errors="replace")


def test_check_good_config_says_ok():
    rc, out = ft.Ferry.check(minimal())
    assert rc == 0 and out.strip() == "ok", (rc, out)


def test_check_reports_every_error_with_its_path():
    config = minimal()
    config["pools"]["p"]["backends"] = [{"address": "127.0.0.1:1", "weight": 300}]
    config["listeners"]["l"]["pool"] = "nope"
    config["timeouts"] = {"conect_ms": 5}
    rc, out = ft.Ferry.check(config)
    assert rc == 1, (rc, out)
    assert "pools.p.backends[0].weight" in out and "300" in out, out
    assert "listeners.l.pool" in out and "nope" in out, out
    assert "timeouts.conect_ms" in out and "connect_ms" in out, out


def test_check_syntax_error_names_line_and_column():
    rc, out = ft.Ferry.check('{\n  "listeners": {,\n}')
    assert rc == 1 and ":2:" in out, (rc, out)


def test_check_missing_file_exits_one():
    rc, out = run("-t", "-c", "/nonexistent/ferry.json")
    assert rc == 1 and "/nonexistent/ferry.json" in out, (rc, out)


def test_check_unreadable_certificate_names_the_file():
    config = minimal()
    config["listeners"]["l"]["tls"] = {"certificates": [
        {"cert": "/nonexistent/x.crt", "key": "/nonexistent/x.key"}]}
    rc, out = ft.Ferry.check(config)
    assert rc == 1 and "/nonexistent/x.crt" in out, (rc, out)


def test_check_key_not_matching_certificate_is_an_error():
    config = minimal()
    config["listeners"]["l"]["tls"] = {"certificates": [
        {"cert": "certs/dev/localhost.crt", "key": "certs/dev/client.key"}]}
    rc, out = ft.Ferry.check(config)
    assert rc == 1 and "client.key" in out, (rc, out)


def test_version_and_help():
    rc, out = run("--version")
    assert rc == 0 and out.startswith("ferry "), (rc, out)
    rc, out = run("--help")
    assert rc == 0 and "-t" in out and "-c FILE" in out, (rc, out)


def test_address_in_use_exits_one_with_a_message():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        path = os.path.join(ft.tmpdir(), "inuse.json")
        with open(path, "w") as f:
            import json
            json.dump(minimal(port), f)
        rc, out = run("-c", path)
        assert rc == 1, (rc, out)
        assert "127.0.0.1:%d" % port in out and "in use" in out, out
    finally:
        holder.close()


if __name__ == "__main__":
    ft.main()
