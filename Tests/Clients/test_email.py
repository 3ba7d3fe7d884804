"""Transactional e-mail through the official `resend` SDK pointed at the tenant's `/email/v1`, with
the service key as its API key: sends delivered through the tenant's SMTP settings (a real aiosmtpd
sink), templates with Mustache variables, scheduled sends and cancelling, idempotency keys, a 5xx
bounce that is final, and refusals with Resend's error fields."""
import datetime
import time

import pytest
import resend
from resend.exceptions import ResendError

from conftest import SMTP_PASSWORD, SMTP_USER, call


@pytest.fixture()
def mailer(node, tenant, smtp):
    controller, sink = smtp
    call("PUT", f"{node.base}/admin/v1/tenants/{tenant['slug']}/auth", node.token, {
        "smtp": {"host": "127.0.0.1", "port": controller.port, "username": SMTP_USER, "password": SMTP_PASSWORD,
                 "from": "noreply@minibaas.test", "tls": False}})
    resend.api_key = tenant["serviceKey"]
    resend.api_url = tenant["apiUrl"] + "/email/v1"
    return sink


def status_of(email_id, wanted, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        event = resend.Emails.get(email_id)["last_event"]
        if event == wanted:
            return event
        time.sleep(0.1)
    raise AssertionError(f"{email_id} never reached {wanted}; last {event}")


def refused(call):
    with pytest.raises(ResendError) as caught:
        call()
    return caught.value


def test_a_send_is_delivered_through_the_tenants_smtp(mailer):
    sent = resend.Emails.send({"from": "Acme <hello@acme.test>", "to": ["ada@example.test"], "cc": "cc@example.test",
                               "bcc": ["hidden@example.test"], "subject": "Grüße", "html": "<b>Hello</b>", "text": "Hello",
                               "reply_to": "support@acme.test", "headers": {"X-Campaign": "welcome"}})
    mail = mailer.wait_for("ada@example.test")
    assert "From: Acme <hello@acme.test>" in mail and "Cc: cc@example.test" in mail and "Reply-To: support@acme.test" in mail
    assert "multipart/alternative" in mail and "<b>Hello</b>" in mail and "X-Campaign: welcome" in mail
    assert "=?utf-8?B?" in mail, "a non-ASCII subject is encoded"
    assert "hidden@example.test" not in mail, "Bcc is in the envelope only"
    assert any("hidden@example.test" in m["to"] for m in mailer.messages)
    assert status_of(sent["id"], "sent") == "sent"
    got = resend.Emails.get(sent["id"])
    assert got["object"] == "email" and got["to"] == ["ada@example.test"] and got["subject"] == "Grüße"


def test_templates_render_variables_escaped_in_html_only(mailer):
    created = resend.Templates.create({
        "name": "welcome", "alias": "welcome", "subject": "Welcome {{name}}", "html": "<p>Hi {{name}}, plan {{plan}}</p>",
        "text": "Hi {{name}}", "from": "Team <team@acme.test>",
        "variables": [{"key": "name", "type": "string"}, {"key": "plan", "type": "string", "fallback_value": "free"}]})
    assert created["object"] == "template"
    assert resend.Templates.get(created["id"])["variables"][1]["fallback_value"] == "free"
    resend.Templates.publish(created["id"])
    sent = resend.Emails.send({"to": "bob@example.test", "template": {"id": "welcome", "variables": {"name": "<Bob & Co>"}}})
    mail = mailer.wait_for("bob@example.test")
    assert "Subject: Welcome <Bob & Co>" in mail, "raw in the subject"
    assert "<p>Hi &lt;Bob &amp; Co&gt;, plan free</p>" in mail, "escaped in HTML, the fallback used"
    assert "Hi <Bob & Co>" in mail, "raw in the text part"
    assert "From: Team <team@acme.test>" in mail
    status_of(sent["id"], "sent")
    error = refused(lambda: resend.Emails.send({"to": "x@example.test", "template": {"id": created["id"]}}))
    assert error.code == 422 and "name" in error.message
    assert refused(lambda: resend.Emails.send({"to": "x@example.test", "template": {"id": "nope"}})).code == 404
    assert [t["name"] for t in resend.Templates.list()["data"]] == ["welcome"]
    assert resend.Templates.remove(created["id"])["deleted"] is True


def test_scheduled_sends_can_be_cancelled_and_keys_are_idempotent(mailer):
    later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).isoformat()
    scheduled = resend.Emails.send({"from": "a@acme.test", "to": "later@example.test", "subject": "Later", "text": "x", "scheduled_at": later})
    assert resend.Emails.get(scheduled["id"])["last_event"] == "scheduled"
    assert resend.Emails.cancel(scheduled["id"])["id"] == scheduled["id"]
    assert resend.Emails.get(scheduled["id"])["last_event"] == "canceled"
    assert refused(lambda: resend.Emails.cancel(scheduled["id"])).code == 409

    params = {"from": "a@acme.test", "to": "once@example.test", "subject": "Once", "text": "x"}
    first = resend.Emails.send(params, {"idempotency_key": "order-42"})
    again = resend.Emails.send(params, {"idempotency_key": "order-42"})
    assert first["id"] == again["id"]
    error = refused(lambda: resend.Emails.send({**params, "subject": "Other"}, {"idempotency_key": "order-42"}))
    assert error.code == 409
    status_of(first["id"], "sent")
    assert len([m for m in mailer.messages if "once@example.test" in m["to"]]) == 1


