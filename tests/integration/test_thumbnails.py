"""Thumbnails: the endpoints and their parameters, the size rules (configured sizes and the
dynamic ladder), every input format, EXIF orientation and metadata stripping, animation,
determinism and generation shared between concurrent requests, background generation after
upload, deletion, the S3 store, and hostile images (lying headers, truncated and random
bytes, SVGs reaching outside themselves, thousands of frames) within a memory bound."""

import http.server
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
from PIL import Image

import image_fixtures as images
from conftest import module_instance
from harness import (ALICE, AUTHENTICATED, CORS, CSP, SERVER_NAME, STORE, assert_error,
                     disposition, sha256, wait_until)
from test_delete import ADMIN_CONFIG, collected, delete_ok
from test_memory import peak_rss

MIB = 1024 * 1024
DEFAULT_SIZES = {(32, 32, "crop"), (96, 96, "crop"), (320, 240, "scale"), (640, 480, "scale"),
                 (800, 600, "scale")}
PIL_FORMAT = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
EXTENSION = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
GENERATED = "thumbnail generated"
BACKGROUND_WAIT = 60  # seconds for the five background thumbnails (ASan, two cores)


# --- helpers ---

def thumbnail_path(media_id, authenticated=True, version="v3", server=SERVER_NAME):
    base = AUTHENTICATED if authenticated else f"/_matrix/media/{version}"
    return f"{base}/thumbnail/{server}/{media_id}"


def thumbnail(server, media_id, width=None, height=None, method=None, animated=None,
              authenticated=True, headers=None, version="v3", server_name=SERVER_NAME,
              params=None, **kw):
    """GET a thumbnail; None leaves a parameter out. headers: by default alice's token on
    the authenticated path and none on the legacy one."""
    query = {}
    for name, value in (("width", width), ("height", height), ("method", method),
                        ("animated", animated)):
        if value is not None:
            query[name] = str(value)
    query.update(params or {})
    if headers is None:
        headers = ALICE if authenticated else {}
    return server.get(thumbnail_path(media_id, authenticated, version, server_name),
                      headers=headers, params=query, **kw)


def decoded(r):
    """Checks that a 200 answer is a well-formed thumbnail of the type it claims, with the
    matching file name; returns it opened with Pillow."""
    assert r.status_code == 200, (r.status_code, r.text[:500])
    content_type = r.headers["Content-Type"]
    assert content_type in PIL_FORMAT, content_type
    assert disposition(r.headers["Content-Disposition"]) == (
        "inline", f"thumbnail.{EXTENSION[content_type]}")
    assert r.headers["Content-Length"] == str(len(r.content))
    img = Image.open(io.BytesIO(r.content))
    assert img.format == PIL_FORMAT[content_type]
    img.load()  # decodes the pixels: a truncated body fails here
    return img


def frame_count(img):
    return getattr(img, "n_frames", 1)


def has_transparency(img):
    if img.mode not in ("RGBA", "LA", "PA"):
        img = img.convert("RGBA") if "transparency" in img.info else img
    if img.mode not in ("RGBA", "LA", "PA"):
        return False
    return img.getchannel("A").getextrema()[0] < 255


def assert_still(r, size=None, content_types=("image/jpeg", "image/png")):
    img = decoded(r)
    assert r.headers["Content-Type"] in content_types
    assert frame_count(img) == 1
    if size is not None:
        assert img.size == size
    return img


def assert_no_metadata(r, img):
    body = r.content
    assert len(img.getexif()) == 0, dict(img.getexif())
    for key in ("exif", "icc_profile", "xmp", "XML:com.adobe.xmp"):
        assert key not in img.info, key
    assert b"Exif\x00\x00" not in body
    assert images.CAMERA_MAKE.encode() not in body
    assert images.XMP_MARKER not in body and b"http://ns.adobe.com/xap" not in body
    assert b"ICC_PROFILE" not in body and b"iCCP" not in body


def rows(server, media_id):
    """The thumbnail rows of a media: {(width, height, method, animated): (sha256,
    content_type, created_ts)}, animated as a bool (0/1 in SQLite, a boolean in PostgreSQL)."""
    found = server.db("SELECT width, height, method, animated, sha256, content_type, created_ts "
                      "FROM thumbnails WHERE server_name = ? AND media_id = ?",
                      (SERVER_NAME, media_id))
    return {(w, h, m, bool(a)): (s, c, t) for w, h, m, a, s, c, t in found}


