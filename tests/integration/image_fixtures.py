"""Test images for the thumbnail tests, made at test time with Pillow and the Debian image
tools (vips from libvips-tools for HEIC, AVIF, JPEG XL and TIFF, ImageMagick's convert for
BMP). Each function returns the bytes of one image; they are made once per session (in a
temporary directory removed at exit) and then served from memory.

The pictures have content (gradients and noise), not flat colour, so that a decoder or a
resizer that gets something wrong shows it. The hostile ones at the end are what an attacker
would upload: lying headers, truncated and random bytes, SVGs that point outside themselves,
and a GIF with thousands of frames."""

import atexit
import functools
import io
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

from PIL import Image, ImageCms, ImageDraw

_DIR = Path(tempfile.mkdtemp(prefix="mxcd-images-"))
atexit.register(shutil.rmtree, _DIR, True)

# The colour of the file the hostile SVGs try to pull in: it must never reach a thumbnail.
SECRET_COLOUR = (255, 0, 255)
SECRET_PNG = _DIR / "secret.png"
SECRET_TXT = _DIR / "secret.txt"

# What the EXIF-rotated JPEG carries.
GPS_LATITUDE = (52.0, 31.0, 12.5)
CAMERA_MAKE = "mxcd-test-camera"
XMP_MARKER = b"mxcd-xmp-marker"


def _run(*argv):
    subprocess.run([str(a) for a in argv], check=True, capture_output=True, timeout=120)


def _encode(image, format, **params):
    out = io.BytesIO()
    image.save(out, format, **params)
    return out.getvalue()


def _picture(width, height):
    """An RGB picture: a horizontal gradient in red, a vertical one in green, noise in
    blue."""
    ramp = Image.linear_gradient("L")
    red = ramp.rotate(90).resize((width, height))
    green = ramp.resize((width, height))
    noise = Image.effect_noise((width, height), 48)
    return Image.merge("RGB", (red, green, noise))


