"""The tests of scripts/bench. Each test takes (env, proxy, seconds), drives load at one
proxy and returns {metric: value}; it raises NA(reason) when the proxy can't be measured
(readiness check failed, too many errors, proxy died), which prints as "n/a".

CPU is accounted around the measured window only: the proxy's serving process(es) from
/proc/PID/stat, the load tools' own CPU from the kernel when they are reaped, and the
machine's busy share from /proc/stat.
"""
import json
import os
import re
import subprocess
import time

import procs
import servers

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = os.path.join(HERE, "clients")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
CONNECTIONS = 50       # wrk, ab and h2load concurrency (connections)
H2_STREAMS = 10        # h2: h2load streams in flight per connection (-m)
H2BIG_STREAMS = 1      # h2big: 1 MiB responses in flight per connection (as many as `big`)
WRK_THREADS = int(os.environ.get("WRK_THREADS", "1"))
S_TIME_PROCS = 16      # parallel `openssl s_time -reuse` clients (each is sequential)
IDLE_PLAIN, IDLE_TLS = 5000, 1000
DNSPERF_CLIENTS, DNSPERF_OUTSTANDING = 8, 256   # sockets, queries in flight
RELOADS, RELOAD_GAP, RELOAD_PAUSE, RELOAD_WAIT = 10, 0.4, 0.3, 1.5
MAX_ERROR_SHARE = 0.01  # more failed requests than this and the run is n/a
MIB, GIB = float(1 << 20), float(1 << 30)


class NA(Exception):
    """The proxy can't be measured in this run; the message says why."""


class Window:
    """CPU accounting for one measured run."""

    def __init__(self, env, proxy, client_pids=None):
        """CLIENT_PIDS: load tools still running when the window closes (read from
        /proc); by default the tools are reaped inside the window and counted then."""
        self.env, self.proxy, self.client_pids = env, proxy, client_pids

    def __enter__(self):
        self.accepts0 = [b.accepts() for b in self.env.backends]
        self.pids = self.proxy.worker_pids()
        self.proxy0 = {p: procs.proc_cpu_seconds(p) for p in self.pids}
        self.backend_pids = [p for b in self.env.backends + self.env.dns_backends
                             for p in b.pids()]
        self.backend0 = {p: procs.proc_cpu_seconds(p) for p in self.backend_pids}
        self.sys0 = procs.system_cpu()
        self.child = procs.ChildCpu().start()
        self.client0 = {p: procs.proc_cpu_seconds(p) for p in self.client_pids or []}
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.wall = time.monotonic() - self.t0
        self.client_cpu = _delta(self.client0) if self.client_pids else self.child.stop()
        self.sys1 = procs.system_cpu()
        self.proxy_cpu = _delta(self.proxy0)
        self.backend_cpu = _delta(self.backend0) or 0.0
        # New connections the proxy made to the backends (each reading of the counter
        # is a connection too: the second one is taken off).
        after = [b.accepts() for b in self.env.backends]
        self.backend_conns = None if None in self.accepts0 + after else \
            sum(a1 - a0 - 1 for a0, a1 in zip(self.accepts0, after))
        return False

    def busy(self):
        """Busy % of client, proxy, backends (of one CPU) and the machine (of all)."""
        pct = lambda s: 100.0 * s / self.wall if self.wall > 0 and s is not None else None
        out = {"busy_client": pct(self.client_cpu), "busy_proxy": pct(self.proxy_cpu),
               "busy_backends": pct(self.backend_cpu),
               "busy_system": procs.busy_percent(self.sys0, self.sys1, "all")}
        # Whatever else kept the machine busy (other users, unattributed kernel work),
        # in the same unit as the others: 100 = one CPU.
        ours = sum(out[k] or 0 for k in ("busy_client", "busy_proxy", "busy_backends"))
        ncpu = len(self.sys1) - 1  # keys: "all" and one per CPU
        out["busy_other"] = max(0.0, out["busy_system"] * ncpu - ours)
        pin = self.env.pin
        if pin.enabled:
            out["busy_proxy_core"] = procs.busy_percent(self.sys0, self.sys1, "cpu%d" % pin.proxy_cpu)
            out["busy_other_core"] = procs.busy_percent(self.sys0, self.sys1, "cpu%d" % pin.other_cpu)
        return out


