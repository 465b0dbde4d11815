// Turns the bytes of an image into a thumbnail with libvips. Everything it reads is hostile:
// the format is recognised from the first bytes and only the decoders listed in
// thumbnailer.cpp are reachable, the header's dimensions are checked before a pixel is
// decoded, and a render that runs past its time limit is stopped.
// Depends on nothing in mxcd but MatrixError, so that the fuzz target links it alone.
#pragma once

#include "core/result.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mxcd::thumbnail {

enum class Method { crop, scale };

// What a thumbnail must fit. The width and height are the box after size snapping (see
// media/thumbnail_sizes.hpp): scale fits the image inside the box, crop covers the box and
// cuts the centre out. Neither ever enlarges the image.
struct Spec {
  unsigned width = 0;
  unsigned height = 0;
  Method method = Method::scale;
  bool animated = false;  // animate when the source is animated (GIF, WebP)
  bool operator==(const Spec&) const = default;
};

struct Limits {
  std::uint64_t max_source_bytes = 40ULL << 20;
  std::uint64_t max_pixels = 32'000'000;  // of one frame, read from the header
  unsigned max_frames = 250;              // more frames than this: a still thumbnail
  // What an animated thumbnail's frames may take in memory as they are decoded (and an
  // APNG's full-size canvas); more than this: a still thumbnail.
  std::uint64_t max_animation_bytes = 64ULL << 20;
  std::chrono::milliseconds time_limit{30'000};
};

struct Thumbnail {
  std::string bytes;
  std::string content_type;  // image/jpeg (opaque), image/png (transparent), image/webp (animated)
  unsigned width = 0;
  unsigned height = 0;  // of one frame
  unsigned frames = 1;
};

// Once per process, before any make_thumbnail: starts libvips with its operation cache off,
// one thread per render (renders run side by side in the caller's pool instead) and every
// decoder but the listed ones blocked. Throws std::runtime_error when libvips cannot start.
void initialise();

// 400 M_UNKNOWN for bytes that are no supported image, are corrupt, or take longer than the
// time limit; 413 M_TOO_LARGE when the bytes or the header's dimensions exceed the limits.
// Thread-safe. Deterministic: the same bytes and spec give the same thumbnail.
Result<Thumbnail> make_thumbnail(std::string_view source, const Spec& spec, const Limits& limits);

// Several still thumbnails of one image from a single decode (the configured sizes, after
// an upload): one result per spec, in order. Each is what make_thumbnail would give for the
// spec without `animated`.
std::vector<Result<Thumbnail>> make_still_thumbnails(std::string_view source,
                                                     const std::vector<Spec>& specs,
                                                     const Limits& limits);

// The output's file name suffix for a content type: "png" for image/png.
std::string_view file_extension(std::string_view content_type);

}  // namespace mxcd::thumbnail