def _alpha_picture(width, height):
    """An RGBA picture whose alpha runs from fully transparent (left) to opaque (right),
    with a fully transparent hole in the middle."""
    picture = _picture(width, height).convert("RGBA")
    alpha = Image.linear_gradient("L").rotate(90).resize((width, height))
    hole = ImageDraw.Draw(alpha)
    hole.ellipse((width // 3, height // 3, 2 * width // 3, 2 * height // 3), fill=0)
    picture.putalpha(alpha)
    return picture


def _frames(width, height, count):
    """count clearly different frames (the picture turned a little more each time)."""
    base = _picture(width, height)
    return [base.rotate(360 * i / count) for i in range(count)]


def _via_vips(png_bytes, suffix, options=""):
    """Converts a PNG to another format with `vips copy`; suffix picks the saver."""
    source = _DIR / f"in-{os.urandom(6).hex()}.png"
    target = _DIR / f"out-{os.urandom(6).hex()}.{suffix}"
    source.write_bytes(png_bytes)
    _run("vips", "copy", source, f"{target}{options}")
    return target.read_bytes()


# --- ordinary images ---

@functools.cache
def jpeg(width=1600, height=1200):
    return _encode(_picture(width, height), "JPEG", quality=85)


@functools.cache
def png(width=320, height=240):
    """Opaque: RGB, no alpha channel."""
    return _encode(_picture(width, height), "PNG")


@functools.cache
def png_alpha(width=320, height=240):
    return _encode(_alpha_picture(width, height), "PNG")


@functools.cache
def png_opaque_alpha(width=320, height=240):
    """RGBA, but every pixel fully opaque: the alpha channel holds no transparency."""
    return _encode(_picture(width, height).convert("RGBA"), "PNG")


@functools.cache
def png_padded(total):
    """png() grown to about `total` bytes by a private ancillary chunk of random bytes
    (which decoders skip): a large file of a small picture."""
    base = png()
    iend = _png_chunk(b"IEND", b"")
    assert base.endswith(iend)
    filler = os.urandom(max(0, total - len(base)))
    return base[:-len(iend)] + _png_chunk(b"mxPd", filler) + iend


@functools.cache
def png_random(width, height):
    """Noise that no compressor can shrink: the PNG is about 3 * width * height bytes."""
    picture = Image.frombytes("RGB", (width, height), os.urandom(3 * width * height))
    return _encode(picture, "PNG")


@functools.cache
def png_1x1():
    return _encode(Image.new("RGB", (1, 1), (12, 34, 56)), "PNG")


@functools.cache
def wide():
    return _encode(_picture(4000, 20), "PNG")


@functools.cache
def tall():
    return _encode(_picture(20, 4000), "PNG")


@functools.cache
def apng(width=320, height=240, frames=4):
    images = _frames(width, height, frames)
    # Every frame its own delay, and a finite loop count, so that a thumbnail that lost the
    # timing shows it.
    return _encode(images[0], "PNG", save_all=True, append_images=images[1:],
                   duration=[40 * (i + 1) for i in range(frames)], loop=3)


@functools.cache
def gif(width=320, height=240):
    return _encode(_picture(width, height).convert("P", palette=Image.Palette.ADAPTIVE), "GIF")


@functools.cache
def gif_animated(width=320, height=240, frames=4):
    images = [f.convert("P", palette=Image.Palette.ADAPTIVE)
              for f in _frames(width, height, frames)]
    return _encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=100,
                   loop=0)


@functools.cache
def webp(width=320, height=240):
    return _encode(_picture(width, height), "WEBP", quality=80)


@functools.cache
def webp_alpha(width=320, height=240):
    return _encode(_alpha_picture(width, height), "WEBP", quality=80)


@functools.cache
def webp_animated(width=320, height=240, frames=4):
    images = _frames(width, height, frames)
    return _encode(images[0], "WEBP", save_all=True, append_images=images[1:], duration=100,
                   loop=0, quality=80)


@functools.cache
def bmp(width=320, height=240):
    source = _DIR / f"bmp-{width}x{height}.png"
    target = source.with_suffix(".bmp")
    source.write_bytes(png(width, height))
    _run("convert", source, f"BMP3:{target}")
    return target.read_bytes()


@functools.cache
def tiff(width=320, height=240):
    return _via_vips(png(width, height), "tif", "[compression=deflate]")


@functools.cache
def heic(width=320, height=240):
    return _via_vips(png(width, height), "heic", "[Q=70]")


@functools.cache
def avif(width=320, height=240):
    return _via_vips(png(width, height), "avif", "[compression=av1,Q=60]")


@functools.cache
def jxl(width=320, height=240):
    return _via_vips(png(width, height), "jxl", "[Q=70]")


@functools.cache
def svg():
    """400x300, a gradient-filled shape on a transparent background."""
    return b"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300" viewBox="0 0 400 300">
  <defs>
    <linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
      <stop offset="0" stop-color="#0a3d91"/>
      <stop offset="0.5" stop-color="#f2c14e"/>
      <stop offset="1" stop-color="#c0392b"/>
    </linearGradient>
  </defs>
  <ellipse cx="200" cy="150" rx="180" ry="120" fill="url(#g)"/>
  <path d="M40 260 L200 40 L360 260 Z" fill="none" stroke="#2ecc71" stroke-width="12"/>
</svg>
"""


def _app1_xmp(packet):
    payload = b"http://ns.adobe.com/xap/1.0/\x00" + packet
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


@functools.cache
def jpeg_exif_rotated():
    """Stored 400x200 with EXIF orientation 6 (turn 90 degrees clockwise to display), so it
    displays 200x400. The stored left half is red and the right half blue: displayed, the
    top half is red and the bottom half blue. It carries GPS EXIF, a camera make, an sRGB
    ICC profile and an XMP packet, none of which may reach a thumbnail."""
    width, height = 400, 200
    green = Image.effect_noise((width, height), 30)
    red = Image.new("L", (width, height), 30)
    red.paste(220, (0, 0, width // 2, height))
    blue = Image.new("L", (width, height), 220)
    blue.paste(30, (0, 0, width // 2, height))
    picture = Image.merge("RGB", (red, green, blue))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: right-top
    exif[0x010F] = CAMERA_MAKE  # Make
    exif[0x8825] = {1: "N", 2: GPS_LATITUDE, 3: "E", 4: (13.0, 24.0, 36.0)}  # the GPS IFD
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = _encode(picture, "JPEG", quality=90, exif=exif.tobytes(), icc_profile=icc)
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
           b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
           b'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>' + XMP_MARKER +
           b"</dc:title></rdf:Description></rdf:RDF></x:xmpmeta>")
    assert data[:2] == b"\xff\xd8"
    return data[:2] + _app1_xmp(xmp) + data[2:]


# --- hostile images ---

def _png_chunk(kind, payload):
    return (struct.pack(">I", len(payload)) + kind + payload +
            struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


@functools.cache
def png_huge_header(width=100_000, height=100_000):
    """A well-formed PNG whose IHDR declares width x height (8-bit RGB) and whose IDAT
    holds a single row: a decoder that trusts the header allocates 30 GB."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\x00" + bytes(3 * width)  # filter type 0, then black pixels
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) +
            _png_chunk(b"IDAT", zlib.compress(row, 9)) + _png_chunk(b"IEND", b""))


