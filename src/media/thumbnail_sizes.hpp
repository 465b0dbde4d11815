// Which box a thumbnail request is answered with. Requests name any width and height; the
// server makes only a few boxes per media, so that a client cannot fill the disk with
// variants: the configured sizes, and with dynamic thumbnails a fixed ladder of sides.
#pragma once

#include "core/config.hpp"

namespace mxcd {

struct ThumbnailBox {
  unsigned width = 0;
  unsigned height = 0;
  bool crop = false;
  bool operator==(const ThumbnailBox&) const = default;
};

// The sides a dynamic box snaps up to; a request beyond the last gets the last.
inline constexpr unsigned kDynamicSides[] = {32,  64,  96,  128, 160, 192, 256,  320,
                                             384, 480, 512, 640, 800, 960, 1024, 1280};

// The smallest configured box of the request's method that is at least as large as asked.
// When none is: with dynamic thumbnails, the request snapped up to the ladder; without, the
// largest configured box of the method (of any method when the method has none).
ThumbnailBox choose_thumbnail_box(const Config::Thumbnails& config, unsigned width, unsigned height,
                                  bool crop);

}  // namespace mxcd
