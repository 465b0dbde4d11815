#include "thumbnail/apng.hpp"

#include <zlib.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace mxcd::thumbnail {

namespace {

using namespace std::string_view_literals;

constexpr std::string_view kSignature = "\x89PNG\r\n\x1A\n"sv;
constexpr std::string_view kEnd = "\0\0\0\0IEND\xAE\x42\x60\x82"sv;

std::uint32_t big_endian(std::string_view bytes, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

void append_big_endian(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift & 0xFF));
}

void append_chunk(std::string& out, std::string_view type, std::string_view data) {
  append_big_endian(out, static_cast<std::uint32_t>(data.size()));
  const std::size_t typed = out.size();
  out.append(type).append(data);
  auto crc = crc32(0, reinterpret_cast<const Bytef*>(out.data() + typed),
                   static_cast<uInt>(out.size() - typed));
  append_big_endian(out, static_cast<std::uint32_t>(crc));
}

struct Chunk {
  std::string_view type;
  std::string_view data;
};

// Calls visit(chunk) for each chunk after the signature, up to IEND, until visit returns
// false. False when the bytes are not a PNG or a chunk runs past the end. Nothing is
// collected: a file of millions of empty chunks costs no memory.
template <class Visit>
bool for_each_chunk(std::string_view png, Visit&& visit) {
  if (png.substr(0, kSignature.size()) != kSignature) return false;
  std::size_t at = kSignature.size();
  while (at + 12 <= png.size()) {
    std::uint32_t length = big_endian(png, at);
    if (length > png.size() - at - 12) return false;
    const Chunk chunk{png.substr(at + 4, 4), png.substr(at + 8, length)};
    if (!visit(chunk) || chunk.type == "IEND") return true;
    at += 12 + length;
  }
  return false;
}

struct Frame {
  std::uint32_t width = 0, height = 0, x = 0, y = 0;
  std::uint16_t delay_numerator = 0, delay_denominator = 0;
  std::uint8_t dispose = 0;  // 0 none, 1 clear to transparent, 2 restore the previous canvas
  std::uint8_t blend = 0;    // 0 replace, 1 alpha-composite over the canvas
  std::string data;          // the frame's zlib stream, from IDAT or fdAT chunks

  int delay_ms() const {
    return delay_numerator * 1000 / (delay_denominator ? delay_denominator : 100);
  }
};

struct Animation {
  std::string_view header;               // IHDR's data
  std::vector<std::string_view> shared;  // chunks every frame needs (palette, transparency...)
  std::vector<Frame> frames;
  std::uint32_t plays = 0;  // 0: forever
};

std::optional<Animation> parse(std::string_view png) {
  Animation a;
  std::uint32_t canvas_width = 0, canvas_height = 0;
  bool first = true, default_image_is_frame = false, seen_data = false, valid = true;
  auto visit = [&](const Chunk& c) {
    if (first) {
      first = false;
      if (c.type != "IHDR" || c.data.size() != 13) return valid = false;
      a.header = c.data;
      canvas_width = big_endian(a.header, 0);
      canvas_height = big_endian(a.header, 4);
    } else if (c.type == "acTL" && c.data.size() == 8) {
      a.plays = big_endian(c.data, 4);
    } else if (c.type == "fcTL") {
      if (c.data.size() != 26) return valid = false;
      Frame f;
      f.width = big_endian(c.data, 4);
      f.height = big_endian(c.data, 8);
      f.x = big_endian(c.data, 12);
      f.y = big_endian(c.data, 16);
      f.delay_numerator = static_cast<std::uint16_t>(big_endian(c.data, 20) >> 16);
      f.delay_denominator = static_cast<std::uint16_t>(big_endian(c.data, 20) & 0xFFFF);
      f.dispose = static_cast<std::uint8_t>(c.data[24]);
      f.blend = static_cast<std::uint8_t>(c.data[25]);
      if (f.width == 0 || f.height == 0 || f.x > canvas_width || f.y > canvas_height ||
          f.width > canvas_width - f.x || f.height > canvas_height - f.y || f.dispose > 2 ||
          f.blend > 1) {
        return valid = false;
      }
      if (!seen_data) default_image_is_frame = true;
      a.frames.push_back(std::move(f));
    } else if (c.type == "IDAT") {
      seen_data = true;
      if (default_image_is_frame && a.frames.size() == 1) a.frames[0].data.append(c.data);
    } else if (c.type == "fdAT") {
      if (a.frames.empty() || c.data.size() < 4 || !seen_data) return valid = false;
      a.frames.back().data.append(c.data.substr(4));  // after the sequence number
    } else if (!seen_data &&
               (c.type == "PLTE" || c.type == "tRNS" || c.type == "gAMA" || c.type == "cHRM" ||
                c.type == "sRGB" || c.type == "iCCP" || c.type == "sBIT")) {
      // The whole chunk, length to CRC, copied into every frame's PNG as it is.
      a.shared.push_back(std::string_view(c.data.data() - 8, c.data.size() + 12));
    }
    return true;
  };
  if (!for_each_chunk(png, visit) || !valid || first) return std::nullopt;
  for (const Frame& f : a.frames) {
    if (f.data.empty()) return std::nullopt;
  }
  return a;
}

