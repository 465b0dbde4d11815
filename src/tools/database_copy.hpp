// mxcd database copy: moves an SQLite metadata database into the PostgreSQL database the
// configuration names, so that a server that started on SQLite can grow to several
// instances. Rows already in PostgreSQL are left alone, so the copy can be run again (after
// an interruption, or to pick up what arrived meanwhile) and changes nothing the second time.
#pragma once

#include "core/config.hpp"

#include <filesystem>
#include <ostream>

namespace mxcd {

// Returns the process exit code; progress and the report go to out, errors to the log.
int copy_sqlite_to_postgres(const Config& config, const std::filesystem::path& sqlite_path,
                            std::ostream& out);

}  // namespace mxcd
