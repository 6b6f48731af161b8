"""A submission server on loopback for the SMTP mailer's tests (aiosmtpd).

It behaves like the submission port of a hosted mailbox: STARTTLS is required before AUTH,
AUTH PLAIN/LOGIN take the test password, XOAUTH2 takes any bearer token that starts with
`test-access-`, and every accepted message is kept as a JSON file in the spool folder with the
authenticated user, the envelope and the message text, for the tests to read.

Recipients script the server's answers, so the mailer's classification can be tested against
real SMTP replies:
  rcpt-busy@...      450 to RCPT TO (nothing was sent; try later)
  rcpt-unknown@...   550 to RCPT TO (the recipient does not exist)
  data-drop@...      the connection is closed after the message data, without an answer
  data-busy@...      451 after the message data (the outcome is unknown to the client)

usage: smtp-server.py HOST PORT CERT KEY SPOOL PASSWORD
"""

import base64
import itertools
import json
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST, PORT, CERT, KEY, SPOOL, PASSWORD = sys.argv[1:7]
sequence = itertools.count(1)


def local_part(address):
    return address.split("@", 1)[0].lower()


class Submission:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if local_part(address).startswith("rcpt-busy"):
            return "450 4.2.1 Mailbox busy, try again later"
        if local_part(address).startswith("rcpt-unknown"):
            return "550 5.1.1 The email account that you tried to reach does not exist"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        recipients = [local_part(r) for r in envelope.rcpt_tos]
        if any(r.startswith("data-drop") for r in recipients):
            session.transport.close()
            return "421 4.4.2 connection dropped"
        if any(r.startswith("data-busy") for r in recipients):
            return "451 4.3.0 Temporary server error, please try again later"
        number = next(sequence)
        auth = session.auth_data
        user = auth.login.decode() if isinstance(auth, LoginPassword) else auth
        record = {
            "auth_user": user,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", errors="replace"),
        }
        path = os.path.join(SPOOL, f"{os.getpid()}-{number:06d}.json")
        with open(path + ".tmp", "w") as out:
            json.dump(record, out)
        os.replace(path + ".tmp", path)
        return f"250 2.0.0 OK queued as TEST{number:06d}"

    async def auth_XOAUTH2(self, server, args):
        if len(args) > 1:
            blob = args[1]
        else:
            blob = await server.challenge_auth("", encode_to_b64=False)
            if blob is server.AuthCancelled:
                return AuthResult(success=False, handled=False)
            blob = blob.decode() if isinstance(blob, bytes) else blob
        try:
            fields = dict(
                part.split("=", 1) for part in base64.b64decode(blob).decode().split("\x01") if "=" in part
            )
            user, token = fields["user"], fields["auth"].removeprefix("Bearer ")
        except Exception:
            return AuthResult(success=False, handled=False)
        if token.startswith("test-access-"):
            return AuthResult(success=True, auth_data=f"{user} (oauth2 {token})")
        await server.push('334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=')
        await server._reader.readline()
        return AuthResult(success=False, handled=False)


def password_check(server, session, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword) and auth_data.password.decode() == PASSWORD:
        return AuthResult(success=True, auth_data=auth_data)
    return AuthResult(success=False, handled=False)


def main():
    os.makedirs(SPOOL, exist_ok=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(CERT, KEY)
    controller = Controller(
        Submission(),
        hostname=HOST,
        port=int(PORT),
        server_hostname="localhost",
        tls_context=context,
        require_starttls=True,
        auth_require_tls=True,
        auth_required=True,
        authenticator=password_check,
    )
    controller.start()
    print(f"listening on {HOST}:{PORT}", flush=True)
    try:
        threading.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