def _delta(before):
    """CPU seconds used since BEFORE by those PIDs; None if one exited meanwhile."""
    total = 0.0
    for pid, t0 in before.items():
        t1 = procs.proc_cpu_seconds(pid)
        if t0 is None or t1 is None:
            return None
        total += t1 - t0
    return total


def client_argv(env, argv):
    return env.pin.prefix("client") + argv


def require(proxy, listener, path="/"):
    why = proxy.check(listener, path)
    if why:
        raise NA(why)


def check_alive(proxy):
    if not proxy.alive():
        raise NA("proxy exited during the run: %s" % proxy.log_tail(3))


# ---------------------------------------------------------------- wrk

def run_wrk(env, proxy, seconds, listener, path):
    require(proxy, listener, path)
    scheme = "https" if listener.startswith("https") else "http"
    url = "%s://127.0.0.1:%d%s" % (scheme, proxy.ports[listener], path)
    argv = client_argv(env, ["wrk", "-t%d" % WRK_THREADS, "-c%d" % CONNECTIONS,
                             "-d%ds" % seconds, "--timeout", "5s", "--latency",
                             "-s", os.path.join(CLIENTS, "wrk-report.lua"), url])
    with Window(env, proxy) as w:
        rc, out, err = procs.run_client(argv, env.cmdlog, seconds + 60)
    check_alive(proxy)
    m = re.search(r"^BENCH_JSON (.*)$", out, re.M)
    if rc != 0 or not m:
        raise NA("wrk failed (%s): %s" % (rc, (err or out).strip()[-200:]))
    r = json.loads(m.group(1))
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    if r["requests"] == 0 or errors > MAX_ERROR_SHARE * r["requests"]:
        raise NA("%d requests, %d errors (connect %d read %d write %d status %d timeout %d)"
                 % (r["requests"], errors, r["connect"], r["read"], r["write"],
                    r["status"], r["timeout"]))
    secs = r["duration_us"] / 1e6
    res = {"rps": r["requests"] / secs, "mib_s": r["bytes"] / MIB / secs,
           "p50_ms": r["p50_us"] / 1000.0, "p99_ms": r["p99_us"] / 1000.0,
           "errors": errors, "requests": r["requests"], "bytes": r["bytes"]}
    if w.backend_conns is not None:
        res["backend_conns_per_1k"] = 1000.0 * w.backend_conns / r["requests"]
    if w.proxy_cpu is not None:
        res["cpu_s_per_100k"] = w.proxy_cpu / r["requests"] * 1e5
        res["cpu_s_per_gib"] = w.proxy_cpu / (r["bytes"] / GIB) if r["bytes"] else None
    res.update(w.busy())
    return res


def test_http(env, proxy, seconds):
    return run_wrk(env, proxy, seconds, "http", "/")


def test_https(env, proxy, seconds):
    return run_wrk(env, proxy, seconds, "https", "/")


def test_big(env, proxy, seconds):
    return run_wrk(env, proxy, seconds, "http", "/f/1m.bin")


def test_mk64(env, proxy, seconds):
    return run_wrk(env, proxy, seconds, "http", "/f/64k.bin")


def test_tcp(env, proxy, seconds):
    return run_wrk(env, proxy, seconds, "tcp", "/f/1m.bin")


# ---------------------------------------------------------------- HTTP/2: h2load

_H2_REQUESTS = re.compile(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                          r"(\d+) failed, (\d+) errored, (\d+) timeout", re.M)


