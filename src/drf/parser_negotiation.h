// Which parser DRF's obtain_auth_token reads a request body with, and with
// which charset: DefaultContentNegotiation.select_parser() over
// ObtainAuthToken.parser_classes = (FormParser, MultiPartParser,
// JSONParser), and Django's request.encoding.
#pragma once

#include "drf/python/codecs.h"

#include <string_view>

namespace authtoken
{

enum class BodyParser { none, json, form, multipart };

// The first parser whose media type matches: type and subtype compared
// after lower-casing, '*' on the request's side matching anything (so
// "*/*" and "application/*" pick the form parser, "*/json" JSON),
// parameters ignored. `none` (DRF's 415) for
// everything else, including an empty value and values DRF cannot even
// parse (non-ASCII type or parameter names, on which DRF fails with 500).
BodyParser select_body_parser(std::string_view content_type);

// Django takes request.encoding from the `charset` parameter when Python
// knows the codec, else settings.DEFAULT_CHARSET (UTF-8). Codecs we do not
// implement (UTF-16, cp1252, ...) are read as UTF-8 here.
TextEncoding request_text_encoding(std::string_view content_type);

} // namespace authtoken
