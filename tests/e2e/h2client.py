"""h2client — the HTTP/2 client of the e2e tests: frames (hyperframe) and HPACK (hpack)
on a raw socket, so that a test can send exactly what a well-behaved client sends or
exactly what an attacker sends, and see every frame that comes back.

    c = H2Conn(port, tls=True)                 # TLS with ALPN h2 (c.alpn says what won)
    c = H2Conn(port)                           # h2c with prior knowledge
    s = c.get("/bytes/100")                    # one request, waits for the whole stream
    sid = c.request("POST", "/sha256", body=data)   # body sent as flow control allows
    c.wait(lambda: c.streams[sid].done, timeout=30, what="upload answered")
    s = c.streams[sid]; s.status, s.header("content-length"), s.data, s.trailers, s.reset

One thread drives everything: wait() writes what is queued (DATA within the peer's
windows), reads, and handles frames: SETTINGS and PING are acknowledged
(auto_ack=False stops that), received DATA is given back with WINDOW_UPDATE (per
stream, unless stream.paused; auto_window=False stops it all). A GOAWAY is kept in
c.goaway, the peer's close in c.closed. Every wait has a deadline.

Python 3 standard library plus Debian's python3-h2 (hyperframe, hpack).
"""

import hashlib
import os
import select
import socket
import ssl
import subprocess
import time

import hpack
from hyperframe import frame as hf

import ferrytest as ft

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# RFC 9113 §7 error codes
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL = 0x5, 0x6, 0x7, 0x8
COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 0x9, 0xb

# RFC 9113 §6.5.2 settings
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS = 0x1, 0x2, 0x3
INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = 0x4, 0x5, 0x6

DEFAULT_WINDOW = 65535
CLIENT_STREAM_WINDOW = 1 << 20      # what we advertise, unless a test says otherwise
CLIENT_CONNECTION_WINDOW = 16 << 20
OUT_QUEUE_HIGH = 512 * 1024         # DATA is framed only while less than this is queued


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def settled_rss_kib(pid, timeout=20.0):
    """A process's RSS once it stops moving (the same value 3 polls apart)."""
    samples = []
    ft.poll_until(lambda: samples.append(ft.rss_kib(pid)) or
                  (len(samples) > 5 and samples[-1] == samples[-4]),
                  timeout=timeout, interval=0.1, message="RSS of %d settles" % pid)
    return samples[-1]


def holds_connection(pid, local_port, peer_port):
    """True while process pid has an established TCP connection from its local_port to
    peer_port on loopback (/proc/net/tcp), whether or not anyone reads it."""
    inodes = ft._socket_inodes(pid)
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if (state == "01" and inode in inodes and int(local.split(":")[1], 16) == local_port
                    and int(remote.split(":")[1], 16) == peer_port):
                return True
    return False


class Stream:
    """What came back on one stream."""

    def __init__(self, sid, keep_data=True):
        self.id = sid
        self.keep_data = keep_data      # False: count and hash the body, keep no bytes
        self.informational = []         # header lists of 1xx responses
        self.headers = None             # [(name, value)] of the final response
        self.trailers = None
        self.data = bytearray()
        self.received = 0               # DATA payload bytes
        self.sent = 0                   # request DATA payload bytes sent
        self.data_frames = 0
        self.sha = hashlib.sha256()
        self.ended = False              # END_STREAM seen
        self.reset = None               # RST_STREAM error code
        self.paused = False             # True: no WINDOW_UPDATE for this stream
        self.unacked = 0
        self.send_window = DEFAULT_WINDOW
        self.opened_at = time.monotonic()
        self.done_at = None

    @property
    def done(self):
        return self.ended or self.reset is not None

    @property
    def status(self):
        value = self.header(":status")
        return int(value) if value is not None else None

    def header(self, name, trailers=False):
        """The value of a field (values of repeated fields joined with ", "), or None."""
        fields = (self.trailers if trailers else self.headers) or []
        values = [v for n, v in fields if n == name]
        return ", ".join(values) if values else None

    def names(self):
        return [n for n, _ in self.headers or []]

    def __repr__(self):
        return "<stream %d status=%s reset=%s ended=%s bytes=%d>" % (
            self.id, self.status, self.reset, self.ended, self.received)