def wait_for_rows(server, media_id, count, timeout=BACKGROUND_WAIT):
    assert wait_until(lambda: len(rows(server, media_id)) >= count, timeout, interval=0.2), (
        rows(server, media_id), server.log()[-3000:])
    return rows(server, media_id)


def generated_lines(server, media_id, text=None):
    """The `thumbnail generated` log lines of a media, after the batched log has caught up
    with everything before this call."""
    marker = f"flush{time.monotonic_ns()}"
    server.get("/_mxcd/version", params={"marker": marker})
    server.request_line(f"marker={marker}")
    prefix = f"{GENERATED} mxc://{SERVER_NAME}/{media_id} "
    return [line for line in server.log().splitlines()
            if prefix in line and (text is None or text in line)]


def upload_image(server, data, content_type):
    return server.upload_id(data, content_type=content_type)


@pytest.fixture(scope="module")
def media(shared_mxcd):
    """media(name) uploads a fixture image (once per module) to the shared instance."""
    ids = {}

    def get(name, content_type=None):
        if name not in ids:
            if name in images.FORMATS:
                function, default_type, _, _ = images.FORMATS[name]
                data = function()
            else:
                data, default_type = SOURCES[name]()
            ids[name] = upload_image(shared_mxcd, data, content_type or default_type)
        return ids[name]

    return get


@pytest.fixture(scope="module")
def lazy_mxcd(tmp_path_factory):
    """An instance that does not generate thumbnails on upload, shared by the tests that
    count generations (each with media of its own)."""
    yield from module_instance(tmp_path_factory, "lazy", {"thumbnails": {"generate_on_upload": False}})


# Sources for the size rules, by name: () -> (bytes, content type).
SOURCES = {
    "4:3": lambda: (images.jpeg(1600, 1200), "image/jpeg"),
    "2:1": lambda: (images.jpeg(1000, 500), "image/jpeg"),
    "small": lambda: (images.jpeg(60, 40), "image/jpeg"),
    "1x1": lambda: (images.png_1x1(), "image/png"),
    "wide": lambda: (images.wide(), "image/png"),
    "tall": lambda: (images.tall(), "image/png"),
    "exif": lambda: (images.jpeg_exif_rotated(), "image/jpeg"),
}


# --- the endpoints and their parameters ---

@pytest.mark.parametrize("authenticated,version", [(True, "v3"), (False, "v3"), (False, "r0")])
def test_response_headers(shared_mxcd, media, authenticated, version):
    media_id = media("4:3")
    r = thumbnail(shared_mxcd, media_id, 96, 96, "crop", authenticated=authenticated,
                  version=version)
    img = assert_still(r, (96, 96), ("image/jpeg",))
    assert img.mode == "RGB"
    assert r.headers["Content-Security-Policy"] == CSP
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert {name: r.headers.get(name) for name in CORS} == CORS
    etag = r.headers.get("ETag")
    assert etag and len(etag.strip('"')) > 0
    # The same thumbnail again: the same bytes and ETag; another size: another ETag.
    again = thumbnail(shared_mxcd, media_id, 96, 96, "crop", authenticated=authenticated,
                      version=version)
    assert again.content == r.content and again.headers["ETag"] == etag
    other = thumbnail(shared_mxcd, media_id, 32, 32, "crop", authenticated=authenticated,
                      version=version)
    assert other.status_code == 200 and other.headers["ETag"] != etag


def test_token_is_checked_before_the_parameters(shared_mxcd, media):
    media_id = media("4:3")
    for params in ({"width": "96", "height": "96"}, {}, {"width": "abc", "height": "-1"},
                   {"width": "96", "height": "96", "method": "bogus", "animated": "maybe"}):
        r = shared_mxcd.get(thumbnail_path(media_id), params=params)
        assert_error(r, 401, "M_MISSING_TOKEN")
    assert_error(thumbnail(shared_mxcd, "doesNotExist", headers={}), 401, "M_MISSING_TOKEN")


