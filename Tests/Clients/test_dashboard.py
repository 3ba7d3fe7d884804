"""The web dashboard at /_/ in a real headless browser: Debian's chromium driven by Playwright
(never a downloaded browser). Elements are found by role, name and label only. A case fails on a
console or page error, a failed request, an unexpected status >= 400, a request outside the
dashboard's own and the public admin/tenant/metrics paths, or the admin token in any URL.
Screenshots of the main pages are kept under .test-artifacts/dashboard/."""
import json
import os
import re
import secrets
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import expect, sync_playwright

from conftest import ROOT, call, fresh_database

ARTIFACTS = os.path.join(ROOT, ".test-artifacts", "dashboard")
ALLOWED = re.compile(r"^/(_/|admin/v1/|t/[a-z0-9-]+/|metrics$|healthz$|readyz$)")


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


class Watched:
    """A browser page whose every request, response and console message is checked."""

    def __init__(self, browser, node):
        self.node = node
        self.context = browser.new_context(base_url=node.base)
        self.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=node.base)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15000)
        self.problems = []
        self.expected = []  # (status, path regex) a case provokes on purpose
        self.paths = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("requestfailed", lambda request: self.problems.append(f"failed request: {request.url} {request.failure}"))
        self.page.on("request", self._request)
        self.page.on("response", self._response)

    def _request(self, request):
        url = urllib.parse.urlsplit(request.url)
        if url.scheme == "data":
            return
        self.paths.append(url.path)
        if f"{url.scheme}://{url.netloc}" != self.node.base:
            self.problems.append(f"request to another origin: {request.url}")
        if not ALLOWED.match(url.path):
            self.problems.append(f"request outside the allowed paths: {url.path}")
        if self.node.token in request.url:
            self.problems.append("the admin token appeared in a URL")

    def _response(self, response):
        if response.status >= 400:
            path = urllib.parse.urlsplit(response.url).path
            if not any(status == response.status and re.search(pattern, path) for status, pattern in self.expected):
                self.problems.append(f"unexpected {response.status} for {path}")

    def _console(self, message):
        if message.type != "error":
            return
        # Chrome logs every 4xx/5xx fetch as a console error; those are judged by _response.
        if "Failed to load resource" in message.text:
            return
        self.problems.append(f"console error: {message.text}")

    def expect_status(self, status, pattern):
        self.expected.append((status, pattern))

    def sign_in(self):
        self.page.goto("/_/")
        self.page.get_by_label("Admin token").fill(self.node.token)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("heading", name="Tenants")).to_be_visible()

    def open_tenant(self, slug, tab=None):
        self.page.get_by_role("link", name="Tenants", exact=True).click()
        self.page.get_by_role("link", name=slug, exact=True).click()
        expect(self.page.get_by_role("heading", name=f"Tenant {slug}")).to_be_visible()
        if tab:
            self.page.get_by_role("navigation", name=f"Sections of {slug}").get_by_role("link", name=tab, exact=True).click()
            expect(self.page.get_by_role("heading", name=tab, exact=True)).to_be_visible()

    def screenshot(self, name):
        os.makedirs(ARTIFACTS, exist_ok=True)
        self.page.screenshot(path=os.path.join(ARTIFACTS, f"{name}.png"), full_page=True)

    def finish(self):
        self.page.wait_for_timeout(300)
        self.context.close()
        assert self.problems == [], "\n".join(self.problems)


@pytest.fixture()
def watched(chromium, node):
    page = Watched(chromium, node)
    yield page
    page.finish()


