// Sizes for people to read, in logs, health answers and tool output.
#pragma once

#include <cstdint>
#include <string>

namespace mxcd {

// "1.5 GiB", "340.0 KiB", "12 B"
std::string human_bytes(std::int64_t bytes);

}  // namespace mxcd
