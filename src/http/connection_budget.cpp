#include "http/connection_budget.hpp"

namespace mxcd::http {

namespace {

std::optional<std::size_t> oldest(const std::vector<ConnectionSlot>& open, ConnectionState state) {
  std::optional<std::size_t> found;
  for (std::size_t i = 0; i < open.size(); ++i) {
    if (open[i].state == state && (!found || open[i].since < open[*found].since)) found = i;
  }
  return found;
}

}  // namespace

Admission admit_connection(const std::vector<ConnectionSlot>& open, std::size_t max_connections,
                           std::size_t max_pending) {
  std::size_t pending = 0;
  for (const auto& slot : open) pending += slot.state == ConnectionState::pending;
  if (pending >= max_pending) return {true, oldest(open, ConnectionState::pending)};
  if (open.size() < max_connections) return {true, std::nullopt};
  if (auto idle = oldest(open, ConnectionState::idle)) return {true, idle};
  if (auto waiting = oldest(open, ConnectionState::pending)) return {true, waiting};
  return {false, std::nullopt};
}

}  // namespace mxcd::http
