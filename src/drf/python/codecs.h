// The few Python codecs DRF can be told to read a request body with, decoded
// exactly as CPython does: the same errors at the same positions, and the
// same U+FFFD substitutions for errors='replace'. All text handed back is
// UTF-8.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace authtoken
{

enum class TextEncoding { utf8, latin1, ascii };

// Django sets request.encoding from the Content-Type's charset when
// codecs.lookup() knows the name. This answers the codecs we implement, by
// any of Python's aliases ("UTF8", "iso-8859-1", "us-ascii", ...), and
// nullopt for every other name; callers then use UTF-8, which is what
// Django does for names Python does not know.
std::optional<TextEncoding> find_text_encoding(std::string_view charset);

// Python's name for the codec, as it appears in UnicodeDecodeError.
std::string_view codec_name(TextEncoding encoding);

// Where bytes[start, end) could not be decoded, and why, in CPython's words.
struct DecodeFailure {
    std::size_t start = 0;
    std::size_t end = 0;
    std::string_view reason;
};

struct StrictDecodeResult {
    std::string text; // complete only when failure is empty
    std::optional<DecodeFailure> failure;
};

// bytes.decode(encoding) when `final`; otherwise what a codecs StreamReader's
// read() returns, which decodes without `final` and so silently drops an
// incomplete UTF-8 sequence at the very end of the input.
StrictDecodeResult decode_strict(std::string_view bytes, TextEncoding encoding,
                                 bool final);

// bytes.decode(encoding, errors='replace').
std::string decode_replacing(std::string_view bytes, TextEncoding encoding);

// str(UnicodeDecodeError), e.g. "'utf-8' codec can't decode byte 0xff in
// position 0: invalid start byte".
std::string describe_decode_failure(std::string_view bytes,
                                    TextEncoding encoding,
                                    const DecodeFailure &failure);

// A WSGI header value is the latin-1 reading of its bytes; this is that
// reading as UTF-8.
std::string latin1_to_utf8(std::string_view bytes);

} // namespace authtoken
