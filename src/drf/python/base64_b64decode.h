// base64.b64decode() without validate=True, as Django's multipart parser
// applies it to fields sent with "Content-Transfer-Encoding: base64".
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace authtoken
{

// CPython 3.11's binascii.a2b_base64(strict_mode=False): characters outside
// the alphabet are skipped, and a '=' that completes a group of four ends
// the data. nullopt where Python raises binascii.Error (a group left
// unfinished: "Incorrect padding" and the like).
std::optional<std::string> decode_base64_leniently(std::string_view text);

} // namespace authtoken
