// libFuzzer target for the thumbnailer (src/thumbnail/thumbnailer.cpp).
//
// Why: make_thumbnail() takes bytes anyone can upload and hands them to libvips and the
// image libraries beneath it (libjpeg, libpng, libnsgif, libwebp, libtiff, libheif, libjxl,
// librsvg, ImageMagick for BMP). A crash there takes down the whole server, so this target
// feeds it arbitrary bytes under ASan, UBSan and LeakSanitizer. Any answer, a thumbnail or a
// MatrixError, is a pass; a crash, a hang or a sanitizer report is the failure.
//
// Only our own code is instrumented: the system libraries are Debian's GCC builds, without
// coverage counters or ASan checks, so the fuzzer is guided by the branches of the
// thumbnailer and otherwise mutates the seed images (scripts/fuzz.sh makes them) blindly.
// Inside those libraries ASan still catches what goes through its malloc and interceptors
// (double and invalid frees, leaks, overflows in memcpy, memset, strlen...), and every crash
// counts, but a plain out-of-bounds read or write there goes unseen.
//
// LeakSanitizer cannot see a VipsObject that is never unreffed: libvips keeps every live
// object in a global table, so a leaked image stays reachable. The target therefore also
// counts live VipsObjects around each call and stops on any the call leaves behind.
//
// Input layout: 3 bytes of spec, then the image.
//   byte 0, byte 1: the low 8 bits of width - 1 and height - 1
//   byte 2: bit 0 and bit 1 are bit 8 of width - 1 and height - 1 (so 1..512 each),
//           bit 2 selects crop (else scale), bit 3 asks for an animated thumbnail,
//           bit 4 makes the five default sizes from one decode (make_still_thumbnails).
// Run it with scripts/fuzz.sh.

#include "thumbnail/thumbnailer.hpp"

#include <vips/vips.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace {

void* count_live(void* object, void* count, void* /*unused*/) {
  if (!static_cast<VipsObject*>(object)->static_object) ++*static_cast<int*>(count);
  return nullptr;
}

int live_vips_objects() {
  int count = 0;
  vips_object_map(count_live, &count, nullptr);
  return count;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  mxcd::thumbnail::initialise();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  using namespace std::chrono_literals;
  mxcd::thumbnail::Spec spec;
  spec.width = 1 + (data[0] | (data[2] & 1u) << 8);
  spec.height = 1 + (data[1] | (data[2] >> 1 & 1u) << 8);
  spec.method = (data[2] & 4u) ? mxcd::thumbnail::Method::crop : mxcd::thumbnail::Method::scale;
  spec.animated = (data[2] & 8u) != 0;

  // Tight limits keep each run short: a few million pixels decode in well under a second.
  mxcd::thumbnail::Limits limits;
  limits.max_source_bytes = 1 << 20;
  limits.max_pixels = 4'000'000;
  limits.max_frames = 50;
  limits.time_limit = 2s;

  std::string_view image(reinterpret_cast<const char*>(data) + 3, size - 3);
  const int live_before = live_vips_objects();
  if (data[2] & 16u) {
    using mxcd::thumbnail::Method;
    const std::vector<mxcd::thumbnail::Spec> defaults = {{32, 32, Method::crop},
                                                         {96, 96, Method::crop},
                                                         {320, 240, Method::scale},
                                                         {640, 480, Method::scale},
                                                         {800, 600, Method::scale}};
    (void)mxcd::thumbnail::make_still_thumbnails(image, defaults, limits);
  } else {
    (void)mxcd::thumbnail::make_thumbnail(image, spec, limits);
  }
  const int leaked = live_vips_objects() - live_before;
  if (leaked > 0) {
    std::fprintf(stderr, "thumbnail_fuzzer: %d VipsObject(s) left alive after the call\n", leaked);
    vips_object_print_all();
    std::abort();
  }
  return 0;
}
