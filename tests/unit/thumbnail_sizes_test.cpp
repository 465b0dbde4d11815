// Which box answers a thumbnail request: never one smaller than asked when a configured or
// dynamic box is large enough, and never more than a bounded set of boxes per media.
#include "media/thumbnail_sizes.hpp"

#include <gtest/gtest.h>

#include <set>
#include <tuple>

namespace mxcd {
namespace {

const Config::Thumbnails kDefaults;

TEST(ThumbnailSizes, SmallestConfiguredBoxOfTheMethodThatCoversTheRequest) {
  EXPECT_EQ(choose_thumbnail_box(kDefaults, 32, 32, true), (ThumbnailBox{32, 32, true}));
  EXPECT_EQ(choose_thumbnail_box(kDefaults, 33, 10, true), (ThumbnailBox{96, 96, true}));
  EXPECT_EQ(choose_thumbnail_box(kDefaults, 1, 1, false), (ThumbnailBox{320, 240, false}));
  EXPECT_EQ(choose_thumbnail_box(kDefaults, 321, 100, false), (ThumbnailBox{640, 480, false}));
  EXPECT_EQ(choose_thumbnail_box(kDefaults, 100, 500, false), (ThumbnailBox{800, 600, false}));
}

TEST(ThumbnailSizes, WithoutDynamicTheLargestBoxOfTheMethodAnswersLargerRequests) {
  EXPECT_EQ(choose_thumbnail_box(kDefaults, 97, 97, true), (ThumbnailBox{96, 96, true}));
  EXPECT_EQ(choose_thumbnail_box(kDefaults, 5000, 5000, false), (ThumbnailBox{800, 600, false}));
}

TEST(ThumbnailSizes, AMethodWithoutConfiguredSizesUsesTheOthers) {
  Config::Thumbnails only_scale;
  only_scale.sizes = {{320, 240, false}, {640, 480, false}};
  EXPECT_EQ(choose_thumbnail_box(only_scale, 96, 96, true), (ThumbnailBox{320, 240, false}));
}

TEST(ThumbnailSizes, DynamicRequestsSnapUpToTheLadder) {
  Config::Thumbnails dynamic;
  dynamic.dynamic = true;
  EXPECT_EQ(choose_thumbnail_box(dynamic, 100, 100, true), (ThumbnailBox{128, 128, true}));
  EXPECT_EQ(choose_thumbnail_box(dynamic, 110, 120, true), (ThumbnailBox{128, 128, true}));
  EXPECT_EQ(choose_thumbnail_box(dynamic, 700, 700, false), (ThumbnailBox{800, 800, false}));
  EXPECT_EQ(choose_thumbnail_box(dynamic, 99999, 2, false), (ThumbnailBox{1280, 32, false}));
  // Covered by a configured box: that one, not a new variant.
  EXPECT_EQ(choose_thumbnail_box(dynamic, 300, 200, false), (ThumbnailBox{320, 240, false}));
}

TEST(ThumbnailSizes, DynamicBoxesAreBoundedAndNeverSmallerThanAsked) {
  Config::Thumbnails dynamic;
  dynamic.dynamic = true;
  std::set<std::tuple<unsigned, unsigned, bool>> boxes;
  for (unsigned w = 1; w <= 1400; w += 7) {
    for (unsigned h = 1; h <= 1400; h += 11) {
      for (bool crop : {true, false}) {
        ThumbnailBox box = choose_thumbnail_box(dynamic, w, h, crop);
        if (w <= 1280 && h <= 1280) {
          EXPECT_GE(box.width, w);
          EXPECT_GE(box.height, h);
        }
        boxes.emplace(box.width, box.height, box.crop);
      }
    }
  }
  const std::size_t sides = std::size(kDynamicSides);
  EXPECT_LE(boxes.size(), 2 * sides * sides + dynamic.sizes.size());
}

}  // namespace
}  // namespace mxcd
