// Animated PNG frames for animated thumbnails. libvips 8.14 reads only an APNG's default
// image, so the frames are taken apart here: each frame's data becomes a PNG of its own,
// which libvips decodes, and the frames are composed onto a canvas as a viewer shows them
// (APNG's blend and dispose operations).
#pragma once

#include "thumbnail/vips_support.hpp"

#include <chrono>
#include <functional>
#include <optional>

namespace mxcd::thumbnail {

// How many frames the PNG holds (its fcTL chunks, whatever its acTL announces); 0 for a
// still or malformed PNG.
unsigned apng_frame_count(std::string_view png);

// Composes every frame and passes it to `shrink`, which returns the frame to keep (a
// thumbnail of it, in memory). The kept frames are joined into one strip with page-height,
// delay and loop set, as libvips represents an animation. Nothing (nullopt) when the frames
// exceed the budget: the frames the file holds, and the bytes of the full-size canvas and of
// the kept frames as they are made. 400 M_UNKNOWN for a malformed animation, or when the
// deadline passes.
Result<std::optional<ImageRef>> render_apng(
    std::string_view png, const std::function<Result<ImageRef>(VipsImage*)>& shrink,
    const FrameBudget& budget, std::chrono::steady_clock::time_point deadline);

}  // namespace mxcd::thumbnail
