"""End-user auth with the official client (supabase==2.34.1): e-mail through a real SMTP server
(aiosmtpd on loopback), sessions, refresh rotation, and policies applied to the signed-in user."""
import json
import re
import secrets
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest
from supabase import create_client
from supabase_auth.errors import AuthApiError

from conftest import SMTP_PASSWORD, SMTP_USER, call, sql, token_hash

SITE = "http://localhost:3999"


@pytest.fixture()
def auth_tenant(node, tenant, smtp):
    """The tenant from conftest with mail, a notes table and per-user policies."""
    controller, _ = smtp
    call("PUT", f"{node.base}/admin/v1/tenants/{tenant['slug']}/auth", node.token, {
        "autoconfirm": False, "siteUrl": SITE, "refreshTokenReuseInterval": 0,
        "smtp": {"host": "127.0.0.1", "port": controller.port, "username": SMTP_USER, "password": SMTP_PASSWORD,
                 "from": "noreply@minibaas.test", "tls": False}})
    subprocess.run(["psql", tenant["database"], "-qc", """
        create table notes (id serial primary key, owner_id uuid not null, title text not null,
                            secret text, published boolean not null default false)"""], check=True)
    call("POST", f"{node.base}/admin/v1/tenants/{tenant['slug']}/sources/main/refresh", node.token, {})
    own = {"owner_id": {"eq": {"var": "auth.uid"}}}
    call("PUT", f"{node.base}/admin/v1/tenants/{tenant['slug']}/policies", node.token, {"policies": [
        {"entity": "notes", "role": "authenticated", "action": "read", "when": own},
        {"entity": "notes", "role": "authenticated", "action": "create", "columns": ["title", "published", "owner_id"],
         "check": own, "set": {"owner_id": {"var": "auth.uid"}}},
        {"entity": "notes", "role": "authenticated", "action": "update", "columns": ["title", "published"], "when": own, "check": own},
        {"entity": "notes", "role": "anon", "action": "read", "columns": ["id", "title"], "when": {"published": {"eq": True}}},
    ]})
    return tenant


def sign_up_and_confirm(tenant, sink, email, password):
    client = create_client(tenant["apiUrl"], tenant["anonKey"])
    response = client.auth.sign_up({"email": email, "password": password, "options": {"data": {"name": email.split("@")[0]}}})
    assert response.session is None and response.user.email == email
    with pytest.raises(AuthApiError) as refused:
        client.auth.sign_in_with_password({"email": email, "password": password})
    assert refused.value.code == "email_not_confirmed"
    verified = client.auth.verify_otp({"type": "signup", "token_hash": token_hash(sink.last_for(email))})
    assert verified.user.email_confirmed_at is not None
    return client, verified


def test_confirmation_link_from_the_mail_lands_on_the_site_signed_in(auth_tenant, smtp):
    _, sink = smtp
    email = f"link-{secrets.token_hex(3)}@example.com"
    client = create_client(auth_tenant["apiUrl"], auth_tenant["anonKey"])
    client.auth.sign_up({"email": email, "password": "link-password", "options": {"email_redirect_to": SITE + "/welcome"}})
    mail = sink.last_for(email)
    assert [m for m in sink.messages if email in m["to"]][-1]["authenticated"], "the node signed in to the SMTP server"
    link = re.search(r"(http://\S+/auth/v1/verify\?\S+)", mail).group(1)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(link)  # a browser has no API key
    assert redirect.value.code == 303
    location = redirect.value.headers["Location"]
    # The client began a PKCE flow (its default), so the site gets a code that only this client,
    # holding the verifier, can exchange.
    assert location.startswith(SITE + "/welcome?code="), location
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]
    exchanged = client.auth.exchange_code_for_session({"auth_code": code})
    assert exchanged.user.email == email and exchanged.user.email_confirmed_at is not None
    assert client.auth.get_user(exchanged.session.access_token).user.email == email
    stranger = create_client(auth_tenant["apiUrl"], auth_tenant["anonKey"])
    with pytest.raises(AuthApiError) as spent:
        stranger.auth.exchange_code_for_session({"auth_code": code, "code_verifier": "x" * 43})
    assert spent.value.code == "flow_state_not_found"
    # The link works once.
    with pytest.raises(urllib.error.HTTPError) as again:
        opener.open(link)
    assert "error_code=otp_expired" in again.value.headers["Location"]


