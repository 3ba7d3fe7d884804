"""Object storage with the official client (storage3 from supabase==2.34.1) and raw HTTP for what a
client refuses to send: buckets, objects, signed URLs, policies on storage.objects, limits,
ranges and bad names, against an embedded node (SQLite control plane, local disk)."""
import concurrent.futures
import hashlib
import json
import os
import secrets
import time
import urllib.parse

import httpx
import pytest
from storage3.exceptions import StorageApiError
from supabase import create_client

from conftest import call


@pytest.fixture()
def space(node):
    """A fresh tenant with no data source: storage needs none."""
    slug = "st" + secrets.token_hex(4)
    created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "Storage"})
    base = created["apiUrl"] + "/storage/v1"
    return {"slug": slug, "apiUrl": created["apiUrl"], "base": base, "service": created["serviceKey"], "anon": created["anonKey"]}


def keyed(key, token=None):
    return {"apikey": key, "Authorization": f"Bearer {token or key}"}


def storage(space, key=None):
    return create_client(space["apiUrl"], key or space["service"]).storage


def error_of(response):
    body = response.json()
    assert body["statusCode"] == str(response.status_code), body
    return body


def test_buckets_and_objects_round_trip_with_storage3(space):
    s = storage(space)
    assert s.create_bucket("docs", options={"public": False, "file_size_limit": 1 << 20}) == {"name": "docs"}
    with pytest.raises(StorageApiError) as duplicate:
        s.create_bucket("docs")
    assert duplicate.value.status == "409"
    bucket = s.get_bucket("docs")
    assert (bucket.public, bucket.file_size_limit, bucket.allowed_mime_types) == (False, 1 << 20, None)
    s.update_bucket("docs", {"public": True, "allowed_mime_types": ["text/*", "image/png"]})
    assert s.get_bucket("docs").public is True
    assert [b.id for b in s.list_buckets()] == ["docs"]

    files = s.from_("docs")
    uploaded = files.upload("reports/2026/q1 résumé.txt", b"first quarter", {"content-type": "text/plain", "metadata": {"team": "ops"}})
    assert uploaded.full_path == "docs/reports/2026/q1 résumé.txt"
    assert files.download("reports/2026/q1 résumé.txt") == b"first quarter"
    info = files.info("reports/2026/q1 résumé.txt")
    assert (info["size"], info["content_type"], info["cache_control"], info["metadata"]) == (13, "text/plain", "max-age=3600", {"team": "ops"})
    assert info["etag"] == '"%s"' % hashlib.md5(b"first quarter").hexdigest()
    assert files.exists("reports/2026/q1 résumé.txt") and not files.exists("reports/none.txt")
    with pytest.raises(StorageApiError) as taken:
        files.upload("reports/2026/q1 résumé.txt", b"again", {"content-type": "text/plain"})
    assert taken.value.status == "409"
    files.upload("reports/2026/q1 résumé.txt", b"replaced", {"content-type": "text/plain", "upsert": "true"})
    files.update("notes.txt", b"created by update", {"content-type": "text/plain"})
    assert files.download("reports/2026/q1 résumé.txt") == b"replaced"

    assert [e["name"] for e in files.list()] == ["notes.txt", "reports"]
    assert [e["id"] is None for e in files.list()] == [False, True]
    assert [e["name"] for e in files.list("reports/2026")] == ["q1 résumé.txt"]
    assert [e["name"] for e in files.list(options={"search": "no"})] == ["notes.txt"]
    assert [e["name"] for e in files.list(options={"sortBy": {"column": "name", "order": "desc"}})] == ["reports", "notes.txt"]
    page = files.list_v2({"with_delimiter": True})
    assert [f.key for f in page.folders] == ["reports/"] and [o.name for o in page.objects] == ["notes.txt"]
    first = files.list_v2({"limit": 1})
    assert first.hasNext and len(first.objects) == 1
    rest = files.list_v2({"limit": 5, "cursor": first.nextCursor})
    assert [o.name for o in first.objects + rest.objects] == ["notes.txt", "reports/2026/q1 résumé.txt"]

    files.move("notes.txt", "archive/notes.txt")
    assert not files.exists("notes.txt") and files.download("archive/notes.txt") == b"created by update"
    files.copy("archive/notes.txt", "copy.txt")
    files.update("copy.txt", b"the copy changed alone", {"content-type": "text/plain"})
    assert files.download("archive/notes.txt") == b"created by update"

    signed = files.create_signed_url("archive/notes.txt", 60)
    assert httpx.get(signed["signedURL"]).content == b"created by update"
    many = files.create_signed_urls(["copy.txt", "missing.txt"], 60)
    assert [bool(item["signedURL"]) for item in many] == [True, False]
    upload = files.create_signed_upload_url("inbox/drop.txt")
    files.upload_to_signed_url("inbox/drop.txt", upload["token"], b"dropped", {"content-type": "text/plain"})
    assert files.download("inbox/drop.txt") == b"dropped"
    # Public bucket: no keys needed.
    assert httpx.get(files.get_public_url("copy.txt")).content == b"the copy changed alone"

    with pytest.raises(StorageApiError) as not_empty:
        s.delete_bucket("docs")
    assert not_empty.value.status == "409"
    removed = files.remove(["copy.txt", "missing.txt"])
    assert [r["name"] for r in removed] == ["copy.txt"]
    s.empty_bucket("docs")
    assert files.list() == []
    s.delete_bucket("docs")
    with pytest.raises(StorageApiError) as gone:
        s.get_bucket("docs")
    assert gone.value.status == "404"


