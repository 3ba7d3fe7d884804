"""`minibaas apply` and `export` against a real node: one stack.yaml, edited between runs — the
plan in Terraform's words, dry runs that change nothing, idempotence without audit entries, an
edit planned as a change naming the field, --prune destroying only what this stack applied, bad
files refused with their line and nothing applied, a failed step stated and converged next run."""
import json
import os
import secrets
import subprocess
import textwrap

from cluster_harness import BINARY
from conftest import call, fresh_database


def minibaas(node, *args, env=None, cwd=None):
    environment = dict(os.environ, MINIBAAS_ADMIN_TOKEN=node.token, **(env or {}))
    return subprocess.run([BINARY, *args, "--url", node.base], capture_output=True, text=True, env=environment, timeout=120, cwd=cwd)


def write(directory, text, name="stack.yaml"):
    path = os.path.join(directory, name)
    with open(path, "w") as handle:
        handle.write(textwrap.dedent(text))
    return path


def tenants(node):
    return {t["slug"]: t for t in call("GET", f"{node.base}/admin/v1/tenants", node.token)}


def audit(node, slug):
    return call("GET", f"{node.base}/admin/v1/tenants/{slug}/audit", node.token)


def stack_text(stack, slug, rps=50, extra=""):
    return f"""\
        stack: {stack}
        tenants:
          - slug: {slug}
            name: Applied
            limits: {{requestsPerSecond: {rps}, burst: 100, realtime: {{maxConnections: 50}}}}
            sources:
              - name: main
                kind: postgres
                url: "${{env:STACK_DB_URL}}"
                schemas: [public]
            policies:
              - {{entity: posts, role: anon, action: read, when: {{published: {{eq: true}}}}}}
            auth:
              autoconfirm: true
              siteUrl: http://localhost:3999
        {extra}"""