BAD_PARAMETERS = [
    ({}, "M_UNKNOWN"),
    ({"width": "96"}, "M_UNKNOWN"),
    ({"height": "96"}, "M_UNKNOWN"),
    ({"width": "0", "height": "96"}, "M_UNKNOWN"),
    ({"width": "96", "height": "0"}, "M_UNKNOWN"),
    ({"width": "-96", "height": "96"}, "M_UNKNOWN"),
    ({"width": "96", "height": "-1"}, "M_UNKNOWN"),
    ({"width": "abc", "height": "96"}, "M_UNKNOWN"),
    ({"width": "96", "height": "1.5"}, "M_UNKNOWN"),
    ({"width": "", "height": "96"}, "M_UNKNOWN"),
    ({"width": "96px", "height": "96"}, "M_UNKNOWN"),
    ({"width": "96", "height": "96", "method": "fit"}, "M_UNKNOWN"),
    ({"width": "96", "height": "96", "method": "CROP"}, "M_UNKNOWN"),
    ({"width": "96", "height": "96", "animated": "yes"}, "M_INVALID_PARAM"),
    ({"width": "96", "height": "96", "animated": "1"}, "M_INVALID_PARAM"),
    ({"width": "96", "height": "96", "animated": "TRUE"}, "M_INVALID_PARAM"),
]


@pytest.mark.parametrize("params,errcode", BAD_PARAMETERS,
                         ids=[urlencode(p) or "none" for p, _ in BAD_PARAMETERS])
@pytest.mark.parametrize("authenticated", [True, False])
def test_bad_parameters(shared_mxcd, media, authenticated, params, errcode):
    r = thumbnail(shared_mxcd, media("4:3"), authenticated=authenticated, params=params)
    assert_error(r, 400, errcode)


@pytest.mark.parametrize("authenticated", [True, False])
def test_method_and_animated_defaults(shared_mxcd, media, authenticated):
    media_id = media("4:3")
    implicit = thumbnail(shared_mxcd, media_id, 640, 480, authenticated=authenticated)
    explicit = thumbnail(shared_mxcd, media_id, 640, 480, "scale", "false",
                         authenticated=authenticated)
    assert_still(implicit, (640, 480))
    assert implicit.content == explicit.content
    animated = thumbnail(shared_mxcd, media_id, 640, 480, "scale", "true",
                         authenticated=authenticated)
    assert_still(animated, (640, 480))


@pytest.mark.parametrize("authenticated", [True, False])
def test_unknown_media_is_404(shared_mxcd, media, authenticated):
    media_id = media("4:3")
    for server_name, mid in ((SERVER_NAME, "doesNotExist"), ("other.server", media_id),
                             (f"{SERVER_NAME}:8448", media_id)):
        r = thumbnail(shared_mxcd, mid, 96, 96, "crop", authenticated=authenticated,
                      server_name=server_name)
        assert_error(r, 404, "M_NOT_FOUND")


@pytest.mark.parametrize("data,content_type", [
    (images.png(), "application/octet-stream"),   # an image, but not labelled as one
    (images.jpeg(200, 100), "text/plain"),
    (b"just some text, not a picture\n" * 20, "text/plain"),
    (b"just some text, not a picture\n" * 20, "image/png"),
    (b"", "image/png"),
], ids=["png-as-octet-stream", "jpeg-as-text", "text", "text-as-png", "empty-as-png"])
def test_not_an_image_is_400(shared_mxcd, data, content_type):
    media_id = shared_mxcd.upload_id(data, content_type=content_type)
    for authenticated in (True, False):
        r = thumbnail(shared_mxcd, media_id, 96, 96, "crop", authenticated=authenticated)
        assert_error(r, 400, "M_UNKNOWN")
    assert shared_mxcd.healthy()


def test_freeze_applies_to_legacy_thumbnails(start_mxcd):
    server = start_mxcd({"media": {"legacy_download_freeze": "2024-09-01T00:00:00Z"}})
    new = upload_image(server, images.jpeg(400, 300), "image/jpeg")
    old = upload_image(server, images.png(), "image/png")
    for version in ("v3", "r0"):
        r = thumbnail(server, new, 96, 96, "crop", authenticated=False, version=version)
        assert_error(r, 404, "M_NOT_FOUND")
    assert_still(thumbnail(server, new, 96, 96, "crop"), (96, 96))
    server.stop()
    server.db_write("UPDATE media SET created_ts = ? WHERE media_id = ?",
                    (1_700_000_000_000, old))  # November 2023, before the freeze
    server.start()
    for version in ("v3", "r0"):
        r = thumbnail(server, old, 96, 96, "crop", authenticated=False, version=version)
        assert_still(r, (96, 96))
    assert_error(thumbnail(server, new, 96, 96, "crop", authenticated=False), 404, "M_NOT_FOUND")


