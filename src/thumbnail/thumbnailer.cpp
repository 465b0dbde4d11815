#include "thumbnail/thumbnailer.hpp"

#include "thumbnail/apng.hpp"
#include "thumbnail/vips_support.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <stdexcept>

namespace mxcd::thumbnail {

namespace {

// The formats we thumbnail, recognised from their first bytes. Anything else never reaches
// libvips, whose other loaders (PDF, FITS, OpenSlide, MATLAB, CSV, ...) are blocked as well.
enum class Format { jpeg, png, gif, webp, bmp, tiff, heif, jxl, svg };

// The libvips loaders left reachable. ImageMagick only reads BMP: nothing but bytes that
// start like a BMP is handed to libvips without a loader of its own claiming it first.
constexpr const char* kAllowedLoaders[] = {
    "VipsForeignLoadJpegBuffer", "VipsForeignLoadPngBuffer",  "VipsForeignLoadNsgifBuffer",
    "VipsForeignLoadWebpBuffer", "VipsForeignLoadTiffBuffer", "VipsForeignLoadHeifBuffer",
    "VipsForeignLoadJxlBuffer",  "VipsForeignLoadSvgBuffer",  "VipsForeignLoadMagickBuffer",
};

bool starts_with(std::string_view bytes, std::string_view prefix) {
  return bytes.substr(0, prefix.size()) == prefix;
}

// Up to n bytes from pos, none past the end (substr throws std::out_of_range there).
std::string_view bytes_at(std::string_view bytes, std::size_t pos, std::size_t n) {
  return pos <= bytes.size() ? bytes.substr(pos, n) : std::string_view();
}

std::optional<Format> sniff(std::string_view b) {
  using namespace std::string_view_literals;
  if (starts_with(b, "\xFF\xD8\xFF"sv)) return Format::jpeg;
  if (starts_with(b, "\x89PNG\r\n\x1A\n"sv)) return Format::png;
  if (starts_with(b, "GIF87a"sv) || starts_with(b, "GIF89a"sv)) return Format::gif;
  if (starts_with(b, "RIFF"sv) && bytes_at(b, 8, 4) == "WEBP"sv) return Format::webp;
  if (starts_with(b, "BM"sv) && b.size() >= 26) return Format::bmp;
  if (starts_with(b, "II*\0"sv) || starts_with(b, "MM\0*"sv)) return Format::tiff;
  if (starts_with(b, "\xFF\x0A"sv) || starts_with(b, "\0\0\0\x0CJXL \r\n\x87\n"sv))
    return Format::jxl;
  if (bytes_at(b, 4, 4) == "ftyp"sv) {
    std::string_view brand = bytes_at(b, 8, 4);
    for (auto known : {"heic"sv, "heix"sv, "hevc"sv, "hevx"sv, "heim"sv, "heis"sv, "mif1"sv,
                       "msf1"sv, "avif"sv, "avis"sv}) {
      if (brand == known) return Format::heif;
    }
    return std::nullopt;
  }
  // SVG is text: an XML declaration, a comment or a doctype may come before the <svg element.
  std::string_view head = b.substr(0, 4096);
  std::size_t start = head.find_first_not_of(" \t\r\n");
  if (starts_with(head, "\xEF\xBB\xBF"sv)) start = head.find_first_not_of(" \t\r\n", 3);
  if (start != std::string_view::npos && head[start] == '<' && head.find("<svg") != head.npos) {
    return Format::svg;
  }
  return std::nullopt;
}

std::int64_t little_endian_int32(std::string_view b, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(b[at + i]);
  return static_cast<std::int32_t>(v);
}

// Every item of metadata but the animation's goes (EXIF with GPS, XMP, IPTC, ICC: the
// pixels are already sRGB). By hand, because libvips 8.14's WebP saver ignores its strip
// option, and the savers rebuild EXIF from the parsed exif-* fields, not only exif-data.
void strip_metadata(VipsImage* image) {
  static const std::string_view kKept[] = {VIPS_META_PAGE_HEIGHT, VIPS_META_N_PAGES, "delay",
                                           "loop"};
  gchar** fields = vips_image_get_fields(image);
  for (gchar** field = fields; *field; ++field) {
    if (std::find(std::begin(kKept), std::end(kKept), *field) == std::end(kKept)) {
      vips_image_remove(image, *field);
    }
  }
  g_strfreev(fields);
}

// libvips 8.14 writes an EXIF chunk (resolution, orientation) into every animated WebP,
// whatever the image's metadata: drop it, and any XMP or ICC chunk, from the RIFF container.
void strip_webp_chunks(std::string& webp) {
  constexpr std::size_t kHeader = 12;  // "RIFF", size, "WEBP"
  std::string out = webp.substr(0, kHeader);
  for (std::size_t at = kHeader; at + 8 <= webp.size();) {
    std::string_view fourcc(webp.data() + at, 4);
    std::size_t length = static_cast<std::uint32_t>(little_endian_int32(webp, at + 4));
    std::size_t next = at + 8 + length + (length & 1);
    if (next > webp.size()) return;  // not what libvips writes: leave it as it is
    if (fourcc != "EXIF" && fourcc != "XMP " && fourcc != "ICCP") {
      out.append(webp, at, next - at);
    }
    at = next;
  }
  // VP8X flags: ICC 0x20, EXIF 0x08, XMP 0x04.
  if (out.size() > kHeader + 8 && out.compare(kHeader, 4, "VP8X") == 0) {
    out[kHeader + 8] = static_cast<char>(out[kHeader + 8] & ~(0x20 | 0x08 | 0x04));
  }
  const std::uint32_t riff_size = static_cast<std::uint32_t>(out.size() - 8);
  for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<char>(riff_size >> (8 * i) & 0xFF);
  webp = std::move(out);
}

MatrixError too_slow(const Limits& limits) {
  return not_an_image("it took longer than " + std::to_string(limits.time_limit.count()) + " ms");
}

// Stops a render that runs past its deadline: libvips reports progress while it computes,
// and a killed image ends the computation with an error.
struct Deadline {
  std::chrono::steady_clock::time_point at;
  bool expired = false;
};

void on_eval(VipsImage* /*image*/, VipsProgress* progress, void* user) {
  auto* deadline = static_cast<Deadline*>(user);
  if (std::chrono::steady_clock::now() > deadline->at) {
    deadline->expired = true;
    vips_image_set_kill(progress->im, TRUE);
  }
}

// The pixels of a lazy image, computed into memory top to bottom, stopped at the deadline.
// Progress is reported per tile of `lazy`, so the deadline holds only while no single tile
// takes long: cut pieces out of an image after it is computed, not out of a lazy one.
Result<ImageRef> compute(const ImageRef& lazy, Deadline& deadline, const Limits& limits) {
  vips_image_set_progress(lazy.image, TRUE);
  g_signal_connect(lazy.image, "eval", G_CALLBACK(on_eval), &deadline);
  ImageRef pixels(vips_image_copy_memory(lazy.image));
  if (pixels.image) return pixels;
  if (!deadline.expired) return vips_failure("decoding failed");
  vips_error_clear();
  return too_slow(limits);
}

// Crop for an animation: libvips 8.14 crops the whole strip of frames, not each frame, so
// the frames are scaled to cover the box first and then each is cut down to it.
Result<ImageRef> crop_frames(ImageRef scaled, unsigned frames, const Spec& spec) {
  const int frame_height = vips_image_get_page_height(scaled.image);
  const int width = std::min<int>(scaled.image->Xsize, static_cast<int>(spec.width));
  const int height = std::min<int>(frame_height, static_cast<int>(spec.height));
  const int left = (scaled.image->Xsize - width) / 2;
  const int top = (frame_height - height) / 2;
  std::vector<ImageRef> pieces(frames);
  std::vector<VipsImage*> raw(frames);
  for (unsigned i = 0; i < frames; ++i) {
    if (vips_extract_area(scaled.image, pieces[i].out(), left,
                          static_cast<int>(i) * frame_height + top, width, height, nullptr)) {
      return vips_failure("cropping a frame failed");
    }
    raw[i] = pieces[i].image;
  }
  ImageRef joined;
  if (vips_arrayjoin(raw.data(), joined.out(), static_cast<int>(frames), "across", 1, nullptr)) {
    return vips_failure("joining the frames failed");
  }
  vips_image_set_int(joined.image, VIPS_META_PAGE_HEIGHT, height);
  return joined;
}

// The image without its alpha channel when every pixel is opaque (an SVG with a background,
// a PNG saved with an unused alpha channel): such an image is a JPEG, not a PNG. An empty
// ImageRef when some pixel is transparent.
Result<ImageRef> without_opaque_alpha(VipsImage* image) {
  const int bands = image->Bands;
  ImageRef alpha, opaque;
  double lowest = 0;
  if (vips_extract_band(image, alpha.out(), bands - 1, nullptr) ||
      vips_min(alpha.image, &lowest, nullptr)) {
    return vips_failure("reading the transparency failed");
  }
  const double opaque_value = image->BandFmt == VIPS_FORMAT_UCHAR    ? 255.0
                              : image->BandFmt == VIPS_FORMAT_USHORT ? 65535.0
                                                                     : -1.0;  // keep alpha
  if (opaque_value < 0 || lowest < opaque_value) return ImageRef();
  if (vips_extract_band(image, opaque.out(), 0, "n", bands - 1, nullptr)) {
    return vips_failure("dropping the transparency failed");
  }
  return opaque;
}

unsigned frame_count(VipsImage* image) {
  return static_cast<unsigned>(image->Ysize / std::max(1, vips_image_get_page_height(image)));
}

// Computes the thumbnail's pixels, within the deadline, and encodes them: an animated WebP
// when there are several frames, else a PNG when there is transparency, else a JPEG.
Result<Thumbnail> encode(ImageRef thumb, Deadline& deadline, const Limits& limits) {
  const unsigned frames = frame_count(thumb.image);
  // The pixels are computed into memory before encoding. A thumbnail is small, and this way
  // a transparency channel can be checked before choosing the format, and libvips 8.14's
  // WebP encoder, which leaks itself and the whole pipeline when decoding fails half-way
  // through an animation, only ever encodes pixels that are already there.
  auto decoded = compute(thumb, deadline, limits);
  if (!decoded) return std::move(decoded).error();
  thumb = std::move(*decoded);
  if (frames == 1 && vips_image_hasalpha(thumb.image)) {
    auto opaque = without_opaque_alpha(thumb.image);
    if (!opaque) return std::move(opaque).error();
    if (opaque->image) thumb = std::move(*opaque);
  }
  strip_metadata(thumb.image);

  Thumbnail result;
  void* buffer = nullptr;
  std::size_t length = 0;
  int failed = 0;
  if (frames > 1) {
    result.content_type = "image/webp";
    failed = vips_webpsave_buffer(thumb.image, &buffer, &length, "Q", 75, "effort", 2, "strip",
                                  TRUE, nullptr);
  } else if (vips_image_hasalpha(thumb.image)) {
    result.content_type = "image/png";
    failed = vips_pngsave_buffer(thumb.image, &buffer, &length, "compression", 6, "strip", TRUE,
                                 nullptr);
  } else {
    result.content_type = "image/jpeg";
    failed = vips_jpegsave_buffer(thumb.image, &buffer, &length, "Q", 80, "strip", TRUE, nullptr);
  }
  std::unique_ptr<void, decltype(&g_free)> owned(buffer, &g_free);
  if (failed) return vips_failure("decoding failed");
  result.bytes.assign(static_cast<const char*>(buffer), length);
  if (frames > 1) strip_webp_chunks(result.bytes);
  result.width = static_cast<unsigned>(thumb.image->Xsize);
  result.height = static_cast<unsigned>(thumb.image->Ysize) / frames;
  result.frames = frames;
  return result;
}

}  // namespace

void initialise() {
  if (VIPS_INIT("mxcd")) throw std::runtime_error(std::string("libvips: ") + vips_error_buffer());
  // Every render decodes different bytes: a cache of operations would only hold memory.
  vips_cache_set_max(0);
  vips_cache_set_max_mem(0);
  vips_cache_set_max_files(0);
  // Renders run side by side in mxcd's worker pool, one thread each, which bounds memory
  // by the pool's size; libvips's own threads would multiply it.
  vips_concurrency_set(1);
  // Hostile files make libvips warn a lot; what matters reaches the caller as an error.
  g_log_set_handler(
      "VIPS", G_LOG_LEVEL_WARNING, [](const gchar*, GLogLevelFlags, const gchar*, gpointer) {},
      nullptr);
  vips_operation_block_set("VipsForeignLoad", TRUE);
  for (const char* loader : kAllowedLoaders) vips_operation_block_set(loader, FALSE);
}

std::string_view file_extension(std::string_view content_type) {
  if (content_type == "image/png") return "png";
  if (content_type == "image/webp") return "webp";
  return "jpg";
}

namespace {

// What the header says, checked against the limits before anything is decoded.
struct Inspected {
  Format format;
  ImageRef header;            // opened, nothing decoded yet
  unsigned width = 0;         // as stored, before the EXIF orientation is applied
  unsigned frame_height = 0;  // of one frame (page)
  unsigned pages = 1;
  bool turned = false;  // the orientation swaps width and height
};

Result<Inspected> inspect(std::string_view source, const Limits& limits) {
  if (source.size() > limits.max_source_bytes) {
    return MatrixError::too_large("The media is larger than the " +
                                  std::to_string(limits.max_source_bytes) +
                                  "-byte limit for thumbnailing");
  }
  auto format = sniff(source);
  if (!format) return not_an_image("not an image in a supported format");
  auto too_many_pixels = [&](std::uint64_t width,
                             std::uint64_t height) -> std::optional<MatrixError> {
    if (width * height <= limits.max_pixels) return std::nullopt;
    return MatrixError::too_large("The image has " + std::to_string(width) + "x" +
                                  std::to_string(height) + " pixels, more than the " +
                                  std::to_string(limits.max_pixels) + " allowed for thumbnailing");
  };
  if (*format == Format::bmp) {
    // ImageMagick decodes BMP; its header is checked here, before ImageMagick sees it.
    std::int64_t width = little_endian_int32(source, 18), height = little_endian_int32(source, 22);
    if (width <= 0 || height == 0) return not_an_image("a corrupt BMP header");
    if (auto e = too_many_pixels(width, height < 0 ? -height : height)) return *e;
  }
  // The header alone: no pixel is decoded yet. Truncated or corrupt data is an error
  // rather than a partly grey thumbnail.
  ImageRef header(vips_image_new_from_buffer(source.data(), source.size(), "", "access",
                                             VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                             VIPS_FAIL_ON_TRUNCATED, nullptr));
  if (!header.image) return vips_failure("unreadable image");
  Inspected image{*format, std::move(header)};
  VipsImage* opened = image.header.image;
  image.width = static_cast<unsigned>(vips_image_get_width(opened));
  image.frame_height = static_cast<unsigned>(vips_image_get_page_height(opened));
  image.pages = static_cast<unsigned>(std::max(1, vips_image_get_n_pages(opened)));
  image.turned = vips_image_get_orientation_swap(opened);
  if (auto e = too_many_pixels(image.width, image.frame_height)) return *e;
  return image;
}

FrameBudget frame_budget(const Limits& limits) {
  return {limits.max_frames, limits.max_animation_bytes};
}

// Whether a thumbnail for spec may be an animation: an animated source, and asked for.
// Whether it is one is decided on the frames decoded (see animated_thumbnail); a GIF or
// WebP whose header already counts too many frames is not opened again for them.
bool may_animate(const Inspected& image, std::string_view source, const Spec& spec,
                 const Limits& limits) {
  if (!spec.animated) return false;
  if (image.format == Format::png) return apng_frame_count(source) > 1;
  return (image.format == Format::gif || image.format == Format::webp) && image.pages > 1 &&
         frame_budget(limits).holds(image.pages, 0);
}

// One still thumbnail from the decoded image. Its size is computed from the source's size
// (width x height, as displayed), so that it does not depend on how large the decoded image
// came out: scale fits the box, crop covers it and cuts the box out of the centre.
Result<ImageRef> cut(VipsImage* decoded, double width, double height, const Spec& spec) {
  const double across = spec.width / width, down = spec.height / height;
  const double scale =
      std::min(1.0, spec.method == Method::crop ? std::max(across, down) : std::min(across, down));
  const int resized_width = std::max(1, static_cast<int>(std::lround(width * scale)));
  const int resized_height = std::max(1, static_cast<int>(std::lround(height * scale)));
  ImageRef resized;
  if (resized_width == decoded->Xsize && resized_height == decoded->Ysize) {
    resized = ImageRef(vips_image_copy_memory(decoded));  // a new reference, nothing copied
  } else {
    // Resampled with premultiplied alpha, as vips_thumbnail does, so that transparent pixels
    // do not bleed their colour into the edges.
    const bool alpha = vips_image_hasalpha(decoded);
    ImageRef premultiplied, scaled, unpremultiplied;
    VipsImage* input = decoded;
    if (alpha) {
      if (vips_premultiply(decoded, premultiplied.out(), nullptr)) return vips_failure("resizing");
      input = premultiplied.image;
    }
    if (vips_resize(input, scaled.out(), static_cast<double>(resized_width) / decoded->Xsize,
                    "vscale", static_cast<double>(resized_height) / decoded->Ysize, nullptr)) {
      return vips_failure("resizing failed");
    }
    VipsImage* output = scaled.image;
    if (alpha) {
      if (vips_unpremultiply(scaled.image, unpremultiplied.out(), nullptr)) {
        return vips_failure("resizing failed");
      }
      output = unpremultiplied.image;
    }
    if (vips_cast(output, resized.out(), decoded->BandFmt, nullptr)) {
      return vips_failure("resizing failed");
    }
  }
  if (spec.method == Method::scale) return resized;
  const int cut_width = std::min(resized_width, static_cast<int>(spec.width));
  const int cut_height = std::min(resized_height, static_cast<int>(spec.height));
  ImageRef cropped;
  if (vips_extract_area(resized.image, cropped.out(), (resized_width - cut_width) / 2,
                        (resized_height - cut_height) / 2, cut_width, cut_height, nullptr)) {
    return vips_failure("cropping failed");
  }
  return cropped;
}

// Still thumbnails, from one decode: the image is decoded once, at the smallest size that
// still covers every box (libvips decodes JPEG, WebP, HEIF and SVG at a reduced size), with
// the EXIF orientation applied and the colours in sRGB, into memory; each thumbnail is cut
// from that.
std::vector<Result<Thumbnail>> still_thumbnails(std::string_view source, const Inspected& image,
                                                const std::vector<Spec>& specs,
                                                const Limits& limits) {
  double width = image.width, height = image.frame_height;
  if (image.turned) std::swap(width, height);
  double scale = 0;  // of the decoded image, relative to the source
  for (const Spec& spec : specs) {
    double across = spec.width / width, down = spec.height / height;
    scale = std::max(scale,
                     spec.method == Method::crop ? std::max(across, down) : std::min(across, down));
  }
  scale = std::min(1.0, scale);
  // A pixel to spare, so that rounding never leaves the decoded image a pixel short.
  const int decoded_width = static_cast<int>(std::min(width, std::ceil(width * scale) + 1));
  const int decoded_height = static_cast<int>(std::min(height, std::ceil(height * scale) + 1));

  Deadline deadline{std::chrono::steady_clock::now() + limits.time_limit};
  ImageRef lazy;
  // Formats that can decode at a reduced size are opened again for it; the others go on
  // from the opened header, which spares parsing them twice (a GIF's every frame).
  const bool shrinks_on_load = image.format == Format::jpeg || image.format == Format::webp ||
                               image.format == Format::heif || image.format == Format::svg ||
                               image.format == Format::jxl;
  const int failed =
      shrinks_on_load
          ? vips_thumbnail_buffer(const_cast<char*>(source.data()), source.size(), lazy.out(),
                                  decoded_width, "height", decoded_height, "size", VIPS_SIZE_DOWN,
                                  "option_string", "fail_on=truncated", nullptr)
          : vips_thumbnail_image(image.header.image, lazy.out(), decoded_width, "height",
                                 decoded_height, "size", VIPS_SIZE_DOWN, nullptr);
  if (failed) return std::vector<Result<Thumbnail>>(specs.size(), vips_failure("decoding failed"));
  auto pixels = compute(lazy, deadline, limits);
  if (!pixels) return std::vector<Result<Thumbnail>>(specs.size(), std::move(pixels).error());
  ImageRef decoded = std::move(*pixels);
  // Already sRGB: without the profile, the thumbnails below do not convert again.
  vips_image_remove(decoded.image, VIPS_META_ICC_NAME);

  std::vector<Result<Thumbnail>> thumbnails;
  for (const Spec& spec : specs) {
    auto thumb = cut(decoded.image, width, height, spec);
    if (!thumb) {
      thumbnails.push_back(std::move(thumb).error());
    } else {
      thumbnails.push_back(encode(std::move(*thumb), deadline, limits));
    }
  }
  return thumbnails;
}

// An animated thumbnail, or nothing (nullopt) when its frames exceed the budget: an APNG's
// as they are composed, a GIF's or WebP's as libvips will decode them. The pixels are
// computed into memory before they are encoded (see encode()), so the budget bounds the
// memory an animation takes whatever its header claims.
Result<std::optional<Thumbnail>> animated_thumbnail(std::string_view source, const Inspected& image,
                                                    const Spec& spec, const Limits& limits) {
  using Animated = std::optional<Thumbnail>;
  Deadline deadline{std::chrono::steady_clock::now() + limits.time_limit};
  if (image.format == Format::png) {
    auto shrink = [&](VipsImage* frame) -> Result<ImageRef> {
      ImageRef small;
      if (vips_thumbnail_image(
              frame, small.out(), static_cast<int>(spec.width), "height",
              static_cast<int>(spec.height), "size", VIPS_SIZE_DOWN, "crop",
              spec.method == Method::crop ? VIPS_INTERESTING_CENTRE : VIPS_INTERESTING_NONE,
              nullptr)) {
        return vips_failure("shrinking an APNG frame failed");
      }
      ImageRef copy(vips_image_copy_memory(small.image));
      if (!copy.image) return vips_failure("shrinking an APNG frame failed");
      return copy;
    };
    auto strip = render_apng(source, shrink, frame_budget(limits), deadline.at);
    if (!strip) return std::move(strip).error();
    if (!*strip) return Animated();
    auto encoded = encode(std::move(**strip), deadline, limits);
    if (!encoded) return std::move(encoded).error();
    return Animated(std::move(*encoded));
  }

  // A crop scales each frame to cover the box and crops the frames afterwards.
  unsigned fit_width = spec.width, fit_height = spec.height;
  if (spec.method == Method::crop) {
    double frame_width = image.width, frame_height = image.frame_height;
    double cover = std::max(spec.width / frame_width, spec.height / frame_height);
    fit_width = static_cast<unsigned>(std::max(1.0, std::ceil(frame_width * cover)));
    fit_height = static_cast<unsigned>(std::max(1.0, std::ceil(frame_height * cover)));
  }
  ImageRef thumb;
  if (vips_thumbnail_buffer(const_cast<char*>(source.data()), source.size(), thumb.out(),
                            static_cast<int>(fit_width), "height", static_cast<int>(fit_height),
                            "size", VIPS_SIZE_DOWN, "option_string", "n=-1,fail_on=truncated",
                            nullptr)) {
    return vips_failure("decoding failed");
  }
  // Nothing is decoded yet: this is what n=-1 makes libvips decode, page by page, and what
  // is held in memory from here on.
  const unsigned frames = frame_count(thumb.image);
  if (!frame_budget(limits).holds(frames, VIPS_IMAGE_SIZEOF_IMAGE(thumb.image))) {
    return Animated();
  }
  if (spec.method == Method::crop && frames > 1) {
    // The frames are cut from the decoded strip. Cut from the lazy one, the pieces cost
    // libvips several times the work, all inside one tile, where the deadline is not
    // checked: 20 frames of 8x65,000 took 2.4 s against 0.7 s, and a GIF of 117 bytes ran
    // the thumbnail fuzzer past its time limit (tests/fuzz/regressions/).
    auto decoded = compute(thumb, deadline, limits);
    if (!decoded) return std::move(decoded).error();
    auto cropped = crop_frames(std::move(*decoded), frames, spec);
    if (!cropped) return std::move(cropped).error();
    thumb = std::move(*cropped);
  }
  auto encoded = encode(std::move(thumb), deadline, limits);
  if (!encoded) return std::move(encoded).error();
  return Animated(std::move(*encoded));
}

}  // namespace

Result<Thumbnail> make_thumbnail(std::string_view source, const Spec& spec, const Limits& limits) {
  if (spec.width == 0 || spec.height == 0) return not_an_image("empty size");
  auto image = inspect(source, limits);
  if (!image) return std::move(image).error();
  if (may_animate(*image, source, spec, limits)) {
    auto animated = animated_thumbnail(source, *image, spec, limits);
    if (!animated) return std::move(animated).error();
    if (*animated) return std::move(**animated);
    // Over the budget: a still thumbnail, of the first frame alone.
  }
  return std::move(still_thumbnails(source, *image, {spec}, limits).front());
}

std::vector<Result<Thumbnail>> make_still_thumbnails(std::string_view source,
                                                     const std::vector<Spec>& specs,
                                                     const Limits& limits) {
  for (const Spec& spec : specs) {
    if (spec.width == 0 || spec.height == 0) {
      return std::vector<Result<Thumbnail>>(specs.size(), not_an_image("empty size"));
    }
  }
  auto image = inspect(source, limits);
  if (!image) return std::vector<Result<Thumbnail>>(specs.size(), image.error());
  return still_thumbnails(source, *image, specs, limits);
}

}  // namespace mxcd::thumbnail
