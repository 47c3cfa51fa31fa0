"""ferrytest — the shared e2e harness: real ferry, real backends, real clients.

Python 3 standard library only. A test file defines functions named test_* and ends
with `ferrytest.main()`; they run in file order, each reported PASS/FAIL with timing.

Environment (set by ctest): FERRY_BIN (the ferry binary), FERRY_BUILD (the build
directory, for $FERRY_BUILD/tests/demo_backend), FERRY_SRC (the project root; ferry
runs there so relative cert paths such as certs/dev/localhost.crt resolve).

Synchronisation is always on readiness: a "ready" line, a listening socket, a parsed
response. Waiting is polling with a deadline, never a bare sleep.
"""

import json
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

SRC = os.environ.get("FERRY_SRC") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.environ.get("FERRY_BUILD") or os.path.join(SRC, "build", "sanitize")
FERRY_BIN = os.environ.get("FERRY_BIN") or os.path.join(BUILD, "ferry")
DEMO_BACKEND = os.path.join(BUILD, "tests", "demo_backend")
FAULTINJECT = os.path.join(BUILD, "tests", "libfaultinject.so")

CERTS = os.path.join(SRC, "certs", "dev")
CA_CERT = os.path.join(CERTS, "ca.crt")
SERVER_CERT = os.path.join(CERTS, "localhost.crt")
SERVER_KEY = os.path.join(CERTS, "localhost.key")
RSA_CERT = os.path.join(CERTS, "localhost-rsa.crt")
RSA_KEY = os.path.join(CERTS, "localhost-rsa.key")
CLIENT_CERT = os.path.join(CERTS, "client.crt")
CLIENT_KEY = os.path.join(CERTS, "client.key")

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                     "WARNING: ThreadSanitizer", "VALGRIND-ERROR-BEGIN")

# FERRY_VALGRIND=1 (scripts/test --valgrind): ferry runs under memcheck. Any error, and
# any definite leak at exit, makes it exit VALGRIND_EXIT and prints a marker line that
# the sanitizer scan finds (also when ferry is killed and no exit code is looked at).
# Startup, shutdown and log lines then take seconds, so the harness's waits for them
# are multiplied by SLOW, and so are the config's default timeouts (write_config).
VALGRIND = os.environ.get("FERRY_VALGRIND") == "1"
VALGRIND_EXIT = 99
SLOW = 10 if VALGRIND else 1
VALGRIND_TIMEOUTS_MS = {"connect_ms": 3000, "client_header_ms": 10000,
                        "upstream_response_ms": 30000}      # design.md's defaults


def ferry_command(*args, binary=None):
    """The command line that runs ferry (binary, default the build's) with args (under
    valgrind when asked)."""
    binary = binary or FERRY_BIN
    if not VALGRIND:
        return [binary] + list(args)
    return ["valgrind", "--tool=memcheck", "--quiet", "--error-exitcode=%d" % VALGRIND_EXIT,
            "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite", "--track-origins=yes", "--num-callers=30",
            "--error-markers=VALGRIND-ERROR-BEGIN,VALGRIND-ERROR-END",
            binary] + list(args)


_tmpdir = None
_running = []          # every Backend/Ferry started and not yet stopped


def tmpdir():
    """A directory for this test file's scratch files, removed when main() ends."""
    global _tmpdir
    if _tmpdir is None:
        _tmpdir = tempfile.mkdtemp(prefix="ferrytest-")
    return _tmpdir


def _child_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return env


def fault_env(**faults):
    """Environment for Ferry(env=...) that preloads tests/support/faultinject.c: each
    keyword sets FERRY_FAULT_<NAME upper-cased> (the faults are listed in that file)."""
    assert os.path.exists(FAULTINJECT), "libfaultinject.so not built: %s" % FAULTINJECT
    asan = os.environ.get("ASAN_OPTIONS", "detect_leaks=1")
    env = {"LD_PRELOAD": FAULTINJECT,
           # the library is loaded before the sanitizer runtime, on purpose
           "ASAN_OPTIONS": asan + ":verify_asan_link_order=0"}
    env.update({"FERRY_FAULT_" + name.upper(): str(value) for name, value in faults.items()})
    return env


