"""Image transforms (libvips) through storage3 and raw HTTP, checked with Pillow: sizes for
cover/contain/fill, WebP only when accepted, options fixed in signed URLs, bounds refused."""
import io
import secrets

import httpx
import pytest
from PIL import Image
from storage3.exceptions import StorageApiError
from supabase import create_client

from conftest import call


@pytest.fixture(scope="module")
def gallery(node):
    slug = "im" + secrets.token_hex(4)
    created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "Images"})
    storage = create_client(created["apiUrl"], created["serviceKey"]).storage
    storage.create_bucket("pics", options={"public": True})
    photo = Image.new("RGB", (2000, 1333))
    for x in range(0, 2000, 50):
        photo.paste((x % 255, 80, 255 - x % 255), (x, 0, x + 50, 1333))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90)
    storage.from_("pics").upload("photo.jpg", buffer.getvalue(), {"content-type": "image/jpeg"})
    storage.from_("pics").upload("notes.txt", b"not an image", {"content-type": "text/plain"})
    return {"slug": slug, "apiUrl": created["apiUrl"], "service": created["serviceKey"], "storage": storage,
            "base": created["apiUrl"] + "/storage/v1"}


def fetch(gallery, query, accept="image/webp,image/*", route="authenticated"):
    headers = {"Accept": accept}
    if route == "authenticated":
        headers.update({"apikey": gallery["service"], "Authorization": f"Bearer {gallery['service']}"})
    response = httpx.get(f"{gallery['base']}/render/image/{route}/pics/photo.jpg?{query}", headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return response, Image.open(io.BytesIO(response.content))


def test_resize_modes_and_formats(gallery):
    response, image = fetch(gallery, "width=500&height=500")
    assert image.size == (500, 500) and image.format == "WEBP" and response.headers["content-type"] == "image/webp"
    _, image = fetch(gallery, "width=500&height=500&resize=contain", accept="image/jpeg")
    assert image.size == (500, 333) and image.format == "JPEG"
    _, image = fetch(gallery, "width=500&height=200&resize=fill", accept="*/*")
    assert image.size == (500, 200)
    _, image = fetch(gallery, "width=300&format=origin")
    assert image.size == (300, 200) and image.format == "JPEG"
    _, image = fetch(gallery, "height=100&format=png&quality=50", route="public")
    assert image.size == (150, 100) and image.format == "PNG"
    # The same request again is served from the variant cache: same bytes.
    first, _ = fetch(gallery, "width=123&height=45")
    again, _ = fetch(gallery, "width=123&height=45")
    assert first.content == again.content and first.headers["etag"] == again.headers["etag"]


def test_storage3_transforms_and_signed_urls_fix_their_options(gallery):
    files = gallery["storage"].from_("pics")
    assert Image.open(io.BytesIO(files.download("photo.jpg", {"transform": {"width": 200, "height": 100}}))).size == (200, 100)
    public = files.get_public_url("photo.jpg", {"transform": {"width": 100, "height": 100, "resize": "contain"}})
    assert Image.open(io.BytesIO(httpx.get(public).content)).size == (100, 66)
    signed = files.create_signed_url("photo.jpg", 60, {"transform": {"width": 64, "height": 64}})["signedURL"]
    assert "/render/image/sign/" in signed
    assert Image.open(io.BytesIO(httpx.get(signed).content)).size == (64, 64)
    # Options in the query cannot change what the token signed.
    assert Image.open(io.BytesIO(httpx.get(signed + "&width=1000&height=1000").content)).size == (64, 64)


@pytest.mark.parametrize("query, status", [("width=0", 400), ("width=2501", 400), ("quality=5", 400), ("resize=stretch", 400), ("format=bmp", 400)])
def test_bad_options_are_refused(gallery, query, status):
    response = httpx.get(f"{gallery['base']}/render/image/public/pics/photo.jpg?{query}")
    assert response.status_code == status and response.json()["code"] == "InvalidRequest"


def test_sources_that_are_not_images_or_too_large_are_refused(gallery):
    text = httpx.get(f"{gallery['base']}/render/image/public/pics/notes.txt?width=10")
    assert text.status_code == 415 and text.json()["code"] == "InvalidImage"
    huge = Image.new("1", (7100, 7100))
    buffer = io.BytesIO()
    huge.save(buffer, "PNG")
    gallery["storage"].from_("pics").upload("huge.png", buffer.getvalue(), {"content-type": "image/png"})
    refused = httpx.get(f"{gallery['base']}/render/image/public/pics/huge.png?width=10")
    assert refused.status_code == 413 and refused.json()["code"] == "ImageTooLarge"
    assert httpx.get(f"{gallery['base']}/render/image/public/pics/missing.jpg?width=10").status_code == 404


def test_a_computed_side_is_held_to_2500(gallery):
    strip = Image.new("1", (900_000, 1))
    buffer = io.BytesIO()
    strip.save(buffer, "PNG")
    gallery["storage"].from_("pics").upload("strip.png", buffer.getvalue(), {"content-type": "image/png"})
    response = httpx.get(f"{gallery['base']}/render/image/public/pics/strip.png?height=2500&format=png", timeout=60)
    assert response.status_code == 200, response.text
    assert max(Image.open(io.BytesIO(response.content)).size) <= 2500


def test_variants_rendered_as_background_jobs_wait_in_the_cache(gallery, node):
    import os
    import time
    variants = os.path.join(node.data_dir, "storage", ".variants")

    def count():
        return sum(len(files) for _, _, files in os.walk(variants)) if os.path.isdir(variants) else 0
    before = count()
    headers = {"apikey": gallery["service"], "Authorization": f"Bearer {gallery['service']}"}
    response = httpx.post(f"{gallery['base']}/render/image/jobs", headers=headers, timeout=30, json={
        "bucket": "pics", "paths": ["photo.jpg"], "transforms": [{"width": 64, "height": 64}, {"width": 77, "resize": "contain"}]})
    assert response.status_code == 202, response.text
    jobs = response.json()["jobs"]
    assert len(jobs) == 2
    deadline = time.time() + 30
    states = []
    while time.time() < deadline:
        states = [httpx.get(f"{gallery['base']}/render/image/jobs/{job['id']}", headers=headers, timeout=30).json()["status"] for job in jobs]
        if all(state == "succeeded" for state in states):
            break
        time.sleep(0.1)
    assert states == ["succeeded", "succeeded"], states
    assert count() == before + 2, "both variants wait in the cache"
    _, image = fetch(gallery, "width=64&height=64")
    assert image.size == (64, 64)
    # Objects that cannot be rendered fail as jobs; bad requests and unreadable objects are refused now.
    bad = httpx.post(f"{gallery['base']}/render/image/jobs", headers=headers, timeout=30,
                     json={"bucket": "pics", "path": "notes.txt", "transforms": [{"width": 10}]})
    assert bad.status_code == 202
    job = bad.json()["jobs"][0]["id"]
    deadline = time.time() + 30
    while time.time() < deadline and httpx.get(f"{gallery['base']}/render/image/jobs/{job}", headers=headers).json()["status"] != "failed":
        time.sleep(0.1)
    assert httpx.get(f"{gallery['base']}/render/image/jobs/{job}", headers=headers).json()["status"] == "failed"
    for body, status in [({"bucket": "pics", "path": "photo.jpg", "transforms": [{"width": 99999}]}, 400),
                         ({"bucket": "pics", "path": "missing.jpg", "transforms": [{"width": 10}]}, 404),
                         ({"bucket": "pics", "transforms": [{"width": 10}]}, 400)]:
        assert httpx.post(f"{gallery['base']}/render/image/jobs", headers=headers, json=body).status_code == status, body
