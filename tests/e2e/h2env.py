"""h2env — what the HTTP/2 e2e files share besides the client: the config they run
(h2_config), the proxy under test (proxy()), and the reference switch.

By default the proxy under test is ferry. FERRY_E2E_REFERENCE=haproxy runs the same
tests against HAProxy (Debian's haproxy, started in the foreground) with ferry's config
translated to an equivalent haproxy.cfg, so that a test can be checked against a
known-good HTTP/2 proxy: a test that fails there tests the wrong thing (or a place where
HAProxy and the contract differ). Tests of ferry-only behaviour (its config keys,
/status, /metrics, the access log, reload) call ferry_only() first and are skipped.
"""

import os
import signal
import subprocess
import tempfile
import time

import ferrytest as ft

REFERENCE = os.environ.get("FERRY_E2E_REFERENCE", "")
assert REFERENCE in ("", "haproxy"), "FERRY_E2E_REFERENCE: only 'haproxy' is known"


def is_reference():
    return REFERENCE == "haproxy"


def ferry_only(why="ferry-specific behaviour"):
    """Skips the calling test when it runs against the reference proxy."""
    if is_reference():
        raise ft.Skip("%s (reference run)" % why)


def h2_config(*backends, h2c=True, alpn=None, http2=None, routes=None, timeouts=None,
              limits=None, access="off", pool=None, workers=1):
    """Two http listeners in front of pool "web" (the backends, round-robin):
    "tls" — TLS with the dev certificate, `alpn` when given (else ferry's default);
    "plain" — no TLS, http2.h2c = h2c. `http2` (a dict) goes to both listeners;
    `routes` replaces the listeners' "pool"."""
    tls = {"certificates": [{"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY}]}
    if alpn is not None:
        tls["alpn"] = alpn
    listeners = {
        "tls": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http", "tls": tls},
        "plain": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "http",
                  "http2": dict(http2 or {}, h2c=h2c)},
    }
    if http2:
        listeners["tls"]["http2"] = dict(http2)
    for listener in listeners.values():
        if routes is not None:
            listener["routes"] = routes
        else:
            listener["pool"] = "web"
    pools = {"web": dict({"backends": [{"address": b.address, "name": b.name}
                                       for b in backends]}, **(pool or {}))}
    for route in routes or []:
        pools.setdefault(route["pool"], {"backends": [{"address": b.address, "name": b.name}
                                                      for b in backends]})
    config = {"workers": workers, "log": {"level": "info", "access": access, "format": "json"},
              "listeners": listeners, "pools": pools}
    if timeouts:
        config["timeouts"] = timeouts
    if limits:
        config["limits"] = limits
    return config


def proxy(config):
    """The proxy under test for this config, not started (use it in a `with`)."""
    return HAProxy(config) if is_reference() else ft.Ferry(config)


# ---- HAProxy as the reference ------------------------------------------------------

def _ms(value):
    return "%dms" % value


class HAProxy:
    """HAProxy running a translation of a ferry config: the same listeners (TLS with
    ALPN, or plain, where HAProxy also takes the h2c preface), routes (host and path
    prefix), pools (round_robin / least_conn, weights, retries), timeouts and header
    limits, and X-Forwarded-For/-Proto/-Host. Its own errors look like ferry's in
    status; nothing else of ferry (admin API, access log, reload) is there."""

    is_reference = True
    graceful_signal = signal.SIGUSR1      # HAProxy's soft stop; its SIGTERM is a hard stop

    def __init__(self, config, name="haproxy"):
        self.config = config
        self.proc = None
        d = tempfile.mkdtemp(prefix=name + "-", dir=ft.tmpdir())
        self.dir = d
        self.config_path = os.path.join(d, "haproxy.cfg")
        self.log_path = os.path.join(d, "haproxy.log")
        self.pem = os.path.join(d, "localhost.pem")
        with open(self.pem, "w") as out:
            for path in (ft.SERVER_CERT, ft.SERVER_KEY):
                with open(path) as f:
                    out.write(f.read())
        with open(self.config_path, "w") as f:
            f.write(self.render())

    def port(self, listener):
        return ft.split_address(self.config["listeners"][listener]["listen"])[1]

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def render(self):
        c = self.config
        t = dict({"connect_ms": 3000, "client_header_ms": 10000, "client_idle_ms": 60000,
                  "upstream_response_ms": 30000, "drain_ms": 30000}, **c.get("timeouts", {}))
        lim = dict({"max_header_bytes": 16384, "max_headers": 100, "max_body_bytes": 0},
                   **c.get("limits", {}))
        h2 = {}
        for listener in c["listeners"].values():
            h2.update(listener.get("http2", {}))
        lines = ["global", "  nbthread 1", "  maxconn 4000",
                 # a header list larger than bufsize - maxrewrite is refused
                 "  tune.bufsize %d" % (16384 if lim["max_header_bytes"] <= 16384
                                        else lim["max_header_bytes"] + 1024),
                 "  tune.maxrewrite 1024",
                 "  tune.http.maxhdr %d" % lim["max_headers"],
                 "  tune.h2.max-concurrent-streams %d" % h2.get("max_concurrent_streams", 128),
                 "  tune.h2.initial-window-size %d" % h2.get("initial_window_bytes", 65535),
                 "  tune.h2.max-frame-size %d" % h2.get("max_frame_bytes", 16384),
                 "  hard-stop-after %dms" % t["drain_ms"],
                 "defaults", "  mode http", "  log stdout format raw local0",
                 "  timeout connect " + _ms(t["connect_ms"]),
                 "  timeout client " + _ms(t["client_idle_ms"]),
                 "  timeout http-keep-alive " + _ms(t["client_idle_ms"]),
                 "  timeout http-request " + _ms(t["client_header_ms"]),
                 "  timeout server " + _ms(t["upstream_response_ms"]),
                 "  option http-keep-alive", ""]
        for name, listener in c["listeners"].items():
            lines += self._frontend(name, listener, lim)
        lines += ["backend _no_route", "  http-request return status 404", ""]
        for name, pool in c["pools"].items():
            balance = {"round_robin": "roundrobin", "least_conn": "leastconn"}[
                pool.get("balance", "round_robin")]
            lines += ["backend pool_" + name, "  balance " + balance,
                      "  retries %d" % pool.get("retries", 1), "  option redispatch 1"]
            check = pool.get("health_check")
            server_check = ""
            if check:
                if check.get("type") == "http":
                    lines += ["  option httpchk GET %s" % check.get("path", "/"),
                              "  http-check expect status %s" % ",".join(
                                  str(s) for s in check.get("expect_status", [200]))]
                lines.append("  timeout check %dms" % check.get("timeout_ms", 1000))
                server_check = " check inter %d rise %d fall %d" % (
                    check.get("interval_ms", 2000), check.get("rise", 2), check.get("fall", 3))
            for i, b in enumerate(pool["backends"]):
                lines.append("  server s%d %s weight %d%s" % (i, b["address"], b.get("weight", 1),
                                                           server_check))
            lines.append("")
        return "\n".join(lines) + "\n"

    def _frontend(self, name, listener, lim):
        host, port = ft.split_address(listener["listen"])
        bind = "  bind %s:%d" % (host, port)
        tls = listener.get("tls")
        if tls:
            bind += " ssl crt %s alpn %s" % (self.pem, ",".join(tls.get("alpn", ["h2", "http/1.1"])))
        lines = ["frontend " + name, bind, "  option forwardfor",
                 "  http-request set-header X-Forwarded-Proto %s" % ("https" if tls else "http"),
                 "  http-request set-header X-Forwarded-Host %[req.hdr(host)]"]
        if lim["max_body_bytes"]:
            lines.append("  http-request deny deny_status 413 if { req.hdr_val(content-length) gt %d }"
                         % lim["max_body_bytes"])
        routes = listener.get("routes") or [{"pool": listener["pool"]}]
        for i, route in enumerate(routes):
            conds = []
            match = route.get("match", {})
            if "host" in match:
                h = match["host"].lower()
                flag = "-m end %s" % h[1:] if h.startswith("*.") else "-m str %s" % h
                lines.append("  acl r%d_host req.hdr(host),field(1,:),lower %s" % (i, flag))
                conds.append("r%d_host" % i)
            if "path_prefix" in match:
                lines.append("  acl r%d_path path_beg %s" % (i, match["path_prefix"]))
                conds.append("r%d_path" % i)
            lines.append("  use_backend pool_%s%s" % (route["pool"],
                                                       " if " + " ".join(conds) if conds else ""))
        lines += ["  default_backend _no_route", ""]
        return lines

    def start(self, timeout=15.0):
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(["haproxy", "-db", "-f", self.config_path],
                                         stdout=out, stderr=subprocess.STDOUT)
        ft._running.append(self)
        ports = [ft.split_address(l["listen"])[1] for l in self.config["listeners"].values()]
        deadline = time.monotonic() + timeout
        while not all(ft.is_listening(self.proc.pid, p) for p in ports):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError("haproxy did not start:\n%s" % self.log())
            time.sleep(0.02)
        return self

    def log(self):
        return ft._read_text(self.log_path) + "\n---- haproxy.cfg ----\n" + ft._read_text(
            self.config_path)

    def stop(self, sig=15, timeout=35.0):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("haproxy ignored signal %d" % sig)
        self._forget()
        # SIGTERM is HAProxy's hard stop; its exit status then says nothing of interest
        return 0

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._forget()

    def _forget(self):
        if self in ft._running:
            ft._running.remove(self)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            print(self.log())
            self.kill()
        else:
            self.stop()
        return False
