// The administration of users and tokens, one code path for both fronts:
// authtokenctl's commands (src/ctl) and authtokend's staff admin API
// (src/daemon/admin_api.cpp) call these and only these, so that both
// validate, refuse, write to Redis and audit the same way. Django's own
// split is the same: createsuperuser and the admin's UserCreationForm both
// end in UserManager._create_user() (Django 4.2, contrib/auth/models.py).
//
// Every change (create, activate, deactivate, set password, regenerate,
// revoke, delete) that succeeds leaves exactly one audit line through the
// AuditSink: who did it (the actor), what, on whom; the sink adds when (the
// daemon's log and syslog stamp each line). An audit line never holds a
// password, a password hash or a token key: only names, flags and what was
// done. A refused or failed change leaves none.
#pragma once

#include "issuer/password_hasher.h"
#include "issuer/store/user_store.h"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace authtoken
{

// Who asks for a change: the staff user's username (the HTTP API) or the
// operating-system user running authtokenctl, and through which front
// ("http" or "cli").
struct AdminActor {
    std::string name;
    std::string via;
};

// A request refused before anything was written, field by field, as a
// DRF serializer's errors ({"username": ["..."]}): the keys in the order
// they were found, each with Django's / DRF's messages.
class AdminValidationError : public std::runtime_error
{
  public:
    using Errors =
        std::vector<std::pair<std::string, std::vector<std::string>>>;
    explicit AdminValidationError(Errors errors);
    const Errors &errors() const
    {
        return errors_;
    }

  private:
    Errors errors_;
};

// What to create. `password` nullopt: an unusable password (createsuperuser
// --noinput, the admin's "usable password: no"); "" is refused as blank.
struct CreateUserRequest {
    std::string username; // as given: normalized (NFKC) before validation
    std::optional<std::string> password;
    bool is_active = true;
    bool is_staff = false;
    bool is_superuser = false; // implies is_staff, as create_superuser()
    std::string email;
};

struct CreatedUser {
    std::uint64_t uid = 0;
    std::string username; // as stored (normalized)
    bool is_staff = false;
    bool is_superuser = false;
    bool with_token = false; // auto_create_token made its token
};

// One line of the audit trail, as the sinks receive it (without the time):
//   audit: actor="alice" via=http action=deactivate user="bob"
// plus, for create_user, the flags it was created with and whether a token
// was made. Names are quoted with \" \\ and control characters escaped
// (escape_unsafe_username), so a name cannot forge a field or a line.
std::string audit_line(const AdminActor &actor, std::string_view action,
                       std::string_view username, std::string_view extra = {});

using AuditSink = std::function<void(const std::string &line)>;

class UserAdmin
{
  public:
    // `store` and `policy` must outlive this; `auto_create_token` is the
    // setting (a new user gets its token, as DRF's post_save receiver; not
    // with tokens_per_user = many, whose keys are shown only when made);
    // `tokens` is tokens_per_user and its limit.
    UserAdmin(UserStore &store, const passwords::HasherPolicy &policy,
              bool auto_create_token, const TokenPolicy &tokens,
              AuditSink audit)
        : store_(store), policy_(policy),
          auto_create_token_(auto_create_token &&
                             tokens.mode != TokensPerUser::many),
          tokens_(tokens), audit_(std::move(audit))
    {
    }

    bool many_tokens() const
    {
        return tokens_.mode == TokensPerUser::many;
    }

    // Django's UserManager._create_user() with the username field's
    // validators: NFKC, then UnicodeUsernameValidator and max_length 150;
    // a blank password is "This field may not be blank."; the email is
    // checked as EmailField (django_email.h). Throws
    // AdminValidationError (nothing written), UsernameTaken.
    CreatedUser create_user(const AdminActor &actor,
                            const CreateUserRequest &request);
    // What create_user() refuses `request` for, without writing: the
    // username as stored (NFKC) and its messages, a blank password, the
    // email's messages; keyed "username", "password", "email" in that
    // order. For fronts that ask before prompting for a password (the CLI)
    // or that report every field's errors together (the HTTP API).
    static AdminValidationError::Errors
    check_new_user(const CreateUserRequest &request);

    // is_active on or off; false when it already was so (no audit line
    // then: nothing changed). Throws NoSuchUser.
    bool set_active(const AdminActor &actor, std::string_view username,
                    bool active);

    // Django's set_password() + save(): the password hashed with the
    // policy's hasher. The token is left alone (DRF) unless
    // `revoke_token`; with tokens_per_user = many every token of the user
    // ends with it, in the same function. Returns whether tokens were
    // revoked. Throws
    // AdminValidationError for a blank password, NoSuchUser.
    bool set_password(const AdminActor &actor, std::string_view username,
                      std::string_view raw_password, bool revoke_token);

    // A new key in place of the old one (drf_create_token -r, TokenAdmin's
    // delete + add); with tokens_per_user = many, a new key named
    // `token_name` in place of all of the user's. Throws NoSuchUser.
    IssuedToken regenerate_token(const AdminActor &actor,
                                 std::string_view username,
                                 TokenExpiry expiry = {},
                                 std::string_view token_name = {});

    // Deletes the user's token (all of them with tokens_per_user = many);
    // how many there were, 0 leaving no audit line. Throws NoSuchUser.
    int revoke_tokens(const AdminActor &actor, std::string_view username);

    // The user and its token. Throws NoSuchUser.
    void delete_user(const AdminActor &actor, std::string_view username);

    // Reads, not audited.
    std::optional<UserRecord> find_user(std::string_view username)
    {
        return store_.find_user(username);
    }
    // Every user in uid order (Django's User admin orders by username; the
    // uid order is the order users were created, and stable under paging).
    // With `search`, DRF's SearchFilter over search_fields = ("username",
    // "email"): split into terms at whitespace and commas, each term
    // contained case-insensitively (Unicode case folding) in either.
    std::vector<UserRecord> list_users(std::string_view search = {});

  private:
    void audit(const AdminActor &actor, std::string_view action,
               std::string_view username, std::string_view extra = {});

    UserStore &store_;
    const passwords::HasherPolicy &policy_;
    bool auto_create_token_;
    TokenPolicy tokens_;
    AuditSink audit_;
};

} // namespace authtoken
