#include "drf/multipart_parser.h"

#include "drf/django_parse_header.h"
#include "drf/python/base64_b64decode.h"
#include "drf/python/str_strip.h"

#include <algorithm>
#include <cstddef>

namespace authtoken
{
namespace
{

constexpr std::string_view kErrorPrefix = "Multipart form parse error - ";
constexpr std::string_view kTooManyFields =
    "The number of GET/POST parameters exceeded "
    "settings.DATA_UPLOAD_MAX_NUMBER_FIELDS.";
constexpr std::string_view kTooManyFiles =
    "The number of files exceeded settings.DATA_UPLOAD_MAX_NUMBER_FILES.";
constexpr std::string_view kTooBig =
    "Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.";
constexpr std::string_view kBadBase64File = "Could not decode base64 data.";

// parse_boundary_stream() looks for the end of a part's headers in the
// part's first 1024 bytes only.
constexpr std::size_t kMaxPartHeaderBytes = 1024;

MultipartParseResult failure(std::string_view message)
{
    MultipartParseResult result;
    result.error.assign(kErrorPrefix);
    result.error.append(message);
    return result;
}

// Knuth-Morris-Pratt search for the separator. Every boundary up to 201
// characters is allowed, and a naive search could then cost 200 steps per
// byte on a hostile body; this one reads each byte once.
class SeparatorFinder
{
  public:
    explicit SeparatorFinder(std::string_view separator)
        : separator_(separator), fallback_(separator.size() + 1, 0)
    {
        std::size_t k = 0;
        for (std::size_t i = 1; i < separator_.size(); i++) {
            while (k > 0 && separator_[i] != separator_[k]) {
                k = fallback_[k];
            }
            if (separator_[i] == separator_[k]) {
                k++;
            }
            fallback_[i + 1] = k;
        }
    }

    // The first occurrence starting at or after `from`, or npos.
    std::size_t find(std::string_view text, std::size_t from) const
    {
        std::size_t matched = 0;
        for (std::size_t i = from; i < text.size(); i++) {
            while (matched > 0 && text[i] != separator_[matched]) {
                matched = fallback_[matched];
            }
            if (text[i] == separator_[matched]) {
                matched++;
            }
            if (matched == separator_.size()) {
                return i + 1 - matched;
            }
        }
        return std::string_view::npos;
    }