def _read_text(path):
    try:
        with open(path, "r", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def runs_under_tsan(pid):
    """Whether process pid is a ThreadSanitizer build (scripts/test --tsan): memory
    figures mean little there."""
    with open("/proc/%d/maps" % pid) as maps:
        return "libtsan" in maps.read()


def _check_sanitizers(what, text):
    for marker in SANITIZER_MARKERS:
        if marker in text:
            raise AssertionError("%s: sanitizer report (%r):\n%s" % (what, marker, text))


# ---- ports -----------------------------------------------------------------------

_ports_given = set()


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago for TCP and UDP alike (bound to port 0 and
    released; a udp listener may get it, and a port the kernel picked for TCP can be
    some UDP socket's), never one this process was given before: the ports of one
    config (say a listener and the admin API) are asked for before ferry binds any of
    them, and must not collide."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port in _ports_given:
            continue
        _ports_given.add(port)
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as u:
                u.bind((host, port))
        except OSError:
            continue
        return port


def wait_port(host, port, timeout=10.0):
    """Polls until host:port accepts a TCP connection; AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as e:
            last = e
            time.sleep(0.02)
    raise AssertionError("%s:%d not accepting after %.1fs: %s" % (host, port, timeout, last))


def split_address(text):
    """"127.0.0.1:80" / "[::1]:80" / "0.0.0.0:80" -> (connectable host, port)."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if host in ("0.0.0.0", "", "*"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, int(port)


def _listening_inodes(ports):
    """{port: set of socket inodes in LISTEN state} from /proc/net/tcp{,6}."""
    found = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != "0A":
                continue
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if port in ports:
                found.setdefault(port, set()).add(fields[9])
    return found


def _socket_inodes(pid):
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        pass
    return inodes


def connections_to(pid, port):
    """How many TCP connections process pid holds to a peer on port (any state but
    LISTEN): e.g. ferry's upstream connections to one backend, idle ones included."""
    peers = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) >= 10 and fields[3] != "0A" and \
                    int(fields[2].rsplit(":", 1)[1], 16) == port:
                peers.add(fields[9])
    return len(peers & _socket_inodes(pid))


def is_listening(pid, port):
    """True when process pid holds a socket listening on port (no connection made, so
    nothing is counted as accepted or as a failed TLS handshake)."""
    listening = _listening_inodes({port}).get(port, set())
    return bool(listening & _socket_inodes(pid))


def accepted_connections(pid, port):
    """How many established connections to local `port` process pid holds: ones it
    has accepted, not ones still waiting in its listen backlog (read from /proc, so
    it works while the process cannot accept)."""
    inodes = _socket_inodes(pid)
    count = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (len(fields) >= 10 and fields[3] == "01" and fields[9] in inodes
                    and int(fields[1].rsplit(":", 1)[1], 16) == port):
                count += 1
    return count


def cpu_seconds(pid):
    """User + system CPU time process pid has used so far (all its threads)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- processes -------------------------------------------------------------------

class Backend:
    """A demo_backend process.

    Backend(name="a") listens on 127.0.0.1 and an ephemeral port chosen by the kernel
    (no race); pass port=N to reuse a port (e.g. a backend coming back). mode "http" or
    "echo"; tls=True serves TLS with the dev localhost certificate (or pass
    (cert, key)); health_file: /healthz answers 503 while that file exists and is
    empty, 200 with its content while it has one (see set_healthy(), set_health_body());
    fail_file: every request but /healthz answers 500 while that file exists (see
    set_failing()); extra: more command-line arguments (e.g. ["--idle-ms", "200"]).
    """

    def __init__(self, name="backend", mode="http", port=0, host="127.0.0.1", tls=False,
                 health_file=None, fail_file=None, extra=()):
        self.name = name
        self.mode = mode
        self.host = host
        self.port = port
        self.tls = tls
        self.health_file = health_file
        self.fail_file = fail_file
        self.extra = list(extra)
        self.proc = None
        self.stderr_path = None

    @property
    def address(self):
        """The address as ferry's config writes it: "127.0.0.1:N" or "[::1]:N"."""
        return ("[%s]:%d" if ":" in self.host else "%s:%d") % (self.host, self.port)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self, timeout=10.0):
        assert os.path.exists(DEMO_BACKEND), "demo_backend not built: %s" % DEMO_BACKEND
        listen = ("[%s]:%d" if ":" in self.host else "%s:%d") % (self.host, self.port)
        args = [DEMO_BACKEND, "--listen", listen, "--name", self.name, "--mode", self.mode]
        if self.tls:
            cert, key = self.tls if isinstance(self.tls, tuple) else (SERVER_CERT, SERVER_KEY)
            args += ["--tls", cert, key]
        if self.health_file:
            args += ["--health-file", self.health_file]
        if self.fail_file:
            args += ["--fail-file", self.fail_file]
        args += self.extra
        self.stderr_path = os.path.join(tmpdir(), "backend-%s-%d.err" % (
            self.name, int(time.monotonic() * 1e6)))
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err,
                                         env=_child_env())
        _running.append(self)
        line = self._read_ready(timeout)
        # "ready NAME ADDRESS": the kernel's port when we asked for port 0.
        self.port = split_address(line.split()[2])[1]
        return self

    def _read_ready(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.kill()
                raise AssertionError("demo_backend %s not ready: %r\n%s" % (
                    self.name, buf, _read_text(self.stderr_path)))
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    continue
                buf += chunk
        line = buf.decode().splitlines()[0]
        assert line.startswith("ready "), "unexpected first line %r" % line
        self.proc.stdout.close()
        return line

    def set_healthy(self, healthy):
        """Flips /healthz (needs health_file)."""
        assert self.health_file, "Backend needs health_file= to flip health"
        if healthy:
            if os.path.exists(self.health_file):
                os.unlink(self.health_file)
        else:
            open(self.health_file, "w").close()

    def set_health_body(self, text):
        """/healthz answers 200 with this body (needs health_file)."""
        assert self.health_file and text, "Backend needs health_file= and a body"
        with open(self.health_file, "w") as f:
            f.write(text)

    def set_failing(self, failing):
        """Every request but /healthz answers 500 (needs fail_file)."""
        assert self.fail_file, "Backend needs fail_file= to fail"
        if not failing:
            if os.path.exists(self.fail_file):
                os.unlink(self.fail_file)
        else:
            open(self.fail_file, "w").close()

    def request(self, raw, timeout=5.0):
        """A raw request sent straight to this backend (not through ferry)."""
        return http_request(self.port, raw, host=self.host, tls=bool(self.tls),
                            timeout=timeout)

    def stats(self):
        """GET /__stats straight from the backend: {"connections", "requests", "healthz",
        "stats", "active"}. Counts include the /__stats requests themselves (one
        connection and one request each, this one included) and health checks; the
        extra key "app_requests" is requests minus both."""
        raw = b"GET /__stats HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
        status, _, body = parse_response(self.request(raw))
        assert status == 200, "/__stats answered %s" % status
        stats = json.loads(body)
        stats["app_requests"] = stats["requests"] - stats["stats"] - stats["healthz"]
        return stats

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signals the backend and waits; returns its exit code. Fails on a sanitizer
        report or when it does not exit in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("demo_backend %s ignored signal %d" % (self.name, sig))
        rc = self.proc.returncode
        self._forget()
        _check_sanitizers("demo_backend %s" % self.name, _read_text(self.stderr_path))
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._forget()

    def _forget(self):
        if self in _running:
            _running.remove(self)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.proc is None:
            return False
        if exc_type is not None:
            self.kill()
            return False
        rc = self.stop()
        assert rc == 0, "demo_backend %s exited %s:\n%s" % (
            self.name, rc, _read_text(self.stderr_path))
        return False


class Ferry:
    """A ferry process running the given config dict (the JSON of design.md).

    When the config has no "admin" key, an admin listener on a free loopback port is
    added, so that parallel tests never fight over the default 127.0.0.1:9901; pass
    "admin": None to run without one. start() returns once every listener (and the
    admin port) is listening. env: more environment variables for the process (say
    fault_env(...)); binary: another ferry executable than FERRY_BIN.
    """

    def __init__(self, config, name="ferry", env=None, binary=None):
        self.config = json.loads(json.dumps(config))   # a private deep copy
        if "admin" not in self.config:
            self.config["admin"] = {"listen": "127.0.0.1:%d" % free_port()}
        self.name = name
        self.env = dict(env or {})
        self.binary = binary or FERRY_BIN
        self.proc = None
        d = tempfile.mkdtemp(prefix=name + "-", dir=tmpdir())
        self.config_path = os.path.join(d, "ferry.json")
        self.stdout_path = os.path.join(d, "stdout.log")
        self.stderr_path = os.path.join(d, "stderr.log")
        self.write_config(self.config)

    # -- config ------------------------------------------------------------------
    def write_config(self, config):
        """Rewrites the config file (then reload() or admin POST /reload). Under
        valgrind, the timeouts a test leaves at their defaults are SLOW times longer:
        the first TLS handshake alone can take seconds there."""
        self.config = json.loads(json.dumps(config))
        if VALGRIND:
            timeouts = self.config.setdefault("timeouts", {})
            for key, default_ms in VALGRIND_TIMEOUTS_MS.items():
                timeouts.setdefault(key, default_ms * SLOW)
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)

    def listen_addresses(self, config=None):
        """The TCP addresses ferry listens on (udp listeners are bound before the admin
        API listens, so waiting for that covers them)."""
        config = config or self.config
        addrs = [l["listen"] for l in config.get("listeners", {}).values()
                 if "listen" in l and l.get("mode") != "udp"]
        admin = config.get("admin")
        if admin:
            addrs.append(admin.get("listen", "127.0.0.1:9901"))
        return [split_address(a) for a in addrs]

    @property
    def admin_port(self):
        admin = self.config.get("admin")
        return split_address(admin.get("listen", "127.0.0.1:9901"))[1] if admin else None

    def port(self, listener):
        """The port of the named listener."""
        return split_address(self.config["listeners"][listener]["listen"])[1]

    # -- process -----------------------------------------------------------------
    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self, timeout=15.0):
        assert os.path.exists(self.binary), "ferry not built: %s" % self.binary
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(ferry_command("-c", self.config_path,
                                                       binary=self.binary), stdout=out,
                                         stderr=err, cwd=SRC,
                                         env=dict(_child_env(), **self.env))
        _running.append(self)
        self.wait_listening(timeout=timeout * SLOW)
        return self

    def wait_listening(self, addresses=None, timeout=15.0):
        """Polls until ferry listens on every (host, port) (default: all in the config)."""
        ports = [p for _, p in (addresses or self.listen_addresses())]
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self._forget()
                raise AssertionError("ferry exited %s during startup:\n%s" % (rc, self.log()))
            missing = [p for p in ports if not is_listening(self.proc.pid, p)]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise AssertionError("ferry not listening on %s after %.1fs:\n%s" % (
                    missing, timeout, self.log()))
            time.sleep(0.02)

    def reload(self):
        """SIGHUP: re-read the config file (see write_config())."""
        self.proc.send_signal(signal.SIGHUP)

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def is_running(self):
        return self.proc is not None and self.proc.poll() is None

    def stdout(self):
        return _read_text(self.stdout_path)

    def stderr(self):
        return _read_text(self.stderr_path)

    def log(self):
        return "---- ferry stdout ----\n%s---- ferry stderr ----\n%s" % (
            self.stdout(), self.stderr())

    def wait_log(self, text, timeout=10.0, stream="any"):
        """Polls the logs until `text` appears; returns the log."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            got = {"stdout": self.stdout, "stderr": self.stderr}.get(stream, self.log)()
            if text in got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError("%r not in ferry log after %.1fs:\n%s" % (
                    text, timeout, self.log()))
            time.sleep(0.02)

    def stop(self, sig=signal.SIGTERM, timeout=35.0):
        """Signals ferry and waits; returns the exit code. Fails (printing the log) on a
        sanitizer report or when ferry does not exit within timeout."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._forget()
                raise AssertionError("ferry did not exit %.1fs after signal %d:\n%s" % (
                    timeout, sig, self.log()))
        self._forget()
        try:
            _check_sanitizers("ferry", self.stderr())
        except AssertionError:
            print(self.log(), file=sys.stderr)
            raise
        return self.proc.returncode

    def wait_exit(self, timeout=30.0):
        """Waits for ferry to exit by itself (no signal); returns the exit code. Fails
        (printing the log) on a sanitizer report or when it is still running."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("ferry still running after %.1fs:\n%s" % (timeout, self.log()))
        self._forget()
        try:
            _check_sanitizers("ferry", self.stderr())
        except AssertionError:
            print(self.log(), file=sys.stderr)
            raise
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._forget()

    def _forget(self):
        if self in _running:
            _running.remove(self)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.proc is None or self not in _running:
            return False
        if exc_type is not None:
            self.kill()
            print(self.log(), file=sys.stderr)
            _check_sanitizers("ferry", self.stderr())
            return False
        rc = self.stop()
        assert rc == 0, "ferry exited %s on SIGTERM:\n%s" % (rc, self.log())
        return False

    # -- admin -------------------------------------------------------------------
    def admin(self, method, path, body=b"", token=None, timeout=5.0):
        """One admin API request -> (status, headers, body bytes)."""
        assert self.admin_port, "this ferry runs without admin"
        head = "%s %s HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n" % (method, path)
        if token:
            head += "Authorization: Bearer %s\r\n" % token
        head += "Content-Length: %d\r\n\r\n" % len(body)
        return parse_response(http_request(self.admin_port, head.encode() + body,
                                           timeout=timeout))

    def status(self, token=None):
        """GET /status, parsed."""
        code, _, body = self.admin("GET", "/status", token=token)
        assert code == 200, "GET /status -> %s %r" % (code, body)
        return json.loads(body)

    def metrics(self, token=None):
        """GET /metrics, parsed strictly (parse_metrics)."""
        code, headers, body = self.admin("GET", "/metrics", token=token)
        assert code == 200, (code, body)
        assert headers["content-type"].startswith("text/plain"), headers
        return parse_metrics(body.decode())

    # -- config check ------------------------------------------------------------
    @staticmethod
    def check(config, timeout=15.0):
        """`ferry -t -c FILE` on a dict (written as JSON) or a str (written verbatim,
        for syntax errors) -> (rc, stdout + stderr)."""
        fd, path = tempfile.mkstemp(prefix="check-", suffix=".json", dir=tmpdir())
        with os.fdopen(fd, "w") as f:
            f.write(config if isinstance(config, str) else json.dumps(config, indent=2))
        res = subprocess.run(ferry_command("-t", "-c", path), cwd=SRC, env=_child_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=timeout * SLOW)
        out = res.stdout.decode(errors="replace")
        _check_sanitizers("ferry -t", out)
        return res.returncode, out


# ---- Prometheus text (GET /metrics) ----------------------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9][0-9.eE+-]*|NaN|[+-]Inf)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def unescape_label(value):
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value}; asserts every line is well formed
    and every sample's family was declared with # TYPE before it."""
    samples, typed = {}, set()
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            assert len(parts) >= 3 and parts[1] in ("HELP", "TYPE"), "bad comment %r" % line
            if parts[1] == "TYPE":
                assert parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"), line
                typed.add(parts[2])
            continue
        m = SAMPLE.match(line)
        assert m, "malformed sample line %r" % line
        name, labels_text = m.group(1), m.group(3) or ""
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or family in typed, "sample %r before its # TYPE" % name
        labels, pos = {}, 0
        while pos < len(labels_text):
            lm = LABEL.match(labels_text, pos)
            assert lm, "malformed labels in %r" % line
            labels[lm.group(1)] = unescape_label(lm.group(2))
            pos = lm.end()
        key = (name, frozenset(labels.items()))
        assert key not in samples, "duplicate sample %r" % line
        samples[key] = float(m.group(4))
    return samples


