"""rawbackend — a scriptable HTTP/1.1 backend on raw sockets, for the faults
demo_backend cannot make: a reset in the middle of a body, a response longer or shorter
than its Content-Length, a stray body after a 204, a head larger than ferry takes.

    def cut(conn, req):                        # a script: one thing, then done
        conn.send(b"HTTP/1.1 200 OK\\r\\nContent-Length: 100000\\r\\n\\r\\n" + b"x" * 1000)
        conn.reset()                           # RST (SO_LINGER 0)

    with RawBackend({"/cut": cut}) as rb:      # rb.address goes into ferry's config
        ...
        conn = rb.conn_for("/cut")             # what that connection saw

Each connection runs in its own thread: read a request head, find the script for its
path (the path without the query), run it. A script returns True to keep the
connection for the next request (keep-alive); anything else closes it (unless the
script closed or reset it already). A path without a script is answered "200 ok"
(Content-Length: 2) and kept alive, after its Content-Length body is read. What each
connection saw stays in rb.connections (requests, body bytes, whether ferry closed it)
for the test to check. Every blocking call has a deadline (DEADLINE_S); a script that
waits for the test uses a threading.Event (RawConn.hold).

Python 3 standard library only.
"""

import select
import socket
import struct
import threading
import time

DEADLINE_S = 20.0

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Request:
    """A request head as the backend read it."""

    def __init__(self, method, path, headers):
        self.method = method
        self.path = path                    # without the query
        self.headers = headers              # {lower-case name: value}
        self.body_received = 0              # body bytes read by the script

    @property
    def content_length(self):
        return int(self.headers.get("content-length", "0"))

    def __repr__(self):
        return "<%s %s body=%d>" % (self.method, self.path, self.body_received)


class RawConn:
    """One accepted connection, as the script drives it and the test inspects it."""

    def __init__(self, sock, backend):
        self.sock = sock
        self.backend = backend
        self.buf = bytearray()          # read, not yet consumed
        self.requests = []              # Request, in order
        self.peer_closed = False        # ferry closed (EOF) or reset the connection
        self.stray = 0                  # bytes read after ferry's last request head
        self.closed = False             # we closed or reset it
        self.done = threading.Event()   # the connection's thread has ended

    # -- reading ---------------------------------------------------------------------
    def _recv(self, deadline):
        """More bytes into buf; False at EOF, reset or the deadline."""
        left = deadline - time.monotonic()
        if left <= 0 or self.peer_closed:
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(262144)
        except socket.timeout:
            return False
        except OSError:
            chunk = b""
        if not chunk:
            self.peer_closed = True
            return False
        self.buf += chunk
        return True

    def read_head(self, timeout=DEADLINE_S):
        """The next request head, or None when ferry closed the connection first."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._recv(deadline):
                return None
        end = self.buf.index(b"\r\n\r\n")
        lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        del self.buf[:end + 4]
        method, target = lines[0].split(" ")[:2]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        req = Request(method, target.split("?")[0], headers)
        self.requests.append(req)
        return req

    def read_body(self, req, limit=None, timeout=DEADLINE_S):
        """Reads req's Content-Length body (or its first `limit` bytes): the bytes read
        now. Stops early when ferry closes the connection (see peer_closed)."""
        want = req.content_length if limit is None else min(limit, req.content_length)
        deadline = time.monotonic() + timeout
        got = 0
        while req.body_received < want:
            if not self.buf and not self._recv(deadline):
                break
            n = min(len(self.buf), want - req.body_received)
            del self.buf[:n]
            req.body_received += n
            got += n
        return got

    def wait_peer_close(self, timeout=DEADLINE_S):
        """Reads until ferry closes the connection, counting what came in `stray`;
        True when it closed in time."""
        deadline = time.monotonic() + timeout
        self.stray += len(self.buf)
        self.buf.clear()
        while self._recv(deadline):
            self.stray += len(self.buf)
            self.buf.clear()
        return self.peer_closed

    def hold(self, gate, timeout=DEADLINE_S):
        """Does nothing until the test sets `gate` (a threading.Event) or ferry closes
        the connection (what it sends meanwhile is counted in `stray`)."""
        deadline = time.monotonic() + timeout
        while not gate.is_set() and time.monotonic() < deadline and not self.peer_closed:
            readable, _, _ = select.select([self.sock], [], [], 0.05)
            if readable:
                before = len(self.buf)
                self._recv(deadline)
                self.stray += len(self.buf) - before
                del self.buf[before:]

    # -- writing and ending --------------------------------------------------------------
    def send(self, data):
        """Sends data; False when ferry has closed the connection meanwhile."""
        try:
            self.sock.settimeout(DEADLINE_S)
            self.sock.sendall(data)
            return True
        except OSError:
            self.peer_closed = True
            return False

    def stream(self, chunk=b"x" * 16384, limit=1 << 30):
        """Sends chunk after chunk until ferry stops taking them (closes the
        connection, or `limit` bytes); returns the bytes sent."""
        sent = 0
        while sent < limit and self.send(chunk):
            sent += len(chunk)
        return sent

    def reset(self):
        """Closes with a RST (SO_LINGER 0), whatever is in flight."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self):
        if not self.closed:
            self.closed = True
            self.sock.close()

    def __repr__(self):
        return "<conn requests=%r peer_closed=%s stray=%d closed=%s>" % (
            self.requests, self.peer_closed, self.stray, self.closed)


class RawBackend:
    """Listens on 127.0.0.1 (a port chosen by the kernel) and serves each connection
    in a thread with the scripts {path: fn(conn, req) -> keep?}."""

    def __init__(self, scripts=None, name="raw"):
        self.scripts = dict(scripts or {})
        self.name = name
        self.connections = []
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.address = "127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            conn = RawConn(sock, self)
            with self.lock:
                self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            while not conn.closed:
                req = conn.read_head()
                if req is None:
                    break
                script = self.scripts.get(req.path)
                if script is None:
                    conn.read_body(req)
                    keep = conn.send(OK)
                else:
                    keep = script(conn, req) is True
                if not keep:
                    break
        finally:
            conn.close()
            conn.done.set()

    # -- what the test looks at --------------------------------------------------------------
    def conns_with(self, path):
        """The connections that got a request for path, oldest first."""
        with self.lock:
            return [c for c in self.connections if any(r.path == path for r in c.requests)]

    def conn_for(self, path, timeout=10.0):
        """The newest connection that got a request for path (waits for one)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.conns_with(path)
            if found:
                return found[-1]
            assert time.monotonic() < deadline, "no request for %s reached the backend" % path
            time.sleep(0.01)

    def requests_for(self, path):
        with self.lock:
            return sum(1 for c in self.connections for r in c.requests if r.path == path)

    def close(self):
        self.listener.close()
        with self.lock:
            conns = list(self.connections)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
