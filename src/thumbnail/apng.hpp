// Animated PNG frames for animated thumbnails. libvips 8.14 reads only an APNG's default
// image, so the frames are taken apart here: each frame's data becomes a PNG of its own,
// which libvips decodes, and the frames are composed onto a canvas as a viewer shows them
// (APNG's blend and dispose operations).
#pragma once

#include "thumbnail/vips_support.hpp"

#include <chrono>
#include <functional>

namespace mxcd::thumbnail {

// How many frames the PNG's animation control chunk announces; 0 for a still PNG.
unsigned apng_frame_count(std::string_view png);

// Composes every frame and passes it to `shrink`, which returns the frame to keep (a
// thumbnail of it, in memory). The kept frames are joined into one strip with page-height,
// delay and loop set, as libvips represents an animation. 400 M_UNKNOWN for a malformed
// animation, or when the deadline passes.
Result<ImageRef> render_apng(std::string_view png,
                             const std::function<Result<ImageRef>(VipsImage*)>& shrink,
                             std::chrono::steady_clock::time_point deadline);

}  // namespace mxcd::thumbnail