def metric(samples, name, **labels):
    """One sample of parse_metrics' result; AssertionError when it is missing."""
    key = (name, frozenset(labels.items()))
    assert key in samples, "no sample %s%r in %r" % (name, labels, sorted(samples)[:50])
    return samples[key]


# ---- clients ---------------------------------------------------------------------

def client_tls_context(verify=True, cert=None, key=None, alpn=None):
    """A client SSLContext trusting the dev CA (or trusting nothing when verify=False)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(CA_CERT)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def client_hello():
    """The first flight of a real TLS client (its ClientHello record), as bytes: for
    clients that stop in the middle of a handshake."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_tls_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def unfinished_handshakes_then_a_client(ferry, listener):
    """For a listener with tls, limits.max_connections 2 and timeouts.client_header_ms
    set: two clients that never finish a handshake (one silent, one sending half a
    ClientHello) take both slots, then a TLS client connects, waiting in the kernel
    backlog until ferry gives a slot back. -> (seconds it waited, its TLS socket,
    [(what, socket) of the two])."""
    port = ferry.port(listener)
    header_s = ferry.config["timeouts"]["client_header_ms"] / 1000

    def accepted():
        return ferry.status()["listeners"][listener]["accepted"]
    before = accepted()
    hello = client_hello()
    begin = time.monotonic()
    silent, half = connect(port), connect(port)
    half.sendall(hello[:len(hello) // 2])
    # the count, not the open connections: a slow poll may come after they were closed
    poll_until(lambda: accepted() == before + 2, message="both accepted")
    try:
        tls = connect(port, context=client_tls_context(), timeout=5)
    except (socket.timeout, ssl.SSLError, OSError) as e:
        raise AssertionError("no connection slot came back within 5 s: %r" % e)
    waited = time.monotonic() - begin
    # ferry under valgrind needs longer for the TLS handshake it then does
    assert 0.9 * header_s <= waited < (header_s + 2.5) * SLOW, \
        "waiting client served after %.2fs" % waited
    return waited, tls, [("silent", silent), ("half a ClientHello", half)]


def connect(port, host="127.0.0.1", tls=False, server_hostname="localhost", timeout=None,
            context=None):
    """A connected socket (TLS-wrapped when tls or context is given); its blocking
    calls time out after `timeout` seconds (default 5, SLOW times that under valgrind)."""
    timeout = 5.0 * SLOW if timeout is None else timeout
    sock = socket.create_connection((host, port), timeout=timeout)
    if tls or context is not None:
        ctx = context or client_tls_context()
        sock = ctx.wrap_socket(sock, server_hostname=server_hostname)
    return sock


def http_request(port, raw, tls=False, timeout=None, host="127.0.0.1",
                 server_hostname="localhost", context=None, half_close=False):
    """Sends raw bytes and returns everything read until the peer closes or `timeout`
    seconds pass without it. half_close=True shuts our write side after sending."""
    timeout = 5.0 * SLOW if timeout is None else timeout
    with connect(port, host, tls, server_hostname, timeout, context) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return read_until_close(sock, timeout)


def assert_garbage_hello_refused(port):
    """Sends a TLS record header followed by 512 random bytes where a ClientHello
    belongs; the server must answer with nothing but an alert, then close."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as garbage:
        garbage.sendall(b"\x16\x03\x01\x02\x00" + os.urandom(512))
        reply = read_until_close(garbage, timeout=5)
    assert reply == b"" or reply.startswith(b"\x15\x03"), "not an alert: %r" % reply


def read_until_close(sock, timeout=5.0):
    deadline = time.monotonic() + timeout
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(data)
        sock.settimeout(left)
        try:
            chunk = sock.recv(262144)
        except (socket.timeout, ssl.SSLError, ConnectionResetError):
            return bytes(data)
        if not chunk:
            return bytes(data)
        data += chunk


class Incomplete(Exception):
    """More bytes are needed to parse a whole response; `need`, when known, is the
    total length the data must reach before parsing can progress."""

    def __init__(self, need=None):
        super().__init__(need)
        self.need = need


def _parse_head(data, start):
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        raise Incomplete()
    lines = data[start:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    assert len(parts) >= 2 and parts[0].startswith("HTTP/"), "bad status line %r" % lines[0]
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        assert sep, "bad header line %r" % line
        name = name.strip().lower()
        value = value.strip()
        headers[name] = headers[name] + ", " + value if name in headers else value
    return parts[0], int(parts[1]), headers, end + 4


def _parse_chunked(data, pos):
    body = []
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            raise Incomplete()
        size = int(data[pos:eol].split(b";")[0].strip(), 16)
        pos = eol + 2
        if size == 0:
            while True:     # trailers up to the empty line
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    raise Incomplete()
                pos, is_end = eol + 2, eol == pos
                if is_end:
                    return b"".join(body), pos
        if len(data) < pos + size + 2:
            raise Incomplete()
        body.append(bytes(data[pos:pos + size]))
        assert data[pos + size:pos + size + 2] == b"\r\n", "chunk without CRLF"
        pos += size + 2


def parse_one(data, start=0, eof=True, head_request=False):
    """One response starting at data[start]: (status, headers, body, end offset).
    Interim 1xx responses (except 101) are skipped. A response delimited by close takes
    the rest of data when eof is True. Raises Incomplete when more bytes are needed."""
    while True:
        version, status, headers, pos = _parse_head(data, start)
        if 100 <= status < 200 and status != 101:
            start = pos
            continue
        break
    if head_request or status in (101, 204, 304) or 100 <= status < 200:
        return status, headers, b"", pos
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, end = _parse_chunked(data, pos)
        return status, headers, body, end
    if "content-length" in headers:
        n = int(headers["content-length"])
        if len(data) < pos + n:
            raise Incomplete(pos + n)
        return status, headers, bytes(data[pos:pos + n]), pos + n
    if not eof:
        raise Incomplete()
    return status, headers, bytes(data[pos:]), len(data)


def parse_response(data, head_request=False):
    """(status, {lower-case name: value}, body) of the first final response in data;
    handles Content-Length, chunked and close-delimited bodies."""
    try:
        status, headers, body, _ = parse_one(data, head_request=head_request)
    except Incomplete:
        raise AssertionError("incomplete response: %r" % data[:300])
    return status, headers, body


def parse_responses(data):
    """Every response in data (pipelining), in order: [(status, headers, body)]."""
    out, pos = [], 0
    while pos < len(data):
        try:
            status, headers, body, pos = parse_one(data, pos)
        except Incomplete:
            raise AssertionError("incomplete response at %d: %r" % (pos, data[pos:pos + 300]))
        out.append((status, headers, body))
    return out


class Client:
    """One client connection for keep-alive tests: send(), then read_response() parses
    exactly one response by its framing and keeps whatever follows."""

    def __init__(self, port, host="127.0.0.1", tls=False, server_hostname="localhost",
                 timeout=None, context=None):
        timeout = 5.0 * SLOW if timeout is None else timeout
        self.sock = connect(port, host, tls, server_hostname, timeout, context)
        self.timeout = timeout
        self.buf = bytearray()       # received, not yet consumed
        self.closed_by_peer = False

    @classmethod
    def over(cls, sock, timeout=None):
        """A Client on a socket connected (and wrapped) by the caller."""
        timeout = 5.0 * SLOW if timeout is None else timeout
        c = cls.__new__(cls)
        c.sock, c.timeout, c.buf, c.closed_by_peer = sock, timeout, bytearray(), False
        return c

    def send(self, raw):
        self.sock.sendall(raw)

    def request(self, method, path, headers=None, body=b"", host="localhost"):
        """Sends one HTTP/1.1 request and returns read_response()."""
        head = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, path, host)
        for name, value in (headers or {}).items():
            head += "%s: %s\r\n" % (name, value)
        if body or method in ("POST", "PUT"):
            head += "Content-Length: %d\r\n" % len(body)
        self.send(head.encode() + b"\r\n" + body)
        return self.read_response(head_request=method == "HEAD")

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timeout waiting for a response; have %r" % self.buf[:300])
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(262144)
        except (ConnectionResetError, ssl.SSLError):
            chunk = b""
        except socket.timeout:
            raise AssertionError("timeout waiting for a response; have %r" % self.buf[:300])
        if not chunk:
            self.closed_by_peer = True
        self.buf += chunk

    def read_response(self, head_request=False, timeout=None):
        """-> (status, headers, body). AssertionError on timeout or close mid-response."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                status, headers, body, end = parse_one(self.buf, eof=self.closed_by_peer,
                                                       head_request=head_request)
                del self.buf[:end]
                return status, headers, body
            except Incomplete as more:
                if self.closed_by_peer:
                    raise AssertionError("connection closed mid-response: %r" % self.buf[:300])
                self._fill(deadline)
                while more.need and len(self.buf) < more.need and not self.closed_by_peer:
                    self._fill(deadline)

    def read_exactly(self, n, timeout=None):
        """n raw bytes (after an upgrade, say)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            if self.closed_by_peer:
                raise AssertionError("closed after %d of %d bytes" % (len(self.buf), n))
            self._fill(deadline)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def is_closed_by_peer(self, timeout=2.0):
        """Waits up to timeout for the peer's EOF; True if it came (unread bytes are kept)."""
        deadline = time.monotonic() + timeout
        while not self.closed_by_peer:
            try:
                self._fill(deadline)
            except AssertionError:
                return False
        return True

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def send_while_reading(sock, data, want, timeout=30.0):
    """Sends `data` and reads until `want` bytes came back, in one thread (an SSL socket
    must not be read and written from two threads at once: OpenSSL objects are not
    thread-safe, and such a test fails on its own). Returns the bytes read."""
    sock.setblocking(False)
    view, sent, got = memoryview(data), 0, bytearray()
    deadline = time.monotonic() + timeout
    try:
        while len(got) < want:
            left = deadline - time.monotonic()
            assert left > 0, "timeout: sent %d of %d, got %d of %d" % (sent, len(data), len(got), want)
            buffered = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
            readable, writable, _ = select.select(
                [sock], [sock] if sent < len(data) else [], [], 0 if buffered else min(left, 1.0))
            if writable:
                try:
                    sent += sock.send(view[sent:sent + 65536])
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    pass
            if readable or buffered:
                try:
                    chunk = sock.recv(262144)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    continue
                assert chunk, "closed after %d bytes" % len(got)
                got += chunk
    finally:
        sock.setblocking(True)
    return bytes(got)


class ClientThreads:
    """Load for a test: the client threads a subclass puts in self.threads run from
    `with` until stop(), which sets self.done (each thread loops until it is set) and
    requires every thread to end within join_s."""

    join_s = 20.0

    def __init__(self):
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.threads = []

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(self.join_s)
            assert not t.is_alive(), "%s: a client thread is stuck" % type(self).__name__


class Pusher:
    """Sends `total` bytes on sock from a thread (`data`, or b"z"s), as fast as the
    kernel takes them, counting what was taken in `sent`; shuts the write side after
    the last byte when shut_wr. For back-pressure tests: wait_stalled() returns once
    the count stops moving, i.e. every buffer on the way is full."""

    def __init__(self, sock, total, data=None, shut_wr=False):
        self.sent = 0
        self._thread = threading.Thread(target=self._push, args=(sock, total, data, shut_wr),
                                        daemon=True)
        self._thread.start()

    def _push(self, sock, total, data, shut_wr):
        view = memoryview(data) if data is not None else None
        filler = b"z" * 65536
        try:
            while self.sent < total:
                chunk = view[self.sent:self.sent + 65536] if view is not None \
                    else filler[:total - self.sent]
                self.sent += sock.send(chunk)
            if shut_wr:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def wait_stalled(self, timeout=20.0):
        """Polls until `sent` has not moved for 3 polls in a row; returns it."""
        last = [-1, 0]

        def stalled():
            last[1] = last[1] + 1 if self.sent == last[0] else 0
            last[0] = self.sent
            return last[1] >= 3
        poll_until(stalled, timeout=timeout, interval=0.1, message="sender stalls")
        return self.sent

    def join(self, timeout=5.0):
        self._thread.join(timeout)


def curl(args, timeout=30.0, quiet=True):
    """Runs the real curl: (rc, stdout bytes, stderr text). quiet adds -sS."""
    cmd = ["curl"] + (["-sS"] if quiet else []) + list(args)
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=timeout)
    return res.returncode, res.stdout, res.stderr.decode(errors="replace")


