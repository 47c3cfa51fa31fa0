"""The processes under test for scripts/bench: two nginx backends, two dnsmasq (the
udp test's DNS servers) and the three proxies (ferry, nginx, HAProxy), rendered from
templates/ into a private temp dir each, run as the current user in the foreground,
never touching system services or files.
"""
import json
import os
import pwd
import re
import signal
import socket
import ssl
import subprocess
import time

import procs

HERE = os.path.dirname(os.path.abspath(__file__))
NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
# h2: the https listener (ECDSA, TLS 1.3) with HTTP/2 offered in ALPN (h2, http/1.1).
LISTENERS = ("http", "https", "https_rsa", "tcp", "h2")
TLS_CERT = {"https": "ec_cert", "https_rsa": "rsa_cert", "h2": "ec_cert"}


def render(template, values, dest):
    """Fill @NAME@ placeholders; every placeholder must be known (typos fail loudly)."""
    with open(os.path.join(HERE, "templates", template)) as f:
        text = f.read()
    for key, val in values.items():
        text = text.replace("@%s@" % key, str(val))
    left = re.findall(r"@[A-Z0-9_]+@", text)
    if left:
        raise RuntimeError("%s: unfilled placeholders %s" % (template, left))
    with open(dest, "w") as f:
        f.write(text)
    return dest


def user_directive():
    """nginx started as root would run its workers as 'nobody'; keep the current user."""
    if os.geteuid() == 0:
        return "user %s;" % pwd.getpwuid(0).pw_name
    return ""


def nginx_dirs(base):
    for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)


# ---------------------------------------------------------------- one request, checked

def http_get(port, path="/", tls=None, timeout=5.0):
    """GET PATH on 127.0.0.1:PORT with Connection: close. TLS is None or a dict
    {'ca': file, 'cert': expected leaf PEM file}. Returns (status, body) or raises
    OSError/ValueError with what went wrong."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        if tls:
            ctx = ssl.create_default_context(cafile=tls["ca"])
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
            with open(tls["cert"]) as f:
                want = ssl.PEM_cert_to_DER_cert(f.read())
            if sock.getpeercert(binary_form=True) != want:
                raise ValueError("served certificate is not %s" % tls["cert"])
        sock.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                      % path).encode())
        chunks = []
        while True:
            try:
                data = sock.recv(262144)
            except ssl.SSLError as e:  # peer closed without close_notify
                if "EOF" in str(e) or "eof" in str(e):
                    break
                raise
            if not data:
                break
            chunks.append(data)
    finally:
        sock.close()
    raw = b"".join(chunks)
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("no complete response header (%d bytes)" % len(raw))
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length" and int(value) != len(body):
            raise ValueError("body %d bytes, Content-Length %s" % (len(body), value.strip()))
    return status, body


def h2_get(port, path, tls, tmpdir, timeout=5.0):
    """GET PATH over HTTP/2 on 127.0.0.1:PORT, checked twice: a TLS handshake offering
    h2 and http/1.1 must select h2 and serve TLS['cert']; then curl --http2 makes the
    request and must report HTTP version 2. Returns (status, body) or raises."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        ctx = ssl.create_default_context(cafile=tls["ca"])
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        sock = ctx.wrap_socket(sock, server_hostname="localhost")
        chosen = sock.selected_alpn_protocol()
        if chosen != "h2":
            raise ValueError("h2 not negotiated (ALPN offered h2,http/1.1; server chose %s)"
                             % (chosen or "nothing"))
        with open(tls["cert"]) as f:
            want = ssl.PEM_cert_to_DER_cert(f.read())
        if sock.getpeercert(binary_form=True) != want:
            raise ValueError("served certificate is not %s" % tls["cert"])
    finally:
        sock.close()
    out = os.path.join(tmpdir, "h2-check.body")
    r = subprocess.run(["curl", "-sS", "--http2", "--cacert", tls["ca"], "--max-time",
                        str(timeout), "--resolve", "localhost:%d:127.0.0.1" % port,
                        "-o", out, "-w", "%{http_version} %{http_code}",
                        "https://localhost:%d%s" % (port, path)],
                       capture_output=True, text=True, timeout=timeout + 5)
    try:
        with open(out, "rb") as f:
            body = f.read()
        os.unlink(out)
    except OSError:
        body = b""
    if r.returncode != 0:
        raise ValueError("curl --http2 exit %d: %s" % (r.returncode, r.stderr.strip()[-160:]))
    version, _, status = r.stdout.strip().partition(" ")
    if version != "2":
        raise ValueError("curl --http2 got HTTP/%s, not HTTP/2" % version)
    return int(status), body


# ---------------------------------------------------------------- backends

