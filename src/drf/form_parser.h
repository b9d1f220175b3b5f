// application/x-www-form-urlencoded bodies as DRF's FormParser reads them:
// Django's QueryDict(body, encoding=request.encoding).
#pragma once

#include "drf/python/codecs.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace authtoken
{

struct FormField {
    std::string name;  // UTF-8
    std::string value; // UTF-8
};

// Django's DATA_UPLOAD_MAX_NUMBER_FIELDS default.
inline constexpr std::size_t kMaxFormFields = 1000;

// The fields in body order (QueryDict keeps every value; its [] gives the
// last). The body is split on '&' only (';' is not a separator since
// Django 3.2 / CVE-2021-23336), empty pieces are skipped, a piece without
// '=' is a key with an empty value, and '+' becomes a space before %XX
// escapes are decoded with `encoding`, bad bytes becoming U+FFFD. A body
// that is not valid in `encoding` is read as latin-1 as a whole, as Django
// does for "misbehaving user agents". nullopt when the body holds more than
// kMaxFormFields fields (Django's TooManyFieldsSent); empty pieces count.
std::optional<std::vector<FormField>>
parse_urlencoded_form(std::string_view body, TextEncoding encoding);

} // namespace authtoken
