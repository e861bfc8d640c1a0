#!/usr/bin/env python3
"""An app behind the linelogin gateway, in Python, with nothing but PyJWT and standardwebhooks.

It trusts no header on its own: every request's identity comes from the X-LineLogin-Assertion
JWT, verified with PyJWT against the gateway's published JWKS (ES256 only, issuer, audience and
expiry checked). The other X-LineLogin-* headers are a convenience; this app shows that the
name in the header is the name in the verified assertion.

Webhooks from linelogin are verified with the Standard Webhooks reference library.

Environment:
  PORT              where to listen (127.0.0.1; default 3000; 0 picks a free port)
  LINELOGIN_URL     the gateway's public URL with its prefix, e.g. http://127.0.0.1:8080/linelogin
                    (the JWKS is LINELOGIN_URL/.well-known/jwks.json)
  LINELOGIN_ISSUER  the assertion's `iss` (linelogin's public_url; default: LINELOGIN_URL's origin)
  ASSERTION_AUDIENCE the assertion's `aud` ([gateway] assertion_audience)
  WEBHOOK_SECRET    the [webhook] secret (whsec_...); webhooks are refused without it
  WEBHOOK_LOG       a file where each verified webhook is appended as one JSON line

Routes: GET / (HTML greeting), GET /whoami (JSON: verified claims and the headers received),
GET /health and /public/whoami (public paths: no login needed), POST /upload (counts and hashes the streamed body),
POST /hooks/linelogin (webhooks).
"""
import hashlib
import html
import json
import os
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

LINELOGIN_URL = os.environ.get("LINELOGIN_URL", "http://127.0.0.1:8080/linelogin").rstrip("/")
_origin = urllib.parse.urlsplit(LINELOGIN_URL)
ISSUER = os.environ.get("LINELOGIN_ISSUER", f"{_origin.scheme}://{_origin.netloc}")
AUDIENCE = os.environ.get("ASSERTION_AUDIENCE", "my-app")
JWKS = jwt.PyJWKClient(f"{LINELOGIN_URL}/.well-known/jwks.json", cache_keys=True, lifespan=300)
WEBHOOK_SECRET = os.environ.get("WEBHOOK_SECRET")
WEBHOOK_LOG = os.environ.get("WEBHOOK_LOG")


def verified_identity(headers):
    """The assertion's claims, verified; None when there is no valid assertion."""
    token = headers.get("X-LineLogin-Assertion")
    if not token:
        return None
    try:
        key = JWKS.get_signing_key_from_jwt(token)
        return jwt.decode(
            token,
            key.key,
            algorithms=["ES256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.PyJWTError as e:
        print(f"assertion refused: {e}", file=sys.stderr)
        return None


class App(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: one line per request on stderr is enough
        sys.stderr.write("upstream-python: " + (fmt % args) + "\n")

    def send(self, status, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/health":
            return self.send(200, "ok\n", "text/plain")
        claims = verified_identity(self.headers)
        if path in ("/whoami", "/public/whoami"):
            received = {k: v for k, v in self.headers.items()}
            return self.send(200, json.dumps({"claims": claims, "headers": received}))
        if claims is None:
            return self.send(401, json.dumps({"error": "no valid X-LineLogin-Assertion"}))
        # The header is a convenience: it must say what the verified assertion says.
        header_name = urllib.parse.unquote(self.headers.get("X-LineLogin-Name", ""))
        if header_name != claims.get("name"):
            return self.send(500, json.dumps({"error": "X-LineLogin-Name disagrees with the assertion"}))
        page = (
            "<!doctype html><meta charset=utf-8><title>Upstream app</title>"
            f"<h1 id=greeting>Hello, {html.escape(claims['name'])}</h1>"
            f"<p>LINE user <code id=user>{html.escape(claims['sub'])}</code>, "
            f"account <code id=account>{html.escape(claims['account'])}</code></p>"
        )
        return self.send(200, page, "text/html; charset=utf-8")

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/hooks/linelogin":
            return self.webhook()
        if path == "/upload":
            if verified_identity(self.headers) is None:
                return self.send(401, json.dumps({"error": "no valid X-LineLogin-Assertion"}))
            return self.upload()
        return self.send(404, json.dumps({"error": "not found"}))

    def read_body(self):
        """Yields the request body in chunks (Content-Length or chunked)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = size
                while left:
                    chunk = self.rfile.read(min(left, 1 << 16))
                    if not chunk:
                        raise ConnectionError("body cut short")
                    left -= len(chunk)
                    yield chunk
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    raise ConnectionError("body cut short")
                left -= len(chunk)
                yield chunk

    def upload(self):
        digest = hashlib.sha256()
        count = 0
        for chunk in self.read_body():
            digest.update(chunk)
            count += len(chunk)
        return self.send(200, json.dumps({"bytes": count, "sha256": digest.hexdigest()}))

    def webhook(self):
        body = b"".join(self.read_body())
        if not WEBHOOK_SECRET:
            return self.send(503, json.dumps({"error": "WEBHOOK_SECRET is not set"}))
        try:
            event = Webhook(WEBHOOK_SECRET).verify(body, dict(self.headers.items()))
        except WebhookVerificationError as e:
            return self.send(400, json.dumps({"error": f"signature: {e}"}))
        if WEBHOOK_LOG:
            with open(WEBHOOK_LOG, "a", encoding="utf-8") as f:
                f.write(json.dumps({"id": self.headers["webhook-id"], "event": event}) + "\n")
        return self.send(204, b"")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "3000"))), App)
    server.daemon_threads = True
    print(f"upstream-python on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
