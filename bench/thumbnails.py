#!/usr/bin/python3
"""Thumbnail generation, mxcd side by side with two references in one run.

The primary measurement is what a homeserver does for every image a user uploads: the upload
and its five thumbnails (32x32 and 96x96 crop, 320x240, 640x480 and 800x600 scale):
  - mxcd (release build, `thumbnails: {generate_on_upload: true, workers: 2}`, a fresh
    process per format): every corpus file uploaded `rounds` times by 2 client threads (each
    upload is a media ID of its own); timed from the start of the first upload until every
    upload has its 5 rows in the `thumbnails` table (the SQLite file polled read-only every
    20 ms), so the uploads themselves are part of the time;
  - Pillow (Debian's python3-pil) the way Synapse does it on upload (synapse/media/
    media_repository.py `_generate_thumbnails` with synapse/media/thumbnailer.py): the image
    opened once (JPEG, PNG, WebP and GIF allowed), EXIF orientation applied once, then every
    size made from that one image (LANCZOS resize; for a crop, a resize that covers the box,
    then its centre), sizes whose output dimensions coincide made once, JPEG quality 80 for a
    JPEG source, PNG for a PNG or GIF source; 2 threads over the images, in a process of its
    own, in memory;
  - ImageMagick's convert (-thumbnail), one process per thumbnail, 5 per image, 2 at a time.
With --per-request, a secondary measurement: the on-demand cost, every size requested on its
own from GET /_matrix/client/v1/media/thumbnail (mxcd with generate_on_upload: false, a
decode per request) against Pillow making each thumbnail from a fresh open (a decode each).
The corpus (a 12-megapixel JPEG, a 4K PNG with alpha, a 200-frame GIF, a 12-megapixel HEIC)
is generated on the first run and kept in $MXCD_BENCH_CORPUS (default
/tmp/mxcd-bench-thumbnail-corpus). For each format the engines run one after the other, so
that a change in the machine's load falls on all of them. Peak memory is mxcd's VmHWM, the
Pillow process's ru_maxrss, and the largest ru_maxrss of one convert; CPU time is each
process's (mxcd's: all of it, HTTP, hashing and storage included). Every output's size is
checked. Ratios matter, absolute figures depend on the machine's load.
Usage: bench/thumbnails.py [rounds, default 3] [--per-request] [--references-only]"""

import io
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONVERT = "/usr/bin/convert"  # ImageMagick 6 itself (Debian's imagemagick package)
THREADS = 2

# The five default sizes of mxcd (and Synapse): (width, height, method).
SIZES = [(32, 32, "crop"), (96, 96, "crop"), (320, 240, "scale"), (640, 480, "scale"),
         (800, 600, "scale")]

# name: (file, content type, width, height)
CORPUS = {
    "JPEG 4000x3000": ("photo.jpg", "image/jpeg", 4000, 3000),
    "PNG 3840x2160 RGBA": ("alpha.png", "image/png", 3840, 2160),
    "GIF 480x270, 200 frames": ("animation.gif", "image/gif", 480, 270),
    "HEIC 4032x3024": ("photo.heic", "image/heic", 4032, 3024),
}
COMMON = [name for name in CORPUS if not name.startswith("HEIC")]  # what Pillow reads

MIB = 1024 * 1024


# ---------------------------------------------------------------------------------------
# The corpus

def _run(*argv):
    subprocess.run([str(a) for a in argv], check=True, capture_output=True)


def _plasma(path, width, height, seed, noise=0.0):
    """A photo-like 8-bit RGB picture: ImageMagick's fractal plasma (soft colour clouds with
    fine texture), slightly blurred, with Gaussian grain when noise > 0."""
    args = [CONVERT, "-size", f"{width}x{height}", "-seed", seed, "plasma:fractal", "-blur", "0x1"]
    if noise:
        args += ["-attenuate", noise, "+noise", "Gaussian"]
    _run(*args, "-depth", "8", path)


def _make_jpeg(path, tmp):
    # Grain as a camera's sensor leaves it: 5.6 MB at quality 90, like a phone's photo.
    _plasma(tmp / "photo.png", 4000, 3000, 7, noise=0.4)
    _run(CONVERT, tmp / "photo.png", "-quality", "90", path)


