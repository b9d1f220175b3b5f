// multipart/form-data bodies as DRF's MultiPartParser reads them: Django
// 3.2's MultiPartParser (Debian 12's 3.2.25, with its CVE-2023-24580 limits
// on fields and files).
#pragma once

#include "drf/form_parser.h"
#include "drf/python/codecs.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace authtoken
{

// Django's DATA_UPLOAD_MAX_NUMBER_FILES and DATA_UPLOAD_MAX_MEMORY_SIZE
// defaults (DATA_UPLOAD_MAX_NUMBER_FIELDS is kMaxFormFields).
inline constexpr std::size_t kMaxMultipartFiles = 100;
inline constexpr std::size_t kMaxMultipartFieldBytes = 2621440;

struct UploadedFilePart {
    std::string field_name; // UTF-8
    std::string file_name;  // UTF-8, as sanitize_file_name() left it
};

struct MultipartForm {
    std::vector<FormField> fields;       // request.POST, in body order
    std::vector<UploadedFilePart> files; // request.FILES, in body order
};

struct MultipartParseResult {
    std::optional<MultipartForm> form;
    std::string error; // DRF's ParseError detail when `form` is empty
};

// The parts are what lies between occurrences of "--" + boundary (found
// anywhere, not only at line starts), each losing one "\n" and then one "\r"
// before the next occurrence; the text before the first one is a part too.
// A part's headers must end with "\r\n\r\n" within its first 1024 bytes,
// else it is skipped. A part with a Content-Disposition `name` is a field,
// or a file when `filename` is non-empty; a file only counts once another
// part follows it, as Django completes files at the next part. Field values
// may be sent "Content-Transfer-Encoding: base64". Linear in the body size.
//
// Django reads the body in 64 KiB chunks and, for parts it skips without
// reading them to the end, where the next part starts then depends on those
// chunks; we read the body as one chunk, which is exact up to 64 KiB.
MultipartParseResult parse_multipart_form(std::string_view content_type,
                                          std::string_view body,
                                          TextEncoding encoding);

} // namespace authtoken