@functools.cache
def jpeg_truncated():
    """The first half of a valid 800x600 JPEG: headers intact, the scan cut short."""
    whole = jpeg(800, 600)
    return whole[:len(whole) // 2]


@functools.cache
def random_bytes():
    return os.urandom(20_000)


def _write_secrets():
    if not SECRET_PNG.exists():
        Image.new("RGB", (64, 64), SECRET_COLOUR).save(SECRET_PNG)
        SECRET_TXT.write_text("SECRET SECRET SECRET SECRET\n" * 4)


@functools.cache
def svg_local_refs():
    """An SVG on an opaque white background that tries to pull in local files: SECRET_PNG
    (solid SECRET_COLOUR) by absolute file: URI and by a relative reference, and
    /etc/passwd and SECRET_TXT as black text through XInclude. Rendered safely it is plain
    white; any dark or magenta pixel means a local file was read."""
    _write_secrets()
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     xmlns:xi="http://www.w3.org/2001/XInclude" width="400" height="300" viewBox="0 0 400 300">
  <rect width="400" height="300" fill="#ffffff"/>
  <image x="0" y="0" width="200" height="150" href="file://{SECRET_PNG}"/>
  <image x="200" y="0" width="200" height="150" xlink:href="file://{SECRET_PNG}"/>
  <image x="0" y="150" width="200" height="150" href="secret.png"/>
  <image x="200" y="150" width="200" height="150" href="file:///etc/passwd"/>
  <text x="5" y="60" font-size="40" fill="#000000"><xi:include href="file:///etc/passwd" parse="text"/></text>
  <text x="5" y="130" font-size="40" fill="#000000"><xi:include href="/etc/passwd" parse="text"/></text>
  <text x="5" y="200" font-size="40" fill="#000000"><xi:include href="file://{SECRET_TXT}" parse="text"/></text>
  <text x="5" y="270" font-size="40" fill="#000000"><xi:include href="secret.txt" parse="text"/></text>
</svg>
""".encode()


def svg_remote_refs(base_url):
    """An SVG whose every external reference points at base_url (a server the test runs):
    an image, XInclude, a <use> of another document, a CSS @import and a paint server."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     xmlns:xi="http://www.w3.org/2001/XInclude" width="400" height="300" viewBox="0 0 400 300">
  <style>@import url("{base_url}/style.css");</style>
  <rect width="400" height="300" fill="#ffffff"/>
  <image x="0" y="0" width="200" height="150" href="{base_url}/image.png"/>
  <image x="200" y="0" width="200" height="150" xlink:href="{base_url}/image2.png"/>
  <use href="{base_url}/sprite.svg#shape"/>
  <rect x="0" y="150" width="200" height="150" fill="url({base_url}/paint.svg#p)"/>
  <text x="5" y="280" font-size="30"><xi:include href="{base_url}/text" parse="text"/></text>
</svg>
""".encode()


@functools.cache
def gif_many_frames(frames=3000, size=16):
    """A size x size GIF with `frames` frames, each different from the one before."""
    palette = [c for k in range(256) for c in ((k * 37) % 256, (k * 91) % 256, (k * 13) % 256)]
    images = []
    for i in range(frames):
        frame = Image.new("P", (size, size), 0)
        frame.putpalette(palette)
        frame.putpixel((i % size, (i // size) % size), 1 + i % 255)
        images.append(frame)
    return _encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=20,
                   loop=0)


@functools.cache
def gif_frames_taller_than_canvas(frames=6, width=8, height=65000, canvas_height=16):
    """A GIF whose logical screen is width x canvas_height and whose frames are each a plain
    width x height image of a colour of its own: decoders grow the canvas to the frames, so
    a few KB make pages of 65,000 rows."""
    palette = [c for k in range(256) for c in ((k * 37) % 256, (k * 91) % 256, (k * 13) % 256)]
    images = []
    for index in range(frames):
        frame = Image.new("P", (width, height), 1 + index)
        frame.putpalette(palette)
        single = _encode(frame, "GIF")
        flags = single[10]
        colour_table = 3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0
        head = (single[:6] + struct.pack("<HH", width, canvas_height) +
                single[10:13 + colour_table])
        images.append(single[single.index(b"\x2c", 13 + colour_table):-1])  # descriptor, data
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    delay = b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # 100 ms
    return head + loop + b"".join(delay + image for image in images) + b"\x3b"


def _changing_frames(width, height, count):
    """count palette frames of width x height that differ from each other only in a small
    square (so that the file stays small while every decoded frame is a full canvas)."""
    palette = [c for k in range(256) for c in ((k * 37) % 256, (k * 91) % 256, (k * 13) % 256)]
    base = Image.new("P", (width, height), 0)
    base.putpalette(palette)
    frames = []
    for i in range(count):
        frame = base.copy()
        x, y = (i * 8) % (width - 8), (i * 8 // (width - 8) * 8) % (height - 8)
        frame.paste(1 + i % 255, (x, y, x + 8, y + 8))
        frames.append(frame)
    return frames


@functools.cache
def apng_striped(width, height, frames, claimed):
    """An 8-bit RGB APNG of `frames` full-canvas frames (an fcTL and frame data each) whose
    acTL announces `claimed` frames. The frames cycle through eight sets of flat stripes, so
    that each is a few kilobytes compressed however large it is decoded."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    payloads = []
    for variant in range(8):
        rows = b"".join(b"\x00" + bytes([(y // 24 * 10 + 31 * variant) % 256]) * (3 * width)
                        for y in range(height))
        payloads.append(zlib.compress(rows, 9))
    out = [b"\x89PNG\r\n\x1a\n", _png_chunk(b"IHDR", ihdr),
           _png_chunk(b"acTL", struct.pack(">II", claimed, 0))]
    sequence = 0

    def frame_control():
        nonlocal sequence
        # Full canvas at 0,0; 1/25 s; dispose none; blend source.
        chunk = _png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", sequence, width, height, 0, 0,
                                                1, 25, 0, 0))
        sequence += 1
        return chunk

    out += [frame_control(), _png_chunk(b"IDAT", payloads[0])]  # frame 0 is the default image
    for i in range(1, frames):
        out.append(frame_control())
        out.append(_png_chunk(b"fdAT", struct.pack(">I", sequence) + payloads[i % 8]))
        sequence += 1
    out.append(_png_chunk(b"IEND", b""))
    return b"".join(out)


def apng_lying_frame_count():
    """800x600, an acTL announcing 2 frames, and 1,500 frames (3.5 MB): a renderer that
    trusts acTL composes them all."""
    return apng_striped(800, 600, 1500, 2)


@functools.cache
def gif_over_budget(frames=300, width=800, height=600):
    """A GIF of `frames` full 800x600 frames: more than thumbnails.max_frames, and more
    bytes than an animation's budget however small the box."""
    images = _changing_frames(width, height, frames)
    return _encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=40,
                   loop=0)


@functools.cache
def webp_over_budget(frames=300, width=800, height=600):
    """The same as gif_over_budget, as an animated WebP."""
    images = [f.convert("RGB") for f in _changing_frames(width, height, frames)]
    return _encode(images[0], "WEBP", save_all=True, append_images=images[1:], duration=40,
                   loop=0, quality=50, method=0)


# The ordinary formats: name -> (function, content type, has alpha, animated).
FORMATS = {
    "jpeg": (jpeg, "image/jpeg", False, False),
    "png": (png, "image/png", False, False),
    "png-alpha": (png_alpha, "image/png", True, False),
    "apng": (apng, "image/png", False, True),
    "gif": (gif, "image/gif", False, False),
    "gif-animated": (gif_animated, "image/gif", False, True),
    "webp": (webp, "image/webp", False, False),
    "webp-alpha": (webp_alpha, "image/webp", True, False),
    "webp-animated": (webp_animated, "image/webp", False, True),
    "bmp": (bmp, "image/bmp", False, False),
    "tiff": (tiff, "image/tiff", False, False),
    "heic": (heic, "image/heic", False, False),
    "avif": (avif, "image/avif", False, False),
    "jxl": (jxl, "image/jxl", False, False),
    "svg": (svg, "image/svg+xml", True, False),
}
