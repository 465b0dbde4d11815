#include "media/thumbnail_sizes.hpp"

#include <algorithm>
#include <optional>

namespace mxcd {

namespace {

std::uint64_t area(const Config::Thumbnails::Size& size) {
  return std::uint64_t{size.width} * size.height;
}

unsigned snap_up(unsigned side) {
  for (unsigned step : kDynamicSides) {
    if (step >= side) return step;
  }
  return std::end(kDynamicSides)[-1];
}

}  // namespace

ThumbnailBox choose_thumbnail_box(const Config::Thumbnails& config, unsigned width, unsigned height,
                                  bool crop) {
  std::optional<Config::Thumbnails::Size> fitting, largest;
  bool method_configured = std::any_of(config.sizes.begin(), config.sizes.end(),
                                       [&](const auto& s) { return s.crop == crop; });
  for (const auto& size : config.sizes) {
    if (method_configured && size.crop != crop) continue;
    if (size.width >= width && size.height >= height && (!fitting || area(size) < area(*fitting))) {
      fitting = size;
    }
    if (!largest || area(size) > area(*largest)) largest = size;
  }
  if (fitting) return {fitting->width, fitting->height, fitting->crop};
  if (config.dynamic) return {snap_up(width), snap_up(height), crop};
  return {largest->width, largest->height, largest->crop};
}

}  // namespace mxcd