def test_pending_media_waits_then_504(shared_mxcd):
    media_id = shared_mxcd.create_id()
    for authenticated in (True, False):
        for timeout in ("0", "300"):
            r = thumbnail(shared_mxcd, media_id, 96, 96, "crop", authenticated=authenticated,
                          params={"timeout_ms": timeout})
            assert_error(r, 504, "M_NOT_YET_UPLOADED")
        for bad in ("-1", "abc", "1.5"):
            r = thumbnail(shared_mxcd, media_id, 96, 96, "crop", authenticated=authenticated,
                          params={"timeout_ms": bad})
            assert_error(r, 400, "M_INVALID_PARAM")

    result = {}

    def wait():
        result["r"] = thumbnail(shared_mxcd, media_id, 96, 96, "crop",
                                params={"timeout_ms": "20000"}, timeout=60)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.5)
    assert result == {}, "the thumbnail request should still be waiting for the content"
    assert shared_mxcd.put(media_id, images.png(), content_type="image/png").status_code == 200
    waiter.join(60)
    assert_still(result["r"], (96, 96), ("image/jpeg",))


# --- sizes ---

@pytest.mark.parametrize("source,width,height,method,expected", [
    ("4:3", 300, 200, "scale", (320, 240)),
    ("4:3", 10, 10, "scale", (320, 240)),
    ("4:3", 320, 240, "scale", (320, 240)),
    ("4:3", 321, 240, "scale", (640, 480)),
    ("4:3", 320, 241, "scale", (640, 480)),
    ("4:3", 700, 500, "scale", (800, 600)),
    ("4:3", 5000, 5000, "scale", (800, 600)),   # none large enough: the largest scale size
    ("4:3", 50, 50, "crop", (96, 96)),
    ("4:3", 20, 20, "crop", (32, 32)),
    ("4:3", 32, 32, "crop", (32, 32)),
    ("4:3", 32, 33, "crop", (96, 96)),
    ("4:3", 2000, 2000, "crop", (96, 96)),      # none large enough: the largest crop size
    ("4:3", 1, 1, "crop", (32, 32)),
    ("2:1", 320, 240, "scale", (320, 160)),
    ("2:1", 640, 480, "scale", (640, 320)),
    ("2:1", 800, 600, "scale", (800, 400)),
    ("2:1", 96, 96, "crop", (96, 96)),
    ("2:1", 32, 32, "crop", (32, 32)),
    ("small", 320, 240, "scale", (60, 40)),     # never upscaled
    ("small", 800, 600, "scale", (60, 40)),
    ("small", 96, 96, "crop", (60, 40)),
    ("small", 32, 32, "crop", (32, 32)),
    ("1x1", 32, 32, "crop", (1, 1)),
    ("1x1", 96, 96, "crop", (1, 1)),
    ("1x1", 320, 240, "scale", (1, 1)),
    ("wide", 96, 96, "crop", (96, 20)),
    ("wide", 32, 32, "crop", (32, 20)),
    ("tall", 96, 96, "crop", (20, 96)),
])
def test_size_rules(shared_mxcd, media, source, width, height, method, expected):
    r = thumbnail(shared_mxcd, media(source), width, height, method)
    assert_still(r, expected, ("image/jpeg",))


@pytest.mark.parametrize("source,box,long_side", [("wide", (320, 240), 0), ("tall", (320, 240), 1),
                                                  ("wide", (800, 600), 0)])
def test_extreme_aspect_ratios_scale(shared_mxcd, media, source, box, long_side):
    r = thumbnail(shared_mxcd, media(source), box[0], box[1], "scale")
    img = assert_still(r, None, ("image/jpeg",))
    # 4000x20 into 320x240 is 320x1.6: the short side rounds to 1 or 2 pixels.
    assert img.size[long_side] == box[long_side]
    assert 1 <= img.size[1 - long_side] <= 4, img.size


def test_dynamic_sizes_snap_to_the_ladder(start_mxcd):
    server = start_mxcd({"thumbnails": {"dynamic": True}})
    media_id = upload_image(server, images.jpeg(1600, 1200), "image/jpeg")
    background = wait_for_rows(server, media_id, 5)
    assert {(w, h, m) for w, h, m, _ in background} == DEFAULT_SIZES

    first = thumbnail(server, media_id, 100, 100, "crop")
    assert_still(first, (128, 128), ("image/jpeg",))
    second = thumbnail(server, media_id, 110, 110, "crop")
    assert second.status_code == 200 and second.content == first.content
    found = rows(server, media_id)
    assert len(found) == 6, found
    assert found[(128, 128, "crop", False)][0] == sha256(first.content)

    assert_still(thumbnail(server, media_id, 200, 100, "crop"), (256, 128))
    assert_still(thumbnail(server, media_id, 1000, 1000, "crop"), (1024, 1024))
    assert_still(thumbnail(server, media_id, 700, 700, "scale"), (800, 600))
    assert_still(thumbnail(server, media_id, 5000, 5000, "scale"), (1280, 960))  # capped
    assert_still(thumbnail(server, media_id, 9999, 1, "crop"), (1280, 32))
    # Configured sizes still answer what they cover.
    assert_still(thumbnail(server, media_id, 96, 96, "crop"), (96, 96))
    assert_still(thumbnail(server, media_id, 640, 480, "scale"), (640, 480))
    assert len(rows(server, media_id)) == 11, rows(server, media_id)


