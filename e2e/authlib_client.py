#!/usr/bin/env python3
"""A standard OIDC client that is not ours (Authlib) against a Portcullis user pool: discovery,
authorization code with PKCE (S256) through the hosted UI, ID-token verification with Authlib's own
JOSE and the pool's JWKS, userInfo, refresh, revocation, and refresh after revocation failing.

usage: authlib_client.py POOL_BASE_URL ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI USERNAME PASSWORD
"""
import re
import sys

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt


def main() -> int:
    base, issuer, client_id, secret, redirect_uri, username, password = sys.argv[1:8]
    disc = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
    assert disc["issuer"] == issuer, disc
    sess = OAuth2Session(
        client_id, secret, scope="openid email", redirect_uri=redirect_uri,
        code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic",
    )
    verifier = generate_token(48)
    url, _state = sess.create_authorization_url(disc["authorization_endpoint"], code_verifier=verifier, nonce="n-123")

    # The user signs in on the hosted UI (a browser would; requests stands in for it here).
    browser = requests.Session()
    r = browser.get(url, allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.status_code
    login = base + r.headers["Location"]
    html = browser.get(login, timeout=10).text
    csrf = re.search(r'name="_csrf" value="([^"]+)"', html).group(1)
    r = browser.post(login, data={"_csrf": csrf, "username": username, "password": password}, allow_redirects=False, timeout=10)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    callback = r.headers["Location"]

    token = sess.fetch_token(disc["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    jwks = JsonWebKey.import_key_set(requests.get(disc["jwks_uri"], timeout=10).json())
    claims = jwt.decode(
        token["id_token"], jwks,
        claims_options={"iss": {"essential": True, "value": issuer}, "aud": {"essential": True, "value": client_id}},
    )
    claims.validate()
    assert claims["nonce"] == "n-123", claims
    assert claims["token_use"] == "id"
    access = jwt.decode(token["access_token"], jwks)
    access.validate()
    assert "openid" in access["scope"].split(" ")

    info = sess.get(disc["userinfo_endpoint"], timeout=10).json()
    assert info["username"] == username and info["sub"] == claims["sub"], info

    refreshed = sess.refresh_token(disc["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["access_token"] != token["access_token"]
    r = sess.revoke_token(disc["revocation_endpoint"], token=token["refresh_token"], token_type_hint="refresh_token")
    assert r.status_code == 200, r.status_code
    try:
        sess.refresh_token(disc["token_endpoint"], refresh_token=token["refresh_token"])
        raise AssertionError("refresh after revocation succeeded")
    except Exception as e:  # Authlib raises OAuthError
        assert "invalid_grant" in str(e), e
    print("authlib: code+PKCE, ID token, userInfo, refresh, revoke ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