def test_public_objects_need_no_key_and_private_ones_do(space):
    s = storage(space)
    s.create_bucket("open", options={"public": True})
    s.create_bucket("closed")
    s.from_("open").upload("a.txt", b"public bytes", {"content-type": "text/plain"})
    s.from_("closed").upload("a.txt", b"private bytes", {"content-type": "text/plain"})
    assert httpx.get(f"{space['base']}/object/public/open/a.txt").content == b"public bytes"
    refused = httpx.get(f"{space['base']}/object/public/closed/a.txt")
    assert refused.status_code == 404 and error_of(refused)["error"] == "Bucket not found"
    # The authenticated route needs a key; with the anon key and no policy the answer names the rule.
    assert httpx.get(f"{space['base']}/object/closed/a.txt").status_code == 401
    anon = httpx.get(f"{space['base']}/object/closed/a.txt", headers=keyed(space["anon"]))
    assert anon.status_code == 401 and "no read policy on storage.objects for role anon" in error_of(anon)["message"]
    # A bad key is refused even where no key is needed.
    assert httpx.get(f"{space['base']}/object/public/open/a.txt", headers=keyed("not-a-key")).status_code == 401


def sign_up(space, node, email):
    call("PUT", f"{node.base}/admin/v1/tenants/{space['slug']}/auth", node.token, {"autoconfirm": True, "siteUrl": "http://localhost:3999"})
    client = create_client(space["apiUrl"], space["anon"])
    session = client.auth.sign_up({"email": email, "password": "storage-password"}).session
    assert session is not None
    return session


def test_policies_keep_each_user_in_their_own_folder(space, node):
    own_folder = {"folder": {"eq": {"var": "auth.uid"}}}
    call("PUT", f"{node.base}/admin/v1/tenants/{space['slug']}/policies", node.token, {"policies": [
        {"entity": "storage.objects", "role": "authenticated", "action": "create", "check": own_folder},
        {"entity": "storage.objects", "role": "authenticated", "action": "read", "when": {"owner_id": {"eq": {"var": "auth.uid"}}}},
        {"entity": "storage.objects", "role": "authenticated", "action": "delete", "when": own_folder},
    ]})
    storage(space).create_bucket("homes")
    ann = sign_up(space, node, f"ann-{secrets.token_hex(3)}@example.com")
    bob = sign_up(space, node, f"bob-{secrets.token_hex(3)}@example.com")
    as_ann = create_client(space["apiUrl"], space["anon"])
    as_ann.auth.set_session(ann.access_token, ann.refresh_token)
    ann_files = as_ann.storage.from_("homes")
    ann_files.upload(f"{ann.user.id}/diary.txt", b"dear diary", {"content-type": "text/plain"})
    assert ann_files.download(f"{ann.user.id}/diary.txt") == b"dear diary"
    with pytest.raises(StorageApiError) as outside:
        ann_files.upload(f"{bob.user.id}/planted.txt", b"x", {"content-type": "text/plain"})
    assert outside.value.status == "403" and "create policy" in outside.value.message

    headers = keyed(space["anon"], bob.access_token)
    hidden = httpx.get(f"{space['base']}/object/homes/{ann.user.id}/diary.txt", headers=headers)
    assert hidden.status_code == 404 and error_of(hidden)["error"] == "not_found"
    listed = httpx.post(f"{space['base']}/object/list/homes", headers=headers, json={"prefix": ann.user.id})
    assert listed.status_code == 200 and listed.json() == []
    assert httpx.request("DELETE", f"{space['base']}/object/homes", headers=headers, json={"prefixes": [f"{ann.user.id}/diary.txt"]}).json() == []
    # Ann's upload carries her id as owner, set by the server.
    assert storage(space).from_("homes").info(f"{ann.user.id}/diary.txt")["owner_id"] == ann.user.id
    anon = httpx.post(f"{space['base']}/object/homes/anon.txt", headers=keyed(space["anon"]), content=b"x")
    assert anon.status_code == 401
    assert not storage(space).from_("homes").exists("anon.txt")