class Backend:
    def __init__(self, env, name, port):
        self.env, self.name, self.port = env, name, port
        self.dir = os.path.join(env.tmp, "backend-" + name)
        self.proc = None

    def start(self):
        nginx_dirs(self.dir)
        conf = render("backend-nginx.conf", {
            "NAME": self.name, "USER": user_directive(), "DIR": self.dir,
            "PORT": self.port, "WWW": self.env.www}, os.path.join(self.dir, "nginx.conf"))
        argv = self.env.pin.prefix("backend") + [
            "nginx", "-p", self.dir, "-c", conf, "-g", "daemon off;"]
        self.proc = self.env.registry.spawn(argv, "backend " + self.name,
                                            os.path.join(self.dir, "stderr.log"))
        if not procs.wait_port(self.port, 10):
            raise RuntimeError("backend %s did not start: %s" % (self.name, self.log_tail()))
        for pid in procs.children(self.proc.pid):
            self.env.registry.remember(pid)

    def accepts(self):
        """Connections this backend accepted so far, the one asking included; None if
        it does not answer."""
        try:
            status, body = http_get(self.port, "/bench-stub", timeout=2)
            m = re.search(rb"^\s*(\d+) \d+ \d+", body, re.M)
            return int(m.group(1)) if status == 200 and m else None
        except (OSError, ValueError, IndexError):
            return None

    def pids(self):
        if self.proc is None or self.proc.poll() is not None:
            return []
        return [self.proc.pid] + procs.children(self.proc.pid)

    def log_tail(self):
        return tail(os.path.join(self.dir, "stderr.log"))


class DnsBackend:
    """dnsmasq answering names of DNS_NAMES (A records) on 127.0.0.1:PORT, no system
    files read, one process."""

    def __init__(self, env, name, port):
        self.env, self.name, self.port = env, name, port
        self.dir = os.path.join(env.tmp, "dns-" + name)
        self.proc = None

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        argv = self.env.pin.prefix("backend") + [
            "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
            "--no-hosts", "--bind-interfaces", "--listen-address=127.0.0.1",
            "--port=%d" % self.port, "--pid-file=", "--user=%s" % pwd.getpwuid(os.geteuid()).pw_name,
            "--cache-size=1000"] + ["--host-record=%s,192.0.2.%d" % (n, i + 1)
                                    for i, n in enumerate(DNS_NAMES)]
        self.proc = self.env.registry.spawn(argv, "dns backend " + self.name,
                                            os.path.join(self.dir, "stderr.log"))
        if not procs.wait_port(self.port, 10):   # its TCP socket; the UDP one is bound too
            raise RuntimeError("dns backend %s did not start: %s" % (self.name, self.log_tail()))

    def pids(self):
        return [self.proc.pid] if self.proc is not None and self.proc.poll() is None else []

    def log_tail(self):
        return tail(os.path.join(self.dir, "stderr.log"))


DNS_NAMES = ["www.example.test", "api.example.test", "mail.example.test", "db.example.test"]


def dns_query(port, timeout=3.0):
    """One A query for DNS_NAMES[0] over UDP: None if 192.0.2.1 came back, else why."""
    qid = 0x4242
    question = b"".join(bytes([len(label)]) + label.encode()
                        for label in DNS_NAMES[0].split(".")) + b"\0" + b"\0\x01\0\x01"
    query = qid.to_bytes(2, "big") + b"\x01\0\0\x01\0\0\0\0\0\0" + question
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(query, ("127.0.0.1", port))
        answer = s.recv(4096)
    except OSError as e:
        return "udp %d: %s" % (port, e)
    finally:
        s.close()
    if answer[:2] != query[:2] or not answer[2] & 0x80 or answer[3] & 0x0f:
        return "udp %d: not an answer: %r" % (port, answer[:16])
    return None if b"\xc0\x00\x02\x01" in answer else "udp %d: no 192.0.2.1 in the answer" % port


def tail(path, lines=8):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:]).strip()
    except OSError:
        return ""


# ---------------------------------------------------------------- proxies

