"""A real SMTP server for Quarry's tests: aiosmtpd (Debian's python3-aiosmtpd) on loopback.

Usage: smtp_sink.py FOLDER [--tls CERT KEY | --implicit-tls CERT KEY] [--auth USER:PASSWORD]

Listens on a free port of 127.0.0.1, prints "listening PORT" once it accepts connections, and writes every message
it receives to FOLDER as NNN.json: envelope sender and recipients, the decoded subject, and the text and HTML parts.
With --tls it offers STARTTLS and requires it before AUTH; with --implicit-tls it speaks TLS from the first byte;
with --auth it requires AUTH PLAIN or LOGIN.
Runs until it is killed.
"""
import email
import email.policy
import json
import os
import socket
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class FolderHandler:
    def __init__(self, folder, implicit):
        self.folder = folder
        self.implicit = implicit
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = {}
        for part in message.walk():
            if part.get_content_maintype() == "text":
                parts[part.get_content_subtype()] = part.get_content()
        self.count += 1
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": str(message["subject"]),
            "from": str(message["from"]),
            "content_type": message.get_content_type(),
            "text": parts.get("plain"),
            "html": parts.get("html"),
            "authenticated": bool(getattr(session, "authenticated", False)),
            "tls": session.ssl is not None or self.implicit,
        }
        path = os.path.join(self.folder, "%03d.json" % self.count)
        with open(path + ".tmp", "w") as file:
            json.dump(record, file)
        os.rename(path + ".tmp", path)
        return "250 Message accepted"


def main():
    folder = sys.argv[1]
    arguments = sys.argv[2:]
    tls_context = None
    implicit = False
    user = password = None
    while arguments:
        if arguments[0] == "--tls":
            tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls_context.load_cert_chain(arguments[1], arguments[2])
            arguments = arguments[3:]
        elif arguments[0] == "--implicit-tls":
            tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls_context.load_cert_chain(arguments[1], arguments[2])
            implicit = True
            arguments = arguments[3:]
        elif arguments[0] == "--auth":
            user, password = arguments[1].split(":", 1)
            arguments = arguments[2:]
        else:
            sys.exit("unknown argument " + arguments[0])

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False)

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    options = {}
    if implicit:
        options.update(ssl_context=tls_context)
    elif tls_context is not None:
        options.update(tls_context=tls_context, require_starttls=True)
    if user is not None:
        options.update(authenticator=authenticator, auth_required=True, auth_require_tls=tls_context is not None)
    controller = Controller(FolderHandler(folder, implicit), hostname="127.0.0.1", port=port, **options)
    controller.start()
    print("listening %d" % port, flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
