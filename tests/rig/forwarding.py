"""What the fixtures in front of the offline AWS share (aws_deny.py,
aws_gaps.py): a handler that reads each query-API request, lets the fixture
answer it or forwards it to moto unchanged, and replies. Loopback only."""
import http.server
import urllib.error
import urllib.parse
import urllib.request


class Forwarding(http.server.BaseHTTPRequestHandler):
    """Subclasses set UPSTREAM and define `handle_form(action, form, body)`,
    returning (status, body) to answer, or None to forward."""

    UPSTREAM = ""

    def forward(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length) if length else b""
        form = urllib.parse.parse_qs(body.decode(errors="replace"))
        action = form.get("Action", [""])[0]
        answered = self.handle_form(action, form, body)
        self.reply(*(answered or self.upstream(body)))

    def upstream(self, body):
        """moto's answer to the request as it came."""
        request = urllib.request.Request(self.UPSTREAM + self.path, data=body or None, method=self.command)
        for name, value in self.headers.items():
            if name.lower() not in ("host", "content-length"):
                request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = forward

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    # socketserver's listen backlog is 5: a reading that opens a dozen
    # connections at once (three accounts, four describes each) had SYNs
    # dropped and retried a second later, a delay that was the fixture's.
    request_queue_size = 128


def serve(port, handler):
    server = Server(("127.0.0.1", port), handler)
    # Readiness for a caller that cannot connect here (inside a namespace).
    print(f"listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()
