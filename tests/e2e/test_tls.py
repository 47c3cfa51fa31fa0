#!/usr/bin/env python3
"""TLS termination on listeners (handshake level, through a tcp+tls listener to an
echo backend): SNI certificate choice, protocol versions, ALPN, resumption (also
across a reload), mTLS, TLS to backends, hostile handshakes."""

import os
import socket
import ssl
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)  # TLS 1.0/1.1 probes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402

_certs = {}


def issue_cert(name, sans, key="ec"):
    """A certificate for `sans` signed by the dev CA (made once per run)."""
    if name in _certs:
        return _certs[name]
    d = ft.tmpdir()
    crt, keyf, csr, ext = (os.path.join(d, name + s) for s in (".crt", ".key", ".csr", ".ext"))
    keyspec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key == "ec" \
        else ["-newkey", "rsa:2048"]
    subprocess.run(["openssl", "req", "-new", *keyspec, "-nodes", "-keyout", keyf, "-out", csr,
                    "-subj", "/CN=%s" % sans[0]], check=True, capture_output=True)
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\n" % ",".join("DNS:" + s for s in sans))
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ft.CA_CERT, "-CAkey",
                    os.path.join(ft.CERTS, "ca.key"), "-CAcreateserial", "-out", crt,
                    "-days", "30", "-extfile", ext], check=True, capture_output=True)
    _certs[name] = (crt, keyf)
    return crt, keyf


