#!/usr/bin/env python3
"""scripts/bench driver (run it through scripts/bench, which installs and builds first).

Starts two nginx backends and the proxies (ferry, nginx, HAProxy; one worker each,
equivalent configs from templates/) on 127.0.0.1, runs the tests interleaved
(ferry, nginx, haproxy, ferry, ...) for ROUNDS rounds, prints a table per test
(median, min..max, ferry / better peer) and writes raw values, commands and configs
under build/bench/. Every process it starts is stopped by PID on exit, Ctrl-C included.
"""
import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
import procs  # noqa: E402
import report  # noqa: E402
import servers  # noqa: E402
import tests  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ALL_PROXIES = ("ferry", "nginx", "haproxy")
TMP_PREFIX = "ferry-bench-"
SETTLE = 0.1  # seconds between runs: let sockets and CPU caches settle
UNTIMED = {"mem": 7, "reload": 8}  # rough seconds per run of the tests that ignore -d
# Idle keep-alive connections to the backends (UPSTREAM_IDLE=n): ferry's max_idle and
# HAProxy's pool-max-conn hold that many per backend, nginx's keepalive per upstream.
UPSTREAM_IDLE = 32


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="scripts/bench", description="ferry vs nginx vs HAProxy on loopback "
        "(PIN=1 in the environment pins proxies to one core and the rest to another; "
        "UPSTREAM_IDLE=n sets the idle keep-alive connections to the backends, default %d)"
        % UPSTREAM_IDLE)
    ap.add_argument("-n", type=int, default=3, metavar="ROUNDS", help="rounds (default 3)")
    ap.add_argument("-d", type=int, default=10, metavar="SECONDS",
                    help="seconds per timed run (default 10)")
    ap.add_argument("-t", default=",".join(tests.TESTS), metavar="TESTS",
                    help="comma list of tests (default all: %(default)s)")
    ap.add_argument("-p", default=",".join(ALL_PROXIES), metavar="PROXIES",
                    help="comma list of proxies (default %(default)s)")
    ap.add_argument("--ferry-bin", default=os.environ.get(
        "FERRY_BIN", os.path.join(ROOT, "build", "release", "ferry")),
        help="ferry binary (default $FERRY_BIN or build/release/ferry)")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench"),
                    help="where results go (default build/bench)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (debugging)")
    args = ap.parse_args(argv)
    args.tests = [t for t in args.t.split(",") if t]
    args.proxies = [p for p in args.p.split(",") if p]
    bad = [t for t in args.tests if t not in tests.TESTS] + \
          [p for p in args.proxies if p not in ALL_PROXIES]
    if bad or args.n < 1 or args.d < 1 or not args.tests or not args.proxies:
        ap.error("unknown or empty: %s" % (", ".join(bad) or "rounds/seconds/lists"))
    return args


class Env:
    """What every server and test needs: paths, certs, pinning, the process registry."""

    def __init__(self, args, pin):
        dev = os.path.join(ROOT, "certs", "dev")
        self.certs = {"ca": "ca.crt", "ec_cert": "localhost.crt", "ec_key": "localhost.key",
                      "rsa_cert": "localhost-rsa.crt", "rsa_key": "localhost-rsa.key"}
        for k, name in self.certs.items():
            self.certs[k] = os.path.join(dev, name)
            if not os.path.exists(self.certs[k]):
                raise SystemExit("bench: %s missing; run certs/gen-dev-certs.sh" % self.certs[k])
        remove_stale_tmp()
        self.tmp = tempfile.mkdtemp(prefix=TMP_PREFIX)
        with open(os.path.join(self.tmp, "bench.pid"), "w") as f:
            f.write("%d\n" % os.getpid())
        self.pin = pin
        self.upstream_idle = upstream_idle()
        self.cmdlog = procs.CommandLog()
        self.registry = procs.Registry(self.cmdlog)
        self.ferry_bin = os.path.abspath(args.ferry_bin)
        self.backends = []
        self.dns_backends = []
        self.www = os.path.join(self.tmp, "www")
        os.makedirs(os.path.join(self.www, "f"))
        self.file_sizes = {"/f/64k.bin": 64 << 10, "/f/1m.bin": 1 << 20}
        for path, size in self.file_sizes.items():
            with open(self.www + path, "wb") as f:
                f.write(os.urandom(size))
        for pem, cert, key in (("ec_pem", "ec_cert", "ec_key"), ("rsa_pem", "rsa_cert", "rsa_key")):
            # HAProxy wants certificate and key in one file.
            path = os.path.join(self.tmp, pem + ".pem")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                for src in (self.certs[cert], self.certs[key]):
                    with open(src) as s:
                        f.write(s.read())
            self.certs[pem] = path