// A PNG of one frame: the header with the frame's size, the shared chunks, its data.
std::string frame_png(const Animation& a, const Frame& f) {
  std::string header(a.header);
  std::string size;
  append_big_endian(size, f.width);
  append_big_endian(size, f.height);
  header.replace(0, 8, size);
  std::string png(kSignature);
  append_chunk(png, "IHDR", header);
  for (std::string_view chunk : a.shared) png.append(chunk);
  append_chunk(png, "IDAT", f.data);
  png.append(kEnd);
  return png;
}

// 8-bit sRGB with alpha, as frames are composed.
Result<ImageRef> decode_rgba(const std::string& png) {
  ImageRef loaded, srgb, cast;
  if (vips_pngload_buffer(const_cast<char*>(png.data()), png.size(), loaded.out(), "fail_on",
                          VIPS_FAIL_ON_TRUNCATED, nullptr) ||
      vips_colourspace(loaded.image, srgb.out(), VIPS_INTERPRETATION_sRGB, nullptr) ||
      vips_cast_uchar(srgb.image, cast.out(), nullptr)) {
    return vips_failure("decoding an APNG frame failed");
  }
  if (vips_image_hasalpha(cast.image)) return cast;
  ImageRef with_alpha;
  if (vips_addalpha(cast.image, with_alpha.out(), nullptr)) return vips_failure("APNG frame");
  return with_alpha;
}

Result<ImageRef> in_memory(ImageRef image) {
  ImageRef copy(vips_image_copy_memory(image.image));
  if (!copy.image) return vips_failure("composing an APNG frame failed");
  return copy;
}

// A fully transparent area.
Result<ImageRef> clear(int width, int height) {
  ImageRef black, srgb;
  if (vips_black(black.out(), width, height, "bands", 4, nullptr) ||
      vips_copy(black.image, srgb.out(), "interpretation", VIPS_INTERPRETATION_sRGB, nullptr)) {
    return vips_failure("APNG canvas");
  }
  return in_memory(std::move(srgb));
}

Result<ImageRef> place(VipsImage* canvas, VipsImage* frame, const Frame& f, bool over) {
  ImageRef placed, cast;
  const int x = static_cast<int>(f.x), y = static_cast<int>(f.y);
  if (over ? vips_composite2(canvas, frame, placed.out(), VIPS_BLEND_MODE_OVER, "x", x, "y", y,
                             nullptr)
           : vips_insert(canvas, frame, placed.out(), x, y, nullptr)) {
    return vips_failure("composing an APNG frame failed");
  }
  if (vips_cast_uchar(placed.image, cast.out(), nullptr)) return vips_failure("APNG frame");
  return in_memory(std::move(cast));
}

Result<std::optional<ImageRef>> over_budget() { return std::optional<ImageRef>(); }

}  // namespace

