"""A small OpenID provider on loopback for the OIDC tests, with Authlib's JOSE for RS256 keys, the
JWKS and ID tokens. It approves every authorization request at once (there is no login page) and
checks what a real provider checks: the client's credentials, the redirect URI, the single use of
a code and the PKCE verifier. `mode` makes it misbehave in the ways a relying party must catch."""
import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from authlib.jose import JsonWebKey, jwt


class Provider:
    def __init__(self, client_id, client_secret, email, email_verified=True):
        self.client_id = client_id
        self.client_secret = client_secret
        self.subject = "sub-" + secrets.token_hex(4)
        self.email = email
        self.email_verified = email_verified
        self.key = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "k1"})
        self.forger_key = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "k1"})
        self.codes = {}
        self.mode = "ok"
        self.token_requests = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send_json(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                if url.path == "/.well-known/openid-configuration":
                    self.send_json(200, {
                        "issuer": provider.issuer, "authorization_endpoint": provider.issuer + "/authorize",
                        "token_endpoint": provider.issuer + "/token", "jwks_uri": provider.issuer + "/jwks",
                        "response_types_supported": ["code"], "subject_types_supported": ["public"],
                        "id_token_signing_alg_values_supported": ["RS256"]})
                elif url.path == "/jwks":
                    public = provider.key.as_dict(is_private=False)
                    public.update({"use": "sig", "alg": "RS256"})
                    self.send_json(200, {"keys": [public]})
                elif url.path == "/authorize":
                    if query.get("client_id") != provider.client_id or query.get("response_type") != "code":
                        return self.send_json(400, {"error": "invalid_request"})
                    if query.get("code_challenge_method") != "S256" or "openid" not in query.get("scope", "").split():
                        return self.send_json(400, {"error": "invalid_request"})
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = {"nonce": query.get("nonce"), "redirect_uri": query["redirect_uri"],
                                            "challenge": query["code_challenge"]}
                    target = query["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code, "state": query.get("state", "")})
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.end_headers()
                else:
                    self.send_json(404, {"error": "not_found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                provider.token_requests += 1
                if self.path != "/token" or form.get("grant_type") != "authorization_code":
                    return self.send_json(400, {"error": "unsupported_grant_type"})
                if form.get("client_id") != provider.client_id or form.get("client_secret") != provider.client_secret:
                    return self.send_json(401, {"error": "invalid_client"})
                grant = provider.codes.pop(form.get("code", ""), None)
                if not grant or grant["redirect_uri"] != form.get("redirect_uri"):
                    return self.send_json(400, {"error": "invalid_grant"})
                digest = base64.urlsafe_b64encode(hashlib.sha256(form.get("code_verifier", "").encode()).digest()).rstrip(b"=").decode()
                if digest != grant["challenge"]:
                    return self.send_json(400, {"error": "invalid_grant", "error_description": "PKCE verification failed"})
                now = int(time.time())
                claims = {"iss": provider.issuer, "sub": provider.subject, "aud": provider.client_id, "iat": now,
                          "exp": now + 300, "nonce": grant["nonce"], "email": provider.email,
                          "email_verified": provider.email_verified, "name": "Oidc User"}
                key = provider.key
                if provider.mode == "wrong_audience":
                    claims["aud"] = "someone-else"
                elif provider.mode == "forged_signature":
                    key = provider.forger_key
                elif provider.mode == "wrong_nonce":
                    claims["nonce"] = "not-the-nonce"
                elif provider.mode == "expired":
                    claims["iat"], claims["exp"] = now - 900, now - 600
                elif provider.mode == "wrong_issuer":
                    claims["iss"] = "http://evil.example"
                id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key).decode()
                if provider.mode == "alg_none":
                    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": "k1"}).encode()).rstrip(b"=").decode()
                    id_token = header + "." + id_token.split(".")[1] + "."
                self.send_json(200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                                     "expires_in": 300, "id_token": id_token})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
