"""A real SMTP server (aiosmtpd) for tests: accepts mail, requires AUTH PLAIN when a user is given,
and appends each message to a JSON-lines file. Prints its port, then serves until stdin closes.

Usage: smtp_sink.py <messages.jsonl> [<user> <password>]
"""

import json
import socket
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

out_path = sys.argv[1]
creds = tuple(sys.argv[2:4]) if len(sys.argv) >= 4 else None


class Sink:
    async def handle_DATA(self, server, session, envelope):
        with open(out_path, "a") as f:
            f.write(
                json.dumps(
                    {
                        "from": envelope.mail_from,
                        "to": envelope.rcpt_tos,
                        "data": envelope.content.decode("utf-8", "replace"),
                        "authenticated": bool(session.authenticated),
                    }
                )
                + "\n"
            )
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and creds is not None
        and (auth_data.login.decode(), auth_data.password.decode()) == creds
    )
    return AuthResult(success=ok)


kwargs = {}
if creds:
    kwargs = {"authenticator": authenticator, "auth_required": True, "auth_require_tls": False}
# aiosmtpd's controller cannot bind port 0 (it connects to its port to check it): take a free one.
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
controller = Controller(Sink(), hostname="127.0.0.1", port=port, **kwargs)
controller.start()
print(port, flush=True)
sys.stdin.read()
controller.stop()
