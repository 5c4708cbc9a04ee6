"""A real SMTP server for wxrisk's email tests, built on aiosmtpd.

Usage: smtp_server.py --out FILE [--security tls|starttls|none] [--cert PEM --key PEM] [--user U --password P]
                      [--capture-auth]

Listens on 127.0.0.1 at a free port and prints `READY <port>` once it accepts connections. Every accepted mail is
appended to FILE as one JSON line: the envelope, the login, whether the session was TLS, the raw data, and the
headers and text/HTML parts as Python's `email` package parses them. With --user, AUTH is required and
a wrong password gets aiosmtpd's `535 5.7.8 Authentication credentials invalid`. With --capture-auth it plays a
server an attacker runs: every AUTH is accepted and its login and password are appended to FILE as
{"auth_login", "auth_password"}. Runs until killed or until its
standard input closes (so it never outlives the test that started it).
"""

import argparse
import email
import email.policy
import json
import logging
import socket
import ssl
import sys
import threading
import uuid
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        # Python's own MIME parser reads what we sent: an independent check of the encoding.
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = parsed.get_body(("plain",))
        html = parsed.get_body(("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": login,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "data": envelope.content.decode("utf-8", "replace"),
            "subject": str(parsed["subject"]),
            "from": str(parsed["from"]),
            "to": str(parsed["to"]),
            "message_id": str(parsed["message-id"]),
            "content_type": parsed.get_content_type(),
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
        }
        with self.lock, open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        return "250 2.0.0 Ok: queued as " + uuid.uuid4().hex[:12].upper()


def main():
    # aiosmtpd warns about AUTH without required TLS, which the test servers do on purpose.
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--security", choices=["tls", "starttls", "none"], default="none")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--capture-auth", action="store_true")
    args = parser.parse_args()
    lock = threading.Lock()

    def capture(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            record = {"auth_login": auth_data.login.decode("utf-8", "replace"),
                      "auth_password": auth_data.password.decode("utf-8", "replace")}
            with lock, open(args.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        return AuthResult(success=True, handled=False, auth_data=auth_data)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == args.user
            and auth_data.password.decode() == args.password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    params = {}
    ssl_context = None
    if args.security != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        if args.security == "tls":
            ssl_context = context
        else:
            params.update(tls_context=context, require_starttls=True)
    if args.capture_auth:
        params.update(authenticator=capture, auth_required=True)
        params["auth_require_tls"] = args.security == "starttls"
    elif args.user:
        params.update(authenticator=authenticator, auth_required=True)
        # With STARTTLS, AUTH only after the upgrade (as real servers do). aiosmtpd does not count implicit TLS as
        # TLS for this rule, and the `none` server is plain by design, so neither requires it.
        params["auth_require_tls"] = args.security == "starttls"

    port = free_port()
    controller = Controller(
        Recorder(args.out), hostname="127.0.0.1", port=port, ssl_context=ssl_context, server_hostname="localhost", **params
    )
    controller.start()
    print(f"READY {port}", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