def rest(tenant, path, method="GET", body=None):
    """The tenant's REST API as its service role, for the oracle and for traffic."""
    request = urllib.request.Request(f"{tenant['apiUrl']}{path}", method=method, data=json.dumps(body).encode() if body is not None else None)
    request.add_header("apikey", tenant["serviceKey"])
    request.add_header("Authorization", f"Bearer {tenant['serviceKey']}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def tenant_row(page, slug):
    return page.get_by_role("table", name="Requests by tenant").get_by_role("row").filter(
        has=page.get_by_role("cell", name=slug, exact=True))


def test_the_shell_holds_no_data_and_a_wrong_token_is_refused(watched, node, tenant):
    with urllib.request.urlopen(f"{node.base}/_/") as response:
        shell = response.read().decode()
        policy = response.headers["Content-Security-Policy"]
    assert tenant["slug"] not in shell and "script-src 'self'" in policy and "connect-src 'self'" in policy
    for asset in ("app.js", "app.css"):
        with urllib.request.urlopen(f"{node.base}/_/{asset}") as response:
            assert response.status == 200 and tenant["slug"] not in response.read().decode()

    page = watched.page
    watched.expect_status(401, r"^/admin/v1/tenants$")
    page.goto("/_/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Admin token").fill("not-the-admin-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Invalid admin token")
    expect(page.get_by_role("heading", name="Tenants")).to_have_count(0)
    watched.screenshot("sign-in-refused")

    watched.sign_in()
    slugs = [t["slug"] for t in call("GET", f"{node.base}/admin/v1/tenants", node.token)]
    assert tenant["slug"] in slugs
    table = page.get_by_role("table", name="Tenants")
    for slug in slugs:
        expect(table.get_by_role("link", name=slug, exact=True)).to_be_visible()
    watched.screenshot("tenants")


def test_keys_are_masked_and_copied(watched, tenant):
    page = watched.page
    watched.sign_in()
    watched.open_tenant(tenant["slug"], "Keys")
    text = page.locator("main").inner_text()
    assert tenant["anonKey"] not in text and tenant["serviceKey"] not in text
    assert tenant["anonKey"] not in page.content() and tenant["serviceKey"] not in page.content()
    page.get_by_role("button", name="Copy anon key").click()
    expect(page.get_by_role("status")).to_contain_text("Copied the anon key")
    assert page.evaluate("navigator.clipboard.readText()") == tenant["anonKey"]
    page.get_by_role("button", name="Copy service key").click()
    expect(page.get_by_role("status")).to_contain_text("Copied the service key")
    assert page.evaluate("navigator.clipboard.readText()") == tenant["serviceKey"]
    watched.screenshot("keys")


def test_tenants_are_created_disabled_and_deleted_with_confirmation(watched, node):
    page = watched.page
    slug = "ui" + secrets.token_hex(3)
    watched.sign_in()
    page.get_by_label("Slug").fill(slug)
    page.get_by_label("Name").fill("From the dashboard")
    page.get_by_role("button", name="Create tenant").click()
    expect(page.get_by_role("heading", name=f"Tenant {slug}")).to_be_visible()
    assert call("GET", f"{node.base}/admin/v1/tenants/{slug}", node.token)["name"] == "From the dashboard"

    page.get_by_role("button", name=f"Disable {slug}").click()
    expect(page.get_by_role("button", name=f"Enable {slug}")).to_be_visible()
    assert call("GET", f"{node.base}/admin/v1/tenants/{slug}", node.token)["status"] == "disabled"

    page.get_by_role("button", name=f"Delete {slug}").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    assert call("GET", f"{node.base}/admin/v1/tenants/{slug}", node.token)["slug"] == slug
    page.get_by_role("button", name=f"Delete {slug}").click()
    page.get_by_role("dialog").get_by_role("button", name=f"Delete {slug} for good").click()
    expect(page.get_by_role("heading", name="Tenants")).to_be_visible()
    expect(page.get_by_role("link", name=slug, exact=True)).to_have_count(0)
    slugs = [t["slug"] for t in call("GET", f"{node.base}/admin/v1/tenants", node.token)]
    assert slug not in slugs


def test_sources_are_added_from_the_form_and_failures_shown(watched, node, tenant):
    page = watched.page
    slug = tenant["slug"]
    watched.expect_status(422, rf"^/admin/v1/tenants/{slug}/sources$")
    watched.sign_in()
    watched.open_tenant(slug, "Sources")
    expect(page.get_by_role("table", name="Sources").get_by_role("cell", name="main", exact=True)).to_be_visible()

    page.get_by_label("Name").fill("broken")
    page.get_by_label("URL").fill("postgresql://nobody@127.0.0.1:9/nothing")
    page.get_by_role("button", name="Add source").click()
    expect(page.get_by_role("alert")).to_contain_text("MB310", timeout=20000)
    assert [s["name"] for s in call("GET", f"{node.base}/admin/v1/tenants/{slug}/sources", node.token)] == ["main"]

    page.get_by_label("Name").fill("second")
    page.get_by_label("Kind").select_option("postgres")
    page.get_by_label("URL").fill(fresh_database())
    page.get_by_role("button", name="Add source").click()
    expect(page.get_by_role("table", name="Sources").get_by_role("cell", name="second", exact=True)).to_be_visible(timeout=20000)
    expect(page.get_by_role("status")).to_contain_text("Added second")
    assert sorted(s["name"] for s in call("GET", f"{node.base}/admin/v1/tenants/{slug}/sources", node.token)) == ["main", "second"]
    page.get_by_role("button", name="Refresh second").click()
    expect(page.get_by_role("status")).to_contain_text("Refreshed second")
    page.get_by_text("Model of second").click()
    expect(page.get_by_role("table", name="Columns of posts").first).to_be_visible()
    watched.screenshot("sources")


def test_the_table_browser_pages_and_filters_through_the_rest_api(watched, tenant):
    page = watched.page
    slug = tenant["slug"]
    subprocess.run(["psql", tenant["database"], "-qc",
                    "insert into posts (author_id, title) select 1, 'Bulk ' || n from generate_series(1, 40) n"], check=True)
    expected = rest(tenant, "/rest/v1/posts?select=id,title&order=id.asc")
    watched.sign_in()
    watched.open_tenant(slug, "Tables")
    page.get_by_label("Source").select_option("main")
    page.get_by_label("Table", exact=True).select_option("posts")
    grid = page.get_by_role("table", name="Rows of posts")
    expect(grid).to_be_visible()
    expect(page.get_by_text(f"Rows 1–25 of {len(expected)}")).to_be_visible()
    expect(grid.get_by_role("cell", name=expected[0]["title"], exact=True)).to_be_visible()
    expect(grid.get_by_role("cell", name=expected[25]["title"], exact=True)).to_have_count(0)
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text(f"Rows 26–{min(50, len(expected))} of {len(expected)}")).to_be_visible()
    expect(grid.get_by_role("cell", name=expected[25]["title"], exact=True)).to_be_visible()
    assert "/sources/main/rest/v1/posts" in " ".join(watched.paths)

    page.get_by_label("Column").select_option("title")
    page.get_by_label("Operator").select_option("eq")
    page.get_by_label("Value").fill("Compilers")
    page.get_by_role("button", name="Apply filter").click()
    expect(page.get_by_text("Rows 1–1 of 1")).to_be_visible()
    expect(grid.get_by_role("cell", name="Compilers", exact=True)).to_be_visible()
    watched.screenshot("tables")


