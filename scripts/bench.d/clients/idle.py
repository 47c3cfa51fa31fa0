#!/usr/bin/env python3
"""idle.py PORT COUNT [--tls CAFILE]: open COUNT keep-alive connections to 127.0.0.1:PORT,
send one GET / on each and read its whole response, then hold them all open and idle.

Prints one line `READY {"open": n, "failed": f, "errors": {...}}` when every connection
is either open-and-answered or failed, then waits until stdin reaches EOF (the bench
has measured the proxy), closes everything and exits. Used by the `mem` test.

Plain non-blocking sockets and selectors rather than asyncio: opening thousands of
connections is then bounded by the kernel and the proxy, not by Python objects.
"""
import errno
import json
import resource
import selectors
import socket
import ssl
import sys
import time

IN_FLIGHT = 100  # connections being set up at once; the listen backlog is >= 511
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
TIMEOUT = 30.0


class Conn:
    """One connection on its way to idle: connect -> (TLS handshake) -> send -> read."""

    def __init__(self, port, ctx):
        self.sock = socket.socket()
        self.sock.setblocking(False)
        self.ctx = ctx
        self.state = "connect"
        self.buf = b""
        err = self.sock.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, "connect: " + errno.errorcode.get(err, str(err)))

    def step(self):
        """Advance as far as possible. Returns the selector events still wanted, or
        None when the response has been read. Raises on failure."""
        if self.state == "connect":
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, "connect: " + errno.errorcode.get(err, str(err)))
            if self.ctx:
                self.sock = self.ctx.wrap_socket(self.sock, server_hostname="localhost",
                                                 do_handshake_on_connect=False)
                self.state = "handshake"
            else:
                self.state = "send"
        if self.state == "handshake":
            try:
                self.sock.do_handshake()
            except ssl.SSLWantReadError:
                return selectors.EVENT_READ
            except ssl.SSLWantWriteError:
                return selectors.EVENT_WRITE
            self.state = "send"
        if self.state == "send":
            self.sock.send(REQUEST)  # tiny: fits the empty socket buffer at once
            self.state = "read"
        while True:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError):
                return selectors.EVENT_READ
            if not data:
                raise ConnectionError("closed before the response ended")
            self.buf += data
            if self.complete():
                return None

    def complete(self):
        head, sep, body = self.buf.partition(b"\r\n\r\n")
        if not sep:
            return False
        lines = head.split(b"\r\n")
        if int(lines[0].split(b" ", 2)[1]) != 200:
            raise ValueError("status line %r" % lines[0][:60])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return len(body) >= length


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need + 100))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def open_all(port, count, ctx):
    sel = selectors.DefaultSelector()
    held, errors = [], {}
    started = 0
    deadline = time.monotonic() + TIMEOUT

    def fail(conn, exc):
        kind = type(exc).__name__
        errors[kind] = errors.get(kind, 0) + 1
        if conn is not None:
            try:
                sel.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
            conn.sock.close()

    while (started < count or sel.get_map()) and time.monotonic() < deadline:
        while started < count and len(sel.get_map()) < IN_FLIGHT:
            started += 1
            try:
                conn = Conn(port, ctx)
            except OSError as e:
                fail(None, e)
                continue
            sel.register(conn.sock, selectors.EVENT_WRITE, conn)
        for key, _ in sel.select(1.0):
            conn = key.data
            try:
                want = conn.step()
            except (OSError, ValueError, IndexError) as e:
                fail(conn, e)
                continue
            if want is None:
                sel.unregister(key.fileobj)
                held.append(conn.sock)
            elif key.fileobj is not conn.sock or key.events != want:
                sel.unregister(key.fileobj)  # wrap_socket made a new socket object
                sel.register(conn.sock, want, conn)
    for key in list(sel.get_map().values()):
        fail(key.data, TimeoutError("no response in %.0f s" % TIMEOUT))
    return held, errors


def main():
    port, count = int(sys.argv[1]), int(sys.argv[2])
    ctx = None
    if len(sys.argv) > 4 and sys.argv[3] == "--tls":
        ctx = ssl.create_default_context(cafile=sys.argv[4])
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    limit = raise_fd_limit(count)
    if limit < count + 50:
        print("idle.py: fd limit %d too low for %d connections" % (limit, count), file=sys.stderr)
    held, errors = open_all(port, count, ctx)
    print("READY " + json.dumps({"open": len(held), "failed": count - len(held),
                                 "errors": errors}), flush=True)
    sys.stdin.read()
    for sock in held:
        sock.close()


if __name__ == "__main__":
    main()