def tls_config(backend, tls=None, pool_tls=None):
    tls = tls or {"certificates": [{"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY}]}
    config = {
        "workers": 1,
        "log": {"access": "off"},
        "listeners": {"tls": {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "tcp",
                              "tls": tls, "pool": "p"}},
        "pools": {"p": {"backends": [{"address": backend.address}]}},
    }
    if pool_tls:
        config["pools"]["p"]["tls"] = pool_tls
    return config


def handshake(port, server_hostname="localhost", **ctx_args):
    """(subject CN of the served certificate, negotiated version, alpn, the socket)."""
    ctx = ft.client_tls_context(verify=False, **ctx_args)
    sock = socket.create_connection(("127.0.0.1", port), timeout=5 * ft.SLOW)
    tls = ctx.wrap_socket(sock, server_hostname=server_hostname)
    der = tls.getpeercert(binary_form=True)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject",
                          "-nameopt", "multiline"], input=der, capture_output=True).stdout
    cn = [l.split("=", 1)[1].strip() for l in out.decode().splitlines() if "commonName" in l]
    return (cn[0] if cn else None), tls.version(), tls.selected_alpn_protocol(), tls


def echo_over(tls_sock, data=b"hello"):
    tls_sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = tls_sock.recv(65536)
        assert chunk, "connection closed after %d bytes" % len(got)
        got += chunk
    return got


def test_sni_selects_certificate_a_b_or_default():
    a = issue_cert("a", ["a.test"])
    b = issue_cert("b", ["*.b.test"])
    with ft.Backend("e", mode="echo") as be:
        tls = {"certificates": [{"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY},
                                {"cert": a[0], "key": a[1]}, {"cert": b[0], "key": b[1]}]}
        with ft.Ferry(tls_config(be, tls)) as f:
            port = f.port("tls")
            for name, expect in (("a.test", "a.test"), ("x.b.test", "*.b.test"),
                                 ("A.TEST", "a.test"), ("y.x.b.test", "localhost"),
                                 ("other.example", "localhost")):
                cn, _, _, s = handshake(port, server_hostname=name)
                assert cn == expect, "SNI %s got %s, want %s" % (name, cn, expect)
                assert echo_over(s) == b"hello"
                s.close()


def test_ecdsa_and_rsa_for_the_same_name_serves_what_the_client_supports():
    with ft.Backend("e", mode="echo") as be:
        tls = {"certificates": [{"cert": ft.RSA_CERT, "key": ft.RSA_KEY},
                                {"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY}]}
        with ft.Ferry(tls_config(be, tls)) as f:
            out = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % f.port("tls"),
                                  "-servername", "localhost", "-tls1_2", "-sigalgs",
                                  "RSA-PSS+SHA256:RSA+SHA256"],
                                 input=b"", capture_output=True, timeout=10).stdout.decode()
            assert "Peer signature type: RSA" in out or "rsaEncryption" in out or \
                "RSA-PSS" in out, out
            out = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % f.port("tls"),
                                  "-servername", "localhost", "-sigalgs", "ECDSA+SHA256"],
                                 input=b"", capture_output=True, timeout=10).stdout.decode()
            assert "Peer signature type: ECDSA" in out, out


def _version_refused(port, version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = version
    ctx.maximum_version = version
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            with ctx.wrap_socket(sock, server_hostname="localhost"):
                return False
    except (ssl.SSLError, ConnectionResetError):
        return True


def test_tls10_and_11_refused_12_and_13_accepted():
    with ft.Backend("e", mode="echo") as be, ft.Ferry(tls_config(be)) as f:
        port = f.port("tls")
        assert _version_refused(port, ssl.TLSVersion.TLSv1)
        assert _version_refused(port, ssl.TLSVersion.TLSv1_1)
        assert not _version_refused(port, ssl.TLSVersion.TLSv1_2)
        assert not _version_refused(port, ssl.TLSVersion.TLSv1_3)


def test_min_version_13_refuses_12():
    with ft.Backend("e", mode="echo") as be:
        tls = {"certificates": [{"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY}],
               "min_version": "TLS1.3"}
        with ft.Ferry(tls_config(be, tls)) as f:
            assert _version_refused(f.port("tls"), ssl.TLSVersion.TLSv1_2)
            assert not _version_refused(f.port("tls"), ssl.TLSVersion.TLSv1_3)


def test_alpn_negotiates_only_what_the_listener_offers():
    with ft.Backend("e", mode="echo") as be:
        tls = {"certificates": [{"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY}],
               "alpn": ["x-echo"]}
        with ft.Ferry(tls_config(be, tls)) as f:
            _, _, alpn, s = handshake(f.port("tls"), alpn=["h2", "x-echo"])
            s.close()
            assert alpn == "x-echo", alpn


def _connect_resuming(port, ctx, session=None, server_hostname="localhost"):
    """One TLS connection echoing a line; returns (session, was it resumed)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5 * ft.SLOW)
    with ctx.wrap_socket(sock, server_hostname=server_hostname, session=session) as tls:
        # TLS 1.3 tickets arrive after the handshake: a round trip collects them.
        assert echo_over(tls, b"ping\n") == b"ping\n"
        return tls.session, tls.session_reused


def test_resumption_works_and_survives_a_reload():
    with ft.Backend("e", mode="echo") as be, ft.Ferry(tls_config(be)) as f:
        port = f.port("tls")
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            ctx = ft.client_tls_context()
            ctx.minimum_version = ctx.maximum_version = version
            session, reused = _connect_resuming(port, ctx)
            assert not reused
            _, reused = _connect_resuming(port, ctx, session)
            assert reused, "%s session not resumed" % version
        ctx = ft.client_tls_context()
        session, _ = _connect_resuming(port, ctx)
        f.reload()
        f.wait_log("reload ok")
        _, reused = _connect_resuming(port, ctx, session)
        assert reused, "session not resumed after a reload"
        assert ft.metric(f.metrics(), "ferry_tls_resumptions_total") >= 3


def test_resumption_stays_with_its_server_name():
    """RFC 6066 §3: a session made for one SNI name is not resumed under another."""
    a = issue_cert("a", ["a.test"])
    with ft.Backend("e", mode="echo") as be:
        tls = {"certificates": [{"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY},
                                {"cert": a[0], "key": a[1]}]}
        with ft.Ferry(tls_config(be, tls)) as f:
            port = f.port("tls")
            for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
                ctx = ft.client_tls_context(verify=False)
                ctx.minimum_version = ctx.maximum_version = version
                session, _ = _connect_resuming(port, ctx, server_hostname="a.test")
                for name in ("localhost", "other.a.test"):
                    _, reused = _connect_resuming(port, ctx, session, server_hostname=name)
                    assert not reused, "%s: a.test session resumed as %s" % (version.name, name)
                _, reused = _connect_resuming(port, ctx, session, server_hostname="A.test")
                assert reused, "%s: a.test session not resumed" % version.name


def mtls(verify_client=None):
    tls = {"certificates": [{"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY}],
           "client_ca": ft.CA_CERT}
    if verify_client:
        tls["verify_client"] = verify_client
    return tls


def _try_echo(port, with_cert):
    args = {"cert": ft.CLIENT_CERT, "key": ft.CLIENT_KEY} if with_cert else {}
    try:
        _, _, _, s = handshake(port, **args)
        with s:
            return echo_over(s) == b"hello"
    except (ssl.SSLError, ConnectionResetError, AssertionError, OSError):
        return False


def test_mtls_required_optional_off():
    with ft.Backend("e", mode="echo") as be:
        with ft.Ferry(tls_config(be, mtls())) as f:     # client_ca alone = required
            assert _try_echo(f.port("tls"), with_cert=True)
            assert not _try_echo(f.port("tls"), with_cert=False)
        with ft.Ferry(tls_config(be, mtls("optional"))) as f:
            assert _try_echo(f.port("tls"), with_cert=True)
            assert _try_echo(f.port("tls"), with_cert=False)
        with ft.Ferry(tls_config(be, {"certificates": [
                {"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY}]})) as f:
            assert _try_echo(f.port("tls"), with_cert=False)


def make_ca(name):
    """A self-signed CA certificate of our own (its key is not needed)."""
    d = ft.tmpdir()
    crt, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "30", "-subj", "/CN=%s" % name,
                    "-addext", "basicConstraints=critical,CA:true"],
                   check=True, capture_output=True)
    return crt


def _rewrite_and_reload(f, path, content):
    with open(path, "wb") as out:
        out.write(content)
    code, _, body = f.admin("POST", "/reload")
    assert code == 200, body


def test_mtls_resumption_follows_the_client_ca_content():
    """client_ca rewritten in place + reload: a session verified against the old CA
    set takes a full handshake (verification again); an unchanged file resumes."""
    with open(ft.CA_CERT, "rb") as f:
        dev_ca = f.read()
    with open(make_ca("other-ca"), "rb") as f:
        other_ca = f.read()
    ca_file = os.path.join(ft.tmpdir(), "client-ca.pem")
    with open(ca_file, "wb") as out:
        out.write(dev_ca)
    tls = mtls()
    tls["client_ca"] = ca_file
    with ft.Backend("e", mode="echo") as be, ft.Ferry(tls_config(be, tls)) as f:
        port = f.port("tls")
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            _rewrite_and_reload(f, ca_file, dev_ca)
            ctx = ft.client_tls_context(cert=ft.CLIENT_CERT, key=ft.CLIENT_KEY)
            ctx.minimum_version = ctx.maximum_version = version
            session, _ = _connect_resuming(port, ctx)
            _rewrite_and_reload(f, ca_file, dev_ca)
            _, reused = _connect_resuming(port, ctx, session)
            assert reused, "%s: unchanged client_ca, session not resumed" % version.name
            _rewrite_and_reload(f, ca_file, dev_ca + other_ca)
            _, reused = _connect_resuming(port, ctx, session)
            assert not reused, "%s: resumed across a client_ca change" % version.name


def test_one_mib_through_tcp_tls_relay_is_intact():
    data = os.urandom(1024 * 1024)
    with ft.Backend("e", mode="echo") as be, ft.Ferry(tls_config(be)) as f:
        _, _, _, s = handshake(f.port("tls"))
        with s:
            got = ft.send_while_reading(s, data, len(data))
        assert got == data


def test_backend_tls_verify_success_and_wrong_ca_failure():
    with ft.Backend("t", mode="echo", tls=True) as be:
        good = {"verify": True, "ca": ft.CA_CERT, "sni": "localhost"}
        with ft.Ferry(tls_config(be, pool_tls=good)) as f:
            _, _, _, s = handshake(f.port("tls"))
            with s:
                assert echo_over(s) == b"hello"
        wrong_ca, _ = issue_cert("notca", ["not-a-ca.test"])
        bad = {"verify": True, "ca": wrong_ca, "sni": "localhost"}
        with ft.Ferry(tls_config(be, pool_tls=bad)) as f:
            _, _, _, s = handshake(f.port("tls"))
            with s:
                s.sendall(b"hello")
                assert ft.read_until_close(s, timeout=5) == b""
            backend = f.status()["pools"]["p"]["backends"][0]
            assert backend["failures"] >= 1, backend


def test_garbage_clienthello_and_silent_client_do_not_disturb_others():
    with ft.Backend("e", mode="echo") as be, ft.Ferry(tls_config(be)) as f:
        port = f.port("tls")
        silent = socket.create_connection(("127.0.0.1", port), timeout=5)
        ft.assert_garbage_hello_refused(port)
        plain = socket.create_connection(("127.0.0.1", port), timeout=5)
        plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = ft.read_until_close(plain, timeout=5)
        assert not reply.startswith(b"HTTP/"), reply      # an alert or a close
        plain.close()
        _, _, _, s = handshake(port)
        with s:
            assert echo_over(s) == b"hello", "a good client failed next to bad ones"
        silent.close()
        ft.poll_until(lambda: f.status()["connections"] == 0, message="silent client closed")
        failed = sum(value for (name, _), value in f.metrics().items()
                     if name == "ferry_tls_handshake_failures_total")
        assert failed >= 2, failed


if __name__ == "__main__":
    ft.main()
