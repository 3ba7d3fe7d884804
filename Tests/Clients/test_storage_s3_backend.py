"""The same storage, with objects kept in an S3-compatible service instead of local disk: moto's
server (from PyPI, started here on a loopback port) stands in for MinIO or AWS S3. The Supabase
API, the S3 protocol and resumable uploads run against a node configured with
MINIBAAS_STORAGE_BACKEND=s3; the bytes are checked in moto's bucket itself."""
import io
import os
import secrets
import subprocess
import sys
import tempfile
import time

import boto3
import httpx
import pytest
from botocore.config import Config
from supabase import create_client
from tusclient import client as tus

from cluster_harness import BINARY, node_environment, start_node
from conftest import _free_port, call


@pytest.fixture(scope="module")
def moto():
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            httpx.get(endpoint, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    backend = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="moto", aws_secret_access_key="moto",
                           config=Config(s3={"addressing_style": "path"}))
    backend.create_bucket(Bucket="minibaas-objects")
    yield {"endpoint": endpoint, "client": backend}
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def s3_node(moto):
    token = "s3-backend-admin-token-" + secrets.token_hex(8)
    env = node_environment({
        "MINIBAAS_ADMIN_TOKEN": token, "MINIBAAS_LOG_LEVEL": "warning", "MINIBAAS_STORAGE_BACKEND": "s3",
        "MINIBAAS_STORAGE_S3_ENDPOINT": moto["endpoint"], "MINIBAAS_STORAGE_S3_BUCKET": "minibaas-objects",
        "MINIBAAS_STORAGE_S3_ACCESS_KEY_ID": "moto", "MINIBAAS_STORAGE_S3_SECRET_ACCESS_KEY": "moto"})
    process, base = start_node(["--data-dir", tempfile.mkdtemp(prefix="minibaas-s3b-")], env, subprocess.DEVNULL)
    yield {"base": base, "token": token, "env": env}
    process.terminate()
    process.wait(timeout=30)


def backend_keys(moto):
    listed = moto["client"].list_objects_v2(Bucket="minibaas-objects")
    return [o["Key"] for o in listed.get("Contents", [])]


def test_objects_live_in_the_s3_backend_and_every_surface_works(s3_node, moto):
    created = call("POST", f"{s3_node['base']}/admin/v1/tenants", s3_node["token"], {"slug": "s3back", "name": "S3 backend"})
    storage = create_client(created["apiUrl"], created["serviceKey"]).storage
    storage.create_bucket("docs")
    files = storage.from_("docs")
    body = os.urandom(3 << 20)
    files.upload("big.bin", body, {"content-type": "application/octet-stream"})
    assert files.download("big.bin") == body
    response = httpx.get(f"{created['apiUrl']}/storage/v1/object/docs/big.bin", headers={
        "apikey": created["serviceKey"], "Authorization": f"Bearer {created['serviceKey']}", "Range": "bytes=100-199"})
    assert response.status_code == 206 and response.content == body[100:200]
    keys = backend_keys(moto)
    assert len(keys) == 1 and keys[0].startswith("s3back/")
    assert moto["client"].get_object(Bucket="minibaas-objects", Key=keys[0])["Body"].read() == body

    key = call("POST", f"{s3_node['base']}/admin/v1/tenants/s3back/storage/s3-keys", s3_node["token"])
    s3 = boto3.client("s3", endpoint_url=key["endpoint"], region_name="us-east-1", aws_access_key_id=key["accessKeyId"],
                      aws_secret_access_key=key["secretAccessKey"], config=Config(s3={"addressing_style": "path"}))
    s3.put_object(Bucket="docs", Key="via-s3.txt", Body=b"through the S3 protocol")
    assert files.download("via-s3.txt") == b"through the S3 protocol"
    uploader = tus.TusClient(created["apiUrl"] + "/storage/v1/upload/resumable", headers={
        "apikey": created["serviceKey"], "Authorization": f"Bearer {created['serviceKey']}"}).uploader(
        file_stream=io.BytesIO(b"r" * 300_000), chunk_size=100_000, metadata={"bucketName": "docs", "objectName": "resumed.bin"})
    uploader.upload()
    assert files.download("resumed.bin") == b"r" * 300_000
    assert len(backend_keys(moto)) == 3

    files.remove(["big.bin", "via-s3.txt", "resumed.bin"])
    assert backend_keys(moto) == []
    # A refused upload never reaches the backend.
    call("PATCH", f"{s3_node['base']}/admin/v1/tenants/s3back", s3_node["token"], {"limits": {"storage": {"maxObjectBytes": 1000}}})
    refused = httpx.post(f"{created['apiUrl']}/storage/v1/object/docs/too-big.bin", headers={
        "apikey": created["serviceKey"], "Authorization": f"Bearer {created['serviceKey']}"}, content=b"x" * 5000)
    assert refused.status_code == 413 and backend_keys(moto) == []


def test_a_missing_backend_bucket_stops_start_up_with_its_code(moto):
    env = node_environment({
        "MINIBAAS_ADMIN_TOKEN": "s3-backend-admin-token-" + secrets.token_hex(8), "MINIBAAS_STORAGE_BACKEND": "s3",
        "MINIBAAS_STORAGE_S3_ENDPOINT": moto["endpoint"], "MINIBAAS_STORAGE_S3_BUCKET": "no-such-bucket",
        "MINIBAAS_STORAGE_S3_ACCESS_KEY_ID": "moto", "MINIBAAS_STORAGE_S3_SECRET_ACCESS_KEY": "moto"})
    process = subprocess.run([BINARY, "serve", "--port", "0", "--data-dir", tempfile.mkdtemp(prefix="minibaas-s3m-")],
                             env=env, capture_output=True, text=True, timeout=60)
    assert process.returncode != 0 and "MB905" in process.stderr, process.stderr[-500:]
