"""A stand-in for the homeserver. mxcd calls exactly one homeserver endpoint,
GET /_matrix/client/v3/account/whoami, so that is all the double answers. It records every
call (so tests can count them), and can be made slow, broken or unreachable, to test that
mxcd fails closed."""

import json
import ssl
import threading
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ALICE_TOKEN = "alice-token"
BOB_TOKEN = "bob-token"
GUEST_TOKEN = "guest-token"
APPSERVICE_TOKEN = "appservice-token"
SOFT_LOGOUT_TOKEN = "soft-logout-token"  # unknown, and the homeserver says soft_logout
FORBIDDEN_TOKEN = "forbidden-token"      # the homeserver answers 403 M_FORBIDDEN

ALICE_ID = "@alice:test.local"
BOB_ID = "@bob:test.local"
GUEST_ID = "@guest:test.local"
APPSERVICE_ID = "@bridge:test.local"  # whom the appservice token stands for without ?user_id=

USERS = {
    ALICE_TOKEN: {"user_id": ALICE_ID},
    BOB_TOKEN: {"user_id": BOB_ID},
    GUEST_TOKEN: {"user_id": GUEST_ID, "is_guest": True},
}

WHOAMI = "/_matrix/client/v3/account/whoami"

Call = namedtuple("Call", "path query headers")


class HomeserverDouble:
    def __init__(self, tls=None):
        """tls: (certificate file, key file) to serve https instead of http."""
        self.calls = []
        self.status_override = None  # answer every call with this status (e.g. 500)
        self.delay = 0.0             # seconds to wait before answering
        self._released = threading.Event()  # set on close, so delayed handlers end at once
        self._lock = threading.Lock()
        self._closed = False
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlparse(self.path)
                query = parse_qs(url.query)
                with double._lock:
                    double.calls.append(Call(url.path, query, dict(self.headers)))
                if double.delay and double._released.wait(double.delay):
                    return  # closing: drop the request unanswered
                if double.status_override is not None:
                    return self._reply(double.status_override,
                                       {"errcode": "M_UNKNOWN", "error": "homeserver is broken"})
                if url.path != WHOAMI:
                    return self._reply(404, {"errcode": "M_UNRECOGNIZED", "error": "no"})
                auth = self.headers.get("Authorization", "")
                token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
                if token == APPSERVICE_TOKEN:
                    # An appservice may act as any user in its namespace.
                    return self._reply(200, {"user_id": query.get("user_id", [APPSERVICE_ID])[0]})
                if token in USERS:
                    return self._reply(200, dict(USERS[token], device_id="DEVICE"))
                if token == FORBIDDEN_TOKEN:
                    return self._reply(403, {"errcode": "M_FORBIDDEN", "error": "locked"})
                body = {"errcode": "M_UNKNOWN_TOKEN", "error": "Unknown access token"}
                if token == SOFT_LOGOUT_TOKEN:
                    body["soft_logout"] = True
                return self._reply(401, body)

            def _reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        # A short poll interval, because close() waits for the serving loop to notice.
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    def whoami_calls(self):
        with self._lock:
            return [c for c in self.calls if c.path == WHOAMI]

    def go_down(self):
        """Stops listening: connections to the homeserver are refused from now on."""
        self.close()

    def close(self):
        if self._closed:
            return
        self._closed = True
        self._released.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)
