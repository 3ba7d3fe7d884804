"""Resumable uploads (TUS 1.0.0) with tuspy, and over raw HTTP for offsets, termination, expiry
checks and a node killed with -9 between two chunks."""
import base64
import io
import os
import secrets
import signal
import subprocess
import tempfile

import httpx
import pytest
from supabase import create_client
from tusclient import client as tus

from cluster_harness import node_environment, start_node
from conftest import call


@pytest.fixture()
def resumable(node):
    slug = "tu" + secrets.token_hex(4)
    created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "TUS"})
    create_client(created["apiUrl"], created["serviceKey"]).storage.create_bucket("uploads")
    return {"slug": slug, "apiUrl": created["apiUrl"], "service": created["serviceKey"], "anon": created["anonKey"],
            "endpoint": created["apiUrl"] + "/storage/v1/upload/resumable"}


def keys(space):
    return {"apikey": space["service"], "Authorization": f"Bearer {space['service']}"}


def tus_headers(space, **extra):
    return {**keys(space), "Tus-Resumable": "1.0.0", **extra}


def metadata(**values):
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def test_tuspy_uploads_in_chunks_and_the_object_appears_only_when_complete(resumable):
    data = os.urandom(3 * 1024 * 1024 + 123)
    client = tus.TusClient(resumable["endpoint"], headers=keys(resumable))
    uploader = client.uploader(file_stream=io.BytesIO(data), chunk_size=1024 * 1024, metadata={
        "bucketName": "uploads", "objectName": "videos/clip.bin", "contentType": "video/mp4", "cacheControl": "60"})
    uploader.upload_chunk()
    files = create_client(resumable["apiUrl"], resumable["service"]).storage.from_("uploads")
    assert not files.exists("videos/clip.bin"), "an unfinished upload is not an object"
    head = httpx.head(uploader.url, headers=tus_headers(resumable))
    assert head.headers["upload-offset"] == str(1024 * 1024) and head.headers["upload-length"] == str(len(data))
    uploader.upload()
    assert files.download("videos/clip.bin") == data
    info = files.info("videos/clip.bin")
    assert (info["content_type"], info["cache_control"], info["size"]) == ("video/mp4", "max-age=60", len(data))
    assert httpx.head(uploader.url, headers=tus_headers(resumable)).status_code == 404


def test_offsets_termination_and_bad_requests(resumable):
    options = httpx.options(resumable["endpoint"])
    assert options.headers["tus-version"] == "1.0.0" and "termination" in options.headers["tus-extension"]
    create = lambda **h: httpx.post(resumable["endpoint"], headers=tus_headers(resumable, **h))
    assert create(**{"Upload-Length": "10"}).status_code == 400  # no bucket or name
    assert httpx.post(resumable["endpoint"], headers={**keys(resumable), "Upload-Length": "10",
                      "Upload-Metadata": metadata(bucketName="uploads", objectName="x")}).status_code == 412  # no Tus-Resumable
    bad_name = create(**{"Upload-Length": "10", "Upload-Metadata": metadata(bucketName="uploads", objectName="a/../b")})
    assert bad_name.status_code == 400 and bad_name.json()["code"] == "InvalidKey"
    made = create(**{"Upload-Length": "10", "Upload-Metadata": metadata(bucketName="uploads", objectName="ten.bin")})
    assert made.status_code == 201 and made.headers["location"].startswith("http")
    url = made.headers["location"]
    patch = lambda offset, body, **h: httpx.patch(url, content=body, headers=tus_headers(resumable, **{
        "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream", **h}))
    assert patch(0, b"12345").headers["upload-offset"] == "5"
    assert patch(3, b"xx").status_code == 409  # not the acknowledged offset
    assert httpx.patch(url, content=b"x", headers=tus_headers(resumable, **{"Upload-Offset": "5", "Content-Type": "text/plain"})).status_code == 415
    assert patch(5, b"too many bytes").status_code == 413
    assert httpx.head(url, headers=tus_headers(resumable)).headers["upload-offset"] == "5"
    # Another tenant's keys do not reach it; anon cannot either.
    anon = httpx.head(url, headers={"apikey": resumable["anon"], "Tus-Resumable": "1.0.0"})
    assert anon.status_code == 403
    assert httpx.delete(url, headers=tus_headers(resumable)).status_code == 204
    assert httpx.head(url, headers=tus_headers(resumable)).status_code == 404
    quota = create(**{"Upload-Length": str(2 << 30), "Upload-Metadata": metadata(bucketName="uploads", objectName="huge.bin")})
    assert quota.status_code == 413


