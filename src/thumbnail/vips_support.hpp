// What the thumbnailer's files share: an owning libvips image handle, the error for bytes
// that cannot be thumbnailed, and the memory budget of an animation. Internal to
// src/thumbnail/.
#pragma once

#include "core/result.hpp"

#include <vips/vips.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace mxcd::thumbnail {

// Holds one reference to a VipsImage and drops it at the end.
struct ImageRef {
  VipsImage* image = nullptr;
  ImageRef() = default;
  explicit ImageRef(VipsImage* i) : image(i) {}
  ImageRef(const ImageRef&) = delete;
  ImageRef& operator=(const ImageRef&) = delete;
  ImageRef(ImageRef&& other) noexcept : image(std::exchange(other.image, nullptr)) {}
  ImageRef& operator=(ImageRef&& other) noexcept {
    std::swap(image, other.image);
    return *this;
  }
  ~ImageRef() {
    if (image) g_object_unref(image);
  }
  VipsImage** out() { return &image; }
};

// What one animated thumbnail may hold in memory while it is made. It is checked on the
// frames actually decoded, never on a count or size a header announces: beyond it, the
// thumbnail is a still one.
struct FrameBudget {
  std::uint64_t max_frames = 0;
  std::uint64_t max_bytes = 0;
  bool holds(std::uint64_t frames, std::uint64_t bytes) const {
    return frames <= max_frames && bytes <= max_bytes;
  }
};

inline MatrixError not_an_image(std::string why) {
  return MatrixError::bad_request("The media cannot be thumbnailed: " + std::move(why));
}

inline MatrixError vips_failure(std::string_view what) {
  // libvips keeps its error text per thread; take it and clear it for the next render.
  std::string detail = vips_error_buffer();
  vips_error_clear();
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
  if (auto newline = detail.find('\n'); newline != std::string::npos) detail.resize(newline);
  return not_an_image(std::string(what) + (detail.empty() ? "" : " (" + detail + ")"));
}

}  // namespace mxcd::thumbnail