def test_apply_plans_converges_and_is_idempotent(node, tmp_path):
    slug = "stk" + secrets.token_hex(3)
    stack = "s" + secrets.token_hex(3)
    env = {"STACK_DB_URL": fresh_database()}
    path = write(tmp_path, stack_text(stack, slug))

    dry = minibaas(node, "apply", "-f", path, "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert f"+ tenant.{slug}" in dry.stdout and f"+ tenant.{slug}.source.main" in dry.stdout
    assert "Plan: 4 to add, 0 to change, 0 to destroy." in dry.stdout and "nothing was changed" in dry.stdout
    assert env["STACK_DB_URL"] not in dry.stdout and "(sensitive)" in dry.stdout
    assert slug not in tenants(node)

    applied = minibaas(node, "apply", "-f", path, env=env)
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete! Resources: 4 added, 0 changed, 0 destroyed." in applied.stdout
    assert env["STACK_DB_URL"] not in applied.stdout + applied.stderr
    tenant = call("GET", f"{node.base}/admin/v1/tenants/{slug}", node.token)
    assert tenant["name"] == "Applied" and tenant["limits"]["requestsPerSecond"] == 50 and tenant["limits"]["burst"] == 100
    assert tenant["limits"]["realtime"]["maxConnections"] == 50
    sources = call("GET", f"{node.base}/admin/v1/tenants/{slug}/sources", node.token)
    assert [s["name"] for s in sources] == ["main"] and sources[0]["entities"] > 5
    policies = call("GET", f"{node.base}/admin/v1/tenants/{slug}/policies", node.token)["policies"]
    assert [(p["entity"], p["role"], p["action"]) for p in policies] == [("posts", "anon", "read")]
    assert call("GET", f"{node.base}/admin/v1/tenants/{slug}/auth", node.token)["autoconfirm"] is True

    entries = len(audit(node, slug))
    again = minibaas(node, "apply", "-f", path, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("No changes."), again.stdout
    assert len(audit(node, slug)) == entries

    # The same file, edited: one change, naming the field.
    write(tmp_path, stack_text(stack, slug, rps=75))
    edited = minibaas(node, "apply", "-f", path, "--dry-run", env=env)
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in edited.stdout
    assert f"~ tenant.{slug}" in edited.stdout and "limits.requestsPerSecond: 50 → 75" in edited.stdout
    assert call("GET", f"{node.base}/admin/v1/tenants/{slug}", node.token)["limits"]["requestsPerSecond"] == 50
    assert minibaas(node, "apply", "-f", path, env=env).returncode == 0
    assert call("GET", f"{node.base}/admin/v1/tenants/{slug}", node.token)["limits"]["requestsPerSecond"] == 75
    assert minibaas(node, "apply", "-f", path, env=env).stdout.startswith("No changes.")

    # A changed secret is noticed (the node never shows it) and the source replaced.
    env["STACK_DB_URL"] = fresh_database()
    rotated = minibaas(node, "apply", "-f", path, env=env)
    assert rotated.returncode == 0, rotated.stderr
    assert f"-/+ tenant.{slug}.source.main" in rotated.stdout and "1 to add, 0 to change, 1 to destroy" in rotated.stdout
    assert minibaas(node, "apply", "-f", path, env=env).stdout.startswith("No changes.")


def test_prune_destroys_only_what_this_stack_applied(node, tmp_path):
    stack = "p" + secrets.token_hex(3)
    keep, drop, outside = ("prn" + secrets.token_hex(3) for _ in range(3))
    call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": outside, "name": "Not in any stack"})
    both = f"""\
        stack: {stack}
        tenants:
          - {{slug: {keep}, name: Keep}}
          - {{slug: {drop}, name: Drop}}
        """
    path = write(tmp_path, both)
    assert minibaas(node, "apply", "-f", path).returncode == 0
    assert {keep, drop, outside} <= set(tenants(node))

    write(tmp_path, f"""\
        stack: {stack}
        tenants:
          - {{slug: {keep}, name: Keep}}
        """)
    without_prune = minibaas(node, "apply", "-f", path)
    assert without_prune.stdout.startswith("No changes.") and drop in tenants(node)
    pruned = minibaas(node, "apply", "-f", path, "--prune")
    assert pruned.returncode == 0, pruned.stderr
    assert f"- tenant.{drop}" in pruned.stdout and "Plan: 0 to add, 0 to change, 1 to destroy." in pruned.stdout
    assert outside not in pruned.stdout
    present = tenants(node)
    assert keep in present and outside in present and drop not in present
    assert minibaas(node, "apply", "-f", path, "--prune").stdout.startswith("No changes.")


def test_bad_files_are_refused_with_their_line_and_nothing_applied(node, tmp_path):
    slug = "bad" + secrets.token_hex(3)
    cases = {
        "bad slug": (f"tenants:\n  - slug: {slug}\n  - slug: Not_A_Slug\n", ":3:", "Not_A_Slug"),
        "unknown key": (f"tenants:\n  - slug: {slug}\n    colour: red\n", ":3:", "colour"),
        "duplicate slug": (f"tenants:\n  - slug: {slug}\n  - slug: {slug}\n", ":3:", "first at line 2"),
        "unset variable": (f"tenants:\n  - slug: {slug}\n    auth: {{siteUrl: \"${{env:MINIBAAS_NOT_SET_ANYWHERE}}\"}}\n", ":3:",
                           "MINIBAAS_NOT_SET_ANYWHERE"),
        "bad YAML": (f"tenants: [\n  - slug: {slug}\n", "not valid YAML", "line"),
        "wrong type": (f"tenants:\n  - slug: {slug}\n    limits: {{requestsPerSecond: fast}}\n", ":3:", "must be a number"),
        "unknown limit": (f"tenants:\n  - slug: {slug}\n    limits: {{requestsPerMinute: 5}}\n", ":3:", "requestsPerMinute"),
        "duplicate key": (f"tenants:\n  - slug: {slug}\n    name: a\n    name: b\n", ":4:", "duplicate key 'name'"),
    }
    before = set(tenants(node))
    for case, (text, place, mention) in cases.items():
        path = write(tmp_path, text, name=f"{case.replace(' ', '-')}.yaml")
        result = minibaas(node, "apply", "-f", path)
        assert result.returncode == 1, (case, result.stdout, result.stderr)
        line = result.stderr.strip()
        assert len(line.splitlines()) == 1 and place in line and mention in line and "nothing was applied" in line, (case, line)
    assert set(tenants(node)) == before


def test_a_failed_step_is_stated_and_the_next_run_converges(node, tmp_path):
    slug = "flk" + secrets.token_hex(3)
    stack = "f" + secrets.token_hex(3)
    text = f"""\
        stack: {stack}
        tenants:
          - slug: {slug}
            sources:
              - {{name: main, kind: postgres, url: "${{env:STACK_DB_URL}}"}}
            policies:
              - {{entity: posts, role: anon, action: read}}
        """
    path = write(tmp_path, text)
    failed = minibaas(node, "apply", "-f", path, env={"STACK_DB_URL": "postgresql://nobody@127.0.0.1:9/none"})
    assert failed.returncode == 1
    assert f"tenant.{slug}.source.main failed" in failed.stderr and "MB310" in failed.stderr
    assert f"applied before it: +tenant.{slug}" in failed.stderr
    assert slug in tenants(node)
    good = {"STACK_DB_URL": fresh_database()}
    converged = minibaas(node, "apply", "-f", path, env=good)
    assert converged.returncode == 0, converged.stderr
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in converged.stdout and f"+ tenant.{slug}\n" not in converged.stdout
    assert minibaas(node, "apply", "-f", path, env=good).stdout.startswith("No changes.")


def test_export_writes_a_file_apply_accepts_unchanged(node, tmp_path):
    slug = "exp" + secrets.token_hex(3)
    database = fresh_database()
    created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "Exported"})
    call("POST", f"{node.base}/admin/v1/tenants/{slug}/sources", node.token, {"name": "main", "kind": "postgres", "url": database})
    call("PUT", f"{node.base}/admin/v1/tenants/{slug}/policies", node.token,
         {"policies": [{"entity": "posts", "role": "anon", "action": "read"}]})
    call("PATCH", f"{node.base}/admin/v1/tenants/{slug}", node.token, {"limits": {"burst": 77}})
    exported = minibaas(node, "export", "--tenant", slug, "--stack", "exported" + secrets.token_hex(2))
    assert exported.returncode == 0, exported.stderr
    assert database not in exported.stdout and created["serviceKey"] not in exported.stdout
    variable = f"{slug.upper()}_MAIN_URL"
    assert f"${{env:{variable}}}" in exported.stdout and variable in exported.stderr
    path = write(tmp_path, exported.stdout, name="exported.yaml")
    result = minibaas(node, "apply", "-f", path, env={variable: database})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("No changes."), result.stdout


