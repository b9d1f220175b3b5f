#include "issuer/admin/user_admin.h"

#include "core/drf_messages.h"
#include "issuer/django_email.h"
#include "issuer/django_username.h"

#include <unicase.h>

#include <cstdlib>
#include <memory>

namespace authtoken
{
namespace
{

// "name": \ and " escaped as \\ and \", then control characters, edge
// whitespace and bytes that are not UTF-8 as \xNN / \uNNNN
// (escape_unsafe_username), so that a backslash in the name is always
// doubled and a single one always starts an escape.
std::string quoted(std::string_view name)
{
    std::string slashed;
    for (char c : name) {
        if (c == '"' || c == '\\') {
            slashed.push_back('\\');
        }
        slashed.push_back(c);
    }
    return "\"" + escape_unsafe_username(slashed) + "\"";
}

const char *flag(bool on)
{
    return on ? "1" : "0";
}

// Unicode full case folding (libunistring's u8_casefold), for the
// case-insensitive search; text that is not UTF-8 is compared as it is.
std::string folded(std::string_view text)
{
    std::size_t length = 0;
    std::unique_ptr<uint8_t, decltype(&std::free)> out(
        u8_casefold(reinterpret_cast<const uint8_t *>(text.data()), text.size(),
                    nullptr, nullptr, nullptr, &length),
        &std::free);
    if (!out) {
        return std::string(text);
    }
    return std::string(reinterpret_cast<const char *>(out.get()), length);
}

void refuse_blank_password(std::string_view raw)
{
    if (raw.empty()) {
        throw AdminValidationError(
            {{std::string(drf::kPassword), {std::string(drf::kFieldBlank)}}});
    }
}

} // namespace

AdminValidationError::AdminValidationError(Errors errors)
    : std::runtime_error(errors.empty() || errors.front().second.empty()
                             ? std::string("invalid")
                             : errors.front().second.front()),
      errors_(std::move(errors))
{
}

std::string audit_line(const AdminActor &actor, std::string_view action,
                       std::string_view username, std::string_view extra)
{
    std::string line = "audit: actor=" + quoted(actor.name) +
                       " via=" + actor.via + " action=" + std::string(action) +
                       " user=" + quoted(username);
    if (!extra.empty()) {
        line.append(" ").append(extra);
    }
    return line;
}

void UserAdmin::audit(const AdminActor &actor, std::string_view action,
                      std::string_view username, std::string_view extra)
{
    if (audit_) {
        audit_(audit_line(actor, action, username, extra));
    }
}

AdminValidationError::Errors
UserAdmin::check_new_user(const CreateUserRequest &request)
{
    AdminValidationError::Errors errors;
    std::vector<std::string> name_errors =
        validate_username(normalize_username(request.username));
    if (!name_errors.empty()) {
        errors.emplace_back(std::string(drf::kUsername),
                            std::move(name_errors));
    }
    if (request.password && request.password->empty()) {
        errors.emplace_back(
            std::string(drf::kPassword),
            std::vector<std::string>{std::string(drf::kFieldBlank)});
    }
    std::vector<std::string> email_errors = validate_email(request.email);
    if (!email_errors.empty()) {
        errors.emplace_back("email", std::move(email_errors));
    }
    return errors;
}

CreatedUser UserAdmin::create_user(const AdminActor &actor,
                                   const CreateUserRequest &request)
{
    AdminValidationError::Errors errors = check_new_user(request);
    if (!errors.empty()) {
        throw AdminValidationError(std::move(errors));
    }
    NewUser user;
    user.username = normalize_username(request.username);
    user.is_superuser = request.is_superuser;
    // Django's create_superuser makes superusers staff too.
    user.is_staff = request.is_staff || request.is_superuser;
    user.is_active = request.is_active;
    user.email = request.email;
    user.password = request.password
                        ? passwords::make_password(*request.password, policy_)
                        : passwords::make_unusable_password();
    CreatedUser created;
    created.uid = store_.create_user(user, auto_create_token_);
    created.username = user.username;
    created.is_staff = user.is_staff;
    created.is_superuser = user.is_superuser;
    created.with_token = auto_create_token_;
    audit(actor, "create_user", user.username,
          std::string("is_active=") + flag(user.is_active) + " is_staff=" +
              flag(user.is_staff) + " is_superuser=" + flag(user.is_superuser) +
              " usable_password=" + flag(request.password.has_value()) +
              " token=" + (auto_create_token_ ? "created" : "none"));
    return created;
}

bool UserAdmin::set_active(const AdminActor &actor, std::string_view username,
                           bool active)
{
    bool changed = store_.set_active(username, active);
    if (changed) {
        audit(actor, active ? "activate" : "deactivate", username);
    }
    return changed;
}

bool UserAdmin::set_password(const AdminActor &actor, std::string_view username,
                             std::string_view raw_password, bool revoke_token)
{
    refuse_blank_password(raw_password);
    if (many_tokens()) {
        store_.set_password(username,
                            passwords::make_password(raw_password, policy_), {},
                            true);
        audit(actor, "set_password", username, "token=revoked");
        return true;
    }
    store_.set_password(username,
                        passwords::make_password(raw_password, policy_));
    bool revoked = false;
    if (revoke_token) {
        try {
            revoked = store_.revoke_token(username);
        } catch (...) {
            // The password was changed all the same: that is audited.
            audit(actor, "set_password", username, "token=kept");
            throw;
        }
    }
    audit(actor, "set_password", username,
          std::string("token=") + (revoked ? "revoked" : "kept"));
    return revoked;
}

IssuedToken UserAdmin::regenerate_token(const AdminActor &actor,
                                        std::string_view username,
                                        TokenExpiry expiry,
                                        std::string_view token_name)
{
    IssuedToken token =
        many_tokens()
            ? store_.add_token(username, token_name, tokens_, expiry, true)
            : store_.regenerate_token(username, expiry);
    audit(actor, "regenerate_token", username);
    return token;
}

int UserAdmin::revoke_tokens(const AdminActor &actor, std::string_view username)
{
    int removed = store_.revoke_tokens(username);
    if (removed > 0) {
        audit(actor, "revoke_token", username,
              many_tokens() ? "tokens=" + std::to_string(removed)
                            : std::string());
    }
    return removed;
}

void UserAdmin::delete_user(const AdminActor &actor, std::string_view username)
{
    store_.delete_user(username);
    audit(actor, "delete_user", username);
}

std::vector<UserRecord> UserAdmin::list_users(std::string_view search)
{
    std::vector<UserRecord> users = store_.list_users();
    // SearchFilter.get_search_terms(): NULs dropped, commas as spaces,
    // split on whitespace; a user matches when every term is in its
    // username or its email (icontains).
    std::vector<std::string> terms;
    std::string term;
    for (char c : search) {
        if (c == '\0') {
            continue;
        }
        if (c == ',' || c == ' ' || (c >= '\t' && c <= '\r')) {
            if (!term.empty()) {
                terms.push_back(folded(term));
                term.clear();
            }
        } else {
            term.push_back(c);
        }
    }
    if (!term.empty()) {
        terms.push_back(folded(term));
    }
    if (terms.empty()) {
        return users;
    }
    std::vector<UserRecord> found;
    for (UserRecord &u : users) {
        std::string name = folded(u.username);
        std::string email = folded(u.email);
        bool all = true;
        for (const std::string &t : terms) {
            if (name.find(t) == std::string::npos &&
                email.find(t) == std::string::npos) {
                all = false;
                break;
            }
        }
        if (all) {
            found.push_back(std::move(u));
        }
    }
    return found;
}

} // namespace authtoken
