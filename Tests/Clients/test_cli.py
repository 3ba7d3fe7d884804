"""The operators' CLI (`minibaas tenants|sources|keys|status`) against a real node: tables and
--json, confirmations, exit codes (2 usage, 1 failures) with one line on stderr."""
import json
import os
import secrets
import subprocess
import time

from cluster_harness import BINARY
from conftest import fresh_database


def cli(node, *args, token=None, url=None, stdin=None):
    env = dict(os.environ)
    env.pop("MINIBAAS_ADMIN_TOKEN", None)
    if token is not False:
        env["MINIBAAS_ADMIN_TOKEN"] = token or node.token
    command = [BINARY, *args]
    if url is not False and args and args[0] != "version":
        command += ["--url", url or node.base]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, input=stdin)


def test_tenants_are_created_listed_shown_and_deleted(node):
    slug = "cli" + secrets.token_hex(3)
    created = cli(node, "tenants", "create", slug, "--name", "From the CLI", "--json")
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    assert body["slug"] == slug and body["serviceKey"]
    listed = cli(node, "tenants", "list")
    assert listed.returncode == 0 and listed.stdout.splitlines()[0].split()[:3] == ["SLUG", "NAME", "STATUS"]
    assert any(line.startswith(slug + " ") for line in listed.stdout.splitlines())
    assert slug in [t["slug"] for t in json.loads(cli(node, "tenants", "list", "--json").stdout)]
    shown = cli(node, "tenants", "get", slug)
    assert shown.returncode == 0 and "name: From the CLI" in shown.stdout
    # No terminal to confirm on: refused without --yes, nothing deleted.
    refused = cli(node, "tenants", "delete", slug)
    assert refused.returncode == 2 and "--yes" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert cli(node, "tenants", "get", slug).returncode == 0
    deleted = cli(node, "tenants", "delete", slug, "--yes")
    assert deleted.returncode == 0, deleted.stderr
    missing = cli(node, "tenants", "get", slug)
    assert missing.returncode == 1 and "MB" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


def test_sources_keys_and_status(node):
    slug = "cli" + secrets.token_hex(3)
    assert cli(node, "tenants", "create", slug).returncode == 0
    database = fresh_database()
    added = cli(node, "sources", "add", slug, "main", "--db-url", database)
    assert added.returncode == 0, added.stderr
    assert "entities" in added.stdout and "posts" in added.stdout.split()
    listed = cli(node, "sources", "list", slug, "--json")
    sources = json.loads(listed.stdout)
    assert sources[0]["name"] == "main" and sources[0]["entities"] > 5
    assert "password" not in listed.stdout.lower() or "***" in listed.stdout
    refreshed = cli(node, "sources", "refresh", slug, "main")
    assert refreshed.returncode == 0 and "refreshed main" in refreshed.stdout
    rotated = cli(node, "keys", "rotate", slug, "--json")
    assert rotated.returncode == 0 and json.loads(rotated.stdout)["kid"]
    status = cli(node, "status")
    assert status.returncode == 0 and status.stdout.startswith("node ") and "active tenants" in status.stdout
    removed = cli(node, "sources", "remove", slug, "main", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(cli(node, "sources", "list", slug, "--json").stdout) == []


def test_failures_are_one_line_with_the_contracts_exit_codes(node):
    no_token = cli(node, "tenants", "list", token=False)
    assert no_token.returncode == 2 and "MINIBAAS_ADMIN_TOKEN" in no_token.stderr and len(no_token.stderr.strip().splitlines()) == 1
    usage = cli(node, "tenants", "list", "--bogus")
    assert usage.returncode == 2 and len(usage.stderr.strip().splitlines()) == 1, usage.stderr
    wrong = cli(node, "tenants", "list", token="not-the-token")
    assert wrong.returncode == 1 and "refused the admin token" in wrong.stderr
    started = time.time()
    unreachable = cli(node, "tenants", "list", url="http://127.0.0.1:9")
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr and time.time() - started < 20
    bad = cli(node, "sources", "add", "nobody-here", "x", "--db-url", "postgresql://nobody@127.0.0.1:9/x")
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) <= 2