class Proxy:
    """One proxy under test. Subclasses say how to configure, start and reload it."""
    name = "?"
    log_name = "stderr.log"
    log_hint = False  # add the log's last line to a failed readiness check

    def __init__(self, env):
        self.env = env
        self.dir = os.path.join(env.tmp, self.name)
        os.makedirs(self.dir, exist_ok=True)
        ports = procs.free_ports(len(LISTENERS) + 2)
        self.ports = dict(zip(LISTENERS + ("admin", "udp"), ports))
        self.proc = None
        self.start_error = None

    # -- configuration shared by all three
    def values(self):
        c = self.env.certs
        v = {"DIR": self.dir, "USER": user_directive(), "STREAM_MODULE": NGINX_STREAM_MODULE,
             "BACKEND1": self.env.backends[0].port, "BACKEND2": self.env.backends[1].port,
             "CERT_EC": c["ec_cert"], "KEY_EC": c["ec_key"],
             "CERT_RSA": c["rsa_cert"], "KEY_RSA": c["rsa_key"],
             "PEM_EC": c["ec_pem"], "PEM_RSA": c["rsa_pem"], "ADMIN": self.ports["admin"],
             "UPSTREAM_IDLE": self.env.upstream_idle, "UDP": self.ports["udp"],
             "DNS1": self.env.dns_backends[0].port, "DNS2": self.env.dns_backends[1].port}
        for k in LISTENERS:
            v[k.upper()] = self.ports[k]
        return v

    def available(self):
        """(True, '') or (False, why) before even trying to start."""
        return True, ""

    def argv(self):
        raise NotImplementedError

    def write_config(self):
        raise NotImplementedError

    def start(self):
        """Start and wait until every listener accepts. False (with start_error) if
        the proxy is unavailable, exits or never listens."""
        ok, why = self.available()
        if not ok:
            self.start_error = why
            return False
        self.write_config()
        argv = self.env.pin.prefix("proxy") + self.argv()
        self.proc = self.env.registry.spawn(argv, "proxy " + self.name,
                                            os.path.join(self.dir, self.log_name))
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.start_error = "exited with status %s: %s" % (self.proc.returncode,
                                                                  self.log_tail())
                return False
            # All four: a proxy may bind its listeners one after the other.
            if all(procs.wait_port(self.ports[l], 0.1) for l in LISTENERS) \
                    and self.worker_pids():
                for pid in self.worker_pids():
                    self.env.registry.remember(pid)
                self.start_error = None
                return True
        self.start_error = "listeners %s not all accepting after 10 s" % ", ".join(
            "%s=%d" % (l, self.ports[l]) for l in LISTENERS)
        self.stop()
        return False

    def stop(self):
        if self.proc is not None:
            self.env.registry.stop(self.proc)
            self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def worker_pids(self):
        """The process(es) that serve traffic: what CPU and RSS are measured on."""
        if not self.alive():
            return []
        kids = procs.children(self.proc.pid)
        return kids

    def all_pids(self):
        return ([self.proc.pid] + procs.children(self.proc.pid)) if self.alive() else []

    def reload(self):
        """Ask for a config reload. Returns None when sent, or a reason it can't."""
        raise NotImplementedError

    def mark_log(self):
        """Remember where the log ends, so reload_problem() reads only what follows."""
        try:
            self.log_mark = os.path.getsize(os.path.join(self.dir, self.log_name))
        except OSError:
            self.log_mark = 0

    def reload_problem(self):
        """None while reloads work, else why they don't (the reload row is then n/a)."""
        if not self.alive():
            return "exited after a reload signal (status %s): %s" % (
                self.proc.returncode if self.proc else "?", self.log_tail(3))
        return None

    def log_tail(self, lines=8):
        return tail(os.path.join(self.dir, self.log_name), lines)

    # -- readiness: one real request through the listener a test needs
    has_udp = True

    def check_udp(self):
        """None if the udp listener answers a DNS query from a DNS backend, else why."""
        if not self.has_udp:
            return "no UDP load balancing in this proxy"
        if not self.alive():
            return "not running (%s)" % (self.start_error or self.log_tail(3))
        return dns_query(self.ports["udp"])

    def check(self, listener, path="/"):
        """None if LISTENER answers PATH with 200 and a full body from a backend, else
        the reason (the row then prints n/a)."""
        if not self.alive():
            return "not running (%s)" % (self.start_error or self.log_tail(3))
        tls = None
        if listener in TLS_CERT:
            tls = {"ca": self.env.certs["ca"], "cert": self.env.certs[TLS_CERT[listener]]}
        why = None
        try:
            if listener == "h2":
                status, body = h2_get(self.ports[listener], path, tls, self.dir, timeout=5)
            else:
                status, body = http_get(self.ports[listener], path, tls, timeout=5)
        except (OSError, ValueError, IndexError, subprocess.SubprocessError) as e:
            why = "%s %s: %s" % (listener, path, e)
        else:
            want = self.env.file_sizes.get(path)
            if status != 200:
                why = "%s %s: status %d" % (listener, path, status)
            elif path == "/" and not body.startswith(b"ok b"):
                why = "%s /: unexpected body %r" % (listener, body[:40])
            elif want is not None and len(body) != want:
                why = "%s %s: %d bytes, want %d" % (listener, path, len(body), want)
        if why and self.log_hint:
            # Without its timestamp, so identical failures in every round read as one.
            last = re.sub(r"^\S*\d{4}-\d\d-\d\d[T ]\S+\s+", "", self.log_tail(1))
            if last:
                why += " (%s log: %s)" % (self.name, last[-160:])
        return why

    def reload_marker(self):
        """Something that changes when a reload took effect: here the set of worker
        PIDs (a reload forks new workers)."""
        return frozenset(self.worker_pids())

    @staticmethod
    def reloaded(before, after):
        return bool(after - before)


