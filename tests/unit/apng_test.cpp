// An APNG's frames are counted from the frames the file holds (its fcTL chunks), never from
// the count its acTL chunk announces: the thumbnailer's frame budget is checked on it.
#include "thumbnail/apng.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <string>

namespace mxcd::thumbnail {
namespace {

std::string big_endian(std::uint32_t v) {
  std::string out;
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift & 0xFF));
  return out;
}

std::string chunk(std::string_view type, std::string_view data) {
  std::string typed = std::string(type) + std::string(data);
  auto crc =
      crc32(0, reinterpret_cast<const Bytef*>(typed.data()), static_cast<uInt>(typed.size()));
  return big_endian(static_cast<std::uint32_t>(data.size())) + typed +
         big_endian(static_cast<std::uint32_t>(crc));
}

std::string header() {
  std::string ihdr = big_endian(4) + big_endian(4) + std::string("\x08\x02\x00\x00\x00", 5);
  return std::string("\x89PNG\r\n\x1A\n", 8) + chunk("IHDR", ihdr);
}

std::string actl(std::uint32_t frames) { return chunk("acTL", big_endian(frames) + big_endian(0)); }
std::string fctl() { return chunk("fcTL", std::string(26, '\0')); }

// `frames` frames after the default image, each an fcTL and an fdAT.
std::string apng(std::uint32_t claimed, unsigned frames) {
  std::string png = header() + actl(claimed) + fctl() + chunk("IDAT", "data");
  for (unsigned i = 1; i < frames; ++i) png += fctl() + chunk("fdAT", "seq0data");
  return png + chunk("IEND", "");
}

TEST(ApngFrameCount, CountsTheFramesTheFileHolds) {
  EXPECT_EQ(apng_frame_count(apng(3, 3)), 3u);
  EXPECT_EQ(apng_frame_count(apng(2, 1500)), 1500u) << "acTL understates the frames";
  EXPECT_EQ(apng_frame_count(apng(1000, 2)), 2u) << "acTL overstates the frames";
  EXPECT_EQ(apng_frame_count(apng(0, 4)), 4u);
}

TEST(ApngFrameCount, StillAndMalformedPngsAreNotAnimated) {
  EXPECT_EQ(apng_frame_count(header() + chunk("IDAT", "data") + chunk("IEND", "")), 0u);
  // acTL after the image data: a still PNG to every viewer.
  EXPECT_EQ(apng_frame_count(header() + chunk("IDAT", "data") + actl(2) + fctl() +
                             chunk("fdAT", "seq0data") + chunk("IEND", "")),
            0u);
  EXPECT_EQ(apng_frame_count(header() + fctl() + actl(2) + chunk("IDAT", "d") + chunk("IEND", "")),
            0u)
      << "fcTL before acTL";
  std::string cut = apng(2, 5);
  EXPECT_EQ(apng_frame_count(cut.substr(0, cut.size() - 20)), 0u) << "truncated";
  EXPECT_EQ(apng_frame_count("not a png"), 0u);
  EXPECT_EQ(apng_frame_count(""), 0u);
}

}  // namespace
}  // namespace mxcd::thumbnail
