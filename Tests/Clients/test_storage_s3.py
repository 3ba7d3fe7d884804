"""The S3 protocol at {apiUrl}/storage/v1/s3 with boto3 (path style), plus what boto3 does not
send over plain HTTP: a signed aws-chunked body, a wrong checksum, Expect: 100-continue on a raw
socket, session credentials carrying a user's JWT."""
import base64
import datetime
import hashlib
import hmac
import secrets
import socket
import urllib.parse
import zlib

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from supabase import create_client

from conftest import call


@pytest.fixture()
def s3space(node):
    slug = "s3" + secrets.token_hex(4)
    created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "S3"})
    key = call("POST", f"{node.base}/admin/v1/tenants/{slug}/storage/s3-keys", node.token)
    return {"slug": slug, "apiUrl": created["apiUrl"], "anon": created["anonKey"], "service": created["serviceKey"], "key": key,
            "endpoint": key["endpoint"]}


def client(space, key_id=None, secret=None, token=None, region="eu-central-1", **config):
    return boto3.client(
        "s3", endpoint_url=space["endpoint"], region_name=region,
        aws_access_key_id=key_id or space["key"]["accessKeyId"], aws_secret_access_key=secret or space["key"]["secretAccessKey"],
        aws_session_token=token, config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config))


def code_of(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_keys_are_shown_once_listed_without_secrets_and_revocable(node, s3space):
    slug, key = s3space["slug"], s3space["key"]
    assert key["accessKeyId"].startswith("MB") and len(key["secretAccessKey"]) == 40
    listed = call("GET", f"{node.base}/admin/v1/tenants/{slug}/storage/s3-keys", node.token)
    assert [k["accessKeyId"] for k in listed] == [key["accessKeyId"]] and "secretAccessKey" not in listed[0]
    s3 = client(s3space)
    s3.create_bucket(Bucket="kept")
    with pytest.raises(ClientError) as wrong:
        client(s3space, secret="x" * 40).list_buckets()
    assert code_of(wrong) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as unknown:
        client(s3space, key_id="MBNOSUCHKEY").list_buckets()
    assert code_of(unknown) == "InvalidAccessKeyId"
    request = urllib.request.Request(f"{node.base}/admin/v1/tenants/{slug}/storage/s3-keys/{key['id']}", method="DELETE")
    request.add_header("Authorization", f"Bearer {node.token}")
    urllib.request.urlopen(request).read()
    with pytest.raises(ClientError) as revoked:
        s3.list_buckets()
    assert code_of(revoked) == "InvalidAccessKeyId"


def test_objects_round_trip_with_boto3(s3space):
    s3 = client(s3space)
    s3.create_bucket(Bucket="photos")
    with pytest.raises(ClientError) as twice:
        s3.create_bucket(Bucket="photos")
    assert code_of(twice) == "BucketAlreadyOwnedByYou"
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["photos"]
    s3.head_bucket(Bucket="photos")
    put = s3.put_object(Bucket="photos", Key="2026/summer/beach ☀.jpg", Body=b"jpeg bytes", ContentType="image/jpeg",
                        CacheControl="max-age=60", Metadata={"camera": "x100"})
    assert put["ETag"] == '"%s"' % hashlib.md5(b"jpeg bytes").hexdigest()
    got = s3.get_object(Bucket="photos", Key="2026/summer/beach ☀.jpg")
    assert (got["Body"].read(), got["ContentType"], got["CacheControl"], got["Metadata"]) == (b"jpeg bytes", "image/jpeg", "max-age=60", {"camera": "x100"})
    assert s3.get_object(Bucket="photos", Key="2026/summer/beach ☀.jpg", Range="bytes=5-9")["Body"].read() == b"bytes"
    assert s3.head_object(Bucket="photos", Key="2026/summer/beach ☀.jpg")["ContentLength"] == 10
    for index in range(5):
        s3.put_object(Bucket="photos", Key=f"2026/winter/{index}.jpg", Body=b"w")
    s3.put_object(Bucket="photos", Key="readme.txt", Body=b"r")
    top = s3.list_objects_v2(Bucket="photos", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["2026/"] and [o["Key"] for o in top["Contents"]] == ["readme.txt"]
    deep = s3.list_objects_v2(Bucket="photos", Prefix="2026/", Delimiter="/")
    assert [p["Prefix"] for p in deep["CommonPrefixes"]] == ["2026/summer/", "2026/winter/"]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="photos", Prefix="2026/winter/", PaginationConfig={"PageSize": 2})
    assert [[o["Key"] for o in page["Contents"]] for page in pages] == [
        ["2026/winter/0.jpg", "2026/winter/1.jpg"], ["2026/winter/2.jpg", "2026/winter/3.jpg"], ["2026/winter/4.jpg"]]
    v1 = s3.list_objects(Bucket="photos", Prefix="2026/winter/", MaxKeys=3)
    assert v1["IsTruncated"] and len(v1["Contents"]) == 3
    s3.copy_object(Bucket="photos", Key="copy.jpg", CopySource={"Bucket": "photos", "Key": "2026/summer/beach ☀.jpg"})
    assert s3.get_object(Bucket="photos", Key="copy.jpg")["Body"].read() == b"jpeg bytes"
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket="photos", Key="nope.jpg")
    assert code_of(missing) == "NoSuchKey"
    with pytest.raises(ClientError) as no_bucket:
        s3.list_objects_v2(Bucket="nothing")
    assert code_of(no_bucket) == "NoSuchBucket"
    with pytest.raises(ClientError) as not_empty:
        s3.delete_bucket(Bucket="photos")
    assert code_of(not_empty) == "BucketNotEmpty"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="photos")["Contents"]]
    deleted = s3.delete_objects(Bucket="photos", Delete={"Objects": [{"Key": k} for k in keys]})
    assert sorted(d["Key"] for d in deleted["Deleted"]) == sorted(keys)
    s3.delete_bucket(Bucket="photos")
    assert s3.list_buckets()["Buckets"] == []