def rss_kib(pid):
    """Resident memory of a process, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def pattern_bytes(n, offset=0):
    """What demo_backend's /bytes/N sends: byte i = 'a' + i % 26."""
    unit = bytes(range(ord("a"), ord("a") + 26))
    reps = (offset % 26 + n) // 26 + 2
    return (unit * reps)[offset % 26:offset % 26 + n]


def poll_until(predicate, timeout=10.0, interval=0.02, message="condition"):
    """Calls predicate() until it returns a true value (returned); AssertionError after
    timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("%s not met after %.1fs" % (message, timeout))
        time.sleep(interval)


# ---- runner ----------------------------------------------------------------------

class _TestTimeout(Exception):
    pass


class Skip(Exception):
    """Raised by a test that does not apply to this run (reported SKIP, not a failure)."""


def _on_alarm(signum, frame):
    raise _TestTimeout("test exceeded its time limit")


def _cleanup_running():
    for proc in list(_running):
        try:
            proc.kill()
        except Exception:
            pass
        if isinstance(proc, Ferry):
            try:
                _check_sanitizers("ferry", proc.stderr())
            except AssertionError as e:
                print(e, file=sys.stderr)


def main(per_test_timeout=120):
    """Runs every test_* function of the calling file in definition order.
    Arguments on the command line select tests whose name contains any of them."""
    module = sys.modules["__main__"]
    tests = [(name, fn) for name, fn in vars(module).items()
             if name.startswith("test_") and callable(fn) and hasattr(fn, "__code__")]
    tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
    wanted = sys.argv[1:]
    if wanted:
        tests = [t for t in tests if any(w in t[0] for w in wanted)]
    assert tests, "no tests selected"

    signal.signal(signal.SIGALRM, _on_alarm)
    failed, skipped = [], []
    start_all = time.monotonic()
    for name, fn in tests:
        start = time.monotonic()
        signal.alarm(per_test_timeout * SLOW)
        verdict = "PASS"
        try:
            fn()
            ok = True
        except Skip as why:
            ok = True
            verdict = "SKIP"
            skipped.append(name)
            print("%s: %s" % (name, why))
        except BaseException as e:       # noqa: B036 - report KeyboardInterrupt too
            ok = False
            traceback.print_exc()
            if isinstance(e, KeyboardInterrupt):
                failed.append(name)
                _cleanup_running()
                break
        finally:
            signal.alarm(0)
        leaked = list(_running)
        _cleanup_running()
        if ok and leaked:
            print("%s left processes running: %s" % (name, leaked), file=sys.stderr)
        print("%s %s (%.2fs)" % (verdict if ok else "FAIL", name, time.monotonic() - start),
              flush=True)
        if not ok:
            failed.append(name)
    total = time.monotonic() - start_all
    print("%d passed, %d failed%s (%.1fs)%s" % (
        len(tests) - len(failed) - len(skipped), len(failed),
        ", %d skipped" % len(skipped) if skipped else "", total,
        ": " + " ".join(failed) if failed else ""))
    if _tmpdir is not None and not failed:
        subprocess.run(["rm", "-rf", _tmpdir])
    elif _tmpdir is not None:
        print("scratch files kept in %s" % _tmpdir)
    sys.exit(1 if failed else 0)