def test_a_permanent_refusal_is_final_and_bad_input_is_refused(mailer, tenant, node):
    bounced = resend.Emails.send({"from": "a@acme.test", "to": "bounce@example.test", "subject": "x", "text": "x"})
    assert status_of(bounced["id"], "failed") == "failed"
    cases = [
        ({"from": "a@acme.test", "to": "not-an-address", "subject": "x", "text": "x"}, 422),
        ({"from": "a@acme.test", "subject": "x", "text": "x"}, 422),
        ({"from": "a@acme.test", "to": "a@b.test", "text": "x"}, 422),
        ({"from": "a@acme.test", "to": "a@b.test", "subject": "x"}, 422),
        ({"from": "a@acme.test", "to": "a@b.test", "subject": "x\r\nBcc: evil@x.test", "text": "x"}, None),
        ({"from": "a@acme.test", "to": "a@b.test", "subject": "x", "text": "x", "scheduled_at": "tomorrow-ish"}, 400),
        ({"from": "a@acme.test", "to": "a@b.test", "subject": "x", "text": "x", "attachments": [{"filename": "a"}]}, 422),
        ({"from": "a@acme.test", "to": [f"u{i}@b.test" for i in range(51)], "subject": "x", "text": "x"}, 422),
    ]
    for params, code in cases:
        if code is None:
            # A line break in the subject cannot add a header: it is flattened.
            sent = resend.Emails.send(params)
            status_of(sent["id"], "sent")
            assert not any("evil@x.test" in m["to"] for m in mailer.messages)
            continue
        assert refused(lambda: resend.Emails.send(params)).code == code, params
    assert refused(lambda: resend.Emails.get("00000000-0000-0000-0000-000000000000")).code == 404
    resend.api_key = tenant["anonKey"]
    assert refused(lambda: resend.Emails.send({"from": "a@acme.test", "to": "a@b.test", "subject": "x", "text": "x"})).code == 401


def test_a_tenant_without_smtp_is_told(node, tenant):
    resend.api_key = tenant["serviceKey"]
    resend.api_url = tenant["apiUrl"] + "/email/v1"
    error = refused(lambda: resend.Emails.send({"from": "a@acme.test", "to": "a@b.test", "subject": "x", "text": "x"}))
    assert error.code == 422 and "SMTP" in error.message