# --- formats ---

@pytest.mark.parametrize("name", list(images.FORMATS))
def test_every_format(shared_mxcd, media, name):
    _, _, alpha, _ = images.FORMATS[name]
    media_id = media(name)
    # Opaque is JPEG, even where the decoder adds an alpha channel (GIF, APNG, WebP).
    types = ("image/png",) if alpha else ("image/jpeg",)
    crop = thumbnail(shared_mxcd, media_id, 96, 96, "crop")
    img = assert_still(crop, (96, 96), types)
    assert has_transparency(img) == alpha
    assert len(set(img.convert("RGB").getdata())) > 50, "the picture lost its content"
    scale = thumbnail(shared_mxcd, media_id, 200, 200, "scale")
    size = (320, 240)  # every source is 4:3 and 320x240 (the SVG 400x300)
    assert_still(scale, size, types)


def test_an_alpha_channel_without_transparency_gives_a_jpeg(shared_mxcd):
    media_id = upload_image(shared_mxcd, images.png_opaque_alpha(), "image/png")
    assert_still(thumbnail(shared_mxcd, media_id, 96, 96, "crop"), (96, 96), ("image/jpeg",))


def test_exif_orientation_is_applied_and_metadata_stripped(shared_mxcd, media):
    media_id = media("exif")  # stored 400x200, displayed 200x400: red on top, blue below
    r = thumbnail(shared_mxcd, media_id, 320, 240, "scale")
    img = assert_still(r, (120, 240), ("image/jpeg",))
    assert_no_metadata(r, img)
    top, bottom = img.convert("RGB").getpixel((60, 40)), img.convert("RGB").getpixel((60, 200))
    assert top[0] > 150 and top[2] < 100, top
    assert bottom[2] > 150 and bottom[0] < 100, bottom
    r = thumbnail(shared_mxcd, media_id, 96, 96, "crop")
    assert_no_metadata(r, assert_still(r, (96, 96), ("image/jpeg",)))
    r = thumbnail(shared_mxcd, media_id, 800, 600, "scale")  # the source size: not upscaled
    assert_no_metadata(r, assert_still(r, (200, 400), ("image/jpeg",)))


@pytest.mark.parametrize("name", ["gif-animated", "webp-animated", "apng"])
def test_animated_sources(shared_mxcd, media, name):
    media_id = media(name)
    r = thumbnail(shared_mxcd, media_id, 96, 96, "crop", "true")
    img = decoded(r)
    assert r.headers["Content-Type"] == "image/webp"
    assert frame_count(img) > 1 and img.size == (96, 96)
    frames = set()
    for i in range(frame_count(img)):
        img.seek(i)
        frames.add(img.convert("RGB").tobytes())
    assert len(frames) > 1, "the frames are all the same"
    scaled = decoded(thumbnail(shared_mxcd, media_id, 320, 240, "scale", "true"))
    assert frame_count(scaled) > 1 and scaled.size == (320, 240)

    still = thumbnail(shared_mxcd, media_id, 96, 96, "crop", "false")
    assert_still(still, (96, 96))
    absent = thumbnail(shared_mxcd, media_id, 96, 96, "crop")
    assert absent.content == still.content


@pytest.mark.parametrize("name", ["png", "png-alpha", "jpeg", "webp"])
def test_animated_true_on_a_still_image_is_still(shared_mxcd, media, name):
    r = thumbnail(shared_mxcd, media(name), 96, 96, "crop", "true")
    img = assert_still(r, (96, 96))
    assert has_transparency(img) == (name == "png-alpha")


