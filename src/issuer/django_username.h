// Django's rules for a new username, as `createsuperuser` and the admin's
// UserCreationForm apply them: AbstractBaseUser.normalize_username (NFKC),
// then the username field's validators, UnicodeUsernameValidator
// (^[\w.@+-]+\Z) and max_length=150 counted in characters.
//
// Only creating a user applies them. Logging in matches the name exactly
// as sent (ModelBackend does not normalize), and an import keeps names byte
// for byte (loaddata neither normalizes nor validates).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace authtoken
{

// AbstractUser.username's max_length.
constexpr std::size_t kUsernameMaxLength = 150;

// NFKC, as unicodedata.normalize("NFKC", name). Bytes that are not UTF-8
// are kept as they are (Python would carry them as lone surrogates, which
// NFKC leaves alone); validate_username() then refuses the name.
std::string normalize_username(std::string_view name);

// Django's messages for `name`, in Django's order (the character check,
// then the length), empty when the name is valid. A blank name gives only
// "This field cannot be blank.".
std::vector<std::string> validate_username(std::string_view name);

// The number of characters Python counts in `name`: one per UTF-8
// sequence, and one per byte that is not part of one.
std::size_t username_length(std::string_view name);

// True when `name` holds a control character (C0 U+0000..U+001F, DEL,
// C1 U+0080..U+009F) anywhere, or Python whitespace (str.isspace()) at
// either end. Such a name came from somewhere other than Django's
// validators (loaddata, raw SQL) and, sent upstream in a header, CR/LF
// would inject header lines. Bytes that are not UTF-8 count as unsafe.
bool is_unsafe_username(std::string_view name);

// `name` with each such character written as an escape: "\xNN" for a byte
// below 0x20, DEL or a byte that is not UTF-8, "\uNNNN" for other code
// points (C1, Unicode whitespace at the ends). Safe names come back as they
// are. For import --escape-unsafe-usernames and for printing names.
std::string escape_unsafe_username(std::string_view name);

} // namespace authtoken
