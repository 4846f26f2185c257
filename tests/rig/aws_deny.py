#!/usr/bin/env python3
"""A stand-in for IAM in front of the offline AWS: forwards every request to
moto unchanged, except the actions it is told to refuse, which get the
documented error answers (EC2: 403 UnauthorizedOperation; STS: 403
AccessDenied). moto does not evaluate IAM policies by default; this is how
the tests see what vpc-probe does with a role that cannot be assumed or a
describe the policy leaves out. Loopback only.

    aws_deny.py PORT UPSTREAM ACTION[,ACTION...]
"""
import http.server
import sys
import urllib.parse
import urllib.request

PORT, UPSTREAM, DENIED = int(sys.argv[1]), sys.argv[2], set(sys.argv[3].split(","))

EC2 = ("<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not "
       "authorized to perform this operation. User: arn:aws:sts::222222222222:assumed-role/"
       "vpc-probe-read/vpc-probe is not authorized to perform: ec2:{action}</Message></Error>"
       "</Errors><RequestID>deny</RequestID></Response>")
STS = ("<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: "
       "arn:aws:iam::123456789012:user/probe is not authorized to perform: sts:AssumeRole on "
       "resource: {role}</Message></Error><RequestId>deny</RequestId></ErrorResponse>")


class Handler(http.server.BaseHTTPRequestHandler):
    def forward(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length) if length else b""
        form = urllib.parse.parse_qs(body.decode(errors="replace"))
        action = form.get("Action", [""])[0]
        if action in DENIED:
            text = STS.format(role=form.get("RoleArn", [""])[0]) if action == "AssumeRole" else EC2.format(action=action)
            self.answer(403, text.encode())
            return
        request = urllib.request.Request(UPSTREAM + self.path, data=body or None, method=self.command)
        for name, value in self.headers.items():
            if name.lower() not in ("host", "content-length"):
                request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                self.answer(response.status, response.read())
        except urllib.error.HTTPError as err:
            self.answer(err.code, err.read())

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = forward

    def log_message(self, *args):
        pass


SERVER = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
# Readiness for a caller that cannot connect here (inside a namespace).
print(f"listening on 127.0.0.1:{PORT}", flush=True)
SERVER.serve_forever()