def test_signed_in_users_see_and_change_only_their_rows(auth_tenant, smtp):
    _, sink = smtp
    ann, ann_session = sign_up_and_confirm(auth_tenant, sink, f"ann-{secrets.token_hex(3)}@example.com", "ann-password")
    bob, bob_session = sign_up_and_confirm(auth_tenant, sink, f"bob-{secrets.token_hex(3)}@example.com", "bob-password")
    ann.auth.sign_in_with_password({"email": ann_session.user.email, "password": "ann-password"})
    bob.auth.sign_in_with_password({"email": bob_session.user.email, "password": "bob-password"})
    ann_id, bob_id = ann_session.user.id, bob_session.user.id

    # A forged owner is overridden by the preset: the row is Ann's.
    inserted = ann.table("notes").insert({"title": "ann's", "owner_id": bob_id, "published": True}).execute().data
    assert inserted[0]["owner_id"] == ann_id
    bob.table("notes").insert({"title": "bob's draft"}).execute()
    db = sql(auth_tenant["database"], "select title, owner_id::text from notes order by id")
    assert db == [{"title": "ann's", "owner_id": ann_id}, {"title": "bob's draft", "owner_id": bob_id}]

    assert [r["title"] for r in ann.table("notes").select("title").execute().data] == ["ann's"]
    assert [r["title"] for r in bob.table("notes").select("title").execute().data] == ["bob's draft"]

    # Bob cannot touch Ann's row: nothing matches, nothing changes.
    changed = bob.table("notes").update({"title": "hijacked"}).eq("title", "ann's").execute().data
    assert changed == []
    assert sql(auth_tenant["database"], "select title from notes where owner_id::text = '%s'" % ann_id) == [{"title": "ann's"}]

    # Anonymous visitors read published rows, only the allowed columns.
    anon = create_client(auth_tenant["apiUrl"], auth_tenant["anonKey"])
    assert anon.table("notes").select("id,title").execute().data == sql(
        auth_tenant["database"], "select id, title from notes where published order by id")
    with pytest.raises(Exception) as hidden:
        anon.table("notes").select("owner_id").execute()
    assert "owner_id" in str(hidden.value)


def test_refresh_rotates_and_a_replayed_token_ends_the_session(auth_tenant, smtp):
    _, sink = smtp
    client, session = sign_up_and_confirm(auth_tenant, sink, f"rot-{secrets.token_hex(3)}@example.com", "rot-password")
    first = session.session.refresh_token
    refreshed = client.auth.refresh_session(first)
    assert refreshed.session.refresh_token != first
    assert client.auth.get_user(refreshed.session.access_token).user.id == session.user.id

    thief = create_client(auth_tenant["apiUrl"], auth_tenant["anonKey"])
    with pytest.raises(AuthApiError) as replay:
        thief.auth.refresh_session(first)
    assert replay.value.code == "refresh_token_already_used"
    with pytest.raises(AuthApiError) as family:
        create_client(auth_tenant["apiUrl"], auth_tenant["anonKey"]).auth.refresh_session(refreshed.session.refresh_token)
    assert family.value.code == "refresh_token_not_found"


def test_password_recovery_by_mail(auth_tenant, smtp):
    _, sink = smtp
    email = f"rec-{secrets.token_hex(3)}@example.com"
    client, _ = sign_up_and_confirm(auth_tenant, sink, email, "old-password")
    before = len(sink.messages)
    client.auth.reset_password_for_email(f"nobody-{secrets.token_hex(3)}@example.com")  # same answer, no mail
    client.auth.reset_password_for_email(email)
    mail = sink.wait_for(email, count=2)  # the mail goes out after the answer
    assert len(sink.messages) == before + 1
    recovered = client.auth.verify_otp({"type": "recovery", "token_hash": token_hash(mail)})
    assert recovered.session is not None
    client.auth.update_user({"password": "new-password"})
    fresh = create_client(auth_tenant["apiUrl"], auth_tenant["anonKey"])
    with pytest.raises(AuthApiError) as old:
        fresh.auth.sign_in_with_password({"email": email, "password": "old-password"})
    assert old.value.code == "invalid_credentials"
    assert fresh.auth.sign_in_with_password({"email": email, "password": "new-password"}).user.email == email


