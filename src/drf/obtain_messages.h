// The texts DRF and Django answer POST /api-token-auth/ with before any
// credentials are checked, word for word, so that users can search for
// them (rest_framework/fields.py, serializers.py, exceptions.py,
// authtoken/serializers.py; django/core/validators.py, http/request.py).
#pragma once

#include <string_view>

namespace authtoken::drf
{

// Field.default_error_messages
inline constexpr std::string_view kFieldRequired = "This field is required.";
inline constexpr std::string_view kFieldNull = "This field may not be null.";
// CharField.default_error_messages
inline constexpr std::string_view kFieldBlank = "This field may not be blank.";
inline constexpr std::string_view kNotAString = "Not a valid string.";
// django.core.validators.ProhibitNullCharactersValidator
inline constexpr std::string_view kNullCharacters =
    "Null characters are not allowed.";
// Serializer.errors, when the data itself was None (a JSON null body)
inline constexpr std::string_view kNoDataProvided = "No data provided";
// Serializer.default_error_messages['invalid'], around type(data).__name__
inline constexpr std::string_view kInvalidDataBefore =
    "Invalid data. Expected a dictionary, but got ";
inline constexpr std::string_view kInvalidDataAfter = ".";
// UnsupportedMediaType.default_detail, around the Content-Type as sent
inline constexpr std::string_view kUnsupportedMediaBefore =
    "Unsupported media type \"";
inline constexpr std::string_view kUnsupportedMediaAfter = "\" in request.";
// django.core.exceptions.TooManyFieldsSent from QueryDict (Django answers
// it with a bare 400 page; we put the text in a JSON detail)
inline constexpr std::string_view kTooManyFormFields =
    "The number of GET/POST parameters exceeded "
    "settings.DATA_UPLOAD_MAX_NUMBER_FIELDS.";
// AuthTokenSerializer.validate(): wrong password, unknown or inactive user
inline constexpr std::string_view kUnableToLogIn =
    "Unable to log in with provided credentials.";

// The keys of a serializer's error dict.
inline constexpr std::string_view kNonFieldErrors = "non_field_errors";
inline constexpr std::string_view kUsername = "username";
inline constexpr std::string_view kPassword = "password";

} // namespace authtoken::drf
