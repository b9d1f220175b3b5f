// One line per event on stderr, for the daemon and the CLI. Lines are
// written whole under a lock so that pool threads never interleave. Callers
// must never pass a token key or a password: log usernames, addresses,
// digests' prefixes and causes only.
#pragma once

#include <string>
#include <string_view>

namespace authtoken::log
{

void info(std::string_view line);
void warn(std::string_view line);
void error(std::string_view line);

// A user name as a log line shows it: in double quotes, cut to its first
// 64 bytes, each control byte (below 0x20, and 0x7f) and each '"' replaced
// by '?', so a client's name can neither forge a line nor end the quoted
// field. Returns a new string.
std::string quoted_username(std::string_view username);

} // namespace authtoken::log
