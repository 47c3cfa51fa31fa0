#!/usr/bin/env python3
"""Backends found by DNS, with a real DNS server from Debian: dnsmasq on a loopback port
answers for *.test from a hosts file (re-read on SIGHUP) and srv-host lines (a
restart on the same port), every TTL 1 s. Every config names that dnsmasq in
"resolvers": nothing here asks another resolver.

A name with two addresses reaches both; the record changing moves traffic under load
with no failed request (the time it takes is printed); the DNS server stopping leaves
the last answer serving; SRV weights are honoured (lower priorities are backups); an
AAAA-only name reaches a backend on [::1]; a name that never resolves gives 503 and
says why in /status, and `ferry -t` warns about it; a reload keeps the answers of the
names it keeps (the DNS server is down meanwhile, so a reload that looked up again
would leave the pool empty) and follows a change of resolvers."""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402
from l4env import DnsmasqProcess  # noqa: E402

TTL_S = 1


class Dnsmasq(DnsmasqProcess):
    """dnsmasq in the foreground on 127.0.0.1:port, authoritative for .test (NXDOMAIN for
    names it does not know), answering from a hosts file and srv-host lines only."""

    def __init__(self, name="dns", port=None):
        self.port = port or ft.free_port()
        self.address = "127.0.0.1:%d" % self.port
        d = os.path.join(ft.tmpdir(), "dnsmasq-%s-%d" % (name, self.port))
        os.makedirs(d, exist_ok=True)
        self.hosts_path = os.path.join(d, "hosts")
        self.conf_path = os.path.join(d, "srv.conf")
        self.log = os.path.join(d, "log")
        self.proc = None
        self.set_hosts({})
        self.set_srv([])

    def start(self):
        return self._launch(["--conf-file=" + self.conf_path, "--addn-hosts=" + self.hosts_path,
                             "--local=/test/", "--local-ttl=%d" % TTL_S,
                             "--user=" + pwd.getpwuid(os.getuid()).pw_name], append_log=True)

    def set_hosts(self, names):
        """{name: [address, ...]}; a running dnsmasq re-reads it (call reread())."""
        with open(self.hosts_path, "w") as f:
            for name, addresses in names.items():
                for address in addresses:
                    f.write("%s %s\n" % (address, name))

    def reread(self):
        self.proc.send_signal(signal.SIGHUP)

    def set_srv(self, records):
        """[(name, target, port, priority, weight)]: taken at the next start()."""
        with open(self.conf_path, "w") as f:
            for name, target, port, priority, weight in records:
                f.write("srv-host=%s,%s,%d,%d,%d\n" % (name, target, port, priority, weight))