class NginxProxy(Proxy):
    name = "nginx"

    def available(self):
        if not os.path.exists(NGINX_STREAM_MODULE):
            return False, "%s missing (apt-get install libnginx-mod-stream)" % NGINX_STREAM_MODULE
        return True, ""

    def write_config(self):
        nginx_dirs(self.dir)
        self.conf = render("proxy-nginx.conf", self.values(),
                           os.path.join(self.dir, "nginx.conf"))

    def argv(self):
        return ["nginx", "-p", self.dir, "-c", self.conf, "-g", "daemon off;"]

    def reload(self):
        # Same as `nginx -p DIR -c CONF -s reload`, which just sends SIGHUP to the master.
        self.env.cmdlog.add(["kill", "-HUP", str(self.proc.pid)], "nginx reload")
        os.kill(self.proc.pid, signal.SIGHUP)
        return None


class HaproxyProxy(Proxy):
    name = "haproxy"
    has_udp = False     # the open-source edition balances TCP and HTTP only

    def write_config(self):
        self.conf = render("proxy-haproxy.cfg", self.values(),
                           os.path.join(self.dir, "haproxy.cfg"))

    def argv(self):
        return ["haproxy", "-W", "-f", self.conf]

    def reload_marker(self):
        """How many times the master logged "Loading success." (once per finished
        start or reload; a SIGUSR2 that arrives before it may be coalesced)."""
        try:
            with open(os.path.join(self.dir, self.log_name), errors="replace") as f:
                return f.read().count("Loading success.")
        except OSError:
            return None

    @staticmethod
    def reloaded(before, after):
        return before is not None and after is not None and after > before

    def reload(self):
        self.env.cmdlog.add(["kill", "-USR2", str(self.proc.pid)], "haproxy master-worker reload")
        os.kill(self.proc.pid, signal.SIGUSR2)
        return None


class FerryProxy(Proxy):
    name = "ferry"
    log_name = "ferry.log"
    log_hint = True
    NO_RELOAD = "reload not yet supported"

    def available(self):
        if not os.access(self.env.ferry_bin, os.X_OK):
            return False, "%s not built" % self.env.ferry_bin
        return True, ""

    H2_ALPN = '"alpn": ["h2", "http/1.1"]'

    def write_config(self):
        self.conf = render("proxy-ferry.json", self.values(),
                           os.path.join(self.dir, "ferry.json"))
        argv = [self.env.ferry_bin, "-t", "-c", self.conf]
        self.env.cmdlog.add(argv, "ferry config check")
        r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        if r.returncode != 0 and '"h2" is not supported' in r.stdout + r.stderr:
            # A ferry from before HTTP/2 (FERRY_BIN=...): its h2 listener offers
            # http/1.1 only, so the other tests still run and the h2 ones say n/a.
            with open(self.conf) as f:
                text = f.read()
            with open(self.conf, "w") as f:
                f.write(text.replace(self.H2_ALPN, '"alpn": ["http/1.1"]'))
            self.env.cmdlog.add(argv, "ferry config check, h2 listener without h2 (not supported)")
            r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            with open(os.path.join(self.dir, self.log_name), "a") as f:
                f.write("ferry -t failed (%d): %s%s\n" % (r.returncode, r.stdout, r.stderr))

    def argv(self):
        return [self.env.ferry_bin, "-c", self.conf]

    def worker_pids(self):
        # One process; its worker and main threads all count.
        return [self.proc.pid] if self.alive() else []

    def all_pids(self):
        return self.worker_pids()

    def reload(self):
        self.env.cmdlog.add(["kill", "-HUP", str(self.proc.pid)], "ferry reload")
        os.kill(self.proc.pid, signal.SIGHUP)
        return None

    def reload_marker(self):
        """The config generation from the admin API (None if it doesn't answer)."""
        try:
            with socket.create_connection(("127.0.0.1", self.ports["admin"]), timeout=2) as s:
                s.sendall(b"GET /status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            return int(json.loads(data.partition(b"\r\n\r\n")[2])["generation"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def reloaded(before, after):
        return before is not None and after is not None and after > before

    def reload_problem(self):
        problem = Proxy.reload_problem(self)
        if problem:
            return problem
        with open(os.path.join(self.dir, self.log_name), errors="replace") as f:
            f.seek(getattr(self, "log_mark", 0))
            if self.NO_RELOAD in f.read():
                return "ferry log says: %s" % self.NO_RELOAD
        return None


PROXIES = {"ferry": FerryProxy, "nginx": NginxProxy, "haproxy": HaproxyProxy}