  private:
    std::string_view separator_;
    std::vector<std::size_t> fallback_;
};

// cgi.valid_boundary(): 1 to 201 printable ASCII characters, the last not a
// space. Python's '$' also matches before a final "\n", which an RFC 2231
// boundary ("boundary*=utf-8''b%0A") can carry.
bool is_valid_boundary(std::string_view boundary)
{
    if (!boundary.empty() && boundary.back() == '\n') {
        boundary.remove_suffix(1);
    }
    if (boundary.empty() || boundary.size() > 201 || boundary.back() == ' ') {
        return false;
    }
    return std::all_of(boundary.begin(), boundary.end(),
                       [](char c) { return c >= ' ' && c <= '~'; });
}

bool is_ascii(std::string_view bytes)
{
    return std::all_of(bytes.begin(), bytes.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x80;
    });
}

// MultiPartParser.__init__(): the boundary, or the error it raises.
std::optional<std::string> find_boundary(std::string_view content_type,
                                         std::string &error)
{
    // Django checks the raw value, case-sensitively, although DRF chose the
    // parser case-insensitively: "Multipart/form-data" fails here.
    if (content_type.substr(0, 10) != "multipart/") {
        error = "Invalid Content-Type: " + latin1_to_utf8(content_type);
        return std::nullopt;
    }
    if (!is_ascii(content_type)) {
        error = "Invalid non-ASCII Content-Type in multipart: " +
                latin1_to_utf8(content_type);
        return std::nullopt;
    }
    auto header = parse_header_like_django(content_type);
    const HeaderParameter *boundary =
        header ? header->find("boundary") : nullptr;
    if (!boundary) {
        error = "Invalid boundary in multipart: None";
        return std::nullopt;
    }
    if (!is_valid_boundary(boundary->value)) {
        error = "Invalid boundary in multipart: " + boundary->value;
        return std::nullopt;
    }
    return boundary->value;
}

enum class PartKind { raw, field, file };

struct PartHeaders {
    PartKind kind = PartKind::raw;
    std::optional<ParsedHeader> disposition; // the last Content-Disposition
    std::optional<std::string> transfer_encoding;
    std::size_t data_offset = 0; // where the part's content starts
};

// parse_boundary_stream(): each header line goes through parse_header() as
// a whole, so "Content-Disposition: form-data; name=x" has the main value
// "content-disposition: form-data" and the name is what precedes ':'.
// Lines Django cannot parse are skipped. The last Content-Disposition line
// decides between field and file.
PartHeaders read_part_headers(std::string_view part)
{
    PartHeaders headers;
    std::string_view head = part.substr(0, kMaxPartHeaderBytes);
    std::size_t header_end = head.find("\r\n\r\n");
    if (header_end == std::string_view::npos) {
        return headers;
    }
    headers.data_offset = header_end + 4;
    std::string_view block = head.substr(0, header_end);
    for (;;) {
        std::size_t eol = block.find("\r\n");
        auto parsed = parse_header_like_django(block.substr(0, eol));
        std::size_t colon =
            parsed ? parsed->main_value.find(':') : std::string_view::npos;
        if (colon != std::string_view::npos) {
            std::string_view name =
                std::string_view(parsed->main_value).substr(0, colon);
            std::string value = parsed->main_value.substr(colon + 1);
            if (name == "content-disposition") {
                const HeaderParameter *file_name = parsed->find("filename");
                headers.kind = (file_name && !file_name->value.empty())
                                   ? PartKind::file
                                   : PartKind::field;
                headers.disposition = std::move(parsed);
            } else if (name == "content-transfer-encoding") {
                headers.transfer_encoding = std::move(value);
            }
        }
        if (eol == std::string_view::npos) {
            break;
        }
        block.remove_prefix(eol + 2);
    }
    return headers;
}

// force_str() of a header parameter: RFC 2231 values are text already.
std::string parameter_text(const HeaderParameter &parameter,
                           TextEncoding encoding)
{
    return parameter.decoded ? parameter.value
                             : decode_replacing(parameter.value, encoding);
}

// disposition['name'].strip(), then force_str(): str.strip() for RFC 2231
// text, bytes.strip() for raw bytes.
std::string field_name_of(const HeaderParameter &name, TextEncoding encoding)
{
    if (name.decoded) {
        return std::string(strip_python_str(name.value));
    }
    return decode_replacing(strip_python_bytes(name.value), encoding);
}

// sanitize_file_name(): what follows the last '/' and then the last '\';
// "", "." and ".." are no file at all. (Django html.unescape()s the name
// first; we do not, so a name spelled with entities such as "&#47;" may be
// kept here where Django drops it.)
std::optional<std::string> sanitize_file_name(std::string name)
{
    std::size_t slash = name.rfind('/');
    if (slash != std::string::npos) {
        name.erase(0, slash + 1);
    }
    std::size_t backslash = name.rfind('\\');
    if (backslash != std::string::npos) {
        name.erase(0, backslash + 1);
    }
    if (name.empty() || name == "." || name == "..") {
        return std::nullopt;
    }
    return name;
}

bool is_base64(const std::optional<std::string> &transfer_encoding)
{
    return transfer_encoding &&
           strip_python_str(*transfer_encoding) == "base64";
}

// Django decodes a base64 file as it streams it: whitespace dropped, whole
// groups of four through b64decode(), and an error for anything that
// raises or is left over. (It does so chunk by chunk; for a body read in
// one chunk, the whole file is one piece.)
bool is_decodable_base64_file(std::string_view content)
{
    std::string packed;
    packed.reserve(content.size());
    for (char c : content) {
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\v' &&
            c != '\f') {
            packed += c;
        }
    }
    if (packed.size() % 4 != 0) {
        return false;
    }
    return packed.empty() || decode_base64_leniently(packed).has_value();
}

std::size_t count_code_points(std::string_view utf8)
{
    return static_cast<std::size_t>(
        std::count_if(utf8.begin(), utf8.end(), [](char c) {
            return (static_cast<unsigned char>(c) & 0xc0) != 0x80;
        }));
}

