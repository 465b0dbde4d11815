#pragma once

#include <string_view>

namespace mxcd {
// Set by CMake from the project version.
inline constexpr std::string_view kVersion = MXCD_VERSION;
}  // namespace mxcd