def _make_png(path, tmp):
    # Colour clouds with a few sharp shapes over them; alpha from opaque in the centre to
    # transparent at the corners.
    _plasma(tmp / "rgb.png", 3840, 2160, 3)
    _run(CONVERT, tmp / "rgb.png",
         "-fill", "#f0d020", "-draw", "circle 900,700 900,1100",
         "-fill", "#2040c0", "-draw", "rectangle 2200,300 3400,900",
         "-fill", "#ffffff", "-draw", "roundrectangle 600,1500 3200,1900 60,60",
         "(", "-size", "3840x2160", "radial-gradient:white-black", ")",
         "-alpha", "off", "-compose", "CopyOpacity", "-composite", f"png32:{path}")


def _make_gif(path, tmp):
    """200 frames of 480x270: a window panning over colour clouds, a disc crossing it."""
    import math
    from PIL import Image, ImageDraw
    _plasma(tmp / "clouds.png", 960, 540, 5)
    clouds = Image.open(tmp / "clouds.png").convert("RGB")
    frames = []
    for i in range(200):
        t = i / 199
        x, y = round(480 * t), round(135 * (1 - math.cos(2 * math.pi * t)))
        frame = clouds.crop((x, y, x + 480, y + 270))
        draw = ImageDraw.Draw(frame)
        cx, cy = 40 + 400 * t, 135 + 80 * math.sin(4 * math.pi * t)
        draw.ellipse((cx - 30, cy - 30, cx + 30, cy + 30), fill=(250, 240, 230))
        frames.append(frame.quantize(256))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40, loop=0)


def _make_heic(path, tmp):
    # No grain: HEVC at Q=80 keeps it and the file would be twice the size of a phone's.
    _plasma(tmp / "heic.png", 4032, 3024, 11)
    _run("vips", "copy", tmp / "heic.png", f"{path}[Q=80]")


def corpus():
    """{name: path}, generating what is missing (a few minutes the first time)."""
    directory = Path(os.environ.get("MXCD_BENCH_CORPUS", "/tmp/mxcd-bench-thumbnail-corpus"))
    directory.mkdir(parents=True, exist_ok=True)
    makers = {"photo.jpg": _make_jpeg, "alpha.png": _make_png, "animation.gif": _make_gif,
              "photo.heic": _make_heic}
    paths = {}
    for name, (file, *_) in CORPUS.items():
        path = directory / file
        if not path.exists():
            print(f"generating {path}", file=sys.stderr)
            with tempfile.TemporaryDirectory(dir=directory) as tmp:
                partial = Path(tmp) / file
                makers[file](partial, Path(tmp))
                partial.rename(path)
        paths[name] = path
    return paths


# ---------------------------------------------------------------------------------------
# What each engine is expected to produce

def expected_size(name, width, height, method):
    """A crop is the box (no source here is smaller than a crop box); a scale fits the box,
    keeps the aspect ratio and never enlarges."""
    _, _, sw, sh = CORPUS[name]
    if method == "crop":
        return min(width, sw), min(height, sh)
    factor = min(width / sw, height / sh, 1.0)
    return round(sw * factor), round(sh * factor)


def size_ok(got, want, method):
    """A crop exactly; a scale to a pixel (rounding differs between libraries)."""
    if got is None:
        return False
    slack = 0 if method == "crop" else 1
    return abs(got[0] - want[0]) <= slack and abs(got[1] - want[1]) <= slack


def image_info(data):
    """(format, (width, height)) of encoded bytes, or (None, None)."""
    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.format, im.size
    except Exception:  # noqa: BLE001 - anything unreadable is reported as such
        return None, None


# ---------------------------------------------------------------------------------------
# The Pillow reference (a child process: its ru_maxrss is its own)

# EXIF orientation -> the transposition that undoes it.
_ORIENTATION = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
                6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}

# The thumbnail format Synapse makes for each source type (its media format map): JPEG from
# JPEG (and WebP), PNG from PNG and GIF.
PILLOW_OUTPUT = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "PNG"}


