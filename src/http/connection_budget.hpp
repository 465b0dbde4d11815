// Who gets a connection slot. Connections are pending (no complete request head yet: new,
// or the next head is arriving), idle (keep-alive, waiting for the next request) or busy
// (a request is being served). Pending connections may take at most max_pending of the
// max_connections slots, so that clients sending slow heads cannot take them all; busy
// connections are never shed.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <vector>

namespace mxcd::http {

enum class ConnectionState { pending, idle, busy };

struct ConnectionSlot {
  ConnectionState state = ConnectionState::pending;
  std::chrono::steady_clock::time_point since;  // when it entered its state
};

struct Admission {
  bool accept = false;
  std::optional<std::size_t> shed;  // index into the slots of a connection to close first
};

// The decision for one new (pending) connection, given those already open:
// - while the pending budget is full, the oldest pending connection makes room;
// - while all slots are taken, the oldest idle connection makes room, then the oldest
//   pending one;
// - a new connection is refused only when every slot is busy.
Admission admit_connection(const std::vector<ConnectionSlot>& open, std::size_t max_connections,
                           std::size_t max_pending);

}  // namespace mxcd::http
