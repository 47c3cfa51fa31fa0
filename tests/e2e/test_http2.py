#!/usr/bin/env python3
"""HTTP/2 from clients: ALPN h2 on TLS listeners, h2c by prior knowledge on plain ones,
each stream one request through the HTTP/1.1 machinery to the backends (routing by
:authority, X-Forwarded-*, cookies, trailers, hop-by-hop fields, bodies without DATA,
ferry's own errors as responses on the stream), with real clients (curl, nghttp,
h2load) and h2client. FERRY_E2E_REFERENCE=haproxy runs them against HAProxy (h2env)."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402
import h2client as h2  # noqa: E402
import h2env  # noqa: E402


def started(*backends, **config):
    for b in backends:
        b.start()
    return h2env.proxy(h2env.h2_config(*backends, **config)).start()


def backend_head(stream):
    """The request head the backend received (its /headers route echoes it):
    (request line, {lower-case name: [values]})."""
    assert stream.status == 200, stream
    lines = stream.data.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            fields.setdefault(name.strip().lower(), []).append(value.strip())
    return lines[0], fields


# ---- negotiation -----------------------------------------------------------------

def test_curl_speaks_h2_by_alpn_on_tls_and_by_prior_knowledge_on_h2c():
    b = ft.Backend("alpha")
    with started(b) as p, b:
        rc, body, version, err = h2.curl_h2("https://localhost:%d/bytes/5000" % p.port("tls"),
                                            ["--http2"])
        assert (rc, version) == (0, "2"), (rc, version, err)
        assert body == ft.pattern_bytes(5000)
        rc, body, version, err = h2.curl_h2("http://127.0.0.1:%d/" % p.port("plain"),
                                            ["--http2-prior-knowledge"])
        assert (rc, version, body) == (0, "2", b"alpha\n"), (rc, version, body, err)
        with h2.H2Conn(p.port("tls"), tls=True) as c:
            assert c.alpn == "h2"


def test_http11_is_still_served_on_both_listeners():
    b = ft.Backend("alpha")
    with started(b) as p, b:
        rc, body, version, err = h2.curl_h2("https://localhost:%d/" % p.port("tls"), ["--http1.1"])
        assert (rc, version, body) == (0, "1.1", b"alpha\n"), (rc, version, err)
        rc, body, version, err = h2.curl_h2("http://127.0.0.1:%d/" % p.port("plain"))
        assert (rc, version, body) == (0, "1.1", b"alpha\n"), (rc, version, err)
        with ft.Client(p.port("plain")) as c:      # keep-alive next to h2c
            for _ in range(3):
                assert c.request("GET", "/bytes/10")[2] == ft.pattern_bytes(10)


def test_alpn_http11_only_turns_h2_off():
    b = ft.Backend("alpha")
    with started(b, alpn=["http/1.1"]) as p, b:
        rc, body, version, err = h2.curl_h2("https://localhost:%d/" % p.port("tls"), ["--http2"])
        assert (rc, version, body) == (0, "1.1", b"alpha\n"), (rc, version, err)
        ctx = ft.client_tls_context(alpn=["h2", "http/1.1"])
        with ft.connect(p.port("tls"), context=ctx) as sock:
            assert sock.selected_alpn_protocol() == "http/1.1"


def test_prior_knowledge_is_not_served_when_h2c_is_off():
    h2env.ferry_only("HAProxy takes the h2c preface on every HTTP bind")
    b = ft.Backend("alpha")
    with started(b, h2c=False) as p, b:
        c = h2.H2Conn(p.port("plain"))
        c.flush()
        c.wait_closed(timeout=5)
        assert not c.frames, "answered in HTTP/2: %s" % c.summary()
        reply = bytes(c.inbuf)
        assert reply == b"" or reply.startswith((b"HTTP/1.1 400", b"HTTP/1.1 505")), reply[:200]
        assert b.stats()["app_requests"] == 0
        assert ft.Client(p.port("plain")).request("GET", "/")[0] == 200


# ---- real clients ----------------------------------------------------------------

def test_nghttp_100_concurrent_streams_over_two_backends():
    a, b = ft.Backend("alpha"), ft.Backend("beta")
    with started(a, b) as p, a, b:
        sizes = [1000 + 997 * i for i in range(100)]
        har = os.path.join(ft.tmpdir(), "nghttp.har")
        # 127.0.0.1: nghttp resolves "localhost" with getaddrinfo, which a bare Debian
        # root without /etc/hosts cannot (and nghttp still exits 0)
        urls = ["https://127.0.0.1:%d/bytes/%d" % (p.port("tls"), n) for n in sizes]
        rc, out, err = h2.run_tool(["nghttp", "-n", "--har=" + har] + urls, timeout=60)
        assert rc == 0, (rc, out, err)
        with open(har) as f:
            entries = json.load(f)["log"]["entries"]
        got = sorted((int(e["request"]["url"].rsplit("/", 1)[1]), e["response"]["status"],
                      e["response"]["content"]["size"]) for e in entries)
        assert got == [(n, 200, n) for n in sizes], got[:5]
        counts = [a.stats()["app_requests"], b.stats()["app_requests"]]
        assert sum(counts) == 100 and min(counts) >= 40, counts


def test_100_concurrent_streams_on_one_connection_have_intact_bodies():
    a, b = ft.Backend("alpha"), ft.Backend("beta")
    with started(a, b) as p, a, b, h2.H2Conn(p.port("plain")) as c:
        sizes = {c.request("GET", "/bytes/%d" % (7 * i + 1)): 7 * i + 1 for i in range(100)}
        c.wait(lambda: all(c.streams[sid].done for sid in sizes), timeout=30,
               what="100 streams answered")
        served_by = {"alpha": 0, "beta": 0}
        for sid, n in sizes.items():
            s = c.streams[sid]
            assert s.status == 200 and s.data == ft.pattern_bytes(n), s
            served_by[s.header("x-backend")] += 1
        assert min(served_by.values()) >= 40, served_by


def test_h2load_many_connections_and_streams_all_succeed():
    a, b = ft.Backend("alpha"), ft.Backend("beta")
    with started(a, b) as p, a, b:
        for url in ("https://127.0.0.1:%d/bytes/2000" % p.port("tls"),
                    "http://127.0.0.1:%d/bytes/2000" % p.port("plain")):
            rc, out, err = h2.run_tool(["h2load", "-c", "8", "-m", "16", "-n", "3000", url],
                                       timeout=120)
            assert rc == 0, (rc, out, err)
            assert "3000 succeeded, 0 failed, 0 errored, 0 timeout" in out, out
            assert "status codes: 3000 2xx" in out, out
            assert "Application protocol: h2" in out, out


# ---- one stream, one request -----------------------------------------------------

def test_streams_are_routed_by_authority_or_host():
    a, b = ft.Backend("alpha"), ft.Backend("beta")
    routes = [{"match": {"host": "api.localhost"}, "pool": "api"},
              {"match": {"host": "*.beta.test"}, "pool": "api"},
              {"pool": "web"}]
    a.start()
    b.start()
    config = h2env.h2_config(a, routes=routes)
    config["pools"]["api"] = {"backends": [{"address": b.address, "name": b.name}]}
    with h2env.proxy(config) as p, a, b, h2.H2Conn(p.port("tls"), tls=True) as c:
        for authority, want in (("api.localhost", "beta"), ("API.Localhost:8443", "beta"),
                                ("x.y.beta.test", "beta"), ("localhost", "alpha")):
            s = c.get("/", authority=authority)
            assert (s.status, s.header("x-backend")) == (200, want), (authority, s)
        # no :authority, a Host field instead (RFC 9113 §8.3.1)
        sid = c.new_stream_id()
        c.send_headers(sid, [(":method", "GET"), (":scheme", "https"), (":path", "/"),
                             ("host", "api.localhost")], end_stream=True)
        s = c.response(sid)
        assert (s.status, s.header("x-backend")) == (200, "beta"), s


def test_backend_sees_host_x_forwarded_fields_and_joined_cookies():
    b = ft.Backend("alpha")
    with started(b) as p, b:
        for port, tls, proto in ((p.port("tls"), True, "https"), (p.port("plain"), False, "http")):
            with h2.H2Conn(port, tls=tls) as c:
                s = c.get("/headers", authority="www.example.test",
                          headers=[("cookie", "a=1"), ("x-forwarded-for", "10.9.8.7"),
                                   ("cookie", "b=2"), ("cookie", "c=3")])
                line, fields = backend_head(s)
                assert line == "GET /headers HTTP/1.1", line
                assert fields["host"] == ["www.example.test"], fields
                assert fields["x-forwarded-proto"] == [proto], fields
                assert fields["x-forwarded-host"] == ["www.example.test"], fields
                assert ", ".join(fields["x-forwarded-for"]) == "10.9.8.7, 127.0.0.1", fields
                assert fields["cookie"] == ["a=1; b=2; c=3"], fields


def test_upgrade_h2c_on_http11_is_stripped_and_served_as_http11():
    b = ft.Backend("alpha")
    with started(b) as p, b, ft.Client(p.port("plain")) as c:
        status, headers, body = c.request("GET", "/headers", headers={
            "Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c",
            "HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA"})
        assert status == 200 and "upgrade" not in headers, (status, headers)
        head = body.decode("latin-1").lower()
        assert "upgrade" not in head and "http2-settings" not in head, head
        assert c.request("GET", "/")[2] == b"alpha\n"      # still HTTP/1.1 on it


def test_hop_by_hop_fields_of_responses_are_dropped():
    b = ft.Backend("alpha")
    with started(b) as p, b, h2.H2Conn(p.port("tls"), tls=True) as c:
        s = c.get("/hop-by-hop")
        assert (s.status, bytes(s.data)) == (200, b"hop-by-hop\n"), s
        for name in ("connection", "x-hop", "keep-alive", "proxy-connection", "upgrade",
                     "transfer-encoding"):
            assert name not in s.names(), s.headers
        s = c.get("/chunked/100")
        assert "transfer-encoding" not in s.names() and s.data == ft.pattern_bytes(100), s


def test_head_204_and_304_carry_no_data():
    b = ft.Backend("alpha")
    with started(b) as p, b, h2.H2Conn(p.port("plain")) as c:
        s = c.get("/bytes/1000", method="HEAD")
        assert (s.status, s.header("content-length"), s.data_frames) == (200, "1000", 0), s
        s = c.get("/chunked/1000", method="HEAD")
        assert (s.status, s.data_frames) == (200, 0), s
        for code in (204, 304):
            s = c.get("/status/%d" % code)
            assert (s.status, s.data_frames, s.ended) == (code, 0, True), s
        assert c.get("/").data == b"alpha\n"


def test_chunked_and_close_delimited_backend_bodies_become_data():
    b = ft.Backend("alpha")
    with started(b) as p, b, h2.H2Conn(p.port("tls"), tls=True) as c:
        for path in ("/chunked/300000", "/close-delimited/300000"):
            s = c.get(path)
            assert s.status == 200 and s.data == ft.pattern_bytes(300000), s
            assert s.header("content-length") in (None, "300000"), s.headers
        assert c.get("/").data == b"alpha\n"


def test_trailers_pass_both_ways():
    b = ft.Backend("alpha")
    with started(b) as p, b, h2.H2Conn(p.port("tls"), tls=True) as c:
        s = c.get("/trailers", method="POST", body=b"hello",
                  trailers=[("x-req", "one"), ("x-req2", "two")])
        assert s.status == 200, s
        assert s.data.decode().lower().split("\r\n") == ["x-req: one", "x-req2: two", ""], s.data
        assert s.trailers is not None, s.headers
        assert (s.header("x-trailer", trailers=True), s.header("x-body-bytes", trailers=True)) \
            == ("done", "5"), s.trailers
        s = c.get("/trailers")
        assert (s.data, s.header("x-trailer", trailers=True)) == (b"", "done"), s


# ---- ferry's own errors ------------------------------------------------------------

def test_ferry_errors_are_responses_on_the_stream_and_the_connection_goes_on():
    good = ft.Backend("alpha", health_file=os.path.join(ft.tmpdir(), "alpha-down")).start()
    down = ft.Backend("beta", health_file=os.path.join(ft.tmpdir(), "beta-down")).start()
    down.set_healthy(False)
    check = {"type": "http", "path": "/healthz", "interval_ms": 100, "timeout_ms": 50,
             "rise": 1, "fall": 1}
    routes = [{"match": {"host": "dead.test"}, "pool": "dead"},
              {"match": {"host": "down.test"}, "pool": "down"},
              {"match": {"host": "localhost"}, "pool": "web"}]
    config = h2env.h2_config(good, routes=routes, timeouts={"upstream_response_ms": 500},
                             limits={"max_body_bytes": 1000, "max_header_bytes": 4096,
                                     "max_headers": 20})
    config["pools"]["dead"] = {"backends": [{"address": "127.0.0.1:%d" % ft.free_port()}],
                               "retries": 0}
    config["pools"]["down"] = {"backends": [{"address": down.address}], "health_check": check}
    with h2env.proxy(config) as p, good, down, h2.H2Conn(p.port("tls"), tls=True) as c:
        ft.poll_until(lambda: c.get("/", authority="down.test").status == 503, timeout=10,
                      message="down.test answered 503")
        cases = [
            (404, dict(authority="nowhere.test")),
            (413, dict(method="POST", path="/echo", body=b"x" * 2000)),
            (502, dict(authority="dead.test")),
            (503, dict(authority="down.test")),
            (504, dict(path="/hang")),
            (431, dict(headers=[("x-many-%d" % i, "v") for i in range(40)])),
            # decoded 5000 bytes, Huffman-coded to 3750: the decoded list counts
            (431, dict(headers=[("x-big", "b" * 5000)])),
        ]
        for want, kw in cases:
            s = c.get(kw.pop("path", "/"), timeout=10, **kw)
            assert s.status == want and s.ended and s.reset in (None, h2.NO_ERROR), (want, s)
            assert c.goaway is None and not c.closed, c.summary()
            assert c.get("/").data == b"alpha\n", "connection unusable after %d" % want


if __name__ == "__main__":
    ft.main()
