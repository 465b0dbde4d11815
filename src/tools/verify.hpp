// mxcd verify: reads every blob that media refers to back from its store (a bucket's object
// itself, a local store's file) and checks its SHA-256 and size, with a progress bar; then
// names each bad, missing or unreadable blob and prints the totals. It changes nothing, so it
// may run beside a server; the scrubber (src/media/scrubber.hpp) is what takes damaged local
// copies out of service.
#pragma once

#include "core/config.hpp"
#include "import/progress.hpp"

#include <chrono>
#include <ostream>
#include <string>

namespace mxcd {

struct VerifyOptions {
  std::string store;     // empty: every store
  unsigned workers = 4;  // blobs read at once
  Progress::Style progress = Progress::automatic_style();
  std::chrono::milliseconds progress_interval = std::chrono::seconds(10);
};

// 0 when every blob checked is intact; 1 when one is bad, missing or cannot be read, or the
// stores cannot be opened; 2 for a --store the configuration lacks.
int verify_stores(const Config& config, const VerifyOptions& options, std::ostream& out);

}  // namespace mxcd
