"""Authlib logs in against the linelogin emulator, unchanged except for the endpoint URLs.

The framework-free Authlib client (``authlib.integrations.requests_client.OAuth2Session``):
authorization URL (state, nonce, PKCE S256) -> emulator (``--auto-consent``) -> ``fetch_token``
with the callback URL (``client_secret_basic``, Authlib's default) -> the ID token verified with
the channel secret (HS256, LINE web login) and checked with Authlib's ``CodeIDToken`` -> the
profile from the userinfo endpoint. Prints one line: ``ok authlib Authlib X.Y.Z`` or
``FAIL authlib Authlib X.Y.Z: hop: message``; exits 1 on failure.

Environment: ``EMULATOR_URL`` (the emulator), ``CHANNEL_ID``, ``CHANNEL_SECRET``.
"""

import os
import sys
from importlib.metadata import version

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import OctKey

EMU = os.environ.get("EMULATOR_URL", "http://127.0.0.1:9000").rstrip("/")
CHANNEL_ID = os.environ.get("CHANNEL_ID", "1234567890")
CHANNEL_SECRET = os.environ.get("CHANNEL_SECRET", "0123456789abcdef0123456789abcdef")
ISSUER = "https://access.line.me"  # LINE's issuer: kept; only the URLs point at the emulator
REDIRECT_URI = "http://127.0.0.1:8080/callback"
AUTHORIZE_URL = f"{EMU}/oauth2/v2.1/authorize"
TOKEN_URL = f"{EMU}/oauth2/v2.1/token"
USERINFO_URL = f"{EMU}/oauth2/v2.1/userinfo"
LABEL = f"Authlib {version('Authlib')}"


class HopError(Exception):
    """A failure at one hop of the login."""

    def __init__(self, hop, message):
        super().__init__(message)
        self.hop = hop


def hop(name, fn):
    """Runs fn; any exception becomes a HopError of this hop."""
    try:
        return fn()
    except HopError:
        raise
    except Exception as e:  # noqa: BLE001 - the message is the report
        raise HopError(name, f"{type(e).__name__}: {e}") from e


def login():
    session = OAuth2Session(
        CHANNEL_ID,
        CHANNEL_SECRET,
        scope="openid profile",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    verifier = generate_token(48)
    nonce = generate_token(20)
    url, state = hop(
        "authorize URL",
        lambda: session.create_authorization_url(AUTHORIZE_URL, code_verifier=verifier, nonce=nonce),
    )
    if not url.startswith(AUTHORIZE_URL):
        raise HopError("authorize URL", f"points at {url}")

    def consent():
        resp = requests.get(url, allow_redirects=False, timeout=10)
        location = resp.headers.get("location", "")
        if resp.status_code != 302 or not location.startswith(REDIRECT_URI + "?"):
            raise RuntimeError(f"authorize answered {resp.status_code} {location or resp.text[:300]}")
        return location

    callback = hop("consent", consent)
    token = hop(
        "token",
        lambda: session.fetch_token(
            TOKEN_URL, authorization_response=callback, state=state, code_verifier=verifier
        ),
    )

    def check_id_token():
        if "id_token" not in token:
            raise RuntimeError(f"no id_token in the token response (keys: {sorted(token)})")
        decoded = jwt.decode(token["id_token"], OctKey.import_key(CHANNEL_SECRET.encode()), algorithms=["HS256"])
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            options={"iss": {"values": [ISSUER]}},
            params={"nonce": nonce, "client_id": CHANNEL_ID, "access_token": token["access_token"]},
        )
        claims.validate(leeway=60)
        return claims

    claims = hop("id_token", check_id_token)

    def profile():
        resp = session.get(USERINFO_URL, timeout=10)
        resp.raise_for_status()
        info = resp.json()
        if info.get("sub") != claims["sub"] or not info.get("name"):
            raise RuntimeError(f"unexpected userinfo {info}")
        return info

    hop("profile", profile)

    def refresh():
        old = token["access_token"]
        fresh = session.refresh_token(TOKEN_URL)  # client_secret_basic again
        if not fresh.get("access_token") or fresh["access_token"] == old:
            raise RuntimeError("no new access token")
        session.get(USERINFO_URL, timeout=10).raise_for_status()

    hop("refresh", refresh)


def main():
    try:
        login()
    except HopError as e:
        message = " ".join(str(e).split())
        print(f"FAIL authlib {LABEL}: {e.hop}: {message}")
        return 1
    except Exception as e:  # noqa: BLE001
        print(f"FAIL authlib {LABEL}: harness: {type(e).__name__}: {e}")
        return 1
    print(f"ok authlib {LABEL}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
