"""Supabase Queues through the official client, unchanged: `client.schema("pgmq_public").rpc(...)`
against the node's queues, with pgmq's arguments and answers, the service role only, and the admin
routes that create, measure, purge and drop queues."""
import pytest
from postgrest.exceptions import APIError
from supabase import create_client

from test_webhooks import admin


def rpc(client, function, **arguments):
    return client.schema("pgmq_public").rpc(function, arguments).execute().data


def refused(call):
    with pytest.raises(APIError) as caught:
        call()
    return caught.value


def test_the_official_client_sends_reads_and_settles_messages(node, tenant):
    slug = tenant["slug"]
    status, created = admin(node, "POST", f"/tenants/{slug}/queues", {"name": "tasks"})
    assert status == 201 and created["queue_name"] == "tasks" and created["queue_length"] == 0
    service = create_client(tenant["apiUrl"], tenant["serviceKey"])
    assert rpc(service, "send", queue_name="tasks", message={"job": 1}, sleep_seconds=0) == [1]
    assert rpc(service, "send_batch", queue_name="tasks", messages=[{"job": 2}, {"job": 3}], sleep_seconds=0) == [2, 3]
    assert rpc(service, "send", queue_name="tasks", message={"job": "later"}, sleep_seconds=3600) == [4]

    first = rpc(service, "read", queue_name="tasks", sleep_seconds=30, n=2)
    assert [m["msg_id"] for m in first] == [1, 2]
    assert first[0]["message"] == {"job": 1} and first[0]["read_ct"] == 1
    assert set(first[0]) >= {"msg_id", "read_ct", "enqueued_at", "vt", "message"}
    assert first[0]["vt"] > first[0]["enqueued_at"], "hidden until its visibility timeout"
    assert [m["msg_id"] for m in rpc(service, "read", queue_name="tasks", sleep_seconds=30, n=5)] == [3]
    assert rpc(service, "read", queue_name="tasks", sleep_seconds=30, n=5) == []
    assert rpc(service, "delete", queue_name="tasks", message_id=1) is True
    assert rpc(service, "delete", queue_name="tasks", message_id=1) is False
    assert rpc(service, "archive", queue_name="tasks", message_id=2) is True
    assert rpc(service, "pop", queue_name="tasks") == []

    status, metrics = admin(node, "GET", f"/tenants/{slug}/queues/tasks")
    assert status == 200 and metrics["queue_length"] == 2 and metrics["total_messages"] == 4
    status, listed = admin(node, "GET", f"/tenants/{slug}/queues")
    assert [q["queue_name"] for q in listed] == ["tasks"]
    status, purged = admin(node, "POST", f"/tenants/{slug}/queues/tasks/purge")
    assert status == 200 and purged["purged"] == 3
    assert admin(node, "DELETE", f"/tenants/{slug}/queues/tasks")[0] == 204
    assert refused(lambda: rpc(service, "send", queue_name="tasks", message={})).code == "MB840"


def test_only_the_service_role_and_well_formed_calls(node, tenant):
    slug = tenant["slug"]
    admin(node, "POST", f"/tenants/{slug}/queues", {"name": "jobs_1"})
    anon = create_client(tenant["apiUrl"], tenant["anonKey"])
    assert refused(lambda: rpc(anon, "send", queue_name="jobs_1", message={"x": 1})).code == "42501"
    service = create_client(tenant["apiUrl"], tenant["serviceKey"])
    assert refused(lambda: rpc(service, "send", queue_name="nope", message={})).code == "MB840"
    assert refused(lambda: rpc(service, "send", queue_name="jobs_1")).code == "MB843"
    assert refused(lambda: rpc(service, "read", queue_name="jobs_1", sleep_seconds=-1, n=1)).code == "MB843"
    assert refused(lambda: rpc(service, "send", queue_name="jobs_1", message={}, bogus=1)).code == "MB843"
    assert refused(lambda: rpc(service, "truncate", queue_name="jobs_1")).code == "PGRST202"
    # A body over the tenant's limit stops at the gate (MB103); under it, a message over 1 MiB is MB844.
    assert refused(lambda: rpc(service, "send", queue_name="jobs_1", message={"blob": "x" * (1 << 20)})).code == "MB103"
    assert admin(node, "PATCH", f"/tenants/{slug}", {"limits": {"maxBodyBytes": 4 << 20}})[0] == 200
    assert refused(lambda: rpc(service, "send", queue_name="jobs_1", message={"blob": "x" * (1 << 20)})).code == "MB844"
    for name, code in [("Bad-Name", "MB842"), ("1abc", "MB842"), ("x" * 48, "MB842"), ("jobs_1", "MB841")]:
        status, error = admin(node, "POST", f"/tenants/{slug}/queues", {"name": name})
        assert error["code"] == code, (name, status, error)
    assert admin(node, "POST", f"/tenants/{slug}/queues/nope/purge")[1]["code"] == "MB840"
    # Nothing was stored by the refused calls.
    assert admin(node, "GET", f"/tenants/{slug}/queues/jobs_1")[1]["total_messages"] == 0


def test_a_full_queue_refuses_more(node, tenant):
    slug = tenant["slug"]
    status, _ = admin(node, "PATCH", f"/tenants/{slug}", {"limits": {"jobs": {"maxPending": 3}}})
    assert status == 200
    admin(node, "POST", f"/tenants/{slug}/queues", {"name": "small"})
    service = create_client(tenant["apiUrl"], tenant["serviceKey"])
    assert rpc(service, "send_batch", queue_name="small", messages=[1, 2, 3]) == [1, 2, 3]
    error = refused(lambda: rpc(service, "send", queue_name="small", message=4))
    assert error.code == "MB845"
    rpc(service, "pop", queue_name="small")
    assert rpc(service, "send", queue_name="small", message=4) == [4]
