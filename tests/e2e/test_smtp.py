#!/usr/bin/env python3
"""SMTP through ferry with a real server and client: aiosmtpd (python3-aiosmtpd)
behind a tcp listener whose pool sends PROXY v1 sees the real client address (its own
PROXY protocol support parses the header); SMTPS (implicit TLS) terminated on a
tcp+tls listener delivers a mail sent with smtplib.SMTP_SSL intact."""

import os
import smtplib
import socket
import sys
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402

try:
    from aiosmtpd.controller import Controller
except ImportError:     # reported as a skip by require_aiosmtpd()
    Controller = None

CLIENT_IP = "127.0.0.2"


class Recorder:
    """aiosmtpd handler: keeps every delivered mail with what the session knew."""

    def __init__(self):
        self.mails = []
        self.lock = threading.Lock()

    async def handle_PROXY(self, server, session, envelope, proxy_data):
        return True     # aiosmtpd's own hook: accept what the header says

    async def handle_DATA(self, server, session, envelope):
        proxy = session.proxy_data
        with self.lock:
            self.mails.append({
                "peer": session.peer, "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos), "content": envelope.original_content,
                "proxy_src": str(proxy.src_addr) if proxy and proxy.src_addr else None,
                "proxy_port": proxy.src_port if proxy else None,
                "proxy_version": proxy.version if proxy else None})
        return "250 Message accepted for delivery"


def smtp_server(handler, proxy):
    """An aiosmtpd Controller on a free loopback port; with proxy, every connection
    must begin with a PROXY header (its own start-up probe sends an UNKNOWN one)."""
    if Controller is None:
        raise ft.Skip("python3-aiosmtpd is not installed (scripts/install-deps installs it)")

    class Server(Controller):
        def _trigger_server(self):
            with socket.create_connection((self.hostname, self.port), 5) as s:
                if proxy:
                    s.sendall(b"PROXY UNKNOWN\r\n")
                s.recv(1024)

    kwargs = {"proxy_protocol_timeout": 5} if proxy else {}
    controller = Server(handler, hostname="127.0.0.1", port=ft.free_port(), **kwargs)
    controller.start()
    return controller


def message(body):
    msg = EmailMessage()
    msg["From"] = "alice@example.test"
    msg["To"] = "bob@example.test"
    msg["Subject"] = "through ferry"
    msg.set_content(body)
    return msg


def smtp_config(listener, backend_port, proxy_protocol=None):
    pool = {"backends": [{"address": "127.0.0.1:%d" % backend_port}]}
    if proxy_protocol:
        pool["proxy_protocol"] = proxy_protocol
    return {"workers": 2, "log": {"level": "info", "access": "off"},
            "timeouts": {"drain_ms": 2000},
            "listeners": {"smtp": listener}, "pools": {"mail": pool}}


def test_smtp_server_sees_the_client_address_through_proxy_v1():
    recorder = Recorder()
    server = smtp_server(recorder, proxy=True)
    try:
        listener = {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "tcp", "pool": "mail"}
        with ft.Ferry(smtp_config(listener, server.port, "v1")) as f:
            with smtplib.SMTP("127.0.0.1", f.port("smtp"), source_address=(CLIENT_IP, 0),
                              timeout=10) as client:
                client_port = client.sock.getsockname()[1]
                client.ehlo("client.example.test")
                client.send_message(message("Hello over SMTP.\n.leading dot\n"))
            ft.poll_until(lambda: recorder.mails, message="the mail delivered")
            mail = recorder.mails[0]
            assert mail["proxy_version"] == 1, mail
            assert (mail["proxy_src"], mail["proxy_port"]) == (CLIENT_IP, client_port), mail
            assert mail["peer"][0] == "127.0.0.1", mail     # the socket: ferry
            assert mail["rcpt_tos"] == ["bob@example.test"], mail
            assert b".leading dot" in mail["content"], mail
    finally:
        server.stop()


def test_smtps_terminated_by_ferry_delivers_the_mail_intact():
    recorder = Recorder()
    server = smtp_server(recorder, proxy=False)
    try:
        listener = {"listen": "127.0.0.1:%d" % ft.free_port(), "mode": "tcp", "pool": "mail",
                    "tls": {"certificates": [{"cert": ft.SERVER_CERT, "key": ft.SERVER_KEY}]}}
        with ft.Ferry(smtp_config(listener, server.port)) as f:
            ctx = ft.client_tls_context()
            ctx.check_hostname = False      # 127.0.0.1 is not a name of the certificate,
                                            # whose chain is still verified
            body = "".join("line %05d: %s\n" % (i, "é" * 40) for i in range(4000))
            with smtplib.SMTP_SSL("127.0.0.1", f.port("smtp"), context=ctx,
                                  timeout=10) as client:
                assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
                client.ehlo("client.example.test")
                sent = message(body)
                client.send_message(sent)
            ft.poll_until(lambda: recorder.mails, message="the mail delivered")
            got = recorder.mails[0]["content"]
            received = message_from_bytes(got, policy=policy.default)
            assert received["Subject"] == "through ferry"
            assert received.get_content() == sent.get_content(), "the body changed on the way"
            assert len(got) > 300000, len(got)
    finally:
        server.stop()


if __name__ == "__main__":
    ft.main()
