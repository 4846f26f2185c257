"""A TLS RESP server that accepts ElastiCache IAM tokens the way ElastiCache
does: AUTH <user> <token>, where the token must be a SigV4 presigned
`connect` request for this cache, this user and this region, signed with
the credentials of the access key it names, and not expired. The signature
is recomputed with botocore's own signer at the token's own X-Amz-Date.
A rejected token gets ElastiCache's one answer, WRONGPASS; the reason goes
to stderr for the test's log.

Usage: iam_redis.py [HOST:]PORT CERT KEY CACHE_NAME USER REGION ACCESS_KEY SECRET_KEY
       [SKEW_SECONDS] [serverless]
With `serverless`, it plays a Serverless cache's reader endpoint: tokens
must carry ResourceType=ServerlessCache, INFO says cluster mode, and reads
(PING here) are sent away with MOVED until the client says READONLY.
Prints "ready" once listening.
"""

import datetime
import socket
import ssl
import sys
import threading
from urllib.parse import parse_qsl

import os

from botocore.credentials import Credentials

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import botocore_token  # noqa: E402  (the same recipe the token test compares with)

(port, cert, key, cache_name, user, region, access_key, secret_key) = sys.argv[1:9]
skew = float(sys.argv[9]) if len(sys.argv) > 9 else 0.0
serverless = len(sys.argv) > 10 and sys.argv[10] == "serverless"
host, _, port = port.rpartition(":")
host = host or "127.0.0.1"
lock = threading.Lock()


def expected_token(params, at, session_token):
    """botocore's token for these inputs at `at`."""
    with lock:
        botocore_token.fix_clock(at)
        credentials = Credentials(access_key, secret_key, session_token)
        return botocore_token.elasticache_token(credentials, region, cache_name, params)


def why_rejected(auth_user, token):
    """None for a good token, else why it is not."""
    host, _, query = token.partition("/?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    if host != cache_name.lower():
        return f"cache name {host}, not {cache_name.lower()}"
    if auth_user != user or params.get("User") != user:
        return f"user {auth_user}/{params.get('User')}, not {user}"
    if serverless and params.get("ResourceType") != "ServerlessCache":
        return "not a Serverless token (no ResourceType=ServerlessCache)"
    scope = params.get("X-Amz-Credential", "").split("/")
    if len(scope) != 5 or scope[0] != access_key:
        return f"credential {params.get('X-Amz-Credential')}"
    if scope[2] != region:
        return f"region {scope[2]}, not {region}"
    signed_at = datetime.datetime.strptime(params.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ")
    now = datetime.datetime.utcnow() + datetime.timedelta(seconds=skew)
    if now > signed_at + datetime.timedelta(seconds=int(params.get("X-Amz-Expires", "0"))):
        return f"expired: signed {signed_at}, now {now}"
    own = [k for k in params if not k.startswith("X-Amz-")]
    operation = {k: params[k] for k in own}
    expected = expected_token(operation, signed_at, params.get("X-Amz-Security-Token"))
    theirs = dict(parse_qsl(expected.partition("/?")[2]))
    if theirs.get("X-Amz-Signature") != params.get("X-Amz-Signature"):
        return "signature mismatch"
    return None


def read_command(stream):
    line = stream.readline()
    if not line:
        return None
    if not line.startswith(b"*"):
        return line.strip().split()
    parts = []
    for _ in range(int(line[1:])):
        size = int(stream.readline()[1:])
        parts.append(stream.read(size + 2)[:-2])
    return parts


def serve(conn):
    stream = conn.makefile("rwb")
    authed = False
    readonly = False
    try:
        while True:
            command = read_command(stream)
            if command is None:
                return
            name = command[0].decode().upper()
            if name == "AUTH" and len(command) == 3:
                why = why_rejected(command[1].decode(), command[2].decode())
                if why is None:
                    authed = True
                    stream.write(b"+OK\r\n")
                else:
                    print(f"rejected: {why}", file=sys.stderr, flush=True)
                    stream.write(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
            elif not authed:
                stream.write(b"-NOAUTH Authentication required.\r\n")
            elif name == "READONLY":
                readonly = True
                stream.write(b"+OK\r\n")
            elif name == "PING" and serverless and not readonly:
                stream.write(b"-MOVED 0 127.0.0.1:6379\r\n")
            elif name == "PING":
                stream.write(b"+PONG\r\n")
            elif name == "INFO":
                enabled = b"1" if serverless else b"0"
                body = b"# Cluster\r\ncluster_enabled:" + enabled + b"\r\n"
                stream.write(b"$%d\r\n%s\r\n" % (len(body), body))
            elif name == "CLUSTER" and serverless:
                body = b"cluster_state:ok\r\n"
                stream.write(b"$%d\r\n%s\r\n" % (len(body), body))
            else:
                stream.write(b"-ERR unknown command\r\n")
            stream.flush()
    except (OSError, ValueError):
        return
    finally:
        conn.close()


context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((host, int(port)))
listener.listen(64)
print("ready", flush=True)
while True:
    raw, _ = listener.accept()
    try:
        conn = context.wrap_socket(raw, server_side=True)
    except (OSError, ssl.SSLError):
        raw.close()
        continue
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
