"""OIDC sign-in ("Sign in with …") through a real OpenID provider on loopback, driven the way the
official client does it: `sign_in_with_oauth` gives the URL, a browser follows the redirects, and
the client exchanges the PKCE code for a session. The tenant names its provider "keycloak", one of
the names the client accepts for a generic OpenID provider."""
import http.cookiejar
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request

import pytest
from supabase import create_client
from supabase_auth.errors import AuthApiError

from conftest import call, smtp_settings, token_hash
from oidc_provider import Provider

SITE = "http://localhost:3998"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def browse(url, cookies=None):
    """Follows redirects like a browser (keeping its cookies) until one leaves for the site;
    returns that Location."""
    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPCookieProcessor(cookies or http.cookiejar.CookieJar()))
    for _ in range(6):
        if url.startswith(SITE):
            return url
        try:
            opener.open(url)
            raise AssertionError(f"{url} did not redirect")
        except urllib.error.HTTPError as response:
            if response.code not in (302, 303):
                raise
            url = response.headers["Location"]
    raise AssertionError("too many redirects")


@pytest.fixture()
def provider():
    started = Provider("mb-client", "mb-secret-" + secrets.token_hex(4), f"oidc-{secrets.token_hex(3)}@example.com")
    yield started
    started.stop()


@pytest.fixture()
def oidc_tenant(node, provider, smtp):
    slug = "oidc" + secrets.token_hex(3)
    created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "OIDC"})
    call("PUT", f"{node.base}/admin/v1/tenants/{slug}/auth", node.token, {
        "autoconfirm": False, "siteUrl": SITE, "smtp": smtp_settings(smtp[0]),
        "providers": [{"name": "keycloak", "issuer": provider.issuer, "clientId": provider.client_id,
                       "clientSecret": provider.client_secret}]})
    return created


def sign_in(tenant):
    client = create_client(tenant["apiUrl"], tenant["anonKey"])
    oauth = client.auth.sign_in_with_oauth({"provider": "keycloak", "options": {"redirect_to": SITE + "/after"}})
    landed = browse(oauth.url)
    return client, landed



def test_sign_in_with_the_provider_creates_then_finds_the_user(oidc_tenant, provider):
    client, landed = sign_in(oidc_tenant)
    assert landed.startswith(SITE + "/after?code="), landed
    session = client.auth.exchange_code_for_session({"auth_code": code_from(landed)})
    user = session.user
    assert user.email == provider.email and user.email_confirmed_at is not None
    assert user.app_metadata["provider"] == "keycloak"
    assert [identity.provider for identity in user.identities] == ["keycloak"]
    assert client.auth.get_user(session.session.access_token).user.id == user.id

    again, landed_again = sign_in(oidc_tenant)
    assert again.auth.exchange_code_for_session({"auth_code": code_from(landed_again)}).user.id == user.id


def code_from(landed):
    assert "?code=" in landed, landed
    return urllib.parse.parse_qs(urllib.parse.urlsplit(landed).query)["code"][0]


def test_a_confirmed_password_account_is_linked_by_its_verified_email(oidc_tenant, provider, smtp):
    _, sink = smtp
    password_client = create_client(oidc_tenant["apiUrl"], oidc_tenant["anonKey"])
    existing = password_client.auth.sign_up({"email": provider.email, "password": "pw-123456"}).user
    password_client.auth.verify_otp({"type": "signup", "token_hash": token_hash(sink.wait_for(provider.email))})
    client, landed = sign_in(oidc_tenant)
    user = client.auth.exchange_code_for_session({"auth_code": code_from(landed)}).user
    assert user.id == existing.id
    assert sorted(identity.provider for identity in user.identities) == ["email", "keycloak"]


def test_an_unconfirmed_account_is_not_linked(oidc_tenant, provider, smtp):
    # Someone registered the address with a password of their own and never proved it: linking
    # would let them share the real owner's account.
    create_client(oidc_tenant["apiUrl"], oidc_tenant["anonKey"]).auth.sign_up({"email": provider.email, "password": "squatter-pw"})
    _, landed = sign_in(oidc_tenant)
    assert "error_code=email_exists" in landed and "?code=" not in landed, landed


def test_an_unverified_provider_email_is_refused(oidc_tenant, provider):
    provider.email_verified = False
    _, landed = sign_in(oidc_tenant)
    assert "error_code=provider_email_needs_verification" in landed and "?code=" not in landed, landed


def test_the_callback_only_works_in_the_browser_that_began_the_flow(oidc_tenant, provider):
    client = create_client(oidc_tenant["apiUrl"], oidc_tenant["anonKey"])
    oauth = client.auth.sign_in_with_oauth({"provider": "keycloak", "options": {"redirect_to": SITE + "/after"}})
    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with pytest.raises(urllib.error.HTTPError) as to_provider:
        opener.open(oauth.url)
    with pytest.raises(urllib.error.HTTPError) as to_callback:
        opener.open(to_provider.value.headers["Location"])
    callback = to_callback.value.headers["Location"]
    # The attacker's callback URL, opened in the victim's browser (no flow cookie): refused here.
    with pytest.raises(urllib.error.HTTPError) as victim:
        urllib.request.build_opener(NoRedirect).open(callback)
    assert victim.value.code == 400 and json.loads(victim.value.read())["code"] == "bad_oauth_state"


@pytest.mark.parametrize("mode", ["wrong_audience", "forged_signature", "wrong_nonce", "expired", "wrong_issuer", "alg_none"])
def test_bad_id_tokens_are_refused(oidc_tenant, provider, mode):
    provider.mode = mode
    _, landed = sign_in(oidc_tenant)
    assert "#" in landed and "?code=" not in landed, landed
    fragment = urllib.parse.parse_qs(landed.split("#", 1)[1])
    assert fragment["error_code"] == ["oauth_id_token_rejected"], fragment
    assert provider.token_requests == 1


def test_a_forged_state_is_refused_without_a_redirect(node, oidc_tenant):
    url = f"{oidc_tenant['apiUrl']}/auth/v1/callback?code=x&state=" + "A" * 80
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.build_opener(NoRedirect).open(url)
    assert refused.value.code == 400
    assert json.loads(refused.value.read())["code"] == "bad_oauth_state"


def test_an_unknown_provider_is_a_clear_error(oidc_tenant):
    url = f"{oidc_tenant['apiUrl']}/auth/v1/authorize?provider=github"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.build_opener(NoRedirect).open(url)
    assert refused.value.code == 400
    assert "github" in json.loads(refused.value.read())["message"]
