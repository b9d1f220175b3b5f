// Token keys as DRF's Token.generate_key() makes them: 20 bytes from the
// CSPRNG, written as 40 lowercase hex characters.
#pragma once

#include <string>

namespace authtoken
{

inline constexpr std::size_t kTokenKeyLength = 40;

// Throws std::runtime_error if OpenSSL's CSPRNG fails (it never silently
// falls back to a weaker source).
std::string generate_token_key();

// "2026-11-27T20:26:24.328Z": the current time as Django writes datetimes.
std::string utc_timestamp_now();

} // namespace authtoken
