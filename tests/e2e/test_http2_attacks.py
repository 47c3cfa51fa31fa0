#!/usr/bin/env python3
"""HTTP/2 attacks, each sent as raw frames: rapid reset (CVE-2023-44487), CONTINUATION
flood, HPACK bomb, SETTINGS/PING/PRIORITY/empty DATA/WINDOW_UPDATE floods, a client
that never reads its ACKs. Each must leave ferry within a memory bound (RSS growth) and
a CPU bound (utime + stime over the attack), and serving a connection opened before the
attack and a new one after it."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402
import h2client as h2  # noqa: E402
import h2env  # noqa: E402

# ASan parks freed memory in a quarantine (256 MiB by default) that RSS counts: a small
# one keeps the memory bound about what ferry holds, not about what it freed.
os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "detect_leaks=1") + \
    ":quarantine_size_mb=16"

RSS_GROWTH_KIB = 48 * 1024       # far below what the attacks would make ferry hold
CPU_S = 5.0                      # over one attack, sanitizer build on a shared machine
RESET_STREAMS = 10000
RESET_REQUESTS_MAX = 300         # requests the backend may see out of RESET_STREAMS
FLOOD_FRAMES = 100000            # per flood; the budget is about 1000


class Attack:
    """ferry + backend + a bystander connection; measures RSS and CPU around the attack
    and checks afterwards that ferry goes on serving."""

    def __init__(self, **config):
        self.backend = ft.Backend("alpha").start()
        self.proxy = h2env.proxy(h2env.h2_config(self.backend, **config)).start()
        self.port = self.proxy.port("plain")

    def __enter__(self):
        self.proxy.__enter__()
        self.bystander = h2.H2Conn(self.proxy.port("tls"), tls=True)
        assert self.bystander.get("/").status == 200
        with h2.H2Conn(self.port) as warm:       # the first h2c connection's allocations
            assert warm.get("/").status == 200
        self.rss = h2.settled_rss_kib(self.proxy.pid)
        self.cpu = h2.cpu_seconds(self.proxy.pid)
        return self

    def connect(self, **kw):
        c = h2.H2Conn(self.port, **kw)
        c.wait(lambda: c.settings_received, what="the server's SETTINGS")
        return c

    def check_bounds(self, what="", sent=None):
        cpu = h2.cpu_seconds(self.proxy.pid) - self.cpu
        grown = h2.settled_rss_kib(self.proxy.pid) - self.rss
        print("%s: %sferry CPU %.2f s, RSS %+d KiB" % (
            what, "%d sent before the stop, " % sent if sent is not None else "", cpu, grown))
        assert cpu < CPU_S, "the attack cost ferry %.1f s of CPU" % cpu
        assert grown < RSS_GROWTH_KIB, "ferry grew %d KiB" % grown
        start = time.monotonic()
        assert self.bystander.get("/", timeout=5).status == 200
        assert time.monotonic() - start < 2.0, "bystander answered after %.1fs" % (
            time.monotonic() - start)
        with h2.H2Conn(self.port) as fresh:
            assert fresh.get("/").data == b"alpha\n"

    def __exit__(self, *exc):
        self.bystander.close()
        self.proxy.__exit__(*exc)
        self.backend.__exit__(*exc)
        return False


def send_until_stopped(c, make_batch, total, what):
    """Queues make_batch() while fewer than `total` were queued and the server has
    neither closed nor said GOAWAY; returns how many were queued. make_batch returns
    (bytes, count)."""
    queued = 0
    deadline = time.monotonic() + 60
    while queued < total and not (c.closed or c.write_failed or c.goaway):
        assert time.monotonic() < deadline, "%s: still sending after 60s" % what
        if len(c.out) < 256 * 1024:
            data, n = make_batch()
            c.send_raw(data)
            queued += n
        c.step(0.01)
    return queued


def assert_calmed_down(c, what, timeout=10):
    """GOAWAY ENHANCE_YOUR_CALM, then the close."""
    assert c.wait_closed(timeout), "%s: connection still open: %s" % (what, c.summary())
    assert c.goaway is not None and c.goaway[1] == h2.ENHANCE_YOUR_CALM, \
        "%s: GOAWAY %r, not ENHANCE_YOUR_CALM: %s" % (what, c.goaway, c.summary())


def test_rapid_reset_is_stopped_with_enhance_your_calm():
    with Attack() as a:
        c = a.connect()
        requests_before = a.backend.stats()["app_requests"]
        headers = c.request_headers("GET", "/sleep/100")

        def batch(n=100):
            for _ in range(n):
                sid = c.new_stream_id()
                c.send_headers(sid, headers)          # open, the request still coming
                c.reset_stream(sid, h2.CANCEL)
            return b"", n

        sent = send_until_stopped(c, batch, RESET_STREAMS, "rapid reset")
        assert_calmed_down(c, "rapid reset after %d streams" % sent)
        forwarded = a.backend.stats()["app_requests"] - requests_before
        assert forwarded <= RESET_REQUESTS_MAX, "%d reset streams reached the backend" % forwarded
        print("rapid reset: %d requests reached the backend" % forwarded)
        a.check_bounds("rapid reset (streams)", sent)


def test_continuation_flood_is_bounded_by_max_header_bytes():
    with Attack() as a:
        c = a.connect()
        sid = c.new_stream_id()
        c.send_frame(h2.hf.HeadersFrame(sid, data=c.encode(c.request_headers("GET", "/"))))
        # never-indexed literals: each repetition decodes to a new 1 KiB field
        piece = h2.hpack.Encoder().encode([(b"x-flood", b"f" * 1000, True)], huffman=False)
        frame = h2.hf.ContinuationFrame(sid, data=piece * 16).serialize()
        total = 128 * 1024 * 1024 // len(frame)
        sent = send_until_stopped(c, lambda: (frame * 16, 16), total, "CONTINUATION flood")
        assert c.wait_closed(10), "CONTINUATION flood: still open: %s" % c.summary()
        assert sent < total, "all %d MiB of one header block were taken" % (sent * len(frame) >> 20)
        assert c.stream(sid).status is None, "the flooded stream was answered"
        a.check_bounds("CONTINUATION flood (frames)", sent)


def test_hpack_bomb_is_refused_on_its_stream():
    """4 KiB put in the dynamic table once, then referenced 4000 times: 8 KiB on the
    wire that decode to 16 MiB. 431 or RST_STREAM on that stream, not memory."""
    with Attack() as a:
        c = a.connect()
        sid = c.new_stream_id()
        value = b"B" * 4000
        bomb = b"\x40\x06x-bomb\x7f" + bytes([(4000 - 127) % 128 | 0x80, (4000 - 127) // 128]) \
            + value + b"\xbe" * 4000
        block = c.encode(c.request_headers("GET", "/")) + bomb
        c.encoder.encode([(b"x-bomb", value)], huffman=False)   # our table as the server's
        c.send_headers(sid, None, end_stream=True, block=block)
        s = c.response(sid)
        assert s.status == 431 or (s.reset is not None and s.headers is None), s
        assert c.goaway is None, c.summary()
        assert c.get("/").data == b"alpha\n"
        a.check_bounds("HPACK bomb (answered %s)" % (s.status or "RST_STREAM"))


def flood_test(what, make_frame, before=None):
    with Attack() as a:
        c = a.connect()
        setup = before(c) if before else None
        frame = make_frame(c, setup)
        batch = frame * 500
        sent = send_until_stopped(c, lambda: (batch, 500), FLOOD_FRAMES, what)
        assert_calmed_down(c, "%s after %d frames" % (what, sent))
        a.check_bounds(what + " (frames)", sent)


def test_settings_flood_is_stopped():
    flood_test("SETTINGS flood", lambda c, _: h2.hf.SettingsFrame(0).serialize())


def test_ping_flood_is_stopped():
    flood_test("PING flood", lambda c, _: h2.hf.PingFrame(0, opaque_data=b"pingpong").serialize())


def test_priority_flood_is_stopped():
    flood_test("PRIORITY flood",
               lambda c, _: h2.hf.PriorityFrame(1, depends_on=0, stream_weight=15).serialize())


def test_empty_data_flood_is_stopped():
    flood_test("empty DATA flood", lambda c, sid: h2.hf.DataFrame(sid, data=b"").serialize(),
               before=lambda c: c.request("POST", "/echo", end_stream=False))


def test_window_update_flood_is_stopped():
    flood_test("WINDOW_UPDATE flood",
               lambda c, _: h2.hf.WindowUpdateFrame(0, window_increment=1).serialize())


def test_a_client_that_never_reads_its_acks_is_closed():
    """PINGs and SETTINGS, each owing an ACK, from a client that reads nothing: the
    ACKs must not pile up in ferry."""
    with Attack() as a:
        c = a.connect(rcvbuf=16384)
        c.reading = False
        client_port = c.sock.getsockname()[1]
        frames = (h2.hf.PingFrame(0, opaque_data=b"unread!!").serialize() +
                  h2.hf.SettingsFrame(0).serialize()) * 500
        deadline = time.monotonic() + 20
        while not c.write_failed and time.monotonic() < deadline and \
                h2.holds_connection(a.proxy.pid, a.port, client_port):
            if len(c.out) < 256 * 1024:
                c.send_raw(frames)
            c.step(0.01)
        ft.poll_until(lambda: not h2.holds_connection(a.proxy.pid, a.port, client_port),
                      timeout=10, message="the client that reads nothing closed")
        c.close()
        a.check_bounds()


if __name__ == "__main__":
    ft.main()
