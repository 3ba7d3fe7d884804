"""Scheduled jobs against a loopback receiver verifying every run with `standardwebhooks`: runs on
an interval with the configured body and `x-minibaas-scheduled-at`, a run skipped while the last
one is still running, next runs computed in IANA zones (checked against Python's zoneinfo), and
bad schedules, zones and targets refused with stable codes."""
import datetime
import json
import time
from zoneinfo import ZoneInfo

from test_webhooks import Receiver, admin, receiver, verified, wait_for  # noqa: F401 (fixture)


def test_an_interval_job_runs_signed_with_its_body(node, tenant, receiver):
    slug = tenant["slug"]
    status, created = admin(node, "POST", f"/tenants/{slug}/cron", {
        "name": "ping", "schedule": "2 seconds",
        "target": {"kind": "http", "url": receiver.base + "/cron-ping", "body": {"hello": "world"}, "headers": {"X-Team": "ops"}}})
    assert status == 201, created
    assert created["secret"].startswith("whsec_") and created["nextRunAt"]
    requests = receiver.wait("/cron-ping", 2, timeout=15)
    for request in requests:
        assert verified(request, created["secret"]) == {"hello": "world"}
        assert request["headers"]["x-team"] == "ops"
        scheduled = datetime.datetime.fromisoformat(request["headers"]["x-minibaas-scheduled-at"].replace("Z", "+00:00"))
        assert scheduled.timestamp() % 2 == 0, "runs on the interval's grid"
    assert len({r["headers"]["webhook-id"] for r in requests}) == len(requests), "one id per run"

    def logged():
        status, runs = admin(node, "GET", f"/tenants/{slug}/cron/ping/runs")
        return runs if status == 200 and sum(r["status"] == "succeeded" for r in runs) >= 2 else None
    runs = wait_for(logged)
    done = [r for r in runs if r["status"] == "succeeded"]
    assert all(r["httpStatus"] == 200 and r["latencyMs"] is not None for r in done)
    assert admin(node, "PATCH", f"/tenants/{slug}/cron/ping", {"enabled": False})[1]["nextRunAt"] is None
    time.sleep(0.5)
    seen = len(receiver.received("/cron-ping"))
    time.sleep(3)
    assert len(receiver.received("/cron-ping")) <= seen + 1, "a disabled job stops running"
    assert admin(node, "DELETE", f"/tenants/{slug}/cron/ping")[0] == 204
    assert admin(node, "GET", f"/tenants/{slug}/cron/ping")[1]["code"] == "MB832"


def test_a_run_is_skipped_while_the_previous_one_runs(node, tenant, receiver):
    slug = tenant["slug"]
    status, created = admin(node, "POST", f"/tenants/{slug}/cron", {
        "name": "long", "schedule": "1 seconds", "target": {"url": receiver.base + "/slow-cron"}})
    assert status == 201, created

    def skipped():
        runs = admin(node, "GET", f"/tenants/{slug}/cron/long/runs")[1]
        return runs if any(r["status"] == "skipped" for r in runs) else None
    runs = wait_for(skipped, timeout=15)
    assert any(r["status"] in ("running", "succeeded") for r in runs)
    admin(node, "DELETE", f"/tenants/{slug}/cron/long")


def test_next_runs_follow_the_zone_as_zoneinfo_does(node, tenant, receiver):
    slug = tenant["slug"]
    for zone in ["America/New_York", "Europe/Paris", "Asia/Kolkata", "Australia/Lord_Howe"]:
        status, created = admin(node, "POST", f"/tenants/{slug}/cron", {
            "name": "nine-" + zone.replace("/", "-").lower(), "schedule": "0 9 * * *", "timezone": zone, "target": {"url": receiver.base + "/never"}})
        assert status == 201, created
        now = datetime.datetime.now(ZoneInfo(zone))
        nine = now.replace(hour=9, minute=0, second=0, microsecond=0)
        if nine <= now:
            nine = (now + datetime.timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
        expected = nine.astimezone(datetime.timezone.utc)
        got = datetime.datetime.fromisoformat(created["nextRunAt"].replace("Z", "+00:00"))
        assert got == expected, (zone, got, expected)


def test_bad_schedules_zones_and_targets_are_refused(node, tenant, receiver):
    slug = tenant["slug"]
    good = {"name": "ok", "schedule": "@daily", "target": {"url": receiver.base + "/x"}}
    cases = [
        ({**good, "schedule": "61 * * * *"}, 400, "MB830"),
        ({**good, "schedule": "@sometimes"}, 400, "MB830"),
        ({**good, "schedule": "* * *"}, 400, "MB830"),
        ({**good, "timezone": "Mars/Olympus_Mons"}, 400, "MB831"),
        ({**good, "target": {"kind": "function", "name": "f"}}, 501, "MB834"),
        ({**good, "target": {"url": "http://169.254.169.254/"}}, 422, "MB821"),
        ({**good, "target": {"url": "gopher://x"}}, 400, "MB820"),
        ({**good, "target": {"url": receiver.base, "method": "TRACE"}}, 400, "MB825"),
    ]
    for body, status, code in cases:
        got, error = admin(node, "POST", f"/tenants/{slug}/cron", body)
        assert (got, (error or {}).get("code")) == (status, code), (body, got, error)
    assert admin(node, "GET", f"/tenants/{slug}/cron")[1] == []
    assert admin(node, "POST", f"/tenants/{slug}/cron", good)[0] == 201
    assert admin(node, "POST", f"/tenants/{slug}/cron", good)[1]["code"] == "MB833"
    assert admin(node, "GET", f"/tenants/{slug}/cron/nope/runs")[1]["code"] == "MB832"
