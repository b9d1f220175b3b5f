// Django's rules for a user's email (auth.User.email, Django 4.2:
// models.EmailField(blank=True), max_length 254), as createsuperuser and
// the admin's forms apply them: django.core.validators.EmailValidator, then
// MaxLengthValidator. Applied where users are created (authtokenctl
// createuser --email, POST /api-admin/users/); an import keeps emails as
// they are (loaddata does not validate).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace authtoken
{

// EmailField's max_length on auth.User.
constexpr std::size_t kEmailMaxLength = 254;

// Django's messages for `email`, in Django's order, empty when it is
// valid; "" is valid (blank=True). EmailValidator: at most 320 characters,
// an '@', the part before the last '@' a dot-atom or a quoted string, the
// part after it "localhost", a dotted domain name whose last label has 2
// to 63 characters, or an [IPv4/IPv6] literal. Beyond Django, which tries
// the domain again IDNA-encoded: a label holding non-ASCII characters is
// taken as a valid internationalized label (at most 63 bytes, no '-' at
// either end) without encoding it.
std::vector<std::string> validate_email(std::string_view email);

} // namespace authtoken