// The loop of MultiPartParser._parse() over the parts, with its limits.
class PartCollector
{
  public:
    explicit PartCollector(TextEncoding encoding) : encoding_(encoding) {}

    // Returns the error text of the limit the part broke, if any.
    std::optional<std::string_view> add(std::string_view part)
    {
        // A file is complete, and lands in request.FILES, only when the
        // next part begins.
        if (pending_file_) {
            form_.files.push_back(std::move(*pending_file_));
            pending_file_.reset();
        }
        PartHeaders headers = read_part_headers(part);
        // Raw parts count as fields: the "+ 2" allows the usual empty
        // preamble and the "--" epilogue.
        if (headers.kind != PartKind::file &&
            ++post_keys_ > kMaxFormFields + 2) {
            return kTooManyFields;
        }
        const HeaderParameter *name =
            headers.disposition ? headers.disposition->find("name") : nullptr;
        if (!name) {
            return std::nullopt;
        }
        std::string field_name = field_name_of(*name, encoding_);
        std::string_view content = part.substr(headers.data_offset);
        if (headers.kind == PartKind::field) {
            return add_field(std::move(field_name), content,
                             is_base64(headers.transfer_encoding));
        }
        return add_file(std::move(field_name), *headers.disposition, content,
                        is_base64(headers.transfer_encoding));
    }

    MultipartForm take_form()
    {
        return std::move(form_);
    }

  private:
    std::optional<std::string_view>
    add_field(std::string field_name, std::string_view content, bool base64)
    {
        std::optional<std::string> decoded;
        if (base64) {
            // Django keeps the raw bytes when b64decode() raises.
            decoded = decode_base64_leniently(content);
        }
        // Counted before base64 decoding, with 2 more for "&=".
        field_bytes_ += content.size() + count_code_points(field_name) + 2;
        if (field_bytes_ > kMaxMultipartFieldBytes) {
            return kTooBig;
        }
        form_.fields.push_back(
            {std::move(field_name),
             decode_replacing(decoded ? *decoded : content, encoding_)});
        return std::nullopt;
    }

    std::optional<std::string_view> add_file(std::string field_name,
                                             const ParsedHeader &disposition,
                                             std::string_view content,
                                             bool base64)
    {
        if (++files_ > kMaxMultipartFiles) {
            return kTooManyFiles;
        }
        auto file_name = sanitize_file_name(
            parameter_text(*disposition.find("filename"), encoding_));
        if (!file_name) {
            return std::nullopt;
        }
        if (base64 && !is_decodable_base64_file(content)) {
            return kBadBase64File;
        }
        // Django completes files only for a truthy field name.
        if (!field_name.empty()) {
            pending_file_ =
                UploadedFilePart{std::move(field_name), std::move(*file_name)};
        }
        return std::nullopt;
    }

    TextEncoding encoding_;
    MultipartForm form_;
    std::optional<UploadedFilePart> pending_file_;
    std::size_t post_keys_ = 0;
    std::size_t files_ = 0;
    std::size_t field_bytes_ = 0;
};

} // namespace

MultipartParseResult parse_multipart_form(std::string_view content_type,
                                          std::string_view body,
                                          TextEncoding encoding)
{
    std::string error;
    auto boundary = find_boundary(content_type, error);
    if (!boundary) {
        return failure(error);
    }
    const std::string separator = "--" + *boundary;
    SeparatorFinder finder(separator);
    PartCollector collector(encoding);

    std::size_t pos = 0;
    while (pos < body.size()) {
        std::size_t hit = finder.find(body, pos);
        std::size_t end = hit == std::string_view::npos ? body.size() : hit;
        std::size_t next = hit == std::string_view::npos
                               ? body.size()
                               : hit + separator.size();
        // _find_boundary() backs up over one "\n", then one "\r".
        if (hit != std::string_view::npos) {
            if (end > pos && body[end - 1] == '\n') {
                end--;
            }
            if (end > pos && body[end - 1] == '\r') {
                end--;
            }
        }
        if (auto broken = collector.add(body.substr(pos, end - pos))) {
            return failure(*broken);
        }
        pos = next;
    }
    MultipartParseResult result;
    result.form = collector.take_form();
    return result;
}

} // namespace authtoken