def dig(server, name, rtype="A"):
    """The sorted answers of `server` for name (dig +short), never another resolver."""
    res = subprocess.run(["dig", "@127.0.0.1", "-p", str(server.port), name, rtype, "+short",
                          "+tries=1", "+timeout=1"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, timeout=10)
    return sorted(line for line in res.stdout.decode().splitlines()
                  if line and not line.startswith(";"))


def require_tools():
    for tool in ("dnsmasq", "dig"):
        if not shutil.which(tool):
            raise ft.Skip("%s is not installed (scripts/install-deps installs it)" % tool)


def config(server, backends, **top):
    """One http listener on pool "web" with these backend entries."""
    cfg = {"workers": 2, "log": {"level": "info", "access": "off"},
           "timeouts": {"drain_ms": 2000}, "resolvers": [server.address],
           "listeners": {"web": {"listen": "127.0.0.1:%d" % ft.free_port(), "pool": "web"}},
           "pools": {"web": {"backends": backends}}}
    cfg.update(top)
    return cfg


def dns_entry(f, pool="web", index=0):
    st = f.status()
    return next(e for e in st["pools"][pool]["dns"] if e["backend"] == index)


def wait_addresses(f, addresses, pool="web", timeout=10):
    """Until the pool's backends are exactly `addresses` (draining ones aside)."""
    def serving():
        st = f.status()
        got = sorted(b["address"] for b in st["pools"][pool]["backends"]
                     if b["state"] != "draining")
        return st if got == sorted(addresses) else None
    return ft.poll_until(serving, timeout=timeout, message="pool %s is %s" % (pool, addresses))


def dns_metric(samples, metric, **labels):
    """One ferry_dns_* sample (its label "name" would clash with ft.metric's argument)."""
    key = (metric, frozenset(labels.items()))
    assert key in samples, "no sample %s%r" % (metric, labels)
    return samples[key]


def backend_of(port):
    status, headers, _ = ft.parse_response(ft.http_request(
        port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"))
    return status, headers.get("x-backend")


class Load(ft.ClientThreads):
    """Client threads sending GET / until stop, on keep-alive connections (and one
    thread on a new connection per request); every answer is kept as (monotonic time,
    status, X-Backend) and every exception as an error."""

    def __init__(self, port, threads=3):
        super().__init__()
        self.port = port
        self.answers = []
        self.errors = []
        self.threads = [threading.Thread(target=self._keep_alive, daemon=True)
                        for _ in range(threads)]
        self.threads.append(threading.Thread(target=self._new_connections, daemon=True))

    def _note(self, status, backend):
        with self.lock:
            self.answers.append((time.monotonic(), status, backend))

    def _keep_alive(self):
        while not self.done.is_set():
            try:
                with ft.Client(self.port) as c:
                    for _ in range(100):
                        if self.done.is_set():
                            return
                        status, headers, _ = c.request("GET", "/")
                        self._note(status, headers.get("x-backend"))
            except Exception as e:      # noqa: BLE001 - every failure counts
                with self.lock:
                    self.errors.append(repr(e))

    def _new_connections(self):
        while not self.done.is_set():
            try:
                self._note(*backend_of(self.port))
            except Exception as e:      # noqa: BLE001
                with self.lock:
                    self.errors.append(repr(e))


    def since(self, start):
        with self.lock:
            return [a for a in self.answers if a[0] >= start]

    def count(self, backend=None, start=0.0):
        return sum(1 for _, _, b in self.since(start) if backend is None or b == backend)

    def check_clean(self):
        with self.lock:
            assert self.errors == [], self.errors[:5]
            bad = [a for a in self.answers if a[1] != 200]
            assert bad == [], bad[:5]


@contextlib.contextmanager
def name_with_two_backends():
    """api.test:PORT naming backends "a" (127.0.0.1) and "b" (127.0.0.2), dnsmasq
    answering for it and ferry in front: yields (ferry, dnsmasq, PORT, /status) once
    both addresses are backends. dnsmasq is stopped on the way out (a test may have
    stopped it already)."""
    require_tools()
    dns = Dnsmasq()
    with ft.Backend("a") as a:
        port = a.port
        with ft.Backend("b", host="127.0.0.2", port=port):
            dns.set_hosts({"api.test": ["127.0.0.1", "127.0.0.2"]})
            dns.start()
            try:
                with ft.Ferry(config(dns, [{"address": "api.test:%d" % port}])) as f:
                    st = wait_addresses(f, ["127.0.0.1:%d" % port, "127.0.0.2:%d" % port])
                    yield f, dns, port, st
            finally:
                dns.stop()


def test_a_name_with_two_addresses_reaches_both():
    with name_with_two_backends() as (f, _, port, st):
        seen = {backend_of(f.port("web"))[1] for _ in range(8)}
        assert seen == {"a", "b"}, seen
        e = next(e for e in st["pools"]["web"]["dns"])
        assert e["name"] == "api.test:%d" % port and e["state"] == "resolved", e
        assert e["ttl_s"] == TTL_S and e["last_error"] is None, e
        m = f.metrics()
        assert dns_metric(m, "ferry_dns_lookups_total", pool="web",
                          name="api.test:%d" % port, result="ok") >= 1
        assert dns_metric(m, "ferry_dns_addresses", pool="web",
                          name="api.test:%d" % port) == 2


def moves(dns, f, load, name, new, old_backends, new_backends):
    """Changes the record to `new`; returns (ms to the first request on a new backend,
    ms to the last request on an old one), both from the SIGHUP to dnsmasq."""
    dns.set_hosts({name: new})
    changed = time.monotonic()
    dns.reread()
    ft.poll_until(lambda: dig(dns, name) == sorted(new), timeout=5, message="dnsmasq re-read")
    visible_ms = (time.monotonic() - changed) * 1000
    ft.poll_until(lambda: any(b in new_backends for _, _, b in load.since(changed)),
                  timeout=TTL_S + 5, message="traffic to %s" % new_backends)
    first = min(t for t, _, b in load.since(changed) if b in new_backends)
    # From then on nothing may reach the old backends once the generation changed:
    # watch a while (a request in flight may finish there; it started before).
    time.sleep(TTL_S)
    old = [t for t, _, b in load.since(changed) if b in old_backends]
    last = max(old) if old else changed
    print("dns change -> first request on %s: %.0f ms (dnsmasq answered the new record "
          "after %.0f ms); last request on %s: %.0f ms" % (
              "/".join(new_backends), (first - changed) * 1000, visible_ms,
              "/".join(old_backends), (last - changed) * 1000))
    return (first - changed) * 1000, (last - changed) * 1000


def test_record_change_moves_traffic_under_load_without_failures():
    """Three changes under load (4 client threads): a,b -> c -> a,b -> c. Each moves all
    traffic within TTL + 1 s of the record's change, and no request fails."""
    require_tools()
    dns = Dnsmasq()
    with ft.Backend("a") as a:
        port = a.port
        with ft.Backend("b", host="127.0.0.2", port=port), \
                ft.Backend("c", host="127.0.0.3", port=port):
            ab, c = ["127.0.0.1", "127.0.0.2"], ["127.0.0.3"]
            dns.set_hosts({"api.test": ab})
            dns.start()
            try:
                with ft.Ferry(config(dns, [{"address": "api.test:%d" % port}])) as f:
                    wait_addresses(f, ["%s:%d" % (ip, port) for ip in ab])
                    with Load(f.port("web")) as load:
                        ft.poll_until(lambda: load.count("a") > 10 and load.count("b") > 10,
                                      timeout=10, message="traffic to a and b")
                        figures = [moves(dns, f, load, "api.test", c, ["a", "b"], ["c"]),
                                   moves(dns, f, load, "api.test", ab, ["c"], ["a", "b"]),
                                   moves(dns, f, load, "api.test", c, ["a", "b"], ["c"])]
                    load.check_clean()
                    firsts = sorted(first for first, _ in figures)
                    print("dns change -> traffic: first request on the new backend after "
                          "%s ms (min/median/max %.0f/%.0f/%.0f); %d requests, 0 failed" % (
                              ", ".join("%.0f" % x for x in firsts), firsts[0], firsts[1],
                              firsts[2], load.count()))
                    bound = (TTL_S + 1) * 1000
                    for first, last in figures:
                        assert first <= bound and last <= bound, figures
                    # The backends removed drained and left the table.
                    wait_addresses(f, ["127.0.0.3:%d" % port])
                    ft.poll_until(lambda: len(f.status()["pools"]["web"]["backends"]) == 1,
                                  timeout=10, message="a and b gone from /status")
            finally:
                dns.stop()


def test_dns_server_stopped_last_answer_keeps_serving():
    with name_with_two_backends() as (f, dns, port, _):
        with Load(f.port("web"), threads=2) as load:
            dns.stop()
            stopped = time.monotonic()
            entry = ft.poll_until(
                lambda: (lambda e: e if e["failures"] >= 2 else None)(dns_entry(f)),
                timeout=20, message="two lookups failed")
            assert load.count("a", stopped) > 10 and load.count("b", stopped) > 10
        load.check_clean()
        assert entry["state"] == "stale", entry
        assert entry["addresses"] == ["127.0.0.1:%d" % port, "127.0.0.2:%d" % port]
        assert entry["last_error"].startswith(("timeout", "error")), entry
        lookups = entry["lookups"]
        assert lookups["timeout"] + lookups["error"] >= 2, lookups
        assert "keeping its last 2 address(es)" in f.stderr()
        wait_addresses(f, ["127.0.0.1:%d" % port, "127.0.0.2:%d" % port])


def test_srv_weights_are_honoured_and_lower_priorities_are_backups():
    require_tools()
    dns = Dnsmasq()
    with ft.Backend("one") as one, ft.Backend("three") as three, ft.Backend("spare") as spare:
        dns.set_hosts({"t1.test": ["127.0.0.1"], "t3.test": ["127.0.0.1"],
                       "t9.test": ["127.0.0.1"]})
        dns.set_srv([("_http._tcp.api.test", "t1.test", one.port, 10, 1),
                     ("_http._tcp.api.test", "t3.test", three.port, 10, 3),
                     ("_http._tcp.api.test", "t9.test", spare.port, 20, 50)])
        dns.start()
        try:
            with ft.Ferry(config(dns, [{"srv": "_http._tcp.api.test"}])) as f:
                st = wait_addresses(f, ["127.0.0.1:%d" % b.port for b in (one, three, spare)])
                by_port = {b["address"]: b for b in st["pools"]["web"]["backends"]}
                assert by_port["127.0.0.1:%d" % one.port]["weight"] == 1
                assert by_port["127.0.0.1:%d" % three.port]["weight"] == 3
                assert by_port["127.0.0.1:%d" % spare.port]["backup"] is True
                counts = {}
                with ft.Client(f.port("web")) as c:
                    for _ in range(400):
                        status, headers, _ = c.request("GET", "/")
                        assert status == 200
                        counts[headers["x-backend"]] = counts.get(headers["x-backend"], 0) + 1
                print("SRV weights 1:3 -> requests %s" % counts)
                assert counts.get("spare", 0) == 0, counts
                ratio = counts["three"] / counts["one"]
                assert 2.7 <= ratio <= 3.3, counts
                e = dns_entry(f)
                assert e["srv"] == "_http._tcp.api.test" and e["state"] == "resolved", e
        finally:
            dns.stop()


class BadResolver:
    """A resolver on 127.0.0.1 that never gives an answer: "refuse" answers every query
    REFUSED; "junk" sends, for every query, a reply with another id every 0.3 s (what
    a confused server or a spoofer would send), never the answer."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.queries = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        self.sock.settimeout(0.3)
        askers = []
        while not self.done.is_set():
            try:
                query, peer = self.sock.recvfrom(4096)
                self.queries += 1
                if self.mode == "refuse":   # the query back, as an answer: QR, RD, REFUSED
                    self.sock.sendto(query[:2] + b"\x81\x05" + query[4:], peer)
                else:
                    askers.append((query, peer))
            except socket.timeout:
                pass
            for query, peer in askers:
                wrong_id = ((query[0] << 8 | query[1]) + 1) & 0xffff
                self.sock.sendto(wrong_id.to_bytes(2, "big") + b"\x81\x00" + query[4:], peer)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(5)
        self.sock.close()


def test_srv_asks_the_next_resolver_when_the_first_refuses_or_never_answers():
    """resolvers: [a bad one, dnsmasq]. REFUSED from the first sends the SRV query on to
    the second (as evdns does for A/AAAA); so does a first one that only ever sends
    datagrams that are not the answer: they do not push the try's deadline back."""
    require_tools()
    dns = Dnsmasq()
    with ft.Backend("one") as one:
        dns.set_hosts({"t1.test": ["127.0.0.1"]})
        dns.set_srv([("_http._tcp.api.test", "t1.test", one.port, 10, 1)])
        dns.start()
        try:
            for mode in ("refuse", "junk"):
                with BadResolver(mode) as bad:
                    cfg = config(dns, [{"srv": "_http._tcp.api.test"}])
                    cfg["resolvers"] = [bad.address, dns.address]
                    began = time.monotonic()
                    with ft.Ferry(cfg) as f:
                        wait_addresses(f, ["127.0.0.1:%d" % one.port], timeout=20)
                        took = time.monotonic() - began
                        print("SRV past a resolver that %ss: %.1f s" % (mode, took))
                        assert bad.queries >= 1
                        assert dns_entry(f)["state"] == "resolved"
                        assert backend_of(f.port("web"))[1] == "one"
        finally:
            dns.stop()


def test_aaaa_only_name_reaches_a_backend_on_ipv6_loopback():
    require_tools()
    dns = Dnsmasq()
    try:
        with ft.Backend("six", host="::1") as six:
            dns.set_hosts({"six.test": ["::1"]})
            dns.start()
            backends = [{"address": "six.test:%d" % six.port}]
            with ft.Ferry(config(dns, backends)) as f:
                wait_addresses(f, ["[::1]:%d" % six.port])
                assert backend_of(f.port("web")) == (200, "six")
                e = dns_entry(f)
                assert e["family"] == "any" and e["addresses"] == ["[::1]:%d" % six.port], e
            # Asking for IPv4 only: no A record, so no backend.
            backends[0]["family"] = "ipv4"
            with ft.Ferry(config(dns, backends)) as f:
                e = ft.poll_until(lambda: (lambda e: e if e["failures"] else None)(dns_entry(f)),
                                  message="the A lookup failed")
                assert e["state"] == "unresolved", e
                assert e["last_error"] == "nodata: no A record for six.test", e
                assert backend_of(f.port("web"))[0] == 503
    finally:
        dns.stop()


def test_name_that_never_resolves_gives_503_and_says_why():
    require_tools()
    dns = Dnsmasq()
    dns.start()
    try:
        with ft.Backend("a") as a:
            cfg = config(dns, [{"address": "nowhere.test:%d" % a.port}])
            cfg["listeners"]["raw"] = {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "tcp",
                                       "pool": "web"}
            rc, out = ft.Ferry.check(cfg)
            assert rc == 0, out
            assert out.splitlines()[-1] == "ok", out
            warning = [line for line in out.splitlines() if line.startswith("warning:")]
            assert warning == ["warning: pools.web.backends[0] (nowhere.test:%d): nxdomain: A "
                               "nowhere.test: name does not exist; ferry starts without backends "
                               "from it and adds them once it resolves" % a.port], out
            with ft.Ferry(cfg) as f:
                e = ft.poll_until(lambda: (lambda e: e if e["failures"] else None)(dns_entry(f)),
                                  message="the lookup failed")
                assert e["state"] == "unresolved" and e["addresses"] == [], e
                assert e["last_error"] == "nxdomain: A nowhere.test: name does not exist", e
                assert f.status()["pools"]["web"]["backends"] == []
                assert backend_of(f.port("web"))[0] == 503
                with socket.create_connection(("127.0.0.1", f.port("raw")), timeout=5) as s:
                    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    try:
                        assert s.recv(100) == b""       # closed: no backend
                    except ConnectionResetError:
                        pass
                assert "no backends from it until it resolves" in f.stderr()
                assert dns_metric(f.metrics(), "ferry_dns_lookups_total", pool="web",
                                  name="nowhere.test:%d" % a.port, result="nxdomain") >= 1
                # The name comes: the pool gets its backend without a reload.
                dns.set_hosts({"nowhere.test": ["127.0.0.1"]})
                dns.reread()
                wait_addresses(f, ["127.0.0.1:%d" % a.port])
                assert backend_of(f.port("web")) == (200, "a")
    finally:
        dns.stop()


def test_dns_change_shares_tls_and_loads_no_file_again():
    """An https listener whose certificate files are gone after the start: a record
    change still applies (the new generation shares the TLS contexts instead of
    loading the files), and TLS clients are served by the new backend."""
    require_tools()
    dns = Dnsmasq()
    d = os.path.join(ft.tmpdir(), "certs-gone")
    os.makedirs(d)
    cert, key = os.path.join(d, "server.crt"), os.path.join(d, "server.key")
    shutil.copy(ft.SERVER_CERT, cert)
    shutil.copy(ft.SERVER_KEY, key)
    with ft.Backend("a") as a:
        port = a.port
        with ft.Backend("b", host="127.0.0.2", port=port):
            dns.set_hosts({"api.test": ["127.0.0.1"]})
            dns.start()
            try:
                cfg = config(dns, [{"address": "api.test:%d" % port}])
                cfg["listeners"]["web"]["tls"] = {"certificates": [{"cert": cert, "key": key}]}
                with ft.Ferry(cfg) as f:
                    wait_addresses(f, ["127.0.0.1:%d" % port])
                    os.unlink(cert)
                    os.unlink(key)
                    dns.set_hosts({"api.test": ["127.0.0.2"]})
                    dns.reread()
                    wait_addresses(f, ["127.0.0.2:%d" % port])
                    raw = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                    status, headers, _ = ft.parse_response(
                        ft.http_request(f.port("web"), raw, tls=True))
                    assert (status, headers.get("x-backend")) == (200, "b")
                    assert "the new answers are not in use" not in f.stderr()
            finally:
                dns.stop()


def test_reload_keeps_answers_of_kept_names_and_follows_new_resolvers():
    """The DNS server stops, then ferry reloads (twice, under load): the pool keeps
    its backends, since the reload kept the name's answer instead of asking again.
    Then a reload naming another DNS server (another answer) moves the pool to it."""
    require_tools()
    dns, other = Dnsmasq("first"), Dnsmasq("second")
    with ft.Backend("a") as a:
        port = a.port
        with ft.Backend("b", host="127.0.0.2", port=port):
            dns.set_hosts({"api.test": ["127.0.0.1"]})
            other.set_hosts({"api.test": ["127.0.0.2"]})
            dns.start()
            other.start()
            try:
                with ft.Ferry(config(dns, [{"address": "api.test:%d" % port}])) as f:
                    cfg = f.config
                    wait_addresses(f, ["127.0.0.1:%d" % port])
                    generation = f.status()["generation"]
                    dns.stop()
                    with Load(f.port("web"), threads=2) as load:
                        for retries in (2, 3):
                            cfg["pools"]["web"]["retries"] = retries
                            f.write_config(cfg)
                            f.reload()
                            generation += 1
                            ft.poll_until(lambda: f.status()["generation"] >= generation,
                                          message="the reload applied")
                            assert f.status()["pools"]["web"]["backends"][0]["address"] == \
                                "127.0.0.1:%d" % port
                        ft.poll_until(lambda: dns_entry(f)["failures"] >= 1,
                                      timeout=15, message="a lookup failed after the reloads")
                        assert load.count("a") > 10
                    load.check_clean()
                    assert dns_entry(f)["addresses"] == ["127.0.0.1:%d" % port]
                    # A dry run builds with the answers too, and changes nothing.
                    code, _, body = f.admin("POST", "/reload?dry_run=1")
                    assert code == 200, body
                    assert dns_entry(f)["addresses"] == ["127.0.0.1:%d" % port]
                    cfg["resolvers"] = [other.address]
                    f.write_config(cfg)
                    f.reload()
                    wait_addresses(f, ["127.0.0.2:%d" % port])
                    assert backend_of(f.port("web")) == (200, "b")
                    e = dns_entry(f)
                    assert e["state"] == "resolved" and e["failures"] == 0, e
            finally:
                dns.stop()
                other.stop()


if __name__ == "__main__":
    ft.main()