def test_apng_delays_and_loop_survive(shared_mxcd, media):
    """The APNG's frames are taken apart by mxcd itself: their timing and loop count must
    come through into the animated WebP."""
    source = Image.open(io.BytesIO(images.apng()))
    delays = []
    for i in range(source.n_frames):
        source.seek(i)
        source.load()  # Pillow updates a frame's info when it loads it
        delays.append(source.info["duration"])
    r = thumbnail(shared_mxcd, media("apng"), 96, 96, "crop", "true")
    img = decoded(r)
    assert r.headers["Content-Type"] == "image/webp"
    served = []
    for i in range(frame_count(img)):
        img.seek(i)
        img.load()
        served.append(img.info["duration"])
    assert served == delays
    assert img.info.get("loop", 0) == source.info.get("loop", 0)


def test_same_request_same_bytes(shared_mxcd):
    media_id = upload_image(shared_mxcd, images.jpeg(1000, 500), "image/jpeg")
    for args in ((96, 96, "crop"), (320, 240, "scale"), (800, 600, "scale")):
        first = thumbnail(shared_mxcd, media_id, *args)
        second = thumbnail(shared_mxcd, media_id, *args)
        assert first.status_code == 200 and first.content == second.content
        assert first.headers["ETag"] == second.headers["ETag"]


# --- generation: once, shared, in the background ---

def test_concurrent_requests_share_one_generation(lazy_mxcd):
    media_id = upload_image(lazy_mxcd, images.jpeg(1600, 1200), "image/jpeg")
    barrier = threading.Barrier(10)

    def fetch(_):
        barrier.wait()
        return thumbnail(lazy_mxcd, media_id, 640, 480, "scale")

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(fetch, range(10)))
    for r in answers:
        assert_still(r, (640, 480), ("image/jpeg",))
    assert len({r.content for r in answers}) == 1
    found = rows(lazy_mxcd, media_id)
    assert list(found) == [(640, 480, "scale", False)]
    assert found[(640, 480, "scale", False)][:2] == (sha256(answers[0].content), "image/jpeg")
    lines = generated_lines(lazy_mxcd, media_id)
    assert len(lines) == 1, lines
    assert f" 640x480 scale -> 640x480 image/jpeg ({len(answers[0].content)} bytes)" in lines[0]
    # Asked again later: served from what was stored.
    assert thumbnail(lazy_mxcd, media_id, 640, 480, "scale").content == answers[0].content
    assert len(generated_lines(lazy_mxcd, media_id)) == 1


def test_animated_generation_is_logged_as_animated(lazy_mxcd):
    media_id = upload_image(lazy_mxcd, images.gif_animated(), "image/gif")
    r = thumbnail(lazy_mxcd, media_id, 96, 96, "crop", "true")
    assert decoded(r) and r.headers["Content-Type"] == "image/webp"
    lines = generated_lines(lazy_mxcd, media_id)
    assert len(lines) == 1, lines
    assert f" 96x96 crop animated -> 96x96 image/webp ({len(r.content)} bytes)" in lines[0]
    assert list(rows(lazy_mxcd, media_id)) == [(96, 96, "crop", True)]


def test_no_background_generation_when_turned_off(lazy_mxcd):
    first = upload_image(lazy_mxcd, images.jpeg(400, 300), "image/jpeg")
    second = upload_image(lazy_mxcd, images.png(), "image/png")
    assert_still(thumbnail(lazy_mxcd, second, 32, 32, "crop"), (32, 32))
    time.sleep(1)
    assert rows(lazy_mxcd, first) == {}
    assert list(rows(lazy_mxcd, second)) == [(32, 32, "crop", False)]
    assert generated_lines(lazy_mxcd, first) == []


def test_background_generation_after_upload(shared_mxcd):
    text = shared_mxcd.upload_id(b"not an image", content_type="text/plain")
    octets = shared_mxcd.upload_id(images.png(), content_type="application/octet-stream")
    before = int(time.time() * 1000)
    media_id = upload_image(shared_mxcd, images.jpeg(1600, 1200), "image/jpeg")
    found = wait_for_rows(shared_mxcd, media_id, 5)
    assert len(found) == 5
    assert {(w, h, m) for w, h, m, _ in found} == DEFAULT_SIZES
    assert not any(animated for _, _, _, animated in found)
    for (width, height, method, _), (digest, content_type, created) in found.items():
        assert content_type == "image/jpeg"
        assert before - 1000 <= created <= time.time() * 1000 + 1000
        assert shared_mxcd.db("SELECT COUNT(*) FROM blobs WHERE sha256 = ?", (digest,)) == [(1,)]
        # What is served is what was stored, not generated again.
        r = thumbnail(shared_mxcd, media_id, width, height, method)
        assert_still(r, (width, height), ("image/jpeg",))
        assert sha256(r.content) == digest
    assert len(generated_lines(shared_mxcd, media_id)) == 5
    assert rows(shared_mxcd, text) == {} and rows(shared_mxcd, octets) == {}


