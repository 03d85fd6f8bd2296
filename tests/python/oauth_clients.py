"""Standard OAuth 2.0 clients against a live Loom Auth host: each logs in with the password
grant, then, once its access token has expired, refreshes by itself on the next request.

Usage: oauth_clients.py BASE_URL EMAIL PASSWORD. Prints what each client did; exits non-zero
on the first thing that is not as it should be.
"""

import os
import sys
import time

# oauthlib insists on https; the host under test is on loopback.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"

from authlib.integrations.requests_client import OAuth2Session as AuthlibSession  # noqa: E402
from oauthlib.oauth2 import LegacyApplicationClient  # noqa: E402
from requests_oauthlib import OAuth2Session  # noqa: E402


def expect(condition, what):
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def requests_oauthlib_refreshes(base, email, password):
    updates = []
    session = OAuth2Session(
        client=LegacyApplicationClient(client_id="py-oauthlib"),
        auto_refresh_url=f"{base}/token",
        auto_refresh_kwargs={"client_id": "py-oauthlib"},
        token_updater=updates.append,
    )
    token = session.fetch_token(
        token_url=f"{base}/token", username=email, password=password, client_id="py-oauthlib", include_client_id=True
    )
    expect(token.get("refresh_token", "").startswith("loomrt_"), f"requests-oauthlib got no refresh token: {token}")
    first_refresh = token["refresh_token"]
    # The access token has expired, as far as the client knows.
    session.token = dict(session.token, expires_at=time.time() - 10, expires_in=-10)
    me = session.get(f"{base}/users/me/")
    expect(me.status_code == 200, f"requests-oauthlib after its refresh: {me.status_code} {me.text}")
    expect(me.json()["email"] == email, f"requests-oauthlib: {me.text}")
    expect(len(updates) == 1, f"requests-oauthlib refreshed {len(updates)} times")
    expect(updates[0]["refresh_token"] != first_refresh, "requests-oauthlib: the refresh token did not rotate")
    print("requests-oauthlib: logged in, refreshed by itself once, and the refresh token rotated")


def authlib_refreshes(base, email, password):
    updates = []
    session = AuthlibSession(
        client_id="py-authlib",
        token_endpoint=f"{base}/token",
        update_token=lambda token, refresh_token=None, access_token=None: updates.append(token),
    )
    token = session.fetch_token(f"{base}/token", username=email, password=password, grant_type="password")
    expect(token.get("refresh_token", "").startswith("loomrt_"), f"authlib got no refresh token: {token}")
    first_refresh = token["refresh_token"]
    session.token["expires_at"] = int(time.time()) - 10
    me = session.get(f"{base}/users/me/")
    expect(me.status_code == 200, f"authlib after its refresh: {me.status_code} {me.text}")
    expect(len(updates) == 1, f"authlib refreshed {len(updates)} times")
    expect(updates[0]["refresh_token"] != first_refresh, "authlib: the refresh token did not rotate")
    # The session authlib refreshed is the one it logged in with, and names its client.
    sessions = session.get(f"{base}/sessions").json()
    expect(any(s["client_id"] == "py-authlib" and s["current"] for s in sessions), f"authlib sessions: {sessions}")
    print("authlib: logged in, refreshed by itself once (HTTP Basic, empty secret), and the refresh token rotated")


if __name__ == "__main__":
    base, email, password = sys.argv[1:4]
    requests_oauthlib_refreshes(base, email, password)
    authlib_refreshes(base, email, password)