def run_h2load(env, proxy, seconds, path, streams):
    """h2load -c CONNECTIONS -m STREAMS -D SECONDS over TLS on the h2 listener (ALPN h2,
    checked first). Latency percentiles come from h2load's per-request log (time from
    a request's start to the end of its response)."""
    require(proxy, "h2", path)
    url = "https://127.0.0.1:%d%s" % (proxy.ports["h2"], path)
    log = os.path.join(env.tmp, "h2load-%s.tsv" % proxy.name)
    argv = client_argv(env, ["h2load", "-c", str(CONNECTIONS), "-m", str(streams), "-t", "1",
                             "-D", str(seconds), "--log-file=" + log, url])
    try:
        with Window(env, proxy) as w:
            rc, out, err = procs.run_client(argv, env.cmdlog, seconds + 60)
        check_alive(proxy)
        lat = _h2load_latencies(log)
    finally:
        if os.path.exists(log):
            os.unlink(log)
    fin = re.search(r"^finished in ([\d.]+)s", out, re.M)
    req = _H2_REQUESTS.search(out)
    traffic = re.search(r"^traffic: .*?\((\d+)\) total", out, re.M)
    proto = re.search(r"^Application protocol: (\S+)", out, re.M)
    if rc != 0 or not (fin and req and traffic):
        raise NA("h2load failed (%s): %s" % (rc, (err or out).strip()[-200:]))
    if not proto or proto.group(1) != "h2":
        raise NA("h2load negotiated %s, not h2" % (proto.group(1) if proto else "nothing"))
    secs = float(fin.group(1))
    _, started, done, ok, failed, errored, timeout = (int(v) for v in req.groups())
    # "failed" counts streams that ended without a complete response (reset, connection
    # lost, timeout: errored and timeout are part of it); "succeeded" are 2xx/3xx.
    errors = max(failed, done - ok)
    if done == 0 or errors > MAX_ERROR_SHARE * done:
        raise NA("%d requests done, %d failed (errored %d, timeout %d), %d not 2xx/3xx"
                 % (done, failed, errored, timeout, done - ok))
    nbytes = int(traffic.group(1))
    res = {"rps": done / secs, "mib_s": nbytes / MIB / secs, "errors": errors,
           "requests": done, "bytes": nbytes}
    if lat:
        res["p50_ms"] = _percentile(lat, 0.50) / 1000.0
        res["p99_ms"] = _percentile(lat, 0.99) / 1000.0
    if w.backend_conns is not None:
        res["backend_conns_per_1k"] = 1000.0 * w.backend_conns / done
    if w.proxy_cpu is not None:
        res["cpu_s_per_100k"] = w.proxy_cpu / done * 1e5
        res["cpu_s_per_gib"] = w.proxy_cpu / (nbytes / GIB) if nbytes else None
    res.update(w.busy())
    return res