# --- deletion ---

def test_deletion_removes_thumbnails_and_their_blobs(start_mxcd):
    server = start_mxcd(ADMIN_CONFIG)
    media_id = upload_image(server, images.jpeg(1600, 1200), "image/jpeg")
    found = wait_for_rows(server, media_id, 5)
    digests = {digest for digest, _, _ in found.values()}
    served = thumbnail(server, media_id, 96, 96, "crop")
    assert_still(served, (96, 96))
    assert sha256(served.content) in digests
    delete_ok(server, media_id)
    assert_error(thumbnail(server, media_id, 96, 96, "crop"), 404, "M_NOT_FOUND")
    assert_error(thumbnail(server, media_id, 96, 96, "crop", authenticated=False),
                 404, "M_NOT_FOUND")
    assert wait_until(lambda: rows(server, media_id) == {}, timeout=10), rows(server, media_id)
    collected(server)

    def stored(digest):
        """In the blobs table, in the write store (files or bucket objects) or on disk."""
        return (server.db("SELECT COUNT(*) FROM blobs WHERE sha256 = ?", (digest,)) != [(0,)]
                or digest in {path.name for path in server.blob_files()}
                or any(server.storage.rglob(digest)))

    assert wait_until(lambda: not any(stored(d) for d in digests), timeout=30), (
        [d for d in digests if stored(d)], server.log()[-3000:])
    assert server.db("SELECT COUNT(*) FROM blobs") == [(0,)]


# --- limits and hostile images ---

def test_time_limit(start_mxcd):
    """A render that takes longer than thumbnails.time_limit is stopped: 400, and the server
    stays up. Decoding 2 megapixels of noise takes far longer than a millisecond."""
    server = start_mxcd({"thumbnails": {"time_limit": "1ms", "generate_on_upload": False}})
    media_id = upload_image(server, images.png_random(1600, 1200), "image/png")
    r = thumbnail(server, media_id, 800, 600, "scale")
    assert_error(r, 400, "M_UNKNOWN")
    assert "took longer than 1 ms" in r.json()["error"]
    assert server.healthy()
    assert server.db("SELECT COUNT(*) FROM thumbnails") == [(0,)]


def test_source_size_and_pixel_limits(start_mxcd):
    server = start_mxcd({"thumbnails": {"max_source_size": "1MiB", "max_pixels": 100000}})
    padded = images.png_padded(1536 * 1024)  # 320x240, but 1.5 MiB of bytes
    cases = [
        (padded, "image/png", 413),
        (images.jpeg(400, 300), "image/jpeg", 413),   # 120000 pixels
        (images.jpeg(1600, 1200), "image/jpeg", 413),
        (images.png_random(500, 500), "image/png", 413),
        (images.jpeg(400, 250), "image/jpeg", 200),   # exactly max_pixels
        (images.png(), "image/png", 200),
        (images.png_random(180, 180), "image/png", 200),
    ]
    for data, content_type, status in cases:
        media_id = upload_image(server, data, content_type)
        for method in ("crop", "scale"):
            r = thumbnail(server, media_id, 96, 96, method)
            if status == 413:
                assert_error(r, 413, "M_TOO_LARGE")
            else:
                assert_still(r)
    # The pixel limit is per frame: four frames of 76800 pixels are fine.
    media_id = upload_image(server, images.gif_animated(), "image/gif")
    r = thumbnail(server, media_id, 96, 96, "crop", "true")
    assert r.headers.get("Content-Type") == "image/webp" and frame_count(decoded(r)) > 1
    assert server.healthy()


class RecordingServer:
    """An HTTP server on 127.0.0.1 that answers everything with a small PNG and records
    every connection and request it gets."""

    def __init__(self):
        self.connections = []
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                body = images.png_1x1()
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            def verify_request(self, request, client_address):
                outer.connections.append(client_address)
                return True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def recorder():
    server = RecordingServer()
    yield server
    server.close()


def is_clean_white(img):
    """No pixel of a referenced file: every pixel near white (JPEG noise aside)."""
    rgb = img.convert("RGB")
    low = min(channel_min for channel_min, _ in rgb.getextrema())
    return low > 200


