"""Starts a real mini-baas node and a tenant with a PostgreSQL source, for the official clients."""
import json
import os
import re
import secrets
import subprocess
import tempfile
import time
import urllib.request

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from cluster_harness import node_environment, start_node

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(ROOT, "Tests", "Fixtures", "rest-fixture.sql")


def admin_url():
    url = os.environ.get("MINIBAAS_TEST_DATABASE_URL")
    if not url:
        pytest.fail("MINIBAAS_TEST_DATABASE_URL is not set: run ./scripts/test")
    return url


def fresh_database():
    """A new database on the test server, loaded with the REST fixture."""
    name = "py_" + secrets.token_hex(6)
    subprocess.run(["psql", admin_url(), "-qc", f'create database "{name}"'], check=True)
    url = re.sub(r"/[^/?]+(\?|$)", f"/{name}\\1", admin_url(), count=1)
    subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-f", FIXTURE], check=True, stdout=subprocess.DEVNULL)
    return url


def call(method, url, token=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


class Node:
    def __init__(self, data_dir=None, token=None, settings=None):
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="minibaas-py-")
        self.token = token or "python-admin-token-" + secrets.token_hex(8)
        env = node_environment({"MINIBAAS_ADMIN_TOKEN": self.token, "MINIBAAS_LOG_LEVEL": "warning",
                                # Webhook receivers in the tests listen on loopback.
                                "MINIBAAS_OUTBOUND_ALLOW_CIDRS": "127.0.0.0/8", **(settings or {})})
        self.process, self.base = start_node(["--data-dir", self.data_dir], env, subprocess.DEVNULL)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def node():
    started = Node()
    yield started
    started.stop()


@pytest.fixture()
def tenant(node):
    """A fresh tenant whose default source is a fresh fixture database."""
    slug = "py" + secrets.token_hex(4)
    created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "Python"})
    database = fresh_database()
    call("POST", f"{node.base}/admin/v1/tenants/{slug}/sources", node.token,
         {"name": "main", "kind": "postgres", "url": database})
    return {"slug": slug, "apiUrl": created["apiUrl"], "serviceKey": created["serviceKey"], "anonKey": created["anonKey"], "database": database}


def sql(database, query):
    """The JSON the database itself gives for a query."""
    out = subprocess.run(["psql", database, "-qtAX", "-c", f"select coalesce(json_agg(o), '[]') from ({query}) o"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


# --- a real SMTP server on loopback (aiosmtpd), requiring AUTH like a hosted relay ------------

SMTP_USER = "mailer"
SMTP_PASSWORD = "mail-" + secrets.token_hex(6)


class Sink:
    def __init__(self):
        self.messages = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # A permanent refusal for the bounce tests; everyone else is taken.
        if address.startswith("bounce"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"to": envelope.rcpt_tos, "text": envelope.content.decode("utf-8", "replace"),
                              "authenticated": session.authenticated})
        return "250 OK"

    def last_for(self, address, timeout=10):
        """The latest mail to address, waiting for the first (mail goes out as a job)."""
        deadline = time.time() + timeout
        while True:
            found = [m for m in self.messages if address in m["to"]]
            if found or time.time() > deadline:
                break
            time.sleep(0.05)
        assert found, f"no mail for {address}; got {[m['to'] for m in self.messages]}"
        return found[-1]["text"]

    def wait_for(self, address, count=1, timeout=10):
        """The text of the count-th mail to address, once it has arrived."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [m for m in self.messages if address in m["to"]]
            if len(found) >= count:
                return found[count - 1]["text"]
            time.sleep(0.05)
        raise AssertionError(f"no mail #{count} for {address} within {timeout} s")


def _authenticate(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode())


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def smtp():
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=_free_port(), authenticator=_authenticate,
                            auth_require_tls=False, auth_required=True)
    controller.start()
    yield controller, sink
    controller.stop()


def smtp_settings(controller):
    return {"host": "127.0.0.1", "port": controller.port, "username": SMTP_USER, "password": SMTP_PASSWORD,
            "from": "noreply@minibaas.test", "tls": False}


def token_hash(mail_text):
    match = re.search(r"token_hash (\S+)", mail_text)
    assert match, mail_text
    return match.group(1)