class H2Conn:
    """One HTTP/2 connection to ferry (or any server).

    settings: our SETTINGS (dict id -> value) sent with the preface; window: our
    connection receive window (WINDOW_UPDATE on stream 0 after the preface);
    preface=False sends nothing (a test writes its own). tls=True offers `alpn`.
    rcvbuf: SO_RCVBUF of our socket (a small one makes a slow reader).
    """

    def __init__(self, port, tls=False, host="127.0.0.1", server_hostname="localhost",
                 settings=None, window=CLIENT_CONNECTION_WINDOW, preface=True,
                 timeout=10.0, alpn=("h2",), context=None, rcvbuf=None):
        self.timeout = timeout
        self.tls = bool(tls or context)
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        if rcvbuf:          # before connect(): the window scale is fixed by the SYN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.alpn = None
        if self.tls:
            ctx = context or ft.client_tls_context(alpn=list(alpn))
            sock = ctx.wrap_socket(sock, server_hostname=server_hostname)
            self.alpn = sock.selected_alpn_protocol()
        sock.setblocking(False)
        self.sock = sock
        self.out = bytearray()
        self.inbuf = bytearray()
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 30
        self.streams = {}
        self.next_sid = 1
        self.pending = {}              # sid -> [memoryview, offset, end_stream, trailers]
        self.peer_settings = {INITIAL_WINDOW_SIZE: DEFAULT_WINDOW, MAX_FRAME_SIZE: 16384}
        self.settings_received = 0     # non-ACK SETTINGS frames
        self.settings_acked = 0        # ACKs of ours
        self.pings_acked = 0
        self.send_window = DEFAULT_WINDOW
        self.recv_window = DEFAULT_WINDOW
        self.conn_unacked = 0
        self.stream_recv_window = DEFAULT_WINDOW
        self.auto_ack = True
        self.auto_window = True
        self.reading = True
        self.goaway = None             # (last_stream_id, error_code, debug data), the latest
        self.goaways = []              # every GOAWAY, in order
        self.closed = False            # the peer closed (EOF or reset)
        self.write_failed = False
        self.frames = []               # (type name, stream id, flags) of every frame read
        self._block = None             # (sid, end_stream, bytearray) of a header block
        if preface:
            self.send_preface(settings, window)

    # -- sending -----------------------------------------------------------------
    def send_preface(self, settings=None, window=CLIENT_CONNECTION_WINDOW):
        settings = {ENABLE_PUSH: 0, INITIAL_WINDOW_SIZE: CLIENT_STREAM_WINDOW} \
            if settings is None else settings
        self.stream_recv_window = settings.get(INITIAL_WINDOW_SIZE, DEFAULT_WINDOW)
        frame = hf.SettingsFrame(0)
        frame.settings = dict(settings)
        self.send_raw(PREFACE + frame.serialize())
        if window and window > DEFAULT_WINDOW:
            self.send_frame(hf.WindowUpdateFrame(0, window_increment=window - DEFAULT_WINDOW))
            self.recv_window = window

    def send_raw(self, data):
        self.out += data

    def send_frame(self, frame):
        self.out += frame.serialize()

    def new_stream_id(self):
        sid = self.next_sid
        self.next_sid += 2
        return sid

    def stream(self, sid):
        if sid not in self.streams:
            s = Stream(sid)
            s.send_window = self.peer_settings[INITIAL_WINDOW_SIZE]
            self.streams[sid] = s
        return self.streams[sid]

    def encode(self, headers):
        return self.encoder.encode([(n.encode() if isinstance(n, str) else n,
                                     v.encode() if isinstance(v, str) else v)
                                    for n, v in headers])

    def send_headers(self, sid, headers, end_stream=False, block=None, priority=None):
        """A HEADERS frame (and CONTINUATIONs past the peer's max frame size) with the
        fields exactly as given (no validation: tests send invalid ones on purpose), or
        with a raw HPACK `block`."""
        self.stream(sid)
        block = self.encode(headers) if block is None else block
        limit = self.peer_settings[MAX_FRAME_SIZE]
        first = hf.HeadersFrame(sid)
        first.data = block[:limit]
        if end_stream:
            first.flags.add("END_STREAM")
        rest = block[limit:]
        if not rest:
            first.flags.add("END_HEADERS")
        self.send_frame(first)
        while rest:
            cont = hf.ContinuationFrame(sid)
            cont.data, rest = rest[:limit], rest[limit:]
            if not rest:
                cont.flags.add("END_HEADERS")
            self.send_frame(cont)

    def request_headers(self, method, path, authority="localhost", headers=(), scheme=None):
        return [(":method", method), (":scheme", scheme or ("https" if self.tls else "http")),
                (":authority", authority), (":path", path)] + list(headers)

    def request(self, method="GET", path="/", authority="localhost", headers=(), body=None,
                trailers=None, end_stream=True, keep_data=True):
        """Opens a stream: HEADERS (with content-length for a whole `body` without
        trailers, as curl and nghttp send it; a request with trailers goes without, as
        gRPC's do), then `body` as the windows allow, then `trailers` if given.
        end_stream=False leaves the request open (send_data)."""
        sid = self.new_stream_id()
        self.stream(sid).keep_data = keep_data
        if body is not None and trailers is None and end_stream and \
                not any(n == "content-length" for n, _ in headers):
            headers = list(headers) + [("content-length", str(len(body)))]
        ends_now = end_stream and body is None and trailers is None
        self.send_headers(sid, self.request_headers(method, path, authority, headers),
                          end_stream=ends_now)
        if body is not None or (trailers is not None and end_stream):
            self.send_data(sid, body or b"", end_stream=end_stream, trailers=trailers)
        return sid

    def send_data(self, sid, data, end_stream=False, trailers=None):
        """Queues DATA for a stream, sent within the peer's flow-control windows."""
        self.pending.setdefault(sid, []).append([memoryview(data), 0, end_stream, trailers])

    def send_data_frame(self, sid, data, end_stream=False):
        """One DATA frame now, regardless of flow control (for tests of the limits)."""
        frame = hf.DataFrame(sid, data=data)
        if end_stream:
            frame.flags.add("END_STREAM")
        self.send_frame(frame)
        self.send_window -= len(data)
        self.stream(sid).send_window -= len(data)

    def reset_stream(self, sid, code=CANCEL):
        self.send_frame(hf.RstStreamFrame(sid, error_code=code))
        self.pending.pop(sid, None)

    def ping(self, payload=b"\0" * 8):
        self.send_frame(hf.PingFrame(0, opaque_data=payload))

    def _frame_pending_data(self):
        limit = self.peer_settings[MAX_FRAME_SIZE]
        for sid in list(self.pending):
            queue = self.pending[sid]
            s = self.stream(sid)
            while queue and len(self.out) < OUT_QUEUE_HIGH:
                if s.reset is not None:
                    queue.clear()
                    break
                view, offset, end_stream, trailers = queue[0]
                left = len(view) - offset
                n = min(left, limit, self.send_window, s.send_window)
                if n <= 0 and left > 0:
                    break
                is_last = n == left
                frame = hf.DataFrame(sid, data=bytes(view[offset:offset + n]))
                if is_last and end_stream and trailers is None and len(queue) == 1:
                    frame.flags.add("END_STREAM")
                if n > 0 or "END_STREAM" in frame.flags:
                    self.send_frame(frame)
                self.send_window -= n
                s.send_window -= n
                s.sent += n
                queue[0][1] += n
                if is_last:
                    queue.pop(0)
                    if trailers is not None and not queue:
                        self.send_headers(sid, trailers, end_stream=True)
            if not queue:
                self.pending.pop(sid, None)

    # -- the loop ----------------------------------------------------------------
    def wait(self, predicate, timeout=None, what="condition"):
        """Runs the connection until predicate() is true; returns its value.
        AssertionError when the deadline passes or the peer closes first."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            value = predicate()
            if value:
                return value
            if self.closed and not self.inbuf_has_frame():
                raise AssertionError("connection closed before %s (goaway=%r)\n%s" % (
                    what, self.goaway, self.summary()))
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timeout (%.1fs) waiting for %s\n%s" % (
                    timeout or self.timeout, what, self.summary()))
            self.step(min(left, 0.5))

    def inbuf_has_frame(self):
        return len(self.inbuf) >= 9 and len(self.inbuf) >= 9 + int.from_bytes(self.inbuf[:3], "big")

    def step(self, timeout=0.05):
        """Writes and reads what the socket allows within `timeout`; handles frames."""
        if not self.write_failed:
            self._frame_pending_data()
        want_write = bool(self.out) and not self.write_failed
        buffered = self.tls and self.sock.pending() > 0
        if self.closed:
            self._parse()
            return
        readers = [self.sock] if self.reading else []
        readable, writable, _ = select.select(readers, [self.sock] if want_write else [], [],
                                              0 if buffered else timeout)
        if writable:
            try:
                sent = self.sock.send(self.out[:262144])
                del self.out[:sent]
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                pass
            except OSError:
                self.write_failed = True
                self.out.clear()
        if (readable or buffered) and self.reading:
            try:
                chunk = self.sock.recv(262144)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                chunk = None
            except (ConnectionResetError, ssl.SSLError, OSError):
                chunk = b""
            if chunk == b"":
                self.closed = True
            elif chunk:
                self.inbuf += chunk
        self._parse()

    def flush(self, timeout=None, what="our frames written"):
        """Waits until everything queued is on the wire (or writing failed)."""
        return self.wait(lambda: (not self.out and not self.pending) or self.write_failed,
                         timeout, what)

    def wait_closed(self, timeout=None):
        """Waits for the peer's close; reads and discards. True if it came in time."""
        try:
            self.wait(lambda: self.closed, timeout, "close")
        except AssertionError:
            return self.closed
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- receiving ---------------------------------------------------------------
    def _parse(self):
        while self.inbuf_has_frame():
            frame, length = hf.Frame.parse_frame_header(memoryview(self.inbuf[:9]))
            frame.parse_body(memoryview(bytes(self.inbuf[9:9 + length])))
            del self.inbuf[:9 + length]
            self.frames.append((type(frame).__name__, frame.stream_id, frozenset(frame.flags)))
            self._on_frame(frame)

    def _on_frame(self, f):
        if isinstance(f, hf.SettingsFrame):
            if "ACK" in f.flags:
                self.settings_acked += 1
                return
            self.settings_received += 1
            if INITIAL_WINDOW_SIZE in f.settings:
                delta = f.settings[INITIAL_WINDOW_SIZE] - self.peer_settings[INITIAL_WINDOW_SIZE]
                for s in self.streams.values():
                    s.send_window += delta
            self.peer_settings.update(f.settings)
            if self.auto_ack:
                self.send_frame(hf.SettingsFrame(0, flags=["ACK"]))
        elif isinstance(f, hf.PingFrame):
            if "ACK" in f.flags:
                self.pings_acked += 1
            elif self.auto_ack:
                self.send_frame(hf.PingFrame(0, opaque_data=f.opaque_data, flags=["ACK"]))
        elif isinstance(f, hf.WindowUpdateFrame):
            if f.stream_id == 0:
                self.send_window += f.window_increment
            else:
                self.stream(f.stream_id).send_window += f.window_increment
        elif isinstance(f, hf.GoAwayFrame):
            self.goaway = (f.last_stream_id, f.error_code, f.additional_data)
            self.goaways.append(self.goaway)
        elif isinstance(f, hf.RstStreamFrame):
            s = self.stream(f.stream_id)
            s.reset = f.error_code
            s.done_at = s.done_at or time.monotonic()
            self.pending.pop(f.stream_id, None)
        elif isinstance(f, (hf.HeadersFrame, hf.PushPromiseFrame)):
            self._block = (f.stream_id, "END_STREAM" in f.flags, bytearray(f.data))
            if "END_HEADERS" in f.flags:
                self._end_block()
        elif isinstance(f, hf.ContinuationFrame):
            assert self._block and self._block[0] == f.stream_id, "stray CONTINUATION"
            self._block[2].extend(f.data)
            if "END_HEADERS" in f.flags:
                self._end_block()
        elif isinstance(f, hf.DataFrame):
            self._on_data(f)

    def _end_block(self):
        sid, end_stream, block = self._block
        self._block = None
        fields = [(n.decode("latin-1"), v.decode("latin-1"))
                  for n, v in self.decoder.decode(bytes(block), raw=True)]
        s = self.stream(sid)
        if s.headers is None:
            status = dict(fields).get(":status", "")
            if status.startswith("1"):
                s.informational.append(fields)
            else:
                s.headers = fields
        else:
            s.trailers = fields
        if end_stream:
            self._end_stream(s)

    def _end_stream(self, s):
        s.ended = True
        s.done_at = s.done_at or time.monotonic()

    def _on_data(self, f):
        s = self.stream(f.stream_id)
        s.received += len(f.data)
        s.data_frames += 1
        if s.keep_data:
            s.data += f.data
        else:
            s.sha.update(f.data)
        if "END_STREAM" in f.flags:
            self._end_stream(s)
        if not self.auto_window:
            return
        self.conn_unacked += f.flow_controlled_length
        if self.conn_unacked >= self.recv_window // 4:
            self.send_frame(hf.WindowUpdateFrame(0, window_increment=self.conn_unacked))
            self.conn_unacked = 0
        s.unacked += f.flow_controlled_length
        if not s.ended and not s.paused and s.unacked >= max(1, self.stream_recv_window // 4):
            self.resume(s)

    def resume(self, s):
        """Gives a stream's consumed bytes back to the peer (after s.paused)."""
        s.paused = False
        if s.unacked and not s.done:
            self.send_frame(hf.WindowUpdateFrame(s.id, window_increment=s.unacked))
        s.unacked = 0

    # -- conveniences ------------------------------------------------------------
    def response(self, sid, timeout=None):
        """Waits for a stream's end (END_STREAM or RST_STREAM); returns the Stream."""
        s = self.stream(sid)
        self.wait(lambda: s.done, timeout, "stream %d to end" % sid)
        return s

    def get(self, path, authority="localhost", headers=(), method="GET", timeout=None,
            body=None, trailers=None):
        return self.response(self.request(method, path, authority, headers, body=body,
                                          trailers=trailers), timeout)

    def summary(self):
        tail = ["%s(%d)%s" % (name, sid, "".join(" " + x for x in sorted(flags)))
                for name, sid, flags in self.frames[-12:]]
        return "frames read: %d, last: %s; goaway=%r closed=%s streams=%r" % (
            len(self.frames), ", ".join(tail), self.goaway, self.closed,
            list(self.streams.values())[-6:])


# ---- the real clients -------------------------------------------------------------

def curl_h2(url, args=(), timeout=30.0):
    """curl with the dev CA: -> (rc, body, http_version as curl reports it)."""
    rc, out, err = ft.curl(["--cacert", ft.CA_CERT, "-w", "\n%{http_version}"] + list(args) + [url],
                           timeout=timeout)
    body, _, version = out.rpartition(b"\n")
    return rc, body, version.decode(), err


def run_tool(args, timeout=120.0):
    """A client program (nghttp, h2load): (rc, stdout text, stderr text)."""
    res = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=timeout)
    return res.returncode, res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace")