def _h2load_latencies(path):
    """Microseconds per request from h2load --log-file (start, status, duration)."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) >= 3:
                    out.append(int(parts[2]))
    except (OSError, ValueError):
        return []
    out.sort()
    return out


def _percentile(sorted_vals, q):
    return sorted_vals[min(len(sorted_vals) - 1, int(q * len(sorted_vals)))]


def test_h2(env, proxy, seconds):
    return run_h2load(env, proxy, seconds, "/", H2_STREAMS)


def test_h2big(env, proxy, seconds):
    return run_h2load(env, proxy, seconds, "/f/1m.bin", H2BIG_STREAMS)


# ---------------------------------------------------------------- udp: dnsperf

def _dnsperf_number(label, text):
    m = re.search(r"^\s*%s:\s+([\d.]+)" % re.escape(label), text, re.M)
    return float(m.group(1)) if m else None


def test_udp(env, proxy, seconds):
    """dnsperf (DNSPERF_CLIENTS sockets, DNSPERF_OUTSTANDING queries in flight) against
    the proxy's udp listener, in front of the two dnsmasq. Each client socket is a flow
    (a session in nginx) that ends once every query it sent was answered (ferry
    udp.responses 1, nginx proxy_responses 1). A datagram is a query or an answer as
    the client counts them: 2 per completed query."""
    why = proxy.check_udp()
    if why:
        raise NA(why)
    queries = os.path.join(env.tmp, "dnsperf-queries.txt")
    with open(queries, "w") as f:
        f.write("".join("%s A\n" % name for name in servers.DNS_NAMES))
    argv = client_argv(env, ["dnsperf", "-s", "127.0.0.1", "-p", str(proxy.ports["udp"]),
                             "-d", queries, "-l", str(seconds), "-c", str(DNSPERF_CLIENTS),
                             "-q", str(DNSPERF_OUTSTANDING), "-t", "2"])
    with Window(env, proxy) as w:
        rc, out, err = procs.run_client(argv, env.cmdlog, seconds + 60)
    check_alive(proxy)
    completed = _dnsperf_number("Queries completed", out)
    sent = _dnsperf_number("Queries sent", out)
    qps = _dnsperf_number("Queries per second", out)
    latency = _dnsperf_number("Average Latency (s)", out)
    if rc != 0 or not completed or not sent or qps is None:
        raise NA("dnsperf failed (%s): %s" % (rc, (err or out).strip()[-200:]))
    lost = sent - completed
    if lost > MAX_ERROR_SHARE * sent:
        raise NA("%d queries sent, %d lost" % (sent, lost))
    res = {"qps": qps, "lost": lost, "requests": completed,
           "avg_latency_ms": latency * 1000.0 if latency is not None else None}
    if w.proxy_cpu is not None:
        res["cpu_s_per_100k_dgram"] = w.proxy_cpu / (2 * completed) * 1e5
    res.update(w.busy())
    return res


# ---------------------------------------------------------------- full handshakes: ab

def _ab_number(pattern, text):
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else 0.0


def run_ab(env, proxy, seconds, listener):
    require(proxy, listener)
    url = "https://127.0.0.1:%d/" % proxy.ports[listener]
    # -t before -n: -t alone caps the run at 50000 requests. -r: keep going on errors.
    total = max(200000, seconds * 30000)
    argv = client_argv(env, ["ab", "-q", "-r", "-c", str(CONNECTIONS), "-t", str(seconds),
                             "-n", str(total), url])
    with Window(env, proxy) as w:
        rc, out, err = procs.run_client(argv, env.cmdlog, seconds + 60)
    check_alive(proxy)
    done = _ab_number(r"^Complete requests:\s+(\d+)", out)
    failed = _ab_number(r"^Failed requests:\s+(\d+)", out)
    non2xx = _ab_number(r"^Non-2xx responses:\s+(\d+)", out)
    taken = _ab_number(r"^Time taken for tests:\s+([\d.]+)", out)
    proto = re.search(r"^SSL/TLS Protocol:\s+(\S+)", out, re.M)
    if rc != 0 or done == 0 or taken == 0:
        raise NA("ab failed (%s): %s" % (rc, (err or out).strip()[-200:]))
    if proto and not proto.group(1).startswith("TLSv1.3"):
        raise NA("negotiated %s, not TLS 1.3" % proto.group(1))
    if failed + non2xx > MAX_ERROR_SHARE * done:
        raise NA("%d handshakes+requests, %d failed, %d non-2xx" % (done, failed, non2xx))
    res = {"hs_s": done / taken, "errors": failed + non2xx, "requests": done}
    if w.proxy_cpu is not None:
        res["cpu_ms_per_1k"] = w.proxy_cpu * 1000.0 / done * 1000.0
    res.update(w.busy())
    return res


def test_hs(env, proxy, seconds):
    return run_ab(env, proxy, seconds, "https")


def test_hs_rsa(env, proxy, seconds):
    return run_ab(env, proxy, seconds, "https_rsa")


# ---------------------------------------------------------------- resumption: s_time

RESUME_WARMUP = 0.5  # s: processes started, first full handshakes done


def test_resume(env, proxy, seconds):
    """S_TIME_PROCS parallel `openssl s_time -reuse`: each does one full handshake, then
    reconnects over and over resuming that session (a TLS 1.3 PSK from the server's
    ticket; psk_dhe_ke, so an X25519 exchange per connection as in real clients), sends
    one request and reads the response to EOF. s_time writes 'r' per resumed connection
    and '*' per full one; with stdout unbuffered (stdbuf -o0) they are counted live
    over exactly SECONDS after a warm-up, then the clients are stopped. (s_time's own
    summary has whole-second resolution.)"""
    require(proxy, "https")
    # s_time sends "GET <page> HTTP/1.0\r\n\r\n"; smuggle a Host header into <page> so
    # every proxy forwards the same valid request.
    page = "/ HTTP/1.0\r\nHost: localhost\r\nX-Bench:"
    argv = client_argv(env, ["stdbuf", "-o0", "openssl", "s_time", "-connect",
                             "127.0.0.1:%d" % proxy.ports["https"], "-reuse", "-tls1_3",
                             "-time", str(seconds + 3), "-www", page])
    env.cmdlog.add(argv, "x%d in parallel, stopped after %.1f+%d s"
                   % (S_TIME_PROCS, RESUME_WARMUP, seconds))
    kids = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
            for _ in range(S_TIME_PROCS)]
    counter = _ProgressCounter(kids)
    try:
        counter.run_until(time.monotonic() + RESUME_WARMUP)
        counter.reset()
        with Window(env, proxy, [k.pid for k in kids]) as w:
            counter.run_until(time.monotonic() + seconds)
    finally:
        for k in kids:
            k.kill()
            k.wait()
    check_alive(proxy)
    conns = counter.reused + counter.full
    if conns == 0:
        raise NA("s_time made no connections: %s" % counter.text()[-200:])
    res = {"resumed_s": counter.reused / w.wall, "conn_s": conns / w.wall,
           "reuse_pct": 100.0 * counter.reused / conns, "requests": conns}
    if w.proxy_cpu is not None:
        res["cpu_ms_per_1k"] = w.proxy_cpu * 1000.0 / conns * 1000.0
    res.update(w.busy())
    return res


class _ProgressCounter:
    """Counts s_time's per-connection progress characters on many pipes at once."""

    def __init__(self, kids):
        import selectors
        self.sel = selectors.DefaultSelector()
        self.first, self.tail = {}, {}
        for k in kids:
            os.set_blocking(k.stdout.fileno(), False)
            self.sel.register(k.stdout, selectors.EVENT_READ, k)
            self.first[k.pid] = self.tail[k.pid] = b""
        self.reset()

    def reset(self):
        self.reused = self.full = 0

    def run_until(self, deadline):
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.get_map():
                return
            for key, _ in self.sel.select(left):
                try:
                    data = os.read(key.fileobj.fileno(), 65536)
                except BlockingIOError:
                    continue
                if not data:
                    self.sel.unregister(key.fileobj)
                    continue
                self.feed(key.data.pid, data)

    def feed(self, pid, data):
        """Progress lines are runs of 'r'/'*'; other lines are s_time's messages."""
        first = self.first[pid]  # first byte of the current line, b"" at a line start
        parts = data.split(b"\n")
        for n, part in enumerate(parts):
            first = first or part[:1]
            if first in (b"r", b"*"):
                self.reused += part.count(b"r")
                self.full += part.count(b"*")
            if n < len(parts) - 1:
                first = b""
        self.first[pid] = first
        self.tail[pid] = (self.tail[pid] + data)[-200:]

    def text(self):
        return " | ".join(t.decode(errors="replace").strip() for t in self.tail.values())