def test_presigned_urls_in_both_signature_versions(s3space):
    s3 = client(s3space)
    s3.create_bucket(Bucket="share")
    s3.put_object(Bucket="share", Key="doc.txt", Body=b"shared")
    # boto3 presigns with Signature Version 2 for us-east-1 and a custom endpoint.
    v2 = client(s3space, region="us-east-1").generate_presigned_url("get_object", Params={"Bucket": "share", "Key": "doc.txt"}, ExpiresIn=60)
    v4 = client(s3space, signature_version="s3v4").generate_presigned_url("get_object", Params={"Bucket": "share", "Key": "doc.txt"}, ExpiresIn=60)
    assert "AWSAccessKeyId" in v2 and "X-Amz-Signature" in v4
    assert httpx.get(v2).content == b"shared" and httpx.get(v4).content == b"shared"
    assert httpx.get(v4.replace("doc.txt", "other.txt")).status_code == 403
    upload = client(s3space, signature_version="s3v4").generate_presigned_url("put_object", Params={"Bucket": "share", "Key": "up.txt"}, ExpiresIn=60)
    assert httpx.put(upload, content=b"uploaded").status_code == 200
    assert s3.get_object(Bucket="share", Key="up.txt")["Body"].read() == b"uploaded"


def test_multipart_upload_joins_parts_and_abort_leaves_nothing(s3space, node):
    s3 = client(s3space)
    s3.create_bucket(Bucket="big")
    first, second = bytes(range(256)) * (5 * 4096), b"tail" * 1000
    upload = s3.create_multipart_upload(Bucket="big", Key="video.bin", ContentType="video/mp4")
    parts = [s3.upload_part(Bucket="big", Key="video.bin", UploadId=upload["UploadId"], PartNumber=n, Body=body)
             for n, body in [(1, first), (2, second)]]
    assert [p["Size"] for p in s3.list_parts(Bucket="big", Key="video.bin", UploadId=upload["UploadId"])["Parts"]] == [len(first), len(second)]
    done = s3.complete_multipart_upload(Bucket="big", Key="video.bin", UploadId=upload["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": p["ETag"]} for n, p in zip([1, 2], parts)]})
    expected = hashlib.md5(hashlib.md5(first).digest() + hashlib.md5(second).digest()).hexdigest() + "-2"
    assert done["ETag"] == f'"{expected}"'
    got = s3.get_object(Bucket="big", Key="video.bin")
    assert got["Body"].read() == first + second and got["ContentType"] == "video/mp4"
    # High-level transfer (threads, 5 MiB parts) does the same.
    s3.upload_fileobj(__import__("io").BytesIO(b"z" * (11 << 20)), "big", "fileobj.bin",
                      Config=boto3.s3.transfer.TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
    assert s3.head_object(Bucket="big", Key="fileobj.bin")["ContentLength"] == 11 << 20

    small = s3.create_multipart_upload(Bucket="big", Key="small.bin")
    tiny = s3.upload_part(Bucket="big", Key="small.bin", UploadId=small["UploadId"], PartNumber=1, Body=b"x")
    s3.upload_part(Bucket="big", Key="small.bin", UploadId=small["UploadId"], PartNumber=2, Body=b"y")
    with pytest.raises(ClientError) as too_small:
        s3.complete_multipart_upload(Bucket="big", Key="small.bin", UploadId=small["UploadId"], MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": tiny["ETag"]}, {"PartNumber": 2, "ETag": '"0"'}]})
    assert code_of(too_small) in ("EntityTooSmall", "InvalidPart")
    before = call("GET", f"{node.base}/admin/v1/tenants/{s3space['slug']}/storage", node.token)["usage"]["bytes"]
    s3.abort_multipart_upload(Bucket="big", Key="small.bin", UploadId=small["UploadId"])
    after = call("GET", f"{node.base}/admin/v1/tenants/{s3space['slug']}/storage", node.token)["usage"]["bytes"]
    assert before - after == 2
    with pytest.raises(ClientError) as gone:
        s3.list_parts(Bucket="big", Key="small.bin", UploadId=small["UploadId"])
    assert code_of(gone) == "NoSuchUpload"
    with pytest.raises(ClientError):
        s3.head_object(Bucket="big", Key="small.bin")


def test_checksums_are_verified(s3space):
    s3 = client(s3space)
    s3.create_bucket(Bucket="sums")
    # CRC32C needs botocore[crt]; the Swift tests check it against its known value.
    for algorithm in ["CRC32", "SHA1", "SHA256"]:
        s3.put_object(Bucket="sums", Key=f"{algorithm}.bin", Body=b"checked", ChecksumAlgorithm=algorithm)
    wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as bad:
        s3.put_object(Bucket="sums", Key="bad.bin", Body=b"checked", ContentMD5=wrong_md5)
    assert code_of(bad) == "BadDigest"
    wrong_crc = base64.b64encode((zlib.crc32(b"other")).to_bytes(4, "big")).decode()
    with pytest.raises(ClientError) as bad_crc:
        s3.put_object(Bucket="sums", Key="bad.bin", Body=b"checked", ChecksumCRC32=wrong_crc)
    assert code_of(bad_crc) == "BadDigest"
    with pytest.raises(ClientError):
        s3.head_object(Bucket="sums", Key="bad.bin")


def sign(space, method, url, headers, payload_hash):
    credentials = Credentials(space["key"]["accessKeyId"], space["key"]["secretAccessKey"])
    request = AWSRequest(method=method, url=url, headers={**headers, "x-amz-content-sha256": payload_hash})
    SigV4Auth(credentials, "s3", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def test_signed_aws_chunked_body_with_trailing_checksum(s3space):
    client(s3space).create_bucket(Bucket="chunked")
    url = f"{s3space['endpoint']}/chunked/streamed.bin"
    data = [b"a" * 70_000, b"b" * 30_000, b"c" * 5]
    body = b"".join(data)
    checksum = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    headers = sign(s3space, "PUT", url, {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(body)),
                                        "x-amz-trailer": "x-amz-checksum-crc32"}, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")
    amz_date = headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    key = ("AWS4" + s3space["key"]["secretAccessKey"]).encode()
    for part in [amz_date[:8], "us-east-1", "s3", "aws4_request"]:
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    previous = headers["Authorization"].split("Signature=")[1]
    empty = hashlib.sha256(b"").hexdigest()
    wire = b""
    for chunk in data + [b""]:
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, empty, hashlib.sha256(chunk).hexdigest()])
        previous = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        wire += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + chunk + (b"\r\n" if chunk else b"")
    trailer = f"x-amz-checksum-crc32:{checksum}\n"
    trailer_sig = hmac.new(key, "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, previous,
                                           hashlib.sha256(trailer.encode()).hexdigest()]).encode(), hashlib.sha256).hexdigest()
    wire += f"x-amz-checksum-crc32:{checksum}\r\nx-amz-trailer-signature:{trailer_sig}\r\n\r\n".encode()
    sent = httpx.put(url, headers=headers, content=wire)
    assert sent.status_code == 200, sent.text
    assert client(s3space).get_object(Bucket="chunked", Key="streamed.bin")["Body"].read() == body
    # The same body with one chunk altered is refused, and nothing is stored.
    headers = sign(s3space, "PUT", url.replace("streamed", "altered"), {"Content-Encoding": "aws-chunked",
                   "x-amz-decoded-content-length": str(len(body)), "x-amz-trailer": "x-amz-checksum-crc32"}, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")
    refused = httpx.put(url.replace("streamed", "altered"), headers=headers, content=wire.replace(b"b" * 30_000, b"B" * 30_000))
    assert refused.status_code == 403 and b"SignatureDoesNotMatch" in refused.content
    with pytest.raises(ClientError):
        client(s3space).head_object(Bucket="chunked", Key="altered.bin")


def test_expect_100_continue_is_answered_before_the_body(s3space):
    client(s3space).create_bucket(Bucket="expect")
    url = f"{s3space['endpoint']}/expect/e.bin"
    headers = sign(s3space, "PUT", url, {"Content-Length": "4", "Expect": "100-continue"}, hashlib.sha256(b"body").hexdigest())
    parsed = urllib.parse.urlparse(url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as sock:
        head = f"PUT {parsed.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "host")
        sock.sendall((head + f"Host: {parsed.netloc}\r\n\r\n").encode())
        first = sock.recv(64)
        assert first.startswith(b"HTTP/1.1 100 Continue"), first
        sock.sendall(b"body")
        rest = sock.recv(4096)
        assert b"200 OK" in first + rest
    assert client(s3space).get_object(Bucket="expect", Key="e.bin")["Body"].read() == b"body"


def test_session_credentials_apply_the_users_policies(s3space, node):
    call("PUT", f"{node.base}/admin/v1/tenants/{s3space['slug']}/policies", node.token, {"policies": [
        {"entity": "storage.objects", "role": "authenticated", "action": "create", "check": {"folder": {"eq": {"var": "auth.uid"}}}},
        {"entity": "storage.objects", "role": "authenticated", "action": "read", "when": {"owner_id": {"eq": {"var": "auth.uid"}}}},
    ]})
    call("PUT", f"{node.base}/admin/v1/tenants/{s3space['slug']}/auth", node.token, {"autoconfirm": True, "siteUrl": "http://localhost:3999"})
    client(s3space).create_bucket(Bucket="users")
    session = create_client(s3space["apiUrl"], s3space["anon"]).auth.sign_up(
        {"email": f"s3-{secrets.token_hex(3)}@example.com", "password": "s3-password"}).session
    as_user = client(s3space, key_id=s3space["slug"], secret=s3space["anon"], token=session.access_token)
    as_user.put_object(Bucket="users", Key=f"{session.user.id}/mine.txt", Body=b"mine")
    assert as_user.get_object(Bucket="users", Key=f"{session.user.id}/mine.txt")["Body"].read() == b"mine"
    with pytest.raises(ClientError) as outside:
        as_user.put_object(Bucket="users", Key="someone-else/theirs.txt", Body=b"x")
    assert code_of(outside) == "AccessDenied"
    with pytest.raises(ClientError) as forged:
        client(s3space, key_id=s3space["slug"], secret=s3space["anon"], token="not.a.jwt").list_buckets()
    assert code_of(forged) == "InvalidToken"


def test_review_regressions_listing_pages_oversized_parts_and_foreign_uploads(s3space, node):
    s3 = client(s3space)
    s3.create_bucket(Bucket="pages")
    for key in ["photos/a", "photos/b", "z"]:
        s3.put_object(Bucket="pages", Key=key, Body=b"p")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="pages", Delimiter="/", PaginationConfig={"PageSize": 1})
    seen = [([p["Prefix"] for p in page.get("CommonPrefixes", [])], [o["Key"] for o in page.get("Contents", [])]) for page in pages]
    assert seen == [(["photos/"], []), ([], ["z"])]
    upload = s3.create_multipart_upload(Bucket="pages", Key="huge.bin")
    url = f"{s3space['endpoint']}/pages/huge.bin?partNumber=1&uploadId={upload['UploadId']}"
    headers = sign(s3space, "PUT", url, {"x-amz-decoded-content-length": str(2 ** 63 - 1), "Content-Encoding": "aws-chunked"},
                   "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    refused = httpx.put(url, headers=headers, content=b"0\r\n\r\n")
    assert refused.status_code == 413 and b"EntityTooLarge" in refused.content
    # An unsigned Content-Encoding cannot turn off the check of a signed payload hash.
    put_url = f"{s3space['endpoint']}/pages/hashed.bin"
    headers = sign(s3space, "PUT", put_url, {}, hashlib.sha256(b"signed body").hexdigest())
    swapped = httpx.put(put_url, headers={**headers, "Content-Encoding": "aws-chunked"}, content=b"0\r\n\r\n")
    assert swapped.status_code == 400 and b"XAmzContentSHA256Mismatch" in swapped.content
    # A user's session cannot add parts to an upload someone else started.
    call("PUT", f"{node.base}/admin/v1/tenants/{s3space['slug']}/auth", node.token, {"autoconfirm": True, "siteUrl": "http://localhost:3999"})
    session = create_client(s3space["apiUrl"], s3space["anon"]).auth.sign_up(
        {"email": f"mp-{secrets.token_hex(3)}@example.com", "password": "s3-password"}).session
    as_user = client(s3space, key_id=s3space["slug"], secret=s3space["anon"], token=session.access_token)
    with pytest.raises(ClientError) as foreign:
        as_user.upload_part(Bucket="pages", Key="huge.bin", UploadId=upload["UploadId"], PartNumber=1, Body=b"x")
    assert code_of(foreign) == "AccessDenied"