LOOP = '(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))'


def test_buckets_webhooks_cron_and_functions_are_managed_too(node, tenant, tmp_path):
    import wasmtime
    slug = tenant["slug"]
    with open(os.path.join(tmp_path, "loop.wasm"), "wb") as handle:
        handle.write(bytes(wasmtime.wat2wasm(LOOP)))
    with open(os.path.join(tmp_path, "greet.js"), "w") as handle:
        handle.write("Deno.serve(() => new Response('hello from the stack'));\n")
    stack = "c" + secrets.token_hex(3)

    def text(public="true", schedule="@daily", webhook=True):
        lines = [f"stack: {stack}", "tenants:", f"  - slug: {slug}", "    buckets:",
                 f"      - {{name: avatars, public: {public}, file_size_limit: 1048576}}"]
        if webhook:
            lines += ["    webhooks:",
                      '      - {name: orders, source: main, table: posts, events: [INSERT, UPDATE], url: "http://127.0.0.1:9/hook"}',
                      "    cron:",
                      f'      - {{name: nightly, schedule: "{schedule}", timezone: Europe/Paris, target: {{url: "http://127.0.0.1:9/cron"}}}}']
        lines += ["    functions:",
                  '      - {name: spin, file: loop.wasm, verifyJwt: false, timeoutMs: 500, secrets: {TOKEN: "${env:FN_SECRET}"}}',
                  "      - {name: greet, file: greet.js, verifyJwt: false}"]
        return "\n".join(lines) + "\n"

    path = write(tmp_path, text())
    env = {"FN_SECRET": "first-" + secrets.token_hex(4)}
    applied = minibaas(node, "apply", "-f", path, env=env)
    assert applied.returncode == 0, applied.stderr
    assert "Plan: 5 to add, 0 to change, 0 to destroy." in applied.stdout, applied.stdout
    assert f"+ tenant.{slug}.bucket.avatars" in applied.stdout and f"+ tenant.{slug}.function.spin" in applied.stdout
    assert call("GET", f"{base_url(node, slug)}/functions/greet", node.token)["language"] == "javascript"
    assert env["FN_SECRET"] not in applied.stdout and "signing secret (shown once) whsec_" in applied.stderr
    base = f"{node.base}/admin/v1/tenants/{slug}"
    assert [w["name"] for w in call("GET", f"{base}/webhooks", node.token)] == ["orders"]
    assert call("GET", f"{base}/cron/nightly", node.token)["schedule"] == "@daily"
    function = call("GET", f"{base}/functions/spin", node.token)
    assert function["secrets"] == ["TOKEN"] and function["timeoutMs"] == 500
    buckets = {b["name"]: b for b in json.loads(urllib_get(f"{tenant['apiUrl']}/storage/v1/bucket", tenant["serviceKey"]))}
    assert buckets["avatars"]["public"] is True and buckets["avatars"]["file_size_limit"] == 1048576
    assert minibaas(node, "apply", "-f", path, env=env).stdout.startswith("No changes.")

    write(tmp_path, text(public="false", schedule="@hourly"))
    env["FN_SECRET"] = "second-" + secrets.token_hex(4)
    edited = minibaas(node, "apply", "-f", path, env=env)
    assert edited.returncode == 0, edited.stderr
    assert "Plan: 0 to add, 3 to change, 0 to destroy." in edited.stdout, edited.stdout
    assert "public: true → false" in edited.stdout and 'schedule: "@daily" → "@hourly"' in edited.stdout
    assert "secrets: (sensitive, changed)" in edited.stdout and env["FN_SECRET"] not in edited.stdout
    assert call("GET", f"{base}/cron/nightly", node.token)["schedule"] == "@hourly"
    assert call("GET", f"{base}/functions/spin", node.token)["version"] == function["version"] + 1
    assert minibaas(node, "apply", "-f", path, env=env).stdout.startswith("No changes.")

    write(tmp_path, text(public="false", schedule="@hourly", webhook=False))
    kept = minibaas(node, "apply", "-f", path, env=env)
    assert kept.stdout.startswith("No changes.") and call("GET", f"{base}/webhooks", node.token)
    pruned = minibaas(node, "apply", "-f", path, "--prune", env=env)
    assert pruned.returncode == 0, pruned.stderr
    assert "Plan: 0 to add, 0 to change, 2 to destroy." in pruned.stdout, pruned.stdout
    assert call("GET", f"{base}/webhooks", node.token) == [] and call("GET", f"{base}/cron", node.token) == []
    assert "avatars" in urllib_get(f"{tenant['apiUrl']}/storage/v1/bucket", tenant["serviceKey"])
    assert slug in tenants(node)


def base_url(node, slug):
    return f"{node.base}/admin/v1/tenants/{slug}"


def urllib_get(url, key):
    import urllib.request
    request = urllib.request.Request(url, headers={"apikey": key, "Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read().decode()