def test_an_acknowledged_offset_survives_kill_9(tmp_path):
    data_dir = tempfile.mkdtemp(prefix="minibaas-tus-")
    token = "tus-admin-token-" + secrets.token_hex(8)
    env = node_environment({"MINIBAAS_ADMIN_TOKEN": token, "MINIBAAS_LOG_LEVEL": "warning"})
    process, base = start_node(["--data-dir", data_dir], env, subprocess.DEVNULL)
    try:
        created = call("POST", f"{base}/admin/v1/tenants", token, {"slug": "crash", "name": "Crash"})
        create_client(created["apiUrl"], created["serviceKey"]).storage.create_bucket("b")
        space = {"service": created["serviceKey"], "anon": created["anonKey"]}
        made = httpx.post(created["apiUrl"] + "/storage/v1/upload/resumable", headers=tus_headers(space, **{
            "Upload-Length": "8", "Upload-Metadata": metadata(bucketName="b", objectName="survivor.bin")}))
        url = made.headers["location"]
        sent = httpx.patch(url, content=b"abcd", headers=tus_headers(space, **{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}))
        assert sent.headers["upload-offset"] == "4"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process, base = start_node(["--data-dir", data_dir], env, subprocess.DEVNULL)
        url = url.replace(url.split("/t/")[0], base)
        assert httpx.head(url, headers=tus_headers(space)).headers["upload-offset"] == "4"
        done = httpx.patch(url, content=b"efgh", headers=tus_headers(space, **{"Upload-Offset": "4", "Content-Type": "application/offset+octet-stream"}))
        assert done.status_code == 204
        api = created["apiUrl"].replace(created["apiUrl"].split("/t/")[0], base)
        assert create_client(api, created["serviceKey"]).storage.from_("b").download("survivor.bin") == b"abcdefgh"
    finally:
        process.kill()
        process.wait(timeout=30)


def test_uploads_in_progress_are_bounded_in_number_and_count_against_the_quota(resumable, node):
    call("PATCH", f"{node.base}/admin/v1/tenants/{resumable['slug']}", node.token, {"limits": {"storage": {"maxBytes": 1000}}})
    create = lambda name, length: httpx.post(resumable["endpoint"], headers=tus_headers(resumable, **{
        "Upload-Length": str(length), "Upload-Metadata": metadata(bucketName="uploads", objectName=name)}))
    assert create("a.bin", 600).status_code == 201
    over = create("b.bin", 600)
    assert over.status_code == 413 and over.json()["code"] == "QuotaExceeded"
    call("PATCH", f"{node.base}/admin/v1/tenants/{resumable['slug']}", node.token, {"limits": {"storage": {"maxBytes": 1 << 30}}})
    statuses = [create(f"n{i}.bin", 1).status_code for i in range(25)]
    assert statuses.count(201) == 19 and statuses[-1] == 429


def test_a_silent_transfer_loses_its_connection_and_stores_nothing():
    token = "idle-admin-token-" + secrets.token_hex(8)
    env = node_environment({"MINIBAAS_ADMIN_TOKEN": token, "MINIBAAS_LOG_LEVEL": "warning", "MINIBAAS_STORAGE_IDLE_TIMEOUT_MS": "1000"})
    process, base = start_node(["--data-dir", tempfile.mkdtemp(prefix="minibaas-idle-")], env, subprocess.DEVNULL)
    try:
        created = call("POST", f"{base}/admin/v1/tenants", token, {"slug": "idle", "name": "Idle"})
        create_client(created["apiUrl"], created["serviceKey"]).storage.create_bucket("b")
        host, port = base.replace("http://", "").split(":")
        import socket
        import time
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall((f"POST /t/idle/storage/v1/object/b/stalled.bin HTTP/1.1\r\nHost: {host}\r\n"
                          f"apikey: {created['serviceKey']}\r\nAuthorization: Bearer {created['serviceKey']}\r\n"
                          "Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n").encode() + b"x" * 10)
            started = time.time()
            closed = b""
            try:
                while True:
                    piece = sock.recv(4096)
                    if not piece:
                        break
                    closed += piece
            except (ConnectionResetError, socket.timeout):
                pass
            assert time.time() - started < 8, "the silent upload was not cut off"
        assert not create_client(created["apiUrl"], created["serviceKey"]).storage.from_("b").exists("stalled.bin")
    finally:
        process.kill()
        process.wait(timeout=30)
