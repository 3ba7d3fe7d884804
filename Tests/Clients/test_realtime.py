"""The official Supabase Realtime client (realtime==2.34.1, from supabase==2.34.1) against a
mini-baas tenant: database changes (made with psql and through the REST API), filters, policies,
broadcast, presence, a slow consumer, and a node restart with changes committed while it was down."""
import asyncio
import json
import subprocess
import time
import urllib.request

import pytest
from realtime import AsyncRealtimeClient

from conftest import call, sql


def psql(database, statement):
    subprocess.run(["psql", database, "-qX", "-v", "ON_ERROR_STOP=1", "-c", statement], check=True, capture_output=True)


def rest(tenant, method, path, body=None, token=None):
    request = urllib.request.Request(f"{tenant['apiUrl']}/rest/v1/{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    request.add_header("apikey", tenant["anonKey"])
    request.add_header("Authorization", f"Bearer {token or tenant['serviceKey']}")
    request.add_header("Content-Type", "application/json")
    request.add_header("Prefer", "return=representation")
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read() or b"null")


async def connect(tenant, key=None):
    client = AsyncRealtimeClient(f"{tenant['apiUrl']}/realtime/v1", key or tenant["anonKey"], auto_reconnect=False)
    await client.connect()
    return client


async def subscribe_changes(client, name, queue, **binding):
    channel = client.channel(name)
    channel.on_postgres_changes(binding.pop("event", "*"), callback=queue.put_nowait, **binding)
    states = []
    await channel.subscribe(lambda state, error: states.append((state, error)))
    assert states and states[-1][0] == "SUBSCRIBED", states
    return channel


async def next_change(queue, timeout=10):
    payload = await asyncio.wait_for(queue.get(), timeout)
    return payload["data"]


async def nothing_more(queue, wait=1.0):
    await asyncio.sleep(wait)
    assert queue.empty(), [queue.get_nowait() for _ in range(queue.qsize())]


def test_changes_made_with_psql_and_through_rest_arrive_in_order(tenant):
    psql(tenant["database"], "alter table orgs replica identity full")

    async def scenario():
        client = await connect(tenant, tenant["serviceKey"])
        changes = asyncio.Queue()
        await subscribe_changes(client, "orgs", changes, table="orgs", schema="public")
        psql(tenant["database"], "insert into orgs (id, name) values (100, 'Initech')")
        inserted = await next_change(changes)
        assert inserted["type"] == "INSERT" and inserted["schema"] == "public" and inserted["table"] == "orgs"
        assert inserted["record"] == {"id": 100, "name": "Initech"}
        assert inserted["commit_timestamp"].startswith(time.strftime("%Y-"))
        assert {"name": "id", "type": "integer"} in inserted["columns"]
        psql(tenant["database"], "update orgs set name = 'Initrode' where id = 100")
        updated = await next_change(changes)
        assert updated["type"] == "UPDATE" and updated["record"]["name"] == "Initrode"
        assert updated["old_record"] == {"id": 100, "name": "Initech"}, "REPLICA IDENTITY FULL gives the whole old row"
        psql(tenant["database"], "delete from orgs where id = 100")
        deleted = await next_change(changes)
        assert deleted["type"] == "DELETE" and deleted["old_record"]["id"] == 100
        # Through mini-baas's own REST API, in commit order.
        rest(tenant, "POST", "orgs", {"id": 101, "name": "Hooli"})
        rest(tenant, "PATCH", "orgs?id=eq.101", {"name": "Hooli XYZ"})
        kinds = [(await next_change(changes))["type"] for _ in range(2)]
        assert kinds == ["INSERT", "UPDATE"]
        await client.close()

    asyncio.run(scenario())