def check_hostile(server, name, recorder=None):
    """Uploads one hostile image, asks for thumbnails and checks the answers; the server
    must be healthy afterwards."""
    if name == "huge-header":
        media_id = upload_image(server, images.png_huge_header(), "image/png")
        for method, animated in (("crop", None), ("scale", "true")):
            assert_error(thumbnail(server, media_id, 96, 96, method, animated), 413, "M_TOO_LARGE")
    elif name == "truncated-jpeg":
        media_id = upload_image(server, images.jpeg_truncated(), "image/jpeg")
        for method in ("crop", "scale"):
            assert_error(thumbnail(server, media_id, 96, 96, method), 400, "M_UNKNOWN")
    elif name == "random-bytes":
        media_id = upload_image(server, images.random_bytes(), "image/png")
        assert_error(thumbnail(server, media_id, 96, 96, "crop"), 400, "M_UNKNOWN")
    elif name == "svg-local-refs":
        media_id = upload_image(server, images.svg_local_refs(), "image/svg+xml")
        for args in ((320, 240, "scale"), (96, 96, "crop")):
            r = thumbnail(server, media_id, *args)
            if r.status_code == 200:
                assert is_clean_white(assert_still(r)), "a local file reached the thumbnail"
            else:
                assert_error(r, 400, "M_UNKNOWN")
    elif name == "svg-remote-refs":
        media_id = upload_image(server, images.svg_remote_refs(recorder.url), "image/svg+xml")
        answers = [thumbnail(server, media_id, w, h, m) for w, h, m in sorted(DEFAULT_SIZES)]
        for r in answers:
            if r.status_code == 200:
                assert_still(r)
            else:
                assert_error(r, 400, "M_UNKNOWN")
        if answers[0].status_code == 200:  # the background renders are done too
            wait_for_rows(server, media_id, 5, timeout=20)
        time.sleep(0.5)
        assert recorder.connections == [] and recorder.requests == []
    elif name == "many-frames":
        media_id = upload_image(server, images.gif_many_frames(), "image/gif")
        # More frames than thumbnails.max_frames: a still thumbnail, even when asked to animate.
        assert_still(thumbnail(server, media_id, 96, 96, "crop", "true"), (16, 16))
        assert_still(thumbnail(server, media_id, 96, 96, "crop", "false"), (16, 16))
    else:
        raise AssertionError(name)
    assert server.healthy()


HOSTILE = ["huge-header", "truncated-jpeg", "random-bytes", "svg-local-refs",
           "svg-remote-refs", "many-frames"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_image(shared_mxcd, recorder, name):
    check_hostile(shared_mxcd, name, recorder)


def test_hostile_images_in_bounded_memory(start_mxcd, recorder):
    """The release build (the sanitizers inflate RSS): all of the hostile set, then peak
    RSS stays under 400 MiB."""
    server = start_mxcd(release=True)
    for name in HOSTILE:
        check_hostile(server, name, recorder)
    peak = peak_rss(server.pid)
    assert peak < 400 * MIB, f"peak RSS {peak >> 20} MiB"


# --- the S3 store ---

@pytest.mark.skipif(STORE != "local", reason="runs once, with the default store")
def test_thumbnails_on_the_s3_store(start_mxcd):
    import s3_service
    from test_s3_store import drop_cache, key_of, s3_config

    s3 = s3_service.service()
    bucket = s3.new_bucket()
    config = s3_config(s3, bucket)
    config["media"]["write_store"]["thumbnails"] = "bucket"
    server = start_mxcd(config)
    data = images.jpeg(1600, 1200)
    media_id = upload_image(server, data, "image/jpeg")
    found = wait_for_rows(server, media_id, 5)
    served = {}
    for width, height, method, _ in found:
        r = thumbnail(server, media_id, width, height, method)
        assert_still(r, (width, height))
        served[(width, height, method)] = r.content
    keys = s3.keys(bucket)
    assert sorted(keys) == sorted([key_of(data)] + [key_of(body) for body in served.values()])
    for body in served.values():
        assert server.db("SELECT store FROM blobs WHERE sha256 = ?",
                         (sha256(body),)) == [("bucket",)]

    server.stop()
    drop_cache(server)
    log_length = len(server.log())
    server.start()
    for (width, height, method), body in served.items():
        r = thumbnail(server, media_id, width, height, method)
        assert r.status_code == 200 and r.content == body
    server.stop()  # flushes the log
    assert GENERATED not in server.log()[log_length:]
