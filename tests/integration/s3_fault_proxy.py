"""An HTTP proxy between mxcd and the S3 server that can misbehave on request: answer with an
error a given number of times, hang, or go down altogether. It forwards requests unchanged
(the Host header included, so SigV4 signatures stay valid) and records what passed. It can
also serve over TLS, and send a Date header off by a given number of seconds (the clock of a
server that is not synchronised)."""

import http.client
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

CHUNK = 256 * 1024


class Rule:
    """Matches requests by method and a substring of the target; acts `times` times: hangs,
    or waits `delay` seconds and then answers the error `status`/`code` or, without a status,
    forwards the request."""

    def __init__(self, method, target_contains="", times=1, status=None, code=None, hang=False,
                 delay=0):
        self.method = method
        self.target_contains = target_contains
        self.times = times
        self.status = status
        self.code = code
        self.hang = hang
        self.delay = delay

    def matches(self, method, target):
        return self.times > 0 and method == self.method and self.target_contains in target


class S3FaultProxy:
    def __init__(self, upstream, tls=None):
        """tls: (certificate file, key file) to serve https instead of http."""
        self.upstream = urlsplit(upstream)
        self.rules = []
        self.requests = []  # (method, target, Range header) of every request seen
        self.down = False
        self.date_offset = 0  # seconds added to the Date header of every answer
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def date_time_string(self, timestamp=None):
                return super().date_time_string((timestamp or time.time()) + proxy.date_offset)

            def hang_up(self):
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def handle_one_request(self):
                if proxy.down:
                    self.hang_up()
                    return
                super().handle_one_request()

            def do_any(self):
                # A kept-alive connection waited for this request since before go_down().
                if proxy.down:
                    self.hang_up()
                    return
                proxy.forward(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, rule):
        with self.lock:
            self.rules.append(rule)
        return rule

    def count(self, method, target_contains=""):
        with self.lock:
            return sum(1 for m, t, _ in self.requests if m == method and target_contains in t)

    def go_down(self):
        """Every request from now on gets its connection closed without an answer."""
        self.down = True

    def come_back(self):
        self.down = False

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def forward(self, handler):
        method, target = handler.command, handler.path
        length = int(handler.headers.get("Content-Length") or 0)
        with self.lock:
            self.requests.append((method, target, handler.headers.get("Range")))
            rule = next((r for r in self.rules if r.matches(method, target)), None)
            if rule:
                rule.times -= 1
        if rule and rule.hang:
            time.sleep(3600)
            return
        body = handler.rfile.read(length) if length else None
        if rule:
            time.sleep(rule.delay)
        if rule and rule.status is not None:
            payload = (f"<?xml version=\"1.0\"?><Error><Code>{rule.code}</Code>"
                       f"<Message>injected by the test</Message></Error>").encode()
            handler.send_response(rule.status)
            handler.send_header("Content-Type", "application/xml")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        upstream = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            headers = {k: v for k, v in handler.headers.items()}
            upstream.request(method, target, body=body, headers=headers)
            response = upstream.getresponse()
            handler.send_response(response.status)
            for name, value in response.getheaders():
                # The proxy's own Date header (send_response) stands in for the server's.
                if name.lower() not in ("transfer-encoding", "connection", "date"):
                    handler.send_header(name, value)
            data = b"" if method == "HEAD" else None
            if data is None and response.getheader("Content-Length") is None:
                data = response.read()
                handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            if data is None:
                while chunk := response.read(CHUNK):
                    if self.down:
                        raise ConnectionError("the proxy went down mid-answer")
                    handler.wfile.write(chunk)
            else:
                handler.wfile.write(data)
        finally:
            upstream.close()
