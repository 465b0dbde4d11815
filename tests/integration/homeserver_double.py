"""A stand-in for the homeserver: answers /_matrix/client/v3/account/whoami from a table of
tokens, the one homeserver endpoint mxcd calls. Records every call so tests can count them,
and can be made to fail or go silent to test that mxcd fails closed."""

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

USERS = {
    "alice-token": {"user_id": "@alice:test.local"},
    "bob-token": {"user_id": "@bob:test.local"},
    "guest-token": {"user_id": "@guest:test.local", "is_guest": True},
}
SOFT_LOGOUT_TOKEN = "soft-logout-token"
APPSERVICE_TOKEN = "appservice-token"
APPSERVICE_USER = "@bridge:test.local"


class HomeserverDouble:
    def __init__(self, tls=None):
        """tls: (certificate file, key file) to serve https instead of http."""
        self.calls = []  # (path, query dict, headers dict)
        self.mode = "ok"  # "ok", "error" (HTTP 500), "hang" (no answer for 30 s)
        self._lock = threading.Lock()
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlparse(self.path)
                query = parse_qs(url.query)
                with double._lock:
                    double.calls.append((url.path, query, dict(self.headers)))
                if double.mode == "hang":
                    threading.Event().wait(30)
                    return
                if double.mode == "error":
                    return self._reply(500, {"errcode": "M_UNKNOWN", "error": "broken"})
                if url.path != "/_matrix/client/v3/account/whoami":
                    return self._reply(404, {"errcode": "M_UNRECOGNIZED", "error": "no"})
                auth = self.headers.get("Authorization", "")
                token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
                if token == APPSERVICE_TOKEN:
                    user = query.get("user_id", [APPSERVICE_USER])[0]
                    return self._reply(200, {"user_id": user})
                if token in USERS:
                    return self._reply(200, dict(USERS[token], device_id="DEVICE"))
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
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def whoami_calls(self):
        with self._lock:
            return [c for c in self.calls if c[0].endswith("/whoami")]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