# ---------------------------------------------------------------- memory

def _sum(fn, pids):
    vals = [fn(p) for p in pids]
    return None if not vals or None in vals else sum(vals)


def _idle_phase(env, proxy, listener, count):
    """Restart the proxy, measure it fresh, hold COUNT idle connections, measure again.
    Returns (fresh_rss, fresh_private_all, bytes_per_connection)."""
    if not proxy.restart():
        raise NA("restart failed: %s" % proxy.start_error)
    require(proxy, listener)
    time.sleep(0.2)
    fresh = _sum(procs.rss_bytes, proxy.worker_pids())
    fresh_uss = _sum(procs.uss_bytes, proxy.all_pids())
    argv = client_argv(env, [PYTHON, os.path.join(CLIENTS, "idle.py"),
                             str(proxy.ports[listener]), str(count)])
    if listener != "http":
        argv += ["--tls", env.certs["ca"]]
    env.cmdlog.add(argv)
    kid = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    try:
        line = _readline_timeout(kid, 120)
        if not line.startswith("READY "):
            raise NA("idle client: %s %s" % (line, kid.stderr.read1(500).decode(errors="replace")))
        ready = json.loads(line[6:])
        time.sleep(0.3)  # let the proxy finish with the last requests
        loaded = _sum(procs.rss_bytes, proxy.worker_pids())
    finally:
        kid.stdin.close()
        try:
            kid.wait(30)
        except subprocess.TimeoutExpired:
            kid.kill()
            kid.wait()
    check_alive(proxy)
    if ready["open"] < 0.99 * count:
        raise NA("only %d of %d idle %s connections stayed open (%s)"
                 % (ready["open"], count, listener, ready["errors"]))
    if fresh is None or loaded is None:
        raise NA("could not read RSS")
    return fresh, fresh_uss, (loaded - fresh) / ready["open"]


