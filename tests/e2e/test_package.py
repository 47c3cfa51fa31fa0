#!/usr/bin/env python3
"""Installing ferry (README "Installing"): cmake --install lays out the binary, the
default config, the man page and the systemd unit; cpack -G DEB builds a .deb whose
files extract into a scratch root, where `ferry -t` accepts the installed default
config; systemd-analyze verify accepts the unit. A release build of its own, in a
scratch directory (no sanitizers: what a package ships)."""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402

INSTALLED = ["usr/bin/ferry", "etc/ferry/ferry.json", "usr/share/man/man8/ferry.8",
             "usr/lib/systemd/system/ferry.service"]


def run(args, cwd=None, env=None, timeout=600):
    res = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=timeout)
    out = res.stdout.decode(errors="replace")
    assert res.returncode == 0, "%s exited %d:\n%s" % (" ".join(args), res.returncode, out[-3000:])
    return out


_build = None


def release_build():
    """A release build configured for /usr, built once per run of this file."""
    global _build
    if _build is None:
        build = os.path.join(ft.tmpdir(), "release")
        run(["cmake", "-S", ft.SRC, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
             "-DBUILD_TESTING=OFF", "-DCMAKE_INSTALL_PREFIX=/usr"])
        run(["cmake", "--build", build, "--parallel", str(os.cpu_count() or 1)])
        _build = build
    return _build


def test_cmake_install_lays_out_binary_config_man_page_and_unit():
    build = release_build()
    stage = os.path.join(ft.tmpdir(), "stage")
    run(["cmake", "--install", build], env=dict(os.environ, DESTDIR=stage))
    for path in INSTALLED:
        assert os.path.isfile(os.path.join(stage, path)), path
    assert os.access(os.path.join(stage, "usr/bin/ferry"), os.X_OK)
    with open(os.path.join(stage, "usr/lib/systemd/system/ferry.service")) as f:
        unit = f.read()
    for line in ("Type=notify", "ExecStart=/usr/bin/ferry -c /etc/ferry/ferry.json",
                 "ExecReload=/usr/bin/ferry reload -c /etc/ferry/ferry.json",
                 "KillSignal=SIGTERM", "KillMode=mixed", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
                 "AmbientCapabilities=CAP_NET_BIND_SERVICE", "LimitNOFILE="):
        assert line in unit, line
    # one SIGTERM from systemd: a second (an ExecStop kill, then systemd's) would end
    # timeouts.stop_grace_ms at once
    assert "\nExecStop=" not in unit, unit
    # the installed binary looks for the installed config when no -c is given
    out = run([os.path.join(stage, "usr/bin/ferry"), "--help"])
    assert "/etc/ferry/ferry.json" in out, out


def test_deb_extracts_and_its_ferry_accepts_the_installed_config():
    build = release_build()
    run(["cpack", "-G", "DEB"], cwd=build)
    debs = [f for f in os.listdir(build) if f.endswith(".deb")]
    assert debs == ["ferry_0.1.0_amd64.deb"], debs
    deb = os.path.join(build, debs[0])
    info = run(["dpkg-deb", "--info", deb])
    for want in ("Package: ferry", "Section: net", "libsystemd0", "libevent-core-2.1-7",
                 "libssl3", "libjansson4", "libnghttp2-14", "conffiles", "postinst"):
        assert want in info, (want, info)
    assert run(["dpkg-deb", "--field", deb, "Depends"]).strip().startswith("passwd")
    root = os.path.join(ft.tmpdir(), "root")
    run(["dpkg", "-x", deb, root])
    for path in INSTALLED:
        assert os.path.isfile(os.path.join(root, path)), path
    ferry = os.path.join(root, "usr/bin/ferry")
    out = run([ferry, "-t", "-c", os.path.join(root, "etc/ferry/ferry.json")])
    assert out.strip() == "ok", out
    assert run([ferry, "--version"]).strip() == "ferry 0.1.0"
    if shutil.which("man"):
        page = run(["man", "-l", os.path.join(root, "usr/share/man/man8/ferry.8")],
                   env=dict(os.environ, MANWIDTH="100", MANPAGER="cat", PAGER="cat"))
        assert "ferry reload" in page and "SIGUSR2" in page, page[:500]


def test_systemd_analyze_verify_accepts_the_unit():
    if not shutil.which("systemd-analyze"):
        raise ft.Skip("systemd-analyze is not installed (Debian package systemd)")
    build = release_build()
    # The unit names /usr/bin/ferry, which is not installed on this machine: verify
    # checks that ExecStart= is executable, so the copy checked points at the build.
    with open(os.path.join(build, "ferry.service")) as f:
        unit = f.read().replace("/usr/bin/ferry", os.path.join(build, "ferry"))
    check = os.path.join(ft.tmpdir(), "verify")
    os.makedirs(check, exist_ok=True)
    path = os.path.join(check, "ferry.service")
    with open(path, "w") as f:
        f.write(unit)
    out = run(["systemd-analyze", "verify", "--man=no", path])
    assert out.strip() == "", "systemd-analyze verify complained:\n" + out


if __name__ == "__main__":
    ft.main(per_test_timeout=600)
