"""opsload — client load for the operations tests (workers on reload, binary upgrade):
HTTP/1.1 clients that behave as real ones do, counting every failure.

Kinds (each a thread):
  "new"        a new connection per request (Connection: close)
  "keepalive"  one connection for many requests; a response that says Connection: close
               ends it (RFC 9112 §9.6: the client sends nothing more on it) and the next
               request opens a new one, as curl, browsers and wrk do
The same over TLS with tls=True. Failures: a refused connection (counted apart), a
reset, a connection closed without a complete response, any status but 200, a
timeout. Nothing is retried. The loops are bounded by stop() and by `limit_s`.
"""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402


class Load(ft.ClientThreads):
    def __init__(self, port, kinds=("new", "keepalive"), tls=False, limit_s=120.0, path="/"):
        super().__init__()
        self.port, self.tls, self.path, self.limit_s = port, tls, path, limit_s
        self.ok = {k: 0 for k in kinds}
        self.refused = 0
        self.failures = []
        self.connections = 0            # connections opened
        self.context = ft.client_tls_context() if tls else None
        self.threads = [threading.Thread(target=getattr(self, "_" + k), daemon=True)
                        for k in kinds]

    def __enter__(self):
        self.started = time.monotonic()
        return super().__enter__()

    def _running(self):
        return not self.done.is_set() and time.monotonic() - self.started < self.limit_s

    def _count(self, kind, error=None, refused=False):
        with self.lock:
            if refused:
                self.refused += 1
            elif error is None:
                self.ok[kind] += 1
            else:
                self.failures.append("%s: %s" % (kind, error))

    def _connect(self):
        with self.lock:
            self.connections += 1
        return ft.Client(self.port, tls=self.tls, context=self.context, timeout=10)

    def _request(self, client, close):
        headers = {"Connection": "close"} if close else {}
        status, headers, _ = client.request("GET", self.path, headers=headers, host="x")
        return status, "close" in headers.get("connection", "").lower()

    def _new(self):
        while self._running():
            try:
                with self._connect() as client:
                    status, _ = self._request(client, close=True)
                self._count("new", None if status == 200 else "status %d" % status)
            except ConnectionRefusedError as e:
                self._count("new", repr(e), refused=True)
            except Exception as e:      # reset, incomplete response, timeout
                self._count("new", repr(e))

    def _keepalive(self):
        client = None
        while self._running():
            try:
                if client is None:
                    client = self._connect()
                status, closing = self._request(client, close=False)
                self._count("keepalive", None if status == 200 else "status %d" % status)
                if closing:             # said so: the next request goes on a new one
                    client.close()
                    client = None
            except ConnectionRefusedError as e:
                self._count("keepalive", repr(e), refused=True)
                client = None
            except Exception as e:
                self._count("keepalive", repr(e))
                if client is not None:
                    client.close()
                client = None
        if client is not None:
            client.close()

    def total(self):
        with self.lock:
            return sum(self.ok.values())

    def wait_progress(self, n=20, timeout=30):
        """Every kind completed n more requests."""
        with self.lock:
            start = dict(self.ok)

        def moved():
            with self.lock:
                return all(self.ok[k] >= start[k] + n for k in start)
        ft.poll_until(moved, timeout=timeout, message="load progressing")

    def summary(self):
        with self.lock:
            return "%s ok, %d failed, %d refused, %d connections" % (
                "+".join("%d %s" % (v, k) for k, v in self.ok.items()), len(self.failures),
                self.refused, self.connections)

    def assert_clean(self):
        with self.lock:
            assert not self.failures and not self.refused, "%d failed, %d refused: %s" % (
                len(self.failures), self.refused, self.failures[:5])
            assert all(self.ok.values()), self.ok


def resumable_session(port):
    """A TLS session (with its ticket) from one request on a new connection."""
    ctx = ft.client_tls_context()
    with ft.Client(port, tls=True, context=ctx) as c:
        assert c.request("GET", "/", headers={"Connection": "close"}, host="x")[0] == 200
        session = c.sock.session
    assert session is not None and session.has_ticket, "no session ticket"
    return ctx, session


def resumes(port, ctx, session):
    """Whether a new connection resumes `session` (and gets a 200)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    tls = ctx.wrap_socket(sock, server_hostname="localhost", session=session)
    with ft.Client.over(tls) as c:
        assert c.request("GET", "/", headers={"Connection": "close"}, host="x")[0] == 200
        return tls.session_reused


def pid_running(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def answering_pid(f, other_than):
    """The pid that answered /status when it is not other_than (one request: both
    processes answer on the admin socket during the handover)."""
    pid = f.status()["pid"]
    return pid if pid != other_than else None