unsigned apng_frame_count(std::string_view png) {
  bool animated = false, malformed = false;
  unsigned frames = 0;
  const bool complete = for_each_chunk(png, [&](const Chunk& c) {
    if (c.type == "IDAT" && !animated) return false;  // acTL must come before the image data
    if (c.type == "acTL" && c.data.size() == 8) animated = true;
    if (c.type == "fcTL") {
      if (!animated) return !(malformed = true);
      if (frames < std::numeric_limits<unsigned>::max()) ++frames;
    }
    return true;
  });
  return complete && animated && !malformed ? frames : 0;
}

Result<std::optional<ImageRef>> render_apng(
    std::string_view png, const std::function<Result<ImageRef>(VipsImage*)>& shrink,
    const FrameBudget& budget, std::chrono::steady_clock::time_point deadline) {
  // Counted before anything is copied or decoded: acTL's own count is not trusted.
  if (!budget.holds(apng_frame_count(png), 0)) return over_budget();
  auto animation = parse(png);
  if (!animation || animation->frames.empty()) return not_an_image("a malformed APNG");
  const Animation& a = *animation;
  const std::uint32_t width = big_endian(a.header, 0), height = big_endian(a.header, 4);
  // The canvas and the frame composed on it are full size, held while each frame is made.
  const std::uint64_t canvases = 2 * std::uint64_t{width} * height * 4;
  if (!budget.holds(a.frames.size(), canvases)) return over_budget();
  auto canvas = clear(static_cast<int>(width), static_cast<int>(height));
  if (!canvas) return std::move(canvas).error();
  std::vector<ImageRef> kept;
  std::uint64_t kept_bytes = 0;
  std::vector<int> delays;
  for (std::size_t i = 0; i < a.frames.size(); ++i) {
    if (std::chrono::steady_clock::now() > deadline) return not_an_image("the APNG took too long");
    const Frame& f = a.frames[i];
    // libvips decodes lazily, from these bytes: they live until the frame is composed.
    const std::string frame_bytes = frame_png(a, f);
    auto frame = decode_rgba(frame_bytes);
    if (!frame) return std::move(frame).error();
    auto composed = place(canvas->image, frame->image, f, f.blend == 1);
    if (!composed) return std::move(composed).error();
    auto small = shrink(composed->image);
    if (!small) return std::move(small).error();
    kept_bytes += VIPS_IMAGE_SIZEOF_IMAGE(small->image);
    if (!budget.holds(kept.size() + 1, canvases + kept_bytes)) return over_budget();
    kept.push_back(std::move(*small));
    delays.push_back(f.delay_ms());
    // What the next frame is drawn on. Restoring before the first frame means clearing.
    if (f.dispose == 0) {
      *canvas = std::move(*composed);
    } else if (f.dispose == 1 || i == 0) {
      auto area = clear(static_cast<int>(f.width), static_cast<int>(f.height));
      if (!area) return std::move(area).error();
      auto cleared = place(composed->image, area->image, f, false);
      if (!cleared) return std::move(cleared).error();
      *canvas = std::move(*cleared);
    }
  }
  std::vector<VipsImage*> frames;
  frames.reserve(kept.size());
  for (auto& k : kept) frames.push_back(k.image);
  ImageRef strip;
  if (vips_arrayjoin(frames.data(), strip.out(), static_cast<int>(frames.size()), "across", 1,
                     nullptr)) {
    return vips_failure("joining the APNG frames failed");
  }
  vips_image_set_int(strip.image, VIPS_META_PAGE_HEIGHT, kept.front().image->Ysize);
  vips_image_set_int(strip.image, VIPS_META_N_PAGES, static_cast<int>(kept.size()));
  vips_image_set_array_int(strip.image, "delay", delays.data(), static_cast<int>(delays.size()));
  vips_image_set_int(strip.image, "loop", static_cast<int>(a.plays));
  return std::optional<ImageRef>(std::move(strip));
}

}  // namespace mxcd::thumbnail
