"""l4env — backends and clients for the L4 e2e tests (udp listeners, the PROXY protocol).

Python 3 standard library only, threads in the test process:
- UdpBackend: answers every datagram with NAME + b":" + datagram (or the datagram as it
  is for big ones).
- ProxyBackend: a TCP server whose connections begin with a PROXY header (v1 or v2,
  parsed here independently of ferry's parser); each connection is recorded; then it
  echoes (mode "echo") or answers HTTP/1.1 requests with keep-alive (mode "http": the
  body says which connection and which client the header named).
- proxy_v1() / proxy_v2(): headers a balancer in front of ferry would send.
- DnsmasqProcess: what the dnsmasq servers of the DNS tests share (start, stop).
"""

import ipaddress
import os
import socket
import signal
import struct
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


class DnsmasqProcess:
    """dnsmasq in the foreground on 127.0.0.1:self.port (UDP and TCP), reading no system
    file, its output in self.log. A subclass sets port, log and proc = None, and starts
    it with _launch(the arguments saying what it answers)."""

    def _launch(self, args, append_log=False):
        common = ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
                  "--bind-interfaces", "--listen-address=127.0.0.1", "--port=%d" % self.port,
                  "--pid-file=", "--log-facility=-"]
        with open(self.log, "ab" if append_log else "wb") as log:
            self.proc = subprocess.Popen(common + args, stdout=log, stderr=subprocess.STDOUT)
        ft.wait_port("127.0.0.1", self.port)     # its TCP socket: the UDP one is bound too
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(5)


# ---- headers ---------------------------------------------------------------------

def proxy_v1(src, sport, dst, dport):
    family = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (family, src, dst, sport, dport)).encode()


def proxy_v2(src, sport, dst, dport, tlvs=b"", command=0x21):
    if ":" in src:
        fam = 0x21
        addrs = (ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed +
                 struct.pack(">HH", sport, dport))
    else:
        fam = 0x11
        addrs = (ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed +
                 struct.pack(">HH", sport, dport))
    body = addrs + tlvs
    return V2_SIGNATURE + bytes([command, fam]) + struct.pack(">H", len(body)) + body


def proxy_v2_local():
    return V2_SIGNATURE + bytes([0x20, 0x00, 0, 0])


def _recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("closed after %d of %d header bytes" % (len(data), n))
        data += chunk
    return data


def _parse_tlvs(data):
    tlvs, pos = {}, 0
    while pos + 3 <= len(data):
        kind, length = data[pos], struct.unpack(">H", data[pos + 1:pos + 3])[0]
        tlvs[kind] = data[pos + 3:pos + 3 + length]
        pos += 3 + length
    return tlvs


def read_proxy_header(sock):
    """Reads one PROXY header off sock: {"version", "command", "src", "sport", "dst",
    "dport", "tlvs"} (addresses None for LOCAL / UNKNOWN)."""
    first = _recv_exact(sock, 12)
    if first == V2_SIGNATURE:
        fixed = _recv_exact(sock, 4)
        ver_cmd, fam, length = fixed[0], fixed[1], struct.unpack(">H", fixed[2:4])[0]
        body = _recv_exact(sock, length)
        h = {"version": 2, "command": "LOCAL" if ver_cmd & 0x0f == 0 else "PROXY",
             "src": None, "sport": None, "dst": None, "dport": None, "tlvs": {}}
        if h["command"] == "PROXY" and fam == 0x11:
            h.update(src=str(ipaddress.IPv4Address(body[0:4])),
                     dst=str(ipaddress.IPv4Address(body[4:8])),
                     sport=struct.unpack(">H", body[8:10])[0],
                     dport=struct.unpack(">H", body[10:12])[0], tlvs=_parse_tlvs(body[12:]))
        elif h["command"] == "PROXY" and fam == 0x21:
            h.update(src=str(ipaddress.IPv6Address(body[0:16])),
                     dst=str(ipaddress.IPv6Address(body[16:32])),
                     sport=struct.unpack(">H", body[32:34])[0],
                     dport=struct.unpack(">H", body[34:36])[0], tlvs=_parse_tlvs(body[36:]))
        return h
    line = first
    while not line.endswith(b"\r\n"):
        line += _recv_exact(sock, 1)
        assert len(line) <= 107, "v1 line too long: %r" % line
    parts = line.decode().strip().split(" ")
    assert parts[0] == "PROXY", "not a PROXY header: %r" % line
    if parts[1] == "UNKNOWN":
        return {"version": 1, "command": "UNKNOWN", "src": None, "sport": None, "dst": None,
                "dport": None, "tlvs": {}}
    return {"version": 1, "command": parts[1], "src": parts[2], "dst": parts[3],
            "sport": int(parts[4]), "dport": int(parts[5]), "tlvs": {}}


# ---- backends ----------------------------------------------------------------------

class UdpBackend:
    """A UDP server thread: replies NAME:datagram (datagrams of 100 bytes or more come
    back unchanged)."""

    def __init__(self, name, port=0, host="127.0.0.1"):
        self.name = name.encode()
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                  socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self.address = ("[%s]:%d" if ":" in host else "%s:%d") % (host, self.port)
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(70000)
            except socket.timeout:
                continue
            except OSError:
                return
            self.sock.sendto(data if len(data) >= 100 else self.name + b":" + data, addr)

    def stop(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()


class ProxyBackend:
    """A TCP server thread whose clients (ferry) begin with a PROXY header.
    `connections`: one dict per connection: the header (see read_proxy_header) plus
    "requests" (http mode). mode "echo": echoes after the header; "http": answers each
    request 200 with body "conn=N src=IP sport=P version=V" and keeps the connection."""

    def __init__(self, mode="http", host="127.0.0.1"):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.address = "%s:%d" % (host, self.port)
        self.connections = []
        self.errors = []
        self.lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(10)
        try:
            header = read_proxy_header(conn)
            header["requests"] = 0
            with self.lock:
                index = len(self.connections)
                self.connections.append(header)
            if self.mode == "echo":
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    conn.sendall(data)
            else:
                self._serve_http(conn, index, header)
        except (OSError, EOFError, AssertionError) as e:
            with self.lock:
                self.errors.append(repr(e))
        finally:
            conn.close()

    def _serve_http(self, conn, index, header):
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            header["requests"] += 1
            body = ("conn=%d src=%s sport=%s version=%d" % (
                index, header["src"], header["sport"], header["version"])).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    def wait_connections(self, n, timeout=10):
        ft.poll_until(lambda: len(self.connections) >= n, timeout=timeout,
                      message="%d connections at the PROXY backend" % n)
        return self.connections

    def stop(self):
        self._stop = True
        self.sock.close()


# ---- clients -----------------------------------------------------------------------

def udp_exchange(port, payloads, source=("127.0.0.1", 0), timeout=3.0):
    """Sends each payload from one client socket and reads one reply per payload."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(source)
    s.settimeout(timeout)
    try:
        replies = []
        for p in payloads:
            s.sendto(p, ("127.0.0.1", port))
            replies.append(s.recvfrom(70000)[0])
        return replies
    finally:
        s.close()


def connect_from(source_ip, port, timeout=5.0):
    """A TCP connection to 127.0.0.1:port from source_ip (another loopback address,
    so that the client's address differs from any proxy's)."""
    s = socket.socket()
    s.bind((source_ip, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def wait_status(ferry, predicate, message, timeout=10.0):
    """Polls GET /status until predicate(status) holds; returns the status."""
    return ft.poll_until(lambda: (lambda st: st if predicate(st) else None)(ferry.status()),
                         timeout=timeout, message=message)