@pytest.mark.parametrize("name", ["..", "a/../b", "a//b", "a/./b", "trailing/", "nul\x00byte", "bell\x07", "x" * 1025])
def test_bad_object_names_are_refused_and_nothing_is_stored(space, name):
    storage(space).create_bucket("names")
    # Dots encoded, so that no HTTP library folds the dot segments away before sending.
    path = "/".join(urllib.parse.quote(part, safe="").replace(".", "%2E") for part in name.split("/"))
    response = httpx.post(f"{space['base']}/object/names/{path}", headers=keyed(space["service"]), content=b"data")
    assert response.status_code == 400, response.text
    assert error_of(response)["code"] == "InvalidKey"
    assert storage(space).from_("names").list_v2({}).objects == []


def test_utf8_names_up_to_1024_bytes_are_kept(space):
    storage(space).create_bucket("utf")
    files = storage(space).from_("utf")
    name = "データ/" + "é" * 507
    assert len(name.encode()) <= 1024
    files.upload(name, b"ok", {"content-type": "text/plain"})
    assert files.download(name) == b"ok"


def test_bucket_limits_and_tenant_quotas_refuse_uploads_that_store_nothing(space, node):
    s = storage(space)
    s.create_bucket("small", options={"file_size_limit": 1024, "allowed_mime_types": ["image/*"]})
    files = s.from_("small")
    with pytest.raises(StorageApiError) as big:
        files.upload("big.png", b"x" * 2048, {"content-type": "image/png"})
    assert big.value.status == "413"
    with pytest.raises(StorageApiError) as kind:
        files.upload("note.txt", b"text", {"content-type": "text/plain"})
    assert kind.value.status == "415"
    files.upload("ok.png", b"\x89PNG", {"content-type": "image/png"})
    # A declared length over the limit is refused before any byte is read.
    declared = httpx.post(f"{space['base']}/object/small/declared.png", headers={**keyed(space["service"]), "Content-Type": "image/png"},
                          content=b"y" * 4096)
    assert declared.status_code == 413 and error_of(declared)["code"] == "EntityTooLarge"
    assert [e["name"] for e in files.list()] == ["ok.png"]

    call("PATCH", f"{node.base}/admin/v1/tenants/{space['slug']}", node.token, {"limits": {"storage": {"maxBytes": 10_000, "maxBuckets": 2}}})
    s.create_bucket("quota")
    quota = s.from_("quota")
    quota.upload("one.bin", b"a" * 6000, {"content-type": "application/octet-stream"})
    with pytest.raises(StorageApiError) as full:
        quota.upload("two.bin", b"b" * 6000, {"content-type": "application/octet-stream"})
    assert full.value.status == "413" and "quota" in full.value.message
    with pytest.raises(StorageApiError) as buckets:
        s.create_bucket("third")
    assert buckets.value.status == "413"
    usage = call("GET", f"{node.base}/admin/v1/tenants/{space['slug']}/storage", node.token)
    assert usage["usage"] == {"bytes": 6004, "objects": 2, "buckets": 2}
    assert usage["limits"]["maxBytes"] == 10_000


