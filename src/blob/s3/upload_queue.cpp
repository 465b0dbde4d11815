#include "blob/s3/upload_queue.hpp"

#include "blob/free_space.hpp"
#include "core/unique_fd.hpp"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mxcd {

namespace fs = std::filesystem;

namespace {

bool write_durably(const fs::path& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!fd.valid()) return false;
  return ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
         ::fsync(fd.get()) == 0;
}

}  // namespace

UploadQueue::UploadQueue(fs::path dir, StoreOpening opening) : dir_(std::move(dir)) {
  if (opening == StoreOpening::recover) fs::create_directories(dir_);
}

Status UploadQueue::add(const QueuedBlob& blob) {
  fs::path tmp = dir_ / (blob.sha256 + ".new");
  fs::path final_path = dir_ / blob.sha256;
  UniqueFd dir_fd(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!write_durably(tmp, std::to_string(blob.queued_ts) + "\n" + blob.content_type) ||
      ::rename(tmp.c_str(), final_path.c_str()) != 0 || !dir_fd.valid() ||
      ::fsync(dir_fd.get()) != 0) {
    int error = errno;
    spdlog::error("cannot queue blob {} in {}: {}", blob.sha256, dir_.string(),
                  std::strerror(error));
    return write_error(error);
  }
  return {};
}

void UploadQueue::remove(const std::string& sha256) {
  std::error_code ec;
  fs::remove(dir_ / sha256, ec);
  if (ec) spdlog::error("cannot remove queue entry {}: {}", sha256, ec.message());
}

std::vector<QueuedBlob> UploadQueue::list() const {
  std::vector<QueuedBlob> entries;
  if (!fs::exists(dir_)) return entries;  // inspected before it was ever used
  for (const auto& entry : fs::directory_iterator(dir_)) {
    std::string name = entry.path().filename().string();
    if (name.ends_with(".new")) {
      std::error_code ignored;
      fs::remove(entry.path(), ignored);  // never acknowledged: the upload failed
      continue;
    }
    std::ifstream in(entry.path());
    QueuedBlob blob;
    blob.sha256 = name;
    std::string ts;
    std::getline(in, ts);
    std::getline(in, blob.content_type);
    blob.queued_ts = std::strtoll(ts.c_str(), nullptr, 10);
    entries.push_back(std::move(blob));
  }
  std::sort(entries.begin(), entries.end(),
            [](const QueuedBlob& a, const QueuedBlob& b) { return a.queued_ts < b.queued_ts; });
  return entries;
}

std::vector<std::string> UploadQueue::sha256s() const {
  std::vector<std::string> names;
  for (auto& entry : list()) names.push_back(std::move(entry.sha256));
  return names;
}

}  // namespace mxcd