def test_guessing_a_password_is_throttled(auth_tenant, smtp):
    _, sink = smtp
    email = f"bf-{secrets.token_hex(3)}@example.com"
    sign_up_and_confirm(auth_tenant, sink, email, "real-password")
    client = create_client(auth_tenant["apiUrl"], auth_tenant["anonKey"])
    codes = []
    for attempt in range(12):
        try:
            client.auth.sign_in_with_password({"email": email, "password": f"guess-{attempt}"})
        except AuthApiError as error:
            codes.append(error.status)
    # Ten attempts per account per five minutes; the refused sign-in before confirmation was the first.
    assert codes[:9] == [400] * 9 and codes[9:] == [429, 429, 429], codes


def test_sign_out_revokes_the_session(auth_tenant, smtp):
    _, sink = smtp
    client, session = sign_up_and_confirm(auth_tenant, sink, f"out-{secrets.token_hex(3)}@example.com", "out-password")
    access = session.session.access_token
    client.auth.sign_out()
    with pytest.raises(AuthApiError) as gone:
        create_client(auth_tenant["apiUrl"], auth_tenant["anonKey"]).auth.get_user(access)
    assert gone.value.code == "session_not_found"


def test_the_admin_api_manages_users_for_the_service_role_only(node, tenant):
    """`supabase.auth.admin`: create (confirmed, with metadata), list with paging, get, update
    (password ends sessions), delete; the anon key gets GoTrue's 403 not_admin."""
    service = create_client(tenant["apiUrl"], tenant["serviceKey"])
    emails = [f"admin-{n}-{secrets.token_hex(3)}@example.com" for n in range(3)]
    created = [service.auth.admin.create_user({"email": email, "password": "first password 1", "email_confirm": True,
                                               "user_metadata": {"plan": "pro"}, "app_metadata": {"tier": 2}})
               for email in emails]
    user = created[0].user
    assert user.email == emails[0] and user.email_confirmed_at and user.user_metadata == {"plan": "pro"}
    assert user.app_metadata["tier"] == 2 and user.app_metadata["provider"] == "email"

    everyone = service.auth.admin.list_users()
    assert sorted(u.email for u in everyone) == sorted(emails)
    first_page = service.auth.admin.list_users(page=1, per_page=2)
    second_page = service.auth.admin.list_users(page=2, per_page=2)
    assert len(first_page) == 2 and len(second_page) == 1
    assert {u.id for u in first_page} | {u.id for u in second_page} == {u.user.id for u in created}
    request = urllib.request.Request(f"{tenant['apiUrl']}/auth/v1/admin/users?page=1&per_page=2",
                                     headers={"apikey": tenant["serviceKey"], "Authorization": f"Bearer {tenant['serviceKey']}"})
    with urllib.request.urlopen(request) as response:
        assert response.headers["X-Total-Count"] == "3" and 'rel="next"' in response.headers["Link"]

    assert service.auth.admin.get_user_by_id(user.id).user.email == emails[0]
    # A signed-in session, then an admin password change: the session ends, the new password works.
    end_user = create_client(tenant["apiUrl"], tenant["anonKey"])
    session = end_user.auth.sign_in_with_password({"email": emails[0], "password": "first password 1"}).session
    updated = service.auth.admin.update_user_by_id(user.id, {"password": "second password 2", "user_metadata": {"plan": None, "seats": 5}})
    assert updated.user.user_metadata == {"seats": 5}
    with pytest.raises(AuthApiError):
        end_user.auth.refresh_session(session.refresh_token)
    assert create_client(tenant["apiUrl"], tenant["anonKey"]).auth.sign_in_with_password(
        {"email": emails[0], "password": "second password 2"}).user.id == user.id

    with pytest.raises(AuthApiError) as taken:
        service.auth.admin.create_user({"email": emails[1], "password": "another password"})
    assert taken.value.code == "email_exists"
    with pytest.raises(AuthApiError) as anon:
        create_client(tenant["apiUrl"], tenant["anonKey"]).auth.admin.list_users()
    assert anon.value.status == 403 and anon.value.code == "not_admin"
    with pytest.raises(AuthApiError) as missing:
        service.auth.admin.get_user_by_id("00000000-0000-0000-0000-000000000000")
    assert missing.value.status == 404

    service.auth.admin.delete_user(user.id)
    assert sorted(u.email for u in service.auth.admin.list_users()) == sorted(emails[1:])
    with pytest.raises(AuthApiError):
        service.auth.admin.get_user_by_id(user.id)