def upstream_idle():
    """Idle keep-alive connections each proxy keeps to the backends (UPSTREAM_IDLE)."""
    try:
        n = int(os.environ.get("UPSTREAM_IDLE", str(UPSTREAM_IDLE)))
    except ValueError:
        n = -1
    if not 1 <= n <= 100000:
        raise SystemExit("bench: UPSTREAM_IDLE must be a number 1..100000")
    return n


def remove_stale_tmp():
    """Temp dirs of benches that were SIGKILLed (their own cleanup never ran)."""
    base = tempfile.gettempdir()
    for name in os.listdir(base):
        path = os.path.join(base, name)
        if not name.startswith(TMP_PREFIX):
            continue
        try:
            with open(os.path.join(path, "bench.pid")) as f:
                pid = int(f.read())
        except (OSError, ValueError):
            continue
        if not os.path.exists("/proc/%d" % pid):
            shutil.rmtree(path, ignore_errors=True)


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def version(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = (r.stdout + r.stderr).strip().splitlines()
        return text[0] if text else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "not available"


def on_signal(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def headline(test, res):
    """One progress line: the test's first metric and the busy split."""
    metric, label, _ = report.SPECS[test][1][0]
    s = "%s %s" % (report.fmt(res.get(metric)), label)
    if res.get("busy_proxy") is not None:
        s += "   busy%% client %s proxy %s backends %s other %s" % tuple(
            "%.0f" % (res.get(k) or 0) for k in report.BUSY)
    return s


def ensure_running(proxy, rnd, say):
    """Restart a proxy that died, so one crash costs one row, not the rest of the run.
    A start that failed is not retried in the same round (it may take 10 s each)."""
    if proxy.alive() or getattr(proxy, "failed_round", None) == rnd:
        return
    ok, _ = proxy.available()
    if not ok:
        return
    if proxy.proc is not None:
        say("   %s is not running (exit status %s); restarting. Log tail:\n%s"
            % (proxy.name, proxy.proc.returncode, proxy.log_tail(5)))
    if not proxy.restart():
        proxy.failed_round = rnd


def save_configs(env, dest):
    os.makedirs(dest, exist_ok=True)
    for sub in sorted(os.listdir(env.tmp)):
        for name in ("nginx.conf", "haproxy.cfg", "ferry.json"):
            src = os.path.join(env.tmp, sub, name)
            if os.path.exists(src):
                shutil.copy(src, os.path.join(dest, "%s-%s" % (sub, name)))


def main(argv):
    args = parse_args(argv)
    # Explicitly: a shell starting us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(args.out, exist_ok=True)
    paths = {k: os.path.join(args.out, "%s-%s.%s" % (k, stamp, ext)) for k, ext in
             (("results", "tsv"), ("commands", "txt"), ("report", "txt"))}
    report_lines = []

    def say(line=""):
        print(line, flush=True)
        report_lines.append(line)

    pin = procs.Pinning(os.environ.get("PIN") == "1")
    fds = raise_fd_limit()
    env = Env(args, pin)
    timed = [t for t in args.tests if t not in UNTIMED]
    estimate = args.n * len(args.proxies) * (
        len(timed) * (args.d + 0.5) + sum(UNTIMED.get(t, 0) for t in args.tests))
    meta = [("date", stamp), ("host", os.uname().nodename), ("cpus", len(os.sched_getaffinity(0))),
            ("load", "%.2f %.2f %.2f" % os.getloadavg()), ("pinned", pin.enabled),
            ("rounds", args.n), ("seconds", args.d), ("fd limit", fds),
            ("keepalive", "UPSTREAM_IDLE=%d (ferry max_idle and HAProxy pool-max-conn per "
             "backend, nginx keepalive per upstream)" % env.upstream_idle),
            ("ferry", "%s (%s)" % (version([env.ferry_bin, "--version"]), env.ferry_bin)),
            ("nginx", version(["nginx", "-v"])), ("haproxy", version(["haproxy", "-v"])),
            ("wrk", version(["wrk", "-v"])), ("ab", version(["ab", "-V"])),
            ("h2load", version(["h2load", "--version"])),
            ("dnsperf", version(["dnsperf", "-h"])), ("dnsmasq", version(["dnsmasq", "-v"])),
            ("openssl", version(["openssl", "version"]))]
    results = report.Results(paths["results"], meta)
    proxies = []
    interrupted = False
    try:
        say("scripts/bench %s: tests %s, proxies %s, %d round(s) x %d s, about %.0f min"
            % (stamp, ",".join(args.tests), ",".join(args.proxies), args.n, args.d,
               estimate / 60.0))
        for k, v in meta:
            say("  %-9s %s" % (k, v))
        if pin.requested and not pin.enabled:
            say("  PIN=1 ignored: fewer than 2 CPUs available")
        elif pin.enabled:
            say("  pinning: proxies on CPU %d, backends and load tools on CPU %d"
                % (pin.proxy_cpu, pin.other_cpu))
        env.backends = [servers.Backend(env, "b%d" % i, port)
                        for i, port in zip((1, 2), procs.free_ports(2))]
        env.dns_backends = [servers.DnsBackend(env, "d%d" % i, port)
                            for i, port in zip((1, 2), procs.free_ports(2))]
        for b in env.backends + env.dns_backends:
            b.start()
        for name in args.proxies:
            p = servers.PROXIES[name](env)
            proxies.append(p)
            if p.start():
                say("  %-9s started, ports %s" % (name, " ".join(
                    "%s=%d" % kv for kv in p.ports.items())))
            else:
                say("  %-9s NOT RUNNING (its rows print n/a): %s" % (name, p.start_error))
        say("  setup commands:")
        for line in env.cmdlog.lines:
            say("    $ " + line)
        say()
        for rnd in range(1, args.n + 1):
            for test in args.tests:
                for proxy in proxies:
                    ensure_running(proxy, rnd, say)
                    mark = len(env.cmdlog.lines)
                    started = time.monotonic()
                    try:
                        res, reason = tests.TESTS[test](env, proxy, args.d), None
                    except tests.NA as e:
                        res, reason = {}, str(e)
                    results.add(rnd, test, proxy.name, res, reason)
                    results.add_commands(test, env.cmdlog.lines[mark:])
                    say("[%d/%d] %-7s %-8s %s  (%.0f s)" % (
                        rnd, args.n, test, proxy.name,
                        "n/a: " + reason if reason else headline(test, res),
                        time.monotonic() - started))
                    time.sleep(SETTLE)
    except KeyboardInterrupt as e:
        interrupted = True
        say("\ninterrupted (%s): stopping everything; partial results follow" % (e or "Ctrl-C"))
    finally:
        env.registry.stop_all()
        results.close()
        save_configs(env, os.path.join(args.out, "configs-" + stamp))
        with open(paths["commands"], "w") as f:
            f.write("# scripts/bench %s, in order. %s was a temp dir (removed); the configs\n"
                    "# rendered there are in %s/\n" % (
                        " ".join(argv), env.tmp, os.path.join(args.out, "configs-" + stamp)))
            f.write("\n".join(env.cmdlog.lines) + "\n")
        if args.keep_tmp:
            say("temp dir kept: %s" % env.tmp)
        else:
            shutil.rmtree(env.tmp, ignore_errors=True)
    names = [p.name for p in proxies]
    say()
    say("Medians over %d round(s) (min..max). (+) higher is better, (-) lower is better; "
        "ferry/best = ferry's median over the better of the others." % args.n)
    for test in args.tests:
        say()
        say(results.table(test, names, pin.enabled))
        for line in results.commands.get(test, []):
            say("   $ " + line)
    say()
    say("raw values: %s\ncommands:   %s\nconfigs:    %s" % (
        paths["results"], paths["commands"], os.path.join(args.out, "configs-" + stamp)))
    with open(paths["report"], "w") as f:
        f.write("\n".join(report_lines) + "\n")
    print("report:     %s" % paths["report"])
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