def test_policies_are_edited_with_errors_shown_where_they_are(watched, node, tenant):
    page = watched.page
    slug = tenant["slug"]
    watched.expect_status(400, rf"^/admin/v1/tenants/{slug}/policies$")
    before = call("GET", f"{node.base}/admin/v1/tenants/{slug}/policies", node.token)
    watched.sign_in()
    watched.open_tenant(slug, "Policies")
    box = page.get_by_role("textbox", name="Policies")
    expect(box).to_have_value(re.compile(r'"policies"'))

    box.fill('{"policies": [{"entity": "no_such_table", "role": "anon", "action": "read"}]}')
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("MB106")
    expect(page.locator("#policies-error")).to_contain_text("$.policies[0].entity")
    expect(box).to_have_attribute("aria-invalid", "true")
    assert call("GET", f"{node.base}/admin/v1/tenants/{slug}/policies", node.token) == before

    box.fill('{"policies": [')
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid JSON")

    box.fill('{"policies": [{"entity": "posts", "role": "anon", "action": "read", "when": {"published": {"eq": true}}}]}')
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved 1 policies")
    stored = call("GET", f"{node.base}/admin/v1/tenants/{slug}/policies", node.token)["policies"]
    assert [(p["entity"], p["role"], p["action"]) for p in stored] == [("posts", "anon", "read")]
    watched.screenshot("policies")


def test_users_supervisor_cluster_and_live_metrics(watched, node, tenant):
    page = watched.page
    slug = tenant["slug"]
    email = f"user-{secrets.token_hex(3)}@example.com"
    rest(tenant, "/auth/v1/admin/users", "POST", {"email": email, "password": "correct horse battery", "email_confirm": True})
    watched.sign_in()
    watched.open_tenant(slug, "Users")
    expect(page.get_by_role("table", name="Users").get_by_role("cell", name=email, exact=True)).to_be_visible()
    watched.screenshot("users")

    for tab in ("Storage", "Jobs", "Functions"):
        page.get_by_role("navigation", name=f"Sections of {slug}").get_by_role("link", name=tab, exact=True).click()
        expect(page.get_by_role("heading", name=tab, exact=True)).to_be_visible()

    supervisor = call("GET", f"{node.base}/admin/v1/supervisor", node.token)
    page.get_by_role("link", name="Supervisor").click()
    expect(page.get_by_role("heading", name="Supervisor")).to_be_visible()
    expect(page.locator("main")).to_contain_text(supervisor["node"]["id"])
    children = page.get_by_role("table", name=f"Children of {slug}")
    expect(children.get_by_role("cell", name="source:main", exact=True)).to_be_visible()
    expect(children.get_by_role("row").filter(has_text="source:main")).to_contain_text("running")
    watched.screenshot("supervisor")

    page.get_by_role("link", name="Cluster").click()
    expect(page.get_by_role("heading", name="Members")).to_be_visible()
    expect(page.get_by_role("table", name="Members")).to_contain_text(supervisor["node"]["id"])
    expect(page.get_by_role("table", name="Placements").get_by_role("cell", name=slug, exact=True)).to_be_visible()
    watched.screenshot("cluster")

    page.get_by_role("link", name="Metrics").click()
    row = tenant_row(page, slug)
    expect(row).to_be_visible()
    before = int(row.get_by_role("cell").nth(1).inner_text())
    for _ in range(25):
        rest(tenant, "/rest/v1/posts?select=id")
    deadline = time.time() + 15
    after = before
    while time.time() < deadline and after < before + 25:
        page.wait_for_timeout(500)
        after = int(row.get_by_role("cell").nth(1).inner_text())
    assert after >= before + 25, (before, after)
    expect(row.get_by_role("cell").nth(4)).not_to_have_text("—")
    watched.screenshot("metrics")


def test_the_dashboard_works_by_keyboard(watched):
    page = watched.page
    page.goto("/_/")
    expect(page.get_by_label("Admin token")).to_be_focused()
    page.keyboard.type(watched.node.token)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Tenants")).to_be_focused()
    page.get_by_role("link", name="Metrics").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Metrics")).to_be_focused()
