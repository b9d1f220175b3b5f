// One line per event on stderr, for the daemon and the CLI. Lines are
// written whole under a lock so that pool threads never interleave. Callers
// must never pass a token key or a password: log usernames, addresses,
// digests' prefixes and causes only.
#pragma once

#include <string_view>

namespace authtoken::log
{

void info(std::string_view line);
void warn(std::string_view line);
void error(std::string_view line);

} // namespace authtoken::log