def test_concurrent_uploads_together_stay_within_the_quota(space, node):
    call("PATCH", f"{node.base}/admin/v1/tenants/{space['slug']}", node.token, {"limits": {"storage": {"maxBytes": 100_000}}})
    storage(space).create_bucket("race")

    def put(index):
        return httpx.post(f"{space['base']}/object/race/f{index}.bin", headers={**keyed(space["service"]), "Content-Type": "application/octet-stream"},
                          content=os.urandom(30_000), timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(put, range(8)))
    assert statuses.count(200) == 3 and statuses.count(413) == 5, statuses
    assert call("GET", f"{node.base}/admin/v1/tenants/{space['slug']}/storage", node.token)["usage"]["bytes"] == 90_000


def test_ranges_etags_and_conditional_requests(space):
    storage(space).create_bucket("bytes")
    body = bytes(range(256)) * 4
    storage(space).from_("bytes").upload("data.bin", body, {"content-type": "application/octet-stream"})
    url, headers = f"{space['base']}/object/bytes/data.bin", keyed(space["service"])
    whole = httpx.get(url, headers=headers)
    assert whole.content == body and whole.headers["accept-ranges"] == "bytes"
    etag = whole.headers["etag"]
    part = httpx.get(url, headers={**headers, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == body[10:20] and part.headers["content-range"] == "bytes 10-19/1024"
    assert httpx.get(url, headers={**headers, "Range": "bytes=-5"}).content == body[-5:]
    outside = httpx.get(url, headers={**headers, "Range": "bytes=5000-"})
    assert outside.status_code == 416 and outside.headers["content-range"] == "bytes */1024"
    assert httpx.get(url, headers={**headers, "If-None-Match": etag}).status_code == 304
    assert httpx.get(url, headers={**headers, "If-Match": '"nope"'}).status_code == 412
    head = httpx.head(url, headers=headers)
    assert head.status_code == 200 and head.headers["content-length"] == "1024" and head.content == b""
    named = httpx.get(url + "?download=report.bin", headers=headers)
    assert named.headers["content-disposition"].startswith('attachment; filename="report.bin"')


def test_signed_url_tokens_are_exact(space):
    storage(space).create_bucket("sig")
    files = storage(space).from_("sig")
    files.upload("a.txt", b"A", {"content-type": "text/plain"})
    files.upload("b.txt", b"B", {"content-type": "text/plain"})
    signed = files.create_signed_url("a.txt", 1)["signedURL"]
    token = urllib.parse.parse_qs(urllib.parse.urlparse(signed).query)["token"][0]
    # Not a bearer token, not valid for another object, not after it expires, not when altered.
    assert httpx.get(f"{space['base']}/object/sig/a.txt", headers={"apikey": token, "Authorization": f"Bearer {token}"}).status_code == 401
    other = httpx.get(f"{space['base']}/object/sign/sig/b.txt?token={token}")
    assert other.status_code == 400 and error_of(other)["code"] == "InvalidSignature"
    assert httpx.get(signed[:-2] + ("AA" if not signed.endswith("AA") else "BB")).status_code == 400
    time.sleep(2.1)
    expired = httpx.get(signed)
    assert expired.status_code == 400 and "expired" in error_of(expired)["message"]


def test_large_objects_stream_through_intact(space, node):
    call("PATCH", f"{node.base}/admin/v1/tenants/{space['slug']}", node.token,
         {"limits": {"storage": {"maxBytes": 1 << 30, "maxObjectBytes": 256 << 20}}})
    storage(space).create_bucket("big")
    digest = hashlib.sha256()

    def chunks():
        for _ in range(48):
            piece = os.urandom(1 << 20)
            digest.update(piece)
            yield piece

    url = f"{space['base']}/object/big/blob.bin"
    put = httpx.post(url, headers={**keyed(space["service"]), "Content-Type": "application/octet-stream"}, content=chunks(), timeout=120)
    assert put.status_code == 200, put.text
    received = hashlib.sha256()
    size = 0
    with httpx.stream("GET", url, headers=keyed(space["service"]), timeout=120) as response:
        for piece in response.iter_bytes():
            received.update(piece)
            size += len(piece)
    assert size == 48 << 20 and received.hexdigest() == digest.hexdigest()
    # The same bytes as a form upload, with the file part split across many reads.
    files = {"file": ("form.bin", b"z" * (3 << 20), "application/octet-stream")}
    form = httpx.post(f"{space['base']}/object/big/form.bin", headers=keyed(space["service"]), files=files, data={"cacheControl": "60"}, timeout=60)
    assert form.status_code == 200, form.text
    info = storage(space).from_("big").info("form.bin")
    assert info["size"] == 3 << 20 and info["cache_control"] == "max-age=60"


def test_malformed_bodies_get_clear_errors(space):
    storage(space).create_bucket("bad")
    headers = keyed(space["service"])
    no_boundary = httpx.post(f"{space['base']}/object/bad/x.bin", headers={**headers, "Content-Type": "multipart/form-data"}, content=b"--x\r\n")
    assert no_boundary.status_code == 400 and error_of(no_boundary)["code"] == "InvalidRequest"
    fields_only = b'--b\r\nContent-Disposition: form-data; name="cacheControl"\r\n\r\n60\r\n--b--\r\n'
    no_file = httpx.post(f"{space['base']}/object/bad/x.bin", headers={**headers, "Content-Type": "multipart/form-data; boundary=b"},
                         content=fields_only)
    assert no_file.status_code == 400 and "no file part" in error_of(no_file)["message"]
    cut = httpx.post(f"{space['base']}/object/bad/y.bin", headers={**headers, "Content-Type": "multipart/form-data; boundary=b"},
                     content=b'--b\r\nContent-Disposition: form-data; name="file"; filename="y"\r\n\r\npartial')
    assert cut.status_code == 400 and "ended inside the file" in error_of(cut)["message"]
    not_json = httpx.post(f"{space['base']}/bucket", headers={**headers, "Content-Type": "application/json"}, content=b"{nope")
    assert not_json.status_code == 400
    bad_bucket = httpx.post(f"{space['base']}/bucket", headers=headers, json={"id": "no/slash"})
    assert bad_bucket.status_code == 400 and error_of(bad_bucket)["code"] == "InvalidBucketName"
    assert httpx.get(f"{space['base']}/nowhere", headers=headers).status_code == 404
    assert storage(space).from_("bad").list_v2({}).objects == []


def test_review_regressions_bad_sizes_late_fields_and_moves(space, node):
    headers = keyed(space["service"])
    for limit in ["1e30GB", "INFGB", -1, 2 ** 62]:
        refused = httpx.post(f"{space['base']}/bucket", headers=headers, json={"id": "sized", "file_size_limit": limit})
        assert refused.status_code == 400 and error_of(refused)["code"] == "InvalidRequest", limit
    call("PATCH", f"{node.base}/admin/v1/tenants/{space['slug']}", node.token, {"limits": {"storage": {"maxBytes": 3000}}})
    storage(space).create_bucket("late")
    # A bad field after the file: refused, and the bytes it wrote are given back to the quota.
    for _ in range(3):
        late = b'--b\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n' + b"x" * 2000 + \
            b'\r\n--b\r\nContent-Disposition: form-data; name="metadata"\r\n\r\nnot json\r\n--b--\r\n'
        refused = httpx.post(f"{space['base']}/object/late/f.bin", headers={**headers, "Content-Type": "multipart/form-data; boundary=b"}, content=late)
        assert refused.status_code == 400
    storage(space).from_("late").upload("ok.bin", b"y" * 2000, {"content-type": "application/octet-stream"})
    # Moving into a bucket whose rules the object breaks is refused like an upload would be.
    storage(space).create_bucket("strict", options={"allowed_mime_types": ["image/*"]})
    moved = httpx.post(f"{space['base']}/object/move", headers=headers,
                       json={"bucketId": "late", "sourceKey": "ok.bin", "destinationKey": "ok.bin", "destinationBucket": "strict"})
    assert moved.status_code == 415 and error_of(moved)["code"] == "InvalidMimeType"
    assert storage(space).from_("late").download("ok.bin") == b"y" * 2000