def _readline_timeout(kid, timeout):
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(kid.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        kid.kill()
        raise NA("idle client timed out")
    return kid.stdout.readline().decode(errors="replace").strip()


def test_mem(env, proxy, seconds):
    require(proxy, "http")  # before restarting: a broken proxy costs no start timeouts
    require(proxy, "https")
    fresh, fresh_uss, per_conn = _idle_phase(env, proxy, "http", IDLE_PLAIN)
    _, _, per_tls = _idle_phase(env, proxy, "https", IDLE_TLS)
    return {"rss_fresh_mib": fresh / MIB,
            "private_all_mib": fresh_uss / MIB if fresh_uss is not None else None,
            "bytes_per_conn": per_conn, "bytes_per_tls_conn": per_tls}


# ---------------------------------------------------------------- reload

def test_reload(env, proxy, seconds):
    """Keep-alive + new-connection load (clients/reloadload.py) on the http listener
    while the proxy reloads its unchanged config RELOADS times. Each reload is awaited
    (nginx: a new worker; HAProxy: "Loading success." from the master; ferry: the
    admin API's generation) and followed by RELOAD_PAUSE s, with at least RELOAD_GAP s
    between signals. A signal that shows no effect within RELOAD_WAIT s is sent again
    (HAProxy drops a SIGUSR2 that arrives just after it finished a reload), so every
    proxy really goes through RELOADS reloads."""
    require(proxy, "http")
    argv = client_argv(env, [PYTHON, os.path.join(CLIENTS, "reloadload.py"),
                             str(proxy.ports["http"]), "60"])
    env.cmdlog.add(argv, "until the reloads are done")
    proxy.mark_log()
    kid = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.PIPE)
    problem, applied, signals = None, 0, 0
    try:
        time.sleep(0.3)  # load running on both kinds of connections
        for _ in range(RELOADS):
            seen, sent = _reload_once(proxy)
            applied += seen
            signals += sent
            problem = proxy.reload_problem()
            if problem:
                break
        time.sleep(0.3)  # the last reload's effects on the load
        out, err = kid.communicate(b"", timeout=30)
    finally:
        if kid.poll() is None:
            kid.kill()
            kid.wait()
    if problem:
        proxy.restart()
        raise NA(problem)
    check_alive(proxy)
    try:
        r = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise NA("load client failed: %s" % err.decode(errors="replace")[-200:])
    res = {"failed": r["failed"], "refused": r["refused_total"],
           "failed_idle_ka": r["ka_failed_idle"], "ok_requests": r["ok"],
           "reloads_seen": applied, "reload_signals": signals}
    proxy.restart()  # drop old workers still draining; next test starts clean
    return res


def _reload_once(proxy):
    """Signal a reload and wait for it. Returns (1 if seen else 0, signals sent)."""
    marker = proxy.reload_marker()
    first = time.monotonic()
    for attempt in range(1, 4):
        sent = time.monotonic()
        proxy.reload()
        while marker is not None and time.monotonic() - sent < RELOAD_WAIT:
            if proxy.reloaded(marker, proxy.reload_marker()):
                time.sleep(max(RELOAD_PAUSE, RELOAD_GAP - (time.monotonic() - first)))
                return 1, attempt
            if not proxy.alive():
                return 0, attempt
            time.sleep(0.02)
        if marker is None:  # can't observe this proxy's reloads: just pace them
            time.sleep(RELOAD_GAP)
            return 0, attempt
    return 0, attempt


TESTS = {
    "http": test_http, "https": test_https, "hs": test_hs, "hs_rsa": test_hs_rsa,
    "resume": test_resume, "big": test_big, "mk64": test_mk64, "tcp": test_tcp,
    "h2": test_h2, "h2big": test_h2big, "udp": test_udp, "mem": test_mem,
    "reload": test_reload,
}
