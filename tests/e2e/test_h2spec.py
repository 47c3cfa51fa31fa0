#!/usr/bin/env python3
"""HTTP/2 conformance: h2spec's 146 default cases (RFC 7540/9113 and RFC 7541) pass
against a TLS listener (ALPN h2) and an h2c listener. h2spec is the shared tool
../shared/tools/h2spec beside the project (its first run installs Go from Debian and
builds it, minutes: this file has a long ctest TIMEOUT in tests/CMakeLists.txt)."""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402
import h2env  # noqa: E402

CASES = 146
# beside the project; one level further up for a git worktree under <workplace>/wt/
H2SPEC = next((p for p in (os.path.join(ft.SRC, "..", "shared", "tools", "h2spec"),
                           os.path.join(ft.SRC, "..", "..", "shared", "tools", "h2spec"))
               if os.path.exists(p)), os.path.join(ft.SRC, "..", "shared", "tools", "h2spec"))


def h2spec(port, tls):
    """Runs h2spec against 127.0.0.1:port; prints its summary line and returns
    (passed, failed, the Failures section)."""
    assert os.path.exists(H2SPEC), "h2spec not found at %s" % H2SPEC
    args = [H2SPEC, "-h", "127.0.0.1", "-p", str(port)] + (["-t", "-k"] if tls else [])
    res = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=800)
    out = res.stdout.decode(errors="replace")
    summary = re.findall(r"^\s*(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed\s*$",
                         out, re.M)
    assert summary, "h2spec exit %d, no summary:\n%s" % (res.returncode, out[-4000:])
    tests, passed, skipped, failed = (int(n) for n in summary[-1])
    print("h2spec %s: %d tests, %d passed, %d skipped, %d failed" % (
        "TLS" if tls else "h2c", tests, passed, skipped, failed))
    assert tests == CASES, summary
    assert (res.returncode == 0) == (failed == 0), (res.returncode, summary)
    return passed, failed, out[out.find("Failures:"):] if failed else ""


def test_h2spec_passes_every_case_over_tls_and_h2c():
    """Every case, nothing skipped (some cases skip when GET / answers fewer than 5
    bytes: "alpha\n" is 6). On h2c, http2/3.5/2 sends "INVALID CONNECTION PREFACE":
    an h2c listener closes a first request line that is neither HTTP/1.x nor the
    preface, since it may come from an HTTP/2 client (README, "HTTP/2")."""
    b = ft.Backend("alpha").start()
    with h2env.proxy(h2env.h2_config(b)) as p, b:
        for port, tls in ((p.port("tls"), True), (p.port("plain"), False)):
            passed, failed, failures = h2spec(port, tls)
            assert (passed, failed) == (CASES, 0), failures


if __name__ == "__main__":
    ft.main(per_test_timeout=1700)