def pillow_open(path):
    """The source as Synapse's thumbnailer holds it: opened (lazily: pixels are decoded by
    the first resize, once), its EXIF orientation undone, a palette or grey image in RGB(A)
    (resized in its own mode it would be nearest-neighbour)."""
    from PIL import Image
    image = Image.open(path, formats=["JPEG", "PNG", "WEBP", "GIF"])
    try:
        orientation = image.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - broken EXIF is ignored, as Synapse does
        orientation = None
    if orientation in _ORIENTATION:
        with image:
            image = image.transpose(getattr(Image.Transpose, _ORIENTATION[orientation]))
    if image.mode in ("1", "L", "P"):
        with image:
            image = image.convert("RGBA" if image.info.get("transparency") is not None else "RGB")
    return image


def pillow_target(sw, sh, width, height, method):
    """The output's dimensions: a crop is the box; a scale fits the box (floor, at least 1
    pixel) and is then held to the source's size."""
    if method == "crop":
        return width, height
    if width * sh < height * sw:
        w, h = width, max(width * sh // sw, 1)
    else:
        w, h = max(height * sw // sh, 1), height
    return min(w, sw), min(h, sh)


def pillow_render(image, width, height, method, fmt):
    """One thumbnail of an opened image, encoded: a LANCZOS resize (for a crop, to cover
    the box, then its centre cut out), JPEG at quality 80 in RGB, or PNG."""
    from PIL import Image
    sw, sh = image.size
    if method == "crop":
        if width * sh > height * sw:
            rw, rh = width, width * sh // sw
        else:
            rw, rh = height * sw // sh, height
        left, top = (rw - width) // 2, (rh - height) // 2
        with image.resize((rw, rh), Image.LANCZOS) as covering:
            out = covering.crop((left, top, left + width, top + height))
    else:
        out = image.resize((width, height), Image.LANCZOS)
    if fmt == "JPEG" or out.mode == "CMYK":
        out = out.convert("RGB")
    buffer = io.BytesIO()
    out.save(buffer, fmt, quality=80)
    return buffer.getvalue()


def pillow_upload(path, fmt):
    """All five sizes of one upload from one opened image, as Synapse makes them on upload.
    Sizes whose outputs have the same dimensions are made once (a scale replaces a crop of
    the same dimensions), as Synapse does. Returns (five encoded thumbnails in SIZES order,
    how many were rendered)."""
    with pillow_open(path) as image:
        sw, sh = image.size
        render = {}  # output dimensions -> method, in SIZES order
        targets = []
        for width, height, method in SIZES:
            target = pillow_target(sw, sh, width, height, method)
            if method == "crop":
                render.setdefault(target, method)
            else:
                render[target] = method
            targets.append(target)
        made = {target: pillow_render(image, *target, method, fmt) for target, method in render.items()}
    return [made[target] for target in targets], len(made)


def pillow_request(path, fmt, width, height, method):
    """One thumbnail from a fresh open: a decode of its own."""
    with pillow_open(path) as image:
        target = pillow_target(*image.size, width, height, method)
        return pillow_render(image, *target, method, fmt)


def pillow_child(name, path, rounds, per_request):
    from PIL import Image, UnidentifiedImageError
    try:  # Debian's Pillow has no HEIF plugin (pillow-heif is not packaged)
        Image.open(path).close()
    except UnidentifiedImageError as e:
        return {"unsupported": str(e)}
    fmt = PILLOW_OUTPUT[CORPUS[name][1]]
    cpu = cpu_seconds(resource.RUSAGE_SELF)
    start = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        if per_request:
            jobs = [size for _ in range(rounds) for size in SIZES]
            thumbnails = list(pool.map(lambda s: pillow_request(path, fmt, *s), jobs))
            rendered = len(jobs)
        else:
            done = list(pool.map(lambda _: pillow_upload(path, fmt), range(rounds)))
            thumbnails = [t for five, _ in done for t in five]
            rendered = sum(n for _, n in done)
    seconds = time.perf_counter() - start
    cpu = cpu_seconds(resource.RUSAGE_SELF) - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "images": rounds, "count": rounds * len(SIZES), "rendered": rendered,
            "peak": peak, "cpu": cpu,
            "outputs": [(*image_info(data), len(data)) for data in thumbnails]}


# ---------------------------------------------------------------------------------------
# The ImageMagick reference (a child process: RUSAGE_CHILDREN covers the converts alone)

def imagemagick_command(name, path, width, height, method, out):
    source = f"{path}[0]" if CORPUS[name][1] == "image/gif" else str(path)
    quality = ["-quality", "80"] if out.suffix == ".jpg" else []
    if method == "crop":
        return [CONVERT, source, "-thumbnail", f"{width}x{height}^", "-gravity", "center",
                "-extent", f"{width}x{height}"] + quality + [str(out)]
    # ">": shrink only, as mxcd and Synapse do.
    return [CONVERT, source, "-thumbnail", f"{width}x{height}>"] + quality + [str(out)]


def imagemagick_child(name, path, rounds):
    """One convert per thumbnail, the five of every image, 2 at a time."""
    suffix = ".png" if name.startswith("PNG") else ".jpg"  # PNG where the source has alpha
    jobs = [size for _ in range(rounds) for size in SIZES]
    with tempfile.TemporaryDirectory(prefix="mxcd-bench-im-") as tmp:
        outs = [Path(tmp) / f"{i}{suffix}" for i in range(len(jobs))]

        def render(i):
            return subprocess.run(imagemagick_command(name, path, *jobs[i], outs[i]),
                                  capture_output=True, text=True)

        start = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            done = list(pool.map(render, range(len(jobs))))
        seconds = time.perf_counter() - start
        cpu = cpu_seconds(resource.RUSAGE_CHILDREN)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        errors = [p.stderr.strip()[:300] for p in done if p.returncode != 0]
        outputs = []
        for out in outs:
            data = out.read_bytes() if out.exists() else b""
            fmt, size = image_info(data)
            outputs.append((fmt, size, len(data)))
    return {"seconds": seconds, "images": rounds, "count": len(jobs), "peak": peak, "cpu": cpu,
            "outputs": outputs, "errors": errors}


def cpu_seconds(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_child(engine, name, path, rounds):
    """engine: pillow, pillow-request or imagemagick."""
    out = subprocess.run([sys.executable, __file__, "--child", engine, name, str(path), str(rounds)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{engine} child for {name} failed:\n{out.stderr}")
    return json.loads(out.stdout)


# ---------------------------------------------------------------------------------------
# mxcd

def process_cpu_seconds(pid):
    """utime + stime of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_bytes(pid, field):
    """A memory figure from /proc/PID/status: VmHWM (peak RSS) or VmRSS."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field}")


def vmhwm(pid):
    return status_bytes(pid, "VmHWM")


class MxcdThumbnails:
    """One mxcd (a fresh process per format, so that its VmHWM is that format's) on a
    filesystem store and SQLite."""

    def __init__(self, work, generate_on_upload):
        # bench_common (and the test harness it imports) only where mxcd runs: the child
        # processes of the references measure their own memory.
        from bench_common import Mxcd
        self.server = Mxcd(work, {"name": "bucket", "type": "filesystem", "path": str(work / "bucket")})
        config = json.loads(self.server.config.read_text())
        config["thumbnails"] = {"generate_on_upload": generate_on_upload, "workers": 2}
        self.server.config.write_text(json.dumps(config))
        self.database = json.loads(self.server.config.read_text())["database"]["sqlite"]["path"]
        self.log = work / "mxcd.log"
        self.local = threading.local()

    def start(self):
        self.server.start()

    def stop(self):
        if self.server.proc and self.server.proc.poll() is None:
            self.server.stop()

    def alive(self):
        return self.server.proc.poll() is None

    @property
    def pid(self):
        return self.server.proc.pid

    def session(self):
        import requests
        from bench_common import TOKEN
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.local.session.headers["Authorization"] = f"Bearer {TOKEN}"
        return self.local.session

    def upload(self, data, content_type):
        """(media ID, when the response came, perf_counter)"""
        r = self.session().post(f"{self.server.url}/_matrix/media/v3/upload", data=data,
                                headers={"Content-Type": content_type}, timeout=120)
        r.raise_for_status()
        return r.json()["content_uri"].rsplit("/", 1)[1], time.perf_counter()

    def rows(self, connection, media_ids):
        """{media ID: rows in the thumbnails table}"""
        if not media_ids:
            return {}
        marks = ",".join("?" * len(media_ids))
        return dict(connection.execute(
            f"SELECT media_id, COUNT(*) FROM thumbnails WHERE media_id IN ({marks}) GROUP BY media_id",
            list(media_ids)).fetchall())

    def connect(self):
        # Read-only, as tests/integration/harness.py reads it: mxcd is the only writer.
        return sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10)

    def warm_up(self):
        """One small JPEG uploaded and its thumbnails made before the clock starts, so that
        libvips's start-up and the first connections are not in the figures."""
        from PIL import Image
        buffer = io.BytesIO()
        Image.effect_noise((1024, 768), 64).convert("RGB").save(buffer, "JPEG", quality=90)
        media_id, _ = self.upload(buffer.getvalue(), "image/jpeg")
        connection = self.connect()
        try:
            deadline = time.monotonic() + 30
            while self.rows(connection, [media_id]).get(media_id, 0) < len(SIZES):
                if time.monotonic() > deadline or not self.alive():
                    return f"warm-up: no {len(SIZES)} thumbnails after 30 s"
                time.sleep(0.02)
        finally:
            connection.close()
        return None

    def upload_and_wait(self, path, content_type, rounds):
        """The primary measurement: `rounds` uploads of the file by 2 client threads, timed
        from the first upload's start until every upload has all its thumbnails' rows."""
        data = path.read_bytes()
        connection = self.connect()
        errors = []
        cpu = process_cpu_seconds(self.pid)
        start = time.perf_counter()
        pool = ThreadPoolExecutor(THREADS)
        pending = [pool.submit(self.upload, data, content_type) for _ in range(rounds)]
        uploaded = {}  # media ID -> when its upload's response came
        complete = {}  # media ID -> when its last row was first seen
        deadline = start + 120 + 30 * rounds
        try:
            while True:
                for future in [f for f in pending if f.done()]:
                    pending.remove(future)
                    try:
                        media_id, answered = future.result()
                        uploaded[media_id] = answered - start
                    except Exception as e:  # noqa: BLE001 - a failed upload is reported
                        errors.append(f"upload: {e}")
                waiting = [m for m in uploaded if m not in complete]
                now = time.perf_counter()
                for media_id, count in self.rows(connection, waiting).items():
                    if count >= len(SIZES):
                        complete[media_id] = now - start
                if not pending and len(complete) == len(uploaded):
                    break
                if now > deadline or not self.alive():
                    errors.append(f"{len(uploaded) - len(complete)} upload(s) without their "
                                  f"{len(SIZES)} thumbnails after {now - start:.0f} s"
                                  + ("" if self.alive() else f"; mxcd exited ({self.server.proc.returncode})"))
                    break
                time.sleep(0.02)
            seconds = (max(complete.values()) if complete else time.perf_counter() - start)
        finally:
            pool.shutdown(wait=True)
            connection.close()
        if not self.alive():
            return {"seconds": seconds, "images": 0, "count": 0, "errors": errors,
                    "outputs": [(None, None, 0)] * (rounds * len(SIZES))}
        cpu = process_cpu_seconds(self.pid) - cpu
        peak = vmhwm(self.pid)
        time.sleep(0.5)
        rss = status_bytes(self.pid, "VmRSS")
        # Every thumbnail checked through the API (served from the store: not timed).
        media_ids = list(uploaded)
        connection = self.connect()
        try:
            counts = self.rows(connection, media_ids)
        finally:
            connection.close()
        errors += [f"{m}: {counts.get(m, 0)} thumbnail rows" for m in media_ids
                   if counts.get(m, 0) != len(SIZES)]
        outputs, more = self.fetch_all(media_ids)
        errors += more
        outputs += [(None, None, 0)] * (rounds * len(SIZES) - len(outputs))
        return {"seconds": seconds, "images": len(complete), "count": len(complete) * len(SIZES),
                "cpu": cpu, "peak": peak, "rss": rss, "outputs": outputs, "errors": errors,
                "uploads": sorted(uploaded.values()), "done": sorted(complete.values())}

    def thumbnail(self, media_id, width, height, method):
        """(status, content type, body, seconds)"""
        import requests
        start = time.perf_counter()
        try:
            r = self.session().get(
                f"{self.server.url}/_matrix/client/v1/media/thumbnail/bench.local/{media_id}",
                params={"width": width, "height": height, "method": method}, timeout=300)
        except requests.RequestException as e:
            return None, None, str(e).encode(), time.perf_counter() - start
        return r.status_code, r.headers.get("Content-Type"), r.content, time.perf_counter() - start

    def fetch_all(self, media_ids):
        """Every (media, size), 2 client threads: (outputs, errors, latencies)."""
        jobs = [(media_id, size) for media_id in media_ids for size in SIZES]
        with ThreadPoolExecutor(THREADS) as pool:
            done = list(pool.map(lambda job: self.thumbnail(job[0], *job[1]), jobs))
        outputs, errors = [], []
        for (media_id, size), (status, content_type, body, _) in zip(jobs, done):
            if status != 200:
                errors.append(f"{size}: HTTP {status} {body[:300]!r}")
                outputs.append((None, None, 0))
                continue
            fmt, got = image_info(body)
            outputs.append((fmt, got, len(body)))
            if fmt is None or content_type != f"image/{fmt.lower()}":
                errors.append(f"{size}: Content-Type {content_type}, bytes read as {fmt}")
        self.latencies = [d[3] for d in done]
        return outputs, errors

    def per_request(self, path, content_type, rounds):
        """The secondary measurement (generate_on_upload: false): `rounds` uploads, untimed,
        then every (media, size) requested, 2 client threads; only the requests are timed."""
        data = path.read_bytes()
        media_ids = [self.upload(data, content_type)[0] for _ in range(rounds)]
        cpu = process_cpu_seconds(self.pid)
        start = time.perf_counter()
        outputs, errors = self.fetch_all(media_ids)
        seconds = time.perf_counter() - start
        if not self.alive():
            return {"seconds": seconds, "images": 0, "count": 0, "outputs": outputs,
                    "errors": errors + [f"mxcd exited ({self.server.proc.returncode})"]}
        cpu = process_cpu_seconds(self.pid) - cpu
        made = sum(1 for o in outputs if o[0] is not None)
        return {"seconds": seconds, "images": rounds, "count": made, "cpu": cpu,
                "peak": vmhwm(self.pid), "rss": status_bytes(self.pid, "VmRSS"),
                "outputs": outputs, "errors": errors, "latencies": self.latencies}


def run_mxcd(work, name, path, rounds, generate_on_upload):
    """One format through a fresh mxcd: (result, problems)."""
    mxcd = MxcdThumbnails(work, generate_on_upload)
    problems = []
    mxcd.start()
    try:
        started = vmhwm(mxcd.pid)
        if generate_on_upload:
            warm = mxcd.warm_up()
            if warm:
                problems.append(warm)
            result = mxcd.upload_and_wait(path, CORPUS[name][1], rounds)
        else:
            result = mxcd.per_request(path, CORPUS[name][1], rounds)
        result["started"] = started
    finally:
        mxcd.stop()
    if mxcd.log.exists() and mxcd.log.stat().st_size:
        problems.append("mxcd.log: " + mxcd.log.read_text(errors="replace")[-2000:])
    return result, problems


# ---------------------------------------------------------------------------------------
# The report

def check(name, result, rounds):
    """Problems with an engine's outputs: wrong sizes, unreadable bytes."""
    problems = list(result.get("errors", []))
    jobs = [size for _ in range(rounds) for size in SIZES]
    for (w, h, m), (fmt, got, length) in zip(jobs, result["outputs"]):
        want = expected_size(name, w, h, m)
        if fmt is not None and not size_ok(got, want, m):
            problems.append(f"{w}x{h} {m}: {got[0]}x{got[1]}, expected {want[0]}x{want[1]}")
    return problems


def per_second(result, what):
    """Images or thumbnails per second, "unsupported", or None when the engine did not run."""
    if result and "unsupported" in result:
        return "unsupported"
    return result[what] / result["seconds"] if result else None


def fmt_rate(value):
    if isinstance(value, str):
        return value
    return f"{value:.2f}" if value is not None and value < 10 else (f"{value:.1f}" if value is not None else "-")


def fmt_ratio(a, b):
    if isinstance(a, str) or isinstance(b, str) or a is None or not b:
        return "-"
    return f"{a / b:.2f}x"


def fmt_mib(value):
    return f"{value / MIB:.0f}" if value is not None else "-"


def fmt_cpu(result, per):
    if not result:
        return "-"
    if "unsupported" in result:
        return "unsupported"
    if not result.get(per) or "cpu" not in result:
        return "-"
    return f"{result['cpu'] / result[per] * 1000:.0f}"


def total(results, names, what):
    """Per second over several formats: all of them / all seconds (slow formats weigh most)."""
    parts = [results.get(n) for n in names]
    if any(p and "unsupported" in p for p in parts):
        return "unsupported"
    if any(p is None for p in parts):
        return None
    return sum(p[what] for p in parts) / sum(p["seconds"] for p in parts)


def peak_over(results, names):
    return max([results[n]["peak"] for n in names if results.get(n) and "peak" in results[n]],
               default=None)


def report(rounds, results, per_request, problems):
    n = len(SIZES)
    print(f"Upload + {n} thumbnails: {rounds} images per format, 2 at a time. "
          f"Thumbnails/s = {n} x images/s.\n")
    print("| Format | mxcd images/s (thumbs/s) | Pillow, Synapse's way | ImageMagick, 5 converts "
          "| mxcd / Pillow | mxcd / IM |")
    print("|---|---|---|---|---|---|")

    def both(value):
        if value is None or isinstance(value, str):
            return fmt_rate(value)
        return f"{fmt_rate(value)} ({fmt_rate(value * n)})"

    rows = [(name, [name]) for name in CORPUS] + [("**JPEG + PNG + GIF**", COMMON),
                                                  ("**all four**", list(CORPUS))]
    for label, names in rows:
        rates = {e: total(results[e], names, "images") for e in ("mxcd", "pillow", "imagemagick")}
        print(f"| {label} | {both(rates['mxcd'])} | {both(rates['pillow'])} | {both(rates['imagemagick'])} "
              f"| {fmt_ratio(rates['mxcd'], rates['pillow'])} | {fmt_ratio(rates['mxcd'], rates['imagemagick'])} |")
    print("\n| CPU ms per image (5 thumbnails) | mxcd (whole process) | Pillow | ImageMagick (5 converts) |")
    print("|---|---|---|---|")
    for name in CORPUS:
        print(f"| {name} | " + " | ".join(fmt_cpu(results[e].get(name), "images")
                                           for e in ("mxcd", "pillow", "imagemagick")) + " |")
    print("\n| Peak RSS, MiB | mxcd VmHWM (fresh process) | mxcd VmRSS after | Pillow process "
          "| ImageMagick, one convert |")
    print("|---|---|---|---|---|")
    for label, names in rows:
        m = results["mxcd"]
        rss = max([m[x]["rss"] for x in names if m.get(x) and "rss" in m[x]], default=None)
        pillow = "unsupported" if any("unsupported" in (results["pillow"].get(x) or {}) for x in names) \
            else fmt_mib(peak_over(results["pillow"], names))
        print(f"| {label} | {fmt_mib(peak_over(m, names))} | {fmt_mib(rss)} | {pillow} "
              f"| {fmt_mib(peak_over(results['imagemagick'], names))} |")
    started = [r["started"] for r in results["mxcd"].values() if "started" in r]
    if started:
        print(f"\nmxcd VmHWM once started, before the warm-up: {fmt_mib(max(started))} MiB.")
    for name in CORPUS:
        r = results["mxcd"].get(name)
        if r and r.get("uploads"):
            print(f"mxcd {name}: uploads answered at "
                  + ", ".join(f"{t * 1000:.0f}" for t in r["uploads"])
                  + " ms; all thumbnails of each at " + ", ".join(f"{t * 1000:.0f}" for t in r["done"]) + " ms")
        p = results["pillow"].get(name)
        if p and "rendered" in p and p["rendered"] != p["count"]:
            print(f"pillow {name}: {p['rendered']} thumbnails rendered for {p['count']} "
                  "(sizes with the same output dimensions made once, as Synapse does)")
    for name in CORPUS:
        for engine in ("mxcd", "pillow", "imagemagick"):
            r = results[engine].get(name)
            if r and r.get("outputs"):
                formats = sorted({f"{o[0]}" for o in r["outputs"]})
                kib = sum(o[2] for o in r["outputs"]) / len(r["outputs"]) / 1024
                print(f"{engine} {name}: output {'/'.join(formats)}, mean {kib:.1f} KiB")
    if per_request:
        print(f"\nPer request (secondary): each size requested on its own, a decode each; "
              f"{n} x {rounds} thumbnails per format, 2 at a time. ImageMagick: the figures above "
              f"(the same converts).\n")
        print("| Thumbnails per second | mxcd | Pillow, a fresh open each | ImageMagick | mxcd / Pillow "
              "| mxcd / IM | CPU ms/thumb: mxcd | Pillow | IM | peak MiB: mxcd | Pillow |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for label, names in rows:
            rates = {e: total(results[e], names, "count") for e in ("mxcd-request", "pillow-request", "imagemagick")}
            cpus = [fmt_cpu(results[e].get(names[0]), "count") if len(names) == 1 else ""
                    for e in ("mxcd-request", "pillow-request", "imagemagick")]
            pillow_peak = "unsupported" if rates["pillow-request"] == "unsupported" \
                else fmt_mib(peak_over(results["pillow-request"], names))
            print(f"| {label} | {fmt_rate(rates['mxcd-request'])} | {fmt_rate(rates['pillow-request'])} "
                  f"| {fmt_rate(rates['imagemagick'])} "
                  f"| {fmt_ratio(rates['mxcd-request'], rates['pillow-request'])} "
                  f"| {fmt_ratio(rates['mxcd-request'], rates['imagemagick'])} | " + " | ".join(cpus)
                  + f" | {fmt_mib(peak_over(results['mxcd-request'], names))} | {pillow_peak} |")
        for name in CORPUS:
            r = results["mxcd-request"].get(name)
            if r and r.get("latencies"):
                lat = sorted(r["latencies"])
                print(f"mxcd per request {name}: median {lat[len(lat) // 2] * 1000:.0f} ms, "
                      f"max {lat[-1] * 1000:.0f} ms")
    if problems:
        print("\nProblems:")
        for p in problems:
            print(f"- {p}")
    else:
        print("\nNo problems: every output had the right size, mxcd's Content-Types matched their "
              "bytes, and mxcd logged nothing at warn.")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    references_only = "--references-only" in sys.argv
    per_request = "--per-request" in sys.argv
    rounds = int(args[0]) if args else 3
    sys.path.insert(0, str(HERE))
    paths = corpus()
    engines = ["mxcd", "pillow", "imagemagick", "mxcd-request", "pillow-request"]
    results = {engine: {} for engine in engines}
    problems = []
    work = Path(tempfile.mkdtemp(prefix="mxcd-bench-thumbnails-"))
    try:
        for i, name in enumerate(CORPUS):
            if not references_only:
                results["mxcd"][name], more = run_mxcd(work / f"upload-{i}", name, paths[name], rounds, True)
                problems += [f"mxcd {name}: {p}" for p in more]
            results["pillow"][name] = run_child("pillow", name, paths[name], rounds)
            results["imagemagick"][name] = run_child("imagemagick", name, paths[name], rounds)
        if per_request:
            for i, name in enumerate(CORPUS):
                if not references_only:
                    results["mxcd-request"][name], more = run_mxcd(work / f"request-{i}", name, paths[name],
                                                                   rounds, False)
                    problems += [f"mxcd per request {name}: {p}" for p in more]
                results["pillow-request"][name] = run_child("pillow-request", name, paths[name], rounds)
    finally:
        for engine, by_name in results.items():
            for name, result in by_name.items():
                if "outputs" in result:
                    problems += [f"{engine} {name}: {p}" for p in check(name, result, rounds)]
        report(rounds, results, per_request, problems)
        if os.environ.get("KEEP"):
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        engine, name, path, rounds = sys.argv[2], sys.argv[3], Path(sys.argv[4]), int(sys.argv[5])
        if engine == "imagemagick":
            print(json.dumps(imagemagick_child(name, path, rounds)))
        else:
            print(json.dumps(pillow_child(name, path, rounds, engine == "pillow-request")))
    else:
        main()
