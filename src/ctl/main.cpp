// authtokenctl: the admin command line of the issuer (users, tokens, import
// from Django). Settings come as for authtokend: flags > AUTHTOKEN_*
// environment > --config file > defaults; it needs the same Redis and the
// same secret file as the daemon.
#include "password_prompt.h"

#include "core/redis_keys.h"
#include "issuer/admin/user_admin.h"
#include "issuer/django_import.h"
#include "issuer/django_username.h"
#include "issuer/settings/issuer_settings.h"
#include "issuer/password_hasher.h"
#include "issuer/store/outbox_replayer.h"
#include "issuer/store/redis_client.h"
#include "issuer/token_key.h"
#include "issuer/token_sealer.h"
#include "issuer/store/user_store.h"

#include <nlohmann/json.hpp>
#include <pwd.h>
#include <syslog.h>
#include <uniwidth.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace
{

using namespace authtoken;

constexpr const char *kGlobalUsage =
    R"(usage: authtokenctl [--redis URL] [--secret-file PATH] [--config FILE]
                    [--pbkdf2-iterations N] [--no-auto-create-token]
                    COMMAND [ARGS] [--help]

commands:
  init-secret PATH     create the 32-byte secret file (mode 0600)
  createuser NAME      add a user (--superuser --staff --inactive
                       --password-stdin --email E)
  changepassword NAME  set a new password (prompt, or --password-stdin;
                       --revoke-token also ends the user's token; with
                       tokens_per_user = many, every token always)
  deactivate NAME      refuse the user's token and logins at once
  activate NAME        undo deactivate
  deleteuser NAME      remove the user and its token
  token NAME [-r]      print the user's token, creating it if it has none or
                       it expired (-r: replace it; --ttl D / --expires T;
                       tokens_per_user = many: a new token each time,
                       --name N; -r: replacing all the user's tokens)
  revoke NAME          delete the user's token (tokens_per_user = many:
                       every token of the user)
  tokens NAME [--json] list the user's tokens: id, name, created, last
                       used, expires (never a key)
  backfill             give a token to every user without one (or with an
                       expired one; not with tokens_per_user = many)
                       (long commands show a progress bar on a terminal)
  users [--json]       list users, their flags and whether they have a token
  import-django FILE   import `manage.py dumpdata auth.user authtoken.token`
  migrate [--nginx-upgraded]
                       bring the records to schema version 3 (the rename
                       of token records only with --nginx-upgraded: every
                       nginx runs this release's module)
  directory init|sync|status
                       the separate token directory (directory_url)

Settings are also read from AUTHTOKEN_* environment variables
(AUTHTOKEN_REDIS, AUTHTOKEN_SECRET_FILE, ...) and from --config FILE.
The Redis password belongs in AUTHTOKEN_REDIS_PASSWORD or the config
file's redis_password: a password on the command line shows in `ps`.

Every change (createuser, changepassword, activate, deactivate, token -r,
revoke, deleteuser) goes through the code path of authtokend's staff admin
API and leaves one audit line in syslog (authpriv) and on stderr.

exit status: 0 done; 1 failed (nothing more was changed); 2 usage error;
3 Redis did not answer a change in time: it was made before then or not at
all (never later); check before trying again; 4 (with directory_url) the
change is recorded in the user store but the token directory did not take
it yet: it reaches the edges with the next `authtokenctl directory sync`.
)";

// The exit statuses above.
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitOutcomeUnknown = 3;
// Recorded in the user store, not yet in the separate token directory.
constexpr int kExitRecorded = 4;

// How long a change waits for directory_min_replicas: half the reply
// timeout, so that WAIT answers before the connection gives up on it.
std::chrono::milliseconds replica_wait(const IssuerSettings &settings)
{
    return std::chrono::milliseconds(
        std::max<unsigned>(1, settings.redis_timeout_ms / 2));
}

// What every command needs, opened on first use so that --help and
// init-secret work without Redis.
class Session
{
  public:
    explicit Session(IssuerSettings settings) : settings_(std::move(settings))
    {
    }
    const IssuerSettings &settings() const
    {
        return settings_;
    }
    // The user store's connection (after store()).
    RedisConnection &connection()
    {
        store();
        return *conn_;
    }
    // The separate token directory's connection, or nullptr without one.
    // Throws RedisError when it cannot connect.
    RedisConnection *directory_if_any()
    {
        store();
        return replayer_ ? &directory() : nullptr;
    }
    UserStore &store()
    {
        if (!store_) {
            sealer_.emplace(load_secret_file(settings_.secret_file));
            scripts_ = std::make_unique<ScriptLibrary>(
                settings_.scripts_dir, [](const ScriptLibrary::Replaced &r) {
                    if (r.earlier_release_on_schema_3()) {
                        std::cerr
                            << "authtokenctl: error: an issuer of an earlier "
                               "release is writing to this schema-3 "
                               "database: its revocations and deactivations "
                               "are lost; stop it (it loaded Functions "
                               "library authtoken "
                            << r.other
                            << ", which knows no schema version 3, while "
                               "authtoken:schema is "
                            << r.schema
                            << "; stop every authtokend and authtokenctl of "
                               "the earlier release, docs/operations.md "
                               "\"Upgrading to schema version 3\")\n";
                        return;
                    }
                    std::cerr << "authtokenctl: warning: replaced Functions "
                                 "library authtoken "
                              << r.other
                              << " in Redis with this one's: an issuer of "
                                 "another version shares this Redis\n";
                });
            conn_ = std::make_unique<RedisConnection>(
                redis_endpoint(settings_),
                std::chrono::milliseconds(settings_.redis_timeout_ms));
            scripts_->load(*conn_);
            open_directory();
            store_ = std::make_unique<UserStore>(*conn_, *scripts_, *sealer_);
            store_->set_token_ttl(settings_.token_ttl);
            store_->set_token_renewal(settings_.token_auto_refresh,
                                      settings_.token_max_ttl);
            if (replayer_) {
                // A token the edges still renew is not replaced by `token`
                // or `backfill`, nor swept by `token` in many mode; a
                // directory that does not answer leaves the user store's
                // expiry to decide for tokens that do not renew, and no
                // token that renews is swept or replaced.
                store_->set_renewed_expiry(
                    [this](const std::vector<std::string> &digests)
                        -> std::optional<std::vector<std::int64_t>> {
                        try {
                            return read_renewed_expiries(directory(), digests);
                        } catch (const RedisError &e) {
                            warn_directory_unread(
                                e, "the user store's expiry decides for "
                                   "tokens that do not renew, and no token "
                                   "that renews is swept or replaced");
                            return std::nullopt;
                        }
                    });
                // `tokens` and `users` show the directory's expiry and last
                // use; a directory that does not answer shows the user
                // store's (`directory status` says it is down).
                store_->set_directory_fields(
                    [this](const std::vector<std::string> &digests)
                        -> std::optional<std::vector<DirectoryTokenFields>> {
                        try {
                            return read_directory_fields(directory(), digests);
                        } catch (const RedisError &e) {
                            warn_directory_unread(
                                e, "the expiry and last use shown are the "
                                   "user store's, without the edges' "
                                   "renewals");
                            return std::nullopt;
                        }
                    });
            }
        }
        return *store_;
    }
    passwords::HasherPolicy policy() const
    {
        return hasher_policy(settings_);
    }
    // The changes, through the code path the HTTP admin API uses too.
    UserAdmin &admin()
    {
        if (!admin_) {
            policy_ = policy();
            admin_ = std::make_unique<UserAdmin>(store(), policy_,
                                                 settings_.auto_create_token,
                                                 settings_.tokens, write_audit);
        }
        return *admin_;
    }
    // Who runs this command: the operating-system user of the real uid
    // (sudo's own log names whoever ran sudo).
    static AdminActor actor()
    {
        const passwd *pw = getpwuid(getuid());
        return {pw != nullptr ? std::string(pw->pw_name)
                              : "uid " + std::to_string(getuid()),
                "cli"};
    }

    // With a separate token directory (docs/operations.md, "Two stores"):
    // after the command, applies what it recorded in the outbox (and
    // anything older still pending). 0 when there is no directory, or the
    // directory has every change; kExitRecorded, after saying so, when the
    // command recorded a change the directory did not take in time: it is
    // in the user store and reaches the edges with the next sync.
    int finish_directory(int code)
    {
        if (!replayer_) {
            return code;
        }
        try {
            // Every entry acknowledged (a read, or a command that changed
            // nothing): nothing to apply, and nothing to warn of.
            if (read_outbox_number(*conn_, keys::kOutboxSequence) <=
                read_outbox_number(*conn_, keys::kOutboxAcked)) {
                return code;
            }
            apply_pending();
            return code;
        } catch (const std::exception &e) {
            if (read_outbox_number(*conn_, keys::kOutboxSequence) ==
                seq_before_) {
                std::cerr << "authtokenctl: warning: the token directory did "
                             "not take the pending changes: "
                          << e.what() << "\n";
                return code;
            }
            if (dynamic_cast<const OutboxReplayer::ReplicasShort *>(&e)) {
                // The directory's primary has it: only the replicas' word
                // is missing, so "when the directory is back" is untrue.
                std::cerr << "authtokenctl: directory "
                          << describe_endpoint(directory_endpoint_)
                          << ": applied on its primary, not yet acknowledged ("
                          << e.what()
                          << "); `authtokenctl directory sync` waits again\n";
                return code == 0 ? kExitRecorded : code;
            }
            std::cerr << "authtokenctl: recorded; it will reach the edges "
                         "when the token directory is back ("
                      << e.what()
                      << "); `authtokenctl directory sync` applies it\n";
            return code == 0 ? kExitRecorded : code;
        }
    }

  private:
    // Says once per command that the directory did not answer a read and
    // what is shown or decided instead (the command goes on: the user
    // store has every token, only the edges' renewals and last use are
    // missing).
    void warn_directory_unread(const RedisError &e, const char *instead)
    {
        if (directory_unread_warned_) {
            return;
        }
        directory_unread_warned_ = true;
        std::cerr << "authtokenctl: warning: the token directory "
                  << describe_endpoint(directory_endpoint_)
                  << " did not answer (" << e.what() << "): " << instead
                  << "\n";
    }

    // Connects to the directory (again, after a failure) and drains the
    // outbox into it. Throws what either store throws.
    void apply_pending()
    {
        replayer_->drain(*conn_, directory());
    }

    // The connection to the directory, made (again, after a failure) on
    // use. Throws RedisError.
    RedisConnection &directory()
    {
        if (!directory_ || directory_->broken()) {
            directory_.reset();
            directory_ = std::make_unique<RedisConnection>(
                directory_endpoint_,
                std::chrono::milliseconds(settings_.redis_timeout_ms));
            scripts_->load(*directory_);
        }
        return *directory_;
    }

    // Checks that the user store and the settings agree on the layout, and
    // with a separate directory connects to it and applies what is pending
    // before the command runs (best effort: finish_directory reports).
    void open_directory()
    {
        Reply marked = conn_->command({"GET", keys::kDirectoryId});
        std::string id = reply_string(marked.get());
        std::optional<RedisEndpoint> endpoint = directory_endpoint(settings_);
        if (!endpoint && !id.empty()) {
            throw std::runtime_error(
                "Error: this user store feeds a separate token directory "
                "(authtoken:directory-id " +
                id +
                "): set directory_url to it, or changes would be reported "
                "done before the edges have them");
        }
        if (!endpoint) {
            return;
        }
        if (id.empty()) {
            throw std::runtime_error("Error: directory_url is set but this "
                                     "user store feeds no token directory "
                                     "yet: run `authtokenctl directory "
                                     "init`");
        }
        directory_endpoint_ = *endpoint;
        replayer_ = std::make_unique<OutboxReplayer>(*scripts_, id);
        replayer_->set_min_replicas(settings_.directory_min_replicas,
                                    replica_wait(settings_));
        try {
            apply_pending();
        } catch (const std::exception &) {
            // Reported after the command, by finish_directory.
        }
        seq_before_ = read_outbox_number(*conn_, keys::kOutboxSequence);
    }

    // An audit line goes to syslog's authpriv facility, as sudo's and
    // su's do (readable by root only on Debian: /var/log/auth.log or the
    // journal), and to standard error, where the operator sees it.
    static void write_audit(const std::string &line)
    {
        static const bool opened = [] {
            openlog("authtokenctl", LOG_PID, LOG_AUTHPRIV);
            return true;
        }();
        (void)opened;
        syslog(LOG_AUTHPRIV | LOG_NOTICE, "%s", line.c_str());
        std::cerr << "authtokenctl: " << line << "\n";
    }

    IssuerSettings settings_;
    passwords::HasherPolicy policy_;
    std::optional<TokenSealer> sealer_;
    std::unique_ptr<ScriptLibrary> scripts_;
    std::unique_ptr<RedisConnection> conn_;
    std::unique_ptr<UserStore> store_;
    std::unique_ptr<UserAdmin> admin_;
    RedisEndpoint directory_endpoint_;
    std::unique_ptr<RedisConnection> directory_;
    bool directory_unread_warned_ = false;
    std::unique_ptr<OutboxReplayer> replayer_;
    std::uint64_t seq_before_ = 0; // the outbox number before the command
};

// A command's own arguments: flags it knows, and positionals.
struct CommandArgs {
    std::vector<std::string> positional;
    std::map<std::string, std::string> options; // "--email" -> "x"
    bool has(const std::string &flag) const
    {
        return options.count(flag) != 0;
    }
};

class UsageError : public std::runtime_error
{
  public:
    using std::runtime_error::runtime_error;
};

struct Command {
    const char *name;
    const char *usage;
    const char *help;
    std::vector<std::string> switches;    // flags without a value
    std::vector<std::string> with_values; // flags taking a value
    std::size_t positional;               // exact number of positionals
    std::function<int(Session &, const CommandArgs &)> run;
};

CommandArgs parse_command_args(const Command &command,
                               const std::vector<std::string> &args)
{
    auto contains = [](const std::vector<std::string> &list,
                       const std::string &item) {
        return std::find(list.begin(), list.end(), item) != list.end();
    };
    CommandArgs parsed;
    for (std::size_t i = 0; i < args.size(); i++) {
        const std::string &arg = args[i];
        if (contains(command.switches, arg)) {
            parsed.options[arg] = "1";
        } else if (contains(command.with_values, arg)) {
            if (i + 1 >= args.size()) {
                throw UsageError(arg + " needs a value");
            }
            parsed.options[arg] = args[++i];
        } else if (arg.size() > 1 && arg[0] == '-') {
            throw UsageError("unknown option " + arg);
        } else {
            parsed.positional.push_back(arg);
        }
    }
    if (parsed.positional.size() != command.positional) {
        throw UsageError("expected " + std::to_string(command.positional) +
                         " argument(s)");
    }
    return parsed;
}

// --password-stdin: one line; else the prompt on a terminal; else none.
std::optional<std::string> obtain_password(const CommandArgs &args)
{
    if (args.has("--password-stdin")) {
        auto line = read_password_line();
        if (!line || line->empty()) {
            throw std::runtime_error("Error: Blank passwords aren't allowed.");
        }
        return line;
    }
    return prompt_new_password();
}

// "Error: <message>; <message>", every field's messages in order.
std::string error_text(const AdminValidationError::Errors &errors)
{
    std::string text = "Error: ";
    bool first = true;
    for (const auto &field : errors) {
        for (const std::string &message : field.second) {
            text += (first ? "" : "; ") + message;
            first = false;
        }
    }
    return text;
}

// createsuperuser's wording around UserAdmin::create_user(), which applies
// Django's rules (NFKC, the username validators) as the HTTP API does.
int create_user(Session &session, const CommandArgs &args)
{
    CreateUserRequest request;
    request.username = args.positional[0];
    request.is_superuser = args.has("--superuser");
    request.is_staff = args.has("--staff");
    request.is_active = !args.has("--inactive");
    if (args.has("--email")) {
        request.email = args.options.at("--email");
    }
    // The name and the email are checked before a password is asked for,
    // with createsuperuser's wording: "Error: <message>; <message>".
    std::string normalized = normalize_username(request.username);
    AdminValidationError::Errors errors = UserAdmin::check_new_user(request);
    if (!errors.empty()) {
        throw std::runtime_error(error_text(errors));
    }
    if (normalized != request.username) {
        std::cerr << "Note: the username is stored normalized (NFKC) as '"
                  << normalized << "'.\n";
    }
    request.password = obtain_password(args);
    if (!request.password) {
        // As `createsuperuser --noinput`: the user exists but cannot log
        // in until changepassword.
        std::cerr << "Note: no password given; the user cannot log in until "
                     "`authtokenctl changepassword "
                  << normalized << "`.\n";
    }
    CreatedUser created;
    try {
        // With tokens_per_user = many a key is shown once, when it is
        // made: UserAdmin makes none here (logins and `token NAME` do).
        created = session.admin().create_user(Session::actor(), request);
    } catch (const UsernameTaken &) {
        throw std::runtime_error("Error: That username is already taken.");
    } catch (const AdminValidationError &e) {
        throw std::runtime_error(error_text(e.errors()));
    }
    std::cout << (created.is_superuser ? "Superuser created successfully."
                                       : "User created successfully.")
              << "\n";
    return 0;
}

std::runtime_error no_such_user(const std::string &name)
{
    // Django's changepassword wording.
    return std::runtime_error("Error: user '" + name + "' does not exist");
}

int change_password(Session &session, const CommandArgs &args)
{
    const std::string &name = args.positional[0];
    UserStore &store = session.store();
    if (!store.find_user(name)) {
        throw no_such_user(name);
    }
    if (!args.has("--password-stdin")) {
        std::cerr << "Changing password for user '" << name << "'\n";
    }
    std::optional<std::string> raw = obtain_password(args);
    if (!raw) {
        throw std::runtime_error(
            "Error: no password given (use --password-stdin)");
    }
    bool revoke_token = args.has("--revoke-token");
    bool revoked = false;
    try {
        // tokens_per_user = many: a new password ends every token of the
        // user, in the same function (knox-style sessions die with it).
        revoked = session.admin().set_password(Session::actor(), name, *raw,
                                               revoke_token);
    } catch (const NoSuchUser &) {
        throw no_such_user(name);
    }
    std::cout << "Password changed successfully for user '" << name << "'\n";
    if (session.admin().many_tokens()) {
        std::cout << "Every token of user " << name
                  << " was revoked with it (tokens_per_user = many).\n";
    } else if (revoke_token) {
        std::cout << (revoked ? "Revoked the token of user "
                              : "No token to revoke for user ")
                  << name << "\n";
    } else {
        std::cout << "The user's token still works; `authtokenctl revoke "
                  << name << "` (or changepassword --revoke-token) ends it.\n";
    }
    return 0;
}

int set_active(Session &session, const CommandArgs &args, bool active)
{
    const std::string &name = args.positional[0];
    try {
        bool changed =
            session.admin().set_active(Session::actor(), name, active);
        std::cout << "User " << name << (changed ? " " : " was already ")
                  << (active ? "activated" : "deactivated") << ".\n";
    } catch (const NoSuchUser &) {
        throw no_such_user(name);
    }
    return 0;
}

int delete_user(Session &session, const CommandArgs &args)
{
    const std::string &name = args.positional[0];
    try {
        session.admin().delete_user(Session::actor(), name);
    } catch (const NoSuchUser &) {
        throw no_such_user(name);
    }
    std::cout << "User " << name << " deleted.\n";
    return 0;
}

std::int64_t unix_now()
{
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// --ttl DURATION / --expires UNIX_TIME: the expiry of a token this
// command creates (token_ttl when neither is given).
TokenExpiry token_expiry(const CommandArgs &args)
{
    TokenExpiry expiry;
    if (args.has("--ttl") && args.has("--expires")) {
        throw UsageError("--ttl and --expires cannot be used together");
    }
    if (args.has("--ttl")) {
        try {
            expiry.ttl = parse_duration(args.options.at("--ttl"));
        } catch (const std::invalid_argument &e) {
            throw UsageError(std::string("--ttl: ") + e.what());
        }
        if (expiry.ttl == 0) {
            throw UsageError("--ttl: expected a duration above 0");
        }
    }
    if (args.has("--expires")) {
        const std::string &v = args.options.at("--expires");
        if (v.empty() || v.size() > 12 ||
            v.find_first_not_of("0123456789") != std::string::npos ||
            std::stoll(v) == 0) {
            throw UsageError("--expires: expected a Unix time in seconds "
                             "above 0");
        }
        expiry.at = std::stoll(v);
        if (expiry.at <= unix_now()) {
            // A token born dead would only be replaced by the next login.
            throw UsageError("--expires: " + v + " is not in the future");
        }
    }
    return expiry;
}

// DRF's drf_create_token management command, message for message. An
// expired token counts as none: it is replaced, as a login replaces it.
int print_token(Session &session, const CommandArgs &args)
{
    const std::string &name = args.positional[0];
    TokenExpiry expiry = token_expiry(args);
    const TokenPolicy &policy = session.settings().tokens;
    if (policy.mode == TokensPerUser::one && args.has("--name")) {
        throw UsageError("--name needs tokens_per_user = many (with one "
                         "token per user, as DRF, tokens have no names)");
    }
    try {
        UserStore &store = session.store();
        if (policy.mode == TokensPerUser::many) {
            std::string token_name =
                args.has("--name") ? args.options.at("--name") : "";
            if (token_name.size() > 256) {
                throw UsageError("--name: at most 256 bytes");
            }
            // -r replaces every token of the user: a change, audited.
            IssuedToken token =
                args.has("-r") || args.has("--reset")
                    ? session.admin().regenerate_token(Session::actor(), name,
                                                       expiry, token_name)
                    : store.add_token(name, token_name, policy, expiry);
            std::cout << "Generated token " << token.key << " for user " << name
                      << "\n";
            return 0;
        }
        IssuedToken token = args.has("-r") || args.has("--reset")
                                ? session.admin().regenerate_token(
                                      Session::actor(), name, expiry)
                                : store.get_or_create_token(name, expiry);
        std::cout << "Generated token " << token.key << " for user " << name
                  << "\n";
    } catch (const NoSuchUser &) {
        throw std::runtime_error("Cannot create the Token: user " + name +
                                 " does not exist");
    } catch (const TokenLimitReached &) {
        throw std::runtime_error(
            "Error: user " + name + " already holds token_limit_per_user (" +
            std::to_string(policy.limit) +
            ") tokens; revoke some (`authtokenctl tokens " + name +
            "`, DELETE /api-tokens/<id>/), use -r, or set "
            "token_limit_policy = drop_oldest");
    }
    return 0;
}

std::string pad_to_width(const std::string &text, int columns);

// The user's tokens, as GET /api-tokens/ shows them (never a key).
int list_tokens(Session &session, const CommandArgs &args)
{
    const std::string &name = args.positional[0];
    UserStore &store = session.store();
    std::optional<UserRecord> user = store.find_user(name);
    if (!user) {
        throw no_such_user(name);
    }
    std::vector<TokenInfo> tokens = store.list_tokens(*user);
    auto when = [](std::int64_t t) -> std::string {
        if (t <= 0) {
            return {};
        }
        std::time_t tt = static_cast<std::time_t>(t);
        std::tm tm{};
        gmtime_r(&tt, &tm);
        char buf[32];
        std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return buf;
    };
    if (args.has("--json")) {
        nlohmann::json out = nlohmann::json::array();
        for (const TokenInfo &t : tokens) {
            auto or_null = [](const std::string &s) {
                return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
            };
            out.push_back({{"id", t.id},
                           {"name", t.name},
                           {"created", or_null(t.created)},
                           {"expires", or_null(when(t.expires))},
                           {"last_used", or_null(when(t.last_used))},
                           {"last_address", or_null(t.last_addr)}});
        }
        std::cout << out.dump(-1, ' ', false,
                              nlohmann::json::error_handler_t::replace)
                  << "\n";
        return 0;
    }
    std::int64_t now = unix_now();
    std::ostringstream table;
    table << pad_to_width("id", 18) << pad_to_width("name", 20)
          << pad_to_width("created", 26) << pad_to_width("last used", 22)
          << "expires\n";
    for (const TokenInfo &t : tokens) {
        std::string expires = t.expires == 0 ? "never" : when(t.expires);
        if (t.expires != 0 && t.expires <= now) {
            expires += " (expired)";
        }
        std::string used = when(t.last_used);
        if (used.empty()) {
            used = "-";
        } else if (!t.last_addr.empty()) {
            used += " " + escape_unsafe_username(t.last_addr);
        }
        table << pad_to_width(t.id, 18)
              << pad_to_width(
                     t.name.empty() ? "-" : escape_unsafe_username(t.name), 20)
              << pad_to_width(t.created, 26) << pad_to_width(used, 22)
              << expires << "\n";
    }
    std::cout << table.str();
    return 0;
}

int revoke(Session &session, const CommandArgs &args)
{
    const std::string &name = args.positional[0];
    try {
        int removed = session.admin().revoke_tokens(Session::actor(), name);
        if (session.settings().tokens.mode == TokensPerUser::many) {
            std::cout << "Revoked " << removed << " token"
                      << (removed == 1 ? "" : "s") << " of user " << name
                      << "\n";
        } else {
            std::cout << (removed > 0 ? "Revoked the token of user "
                                      : "No token to revoke for user ")
                      << name << "\n";
        }
    } catch (const NoSuchUser &) {
        throw no_such_user(name);
    }
    return 0;
}

// A progress bar on standard error when it is a terminal, for commands
// that go through many users; nothing at all when it is not (a pipe, a
// log file, cron), so scripts see exactly the summary line.
class Progress
{
  public:
    Progress(std::string what, std::size_t total)
        : what_(std::move(what)), total_(total),
          shown_(total > 0 && isatty(STDERR_FILENO) == 1)
    {
    }
    ~Progress()
    {
        if (shown_ && drawn_) {
            std::cerr << "\r\033[K" << std::flush;
        }
    }
    Progress(const Progress &) = delete;
    Progress &operator=(const Progress &) = delete;

    // For one long step that has no parts to count: says it is running.
    void note_running()
    {
        if (shown_) {
            drawn_ = true;
            std::cerr << "\r" << what_ << " " << total_ << " users..."
                      << std::flush;
        }
    }

    void step(std::size_t n = 1)
    {
        done_ += n;
        if (!shown_) {
            return;
        }
        auto now = std::chrono::steady_clock::now();
        if (drawn_ && done_ < total_ && now - last_ < kRedrawInterval) {
            return;
        }
        last_ = now;
        drawn_ = true;
        constexpr std::size_t kBar = 30;
        std::size_t filled = total_ == 0 ? kBar : done_ * kBar / total_;
        std::cerr << "\r" << what_ << " [" << std::string(filled, '#')
                  << std::string(kBar - filled, ' ') << "] " << done_ << "/"
                  << total_ << std::flush;
    }

  private:
    static constexpr std::chrono::milliseconds kRedrawInterval{100};
    std::string what_;
    std::size_t total_;
    bool shown_;
    bool drawn_ = false;
    std::size_t done_ = 0;
    std::chrono::steady_clock::time_point last_{};
};

// The DRF FAQ's loop: Token.objects.get_or_create(user=user) for all.
int backfill(Session &session, const CommandArgs &)
{
    if (session.settings().tokens.mode == TokensPerUser::many) {
        // A key is shown once, when it is made: keys made here in bulk
        // would be shown to no one.
        throw std::runtime_error(
            "Error: backfill does nothing with tokens_per_user = many: a key "
            "is shown only when it is created (a login, or `authtokenctl "
            "token NAME`), so keys made in bulk could never be used");
    }
    UserStore &store = session.store();
    int created = 0, existing = 0, replaced = 0;
    std::vector<UserRecord> users = store.list_users();
    Progress progress("backfill", users.size());
    std::int64_t now = unix_now();
    for (const UserRecord &user : users) {
        progress.step();
        if (!user.token_digest.empty() && !user.token_expired(now)) {
            existing++;
            continue;
        }
        try {
            IssuedToken token = store.get_or_create_token(user.username);
            if (token.created && token.replaced) {
                replaced++;
            } else if (token.created) {
                created++;
            } else {
                existing++;
            }
        } catch (const NoSuchUser &) {
            // deleted meanwhile
        }
    }
    std::cout << "Created tokens for " << created << " user"
              << (created == 1 ? "" : "s") << "; " << existing
              << " already had one.\n";
    if (replaced > 0) {
        std::cout << "Replaced " << replaced << " expired token"
                  << (replaced == 1 ? "" : "s") << ".\n";
    }
    return 0;
}

// Pads `text` to `columns` terminal columns, counting display width
// (libunistring's u8_strwidth: "山田" is 4 columns, "Zoë" 3), not bytes.
// A text as wide or wider gets one space.
std::string pad_to_width(const std::string &text, int columns)
{
    int width =
        u8_strwidth(reinterpret_cast<const uint8_t *>(text.c_str()), "UTF-8");
    if (width < 0) {
        width = static_cast<int>(text.size());
    }
    return text +
           std::string(static_cast<std::size_t>(std::max(1, columns - width)),
                       ' ');
}

int list_users(Session &session, const CommandArgs &args)
{
    // Everything is read before anything is printed: an error (Redis
    // unreachable) comes alone, not after a header line.
    std::vector<UserRecord> users = session.admin().list_users();
    // With a separate token directory: expired as the edges judge it.
    std::vector<UserRecord *> all;
    for (UserRecord &u : users) {
        // cppcheck-suppress useStlAlgorithm
        all.push_back(&u);
    }
    session.store().show_directory_expiry(all);
    std::int64_t now = unix_now();
    // tokens_per_user = many: how many tokens each user holds (its set,
    // and a token of DRF's mode it may still have).
    const bool many = session.settings().tokens.mode == TokensPerUser::many;
    std::vector<std::size_t> counts;
    if (many) {
        for (const UserRecord &u : users) {
            // cppcheck-suppress useStlAlgorithm
            counts.push_back(session.store().count_tokens(u));
        }
    }
    if (args.has("--json")) {
        nlohmann::json out = nlohmann::json::array();
        for (std::size_t i = 0; i < users.size(); i++) {
            const UserRecord &u = users[i];
            out.push_back({{"uid", u.uid},
                           {"username", u.username},
                           {"is_active", u.is_active},
                           {"is_staff", u.is_staff},
                           {"is_superuser", u.is_superuser},
                           {"has_token", many ? counts[i] > 0
                                              : !u.token_digest.empty() &&
                                                    !u.token_expired(now)},
                           {"token_expired", u.token_expired(now)}});
            if (many) {
                out.back()["tokens"] = counts[i];
            }
        }
        // Names that are not UTF-8 (possible only from old imports) are
        // written with U+FFFD rather than failing the whole listing.
        std::cout << out.dump(-1, ' ', false,
                              nlohmann::json::error_handler_t::replace)
                  << "\n";
        return 0;
    }
    auto yes_no = [](bool b) { return b ? "yes" : "no"; };
    std::ostringstream table;
    table << pad_to_width("uid", 6) << pad_to_width("username", 24)
          << pad_to_width("active", 8) << pad_to_width("staff", 7)
          << pad_to_width("superuser", 11) << (many ? "tokens\n" : "token\n");
    for (std::size_t i = 0; i < users.size(); i++) {
        const UserRecord &u = users[i];
        table << pad_to_width(std::to_string(u.uid), 6)
              << pad_to_width(escape_unsafe_username(u.username), 24)
              << pad_to_width(yes_no(u.is_active), 8)
              << pad_to_width(yes_no(u.is_staff), 7)
              << pad_to_width(yes_no(u.is_superuser), 11)
              << (many                   ? std::to_string(counts[i])
                  : u.token_expired(now) ? "expired"
                                         : yes_no(!u.token_digest.empty()))
              << "\n";
    }
    std::cout << table.str();
    return 0;
}

// "N <what>: at /1/x, /2/x" (the first ten), as the refusals say it.
std::string where(const std::vector<std::string> &pointers)
{
    std::string text;
    for (std::size_t i = 0; i < pointers.size() && i < 10; i++) {
        text += (i > 0 ? ", " : "") + pointers[i];
    }
    if (pointers.size() > 10) {
        text += " (and " + std::to_string(pointers.size() - 10) + " more)";
    }
    return text;
}

void report_import_notes(const ImportNotes &notes)
{
    if (!notes.escaped_usernames.empty()) {
        std::cerr << "Note: " << notes.escaped_usernames.size()
                  << " usernames with control characters or whitespace at "
                     "either end were imported escaped (\\xNN, \\uNNNN): at "
                  << where(notes.escaped_usernames) << "\n";
    }
    if (!notes.weak_keys.empty()) {
        std::cerr << "Warning: " << notes.weak_keys.size()
                  << " token keys that are not 40 hex characters were "
                     "imported (--allow-weak-keys); replace them with "
                     "`authtokenctl token NAME -r`: at "
                  << where(notes.weak_keys) << "\n";
    }
    if (!notes.passwords_in_no_hash_format.empty()) {
        std::cerr << "Warning: " << notes.passwords_in_no_hash_format.size()
                  << " users have a password in no known hash format "
                     "(plain text?); as in Django they cannot log in until "
                     "`authtokenctl changepassword NAME`: at "
                  << where(notes.passwords_in_no_hash_format) << "\n";
    }
    if (!notes.passwords_not_checkable.empty()) {
        std::cerr << "Warning: " << notes.passwords_not_checkable.size()
                  << " users have a password hash this issuer cannot check "
                     "(md5, sha1, scrypt, crypt or malformed); they cannot "
                     "log in until `authtokenctl changepassword NAME`: at "
                  << where(notes.passwords_not_checkable) << "\n";
    }
}

int import_django(Session &session, const CommandArgs &args)
{
    const std::string &path = args.positional[0];
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("Error: cannot read " + path);
    }
    std::ostringstream text;
    text << in.rdbuf();
    ImportOptions options;
    options.escape_unsafe_usernames = args.has("--escape-unsafe-usernames");
    options.allow_weak_keys = args.has("--allow-weak-keys");
    ImportNotes notes;
    std::vector<ImportedUser> users;
    try {
        users = parse_django_dumpdata(text.str(), options, &notes);
    } catch (const DumpdataError &e) {
        throw std::runtime_error("Error: " + path + ": " + e.what() +
                                 "; nothing was imported");
    }
    std::size_t tokens = 0;
    for (const ImportedUser &u : users) {
        tokens += u.token_key ? 1 : 0;
    }
    // Validated as a whole before the first write: the file by the parser,
    // then every batch against Redis ('check', no write). Then written in
    // batches of kImportBatch users, each one atomic function call that
    // keeps Redis answering others; a batch already written is unchanged
    // when the file is imported again, so re-running finishes the job.
    const std::size_t batch = UserStore::kImportBatch;
    const std::size_t batches = (users.size() + batch - 1) / batch;
    UserStore &store = session.store();
    try {
        for (std::size_t b = 0; b < users.size(); b += batch) {
            store.import_batch(users, b, b + batch, true);
        }
    } catch (const ScriptRefused &e) {
        throw std::runtime_error("Error: " + path + ": " + e.what() +
                                 "; nothing was imported");
    }
    ImportSummary summary;
    std::size_t written = 0;
    {
        Progress progress("import-django", users.size());
        for (std::size_t b = 0; b < users.size(); b += batch) {
            ImportSummary s;
            try {
                s = store.import_batch(users, b, b + batch, false);
            } catch (const ScriptRefused &e) {
                // Another client wrote a conflicting user since the check.
                throw std::runtime_error(
                    "Error: " + path + ": " + e.what() + "; " +
                    std::to_string(written) + " of " + std::to_string(batches) +
                    " batches were imported before it (re-running the file "
                    "after resolving the conflict finishes the job)");
            } catch (const RedisError &e) {
                // The batch in flight is one atomic function call: it was
                // written whole or not at all; the ones before it were.
                std::cerr << "authtokenctl: redis: " << e.what() << "\n"
                          << "Error: " << path << ": interrupted in batch "
                          << written + 1 << " of " << batches << " (users "
                          << b + 1 << "-" << std::min(b + batch, users.size())
                          << "): batches 1-" << written << " (" << b
                          << " users) were imported, batch " << written + 1
                          << " was written whole or not at all; re-running the "
                             "same file finishes the job and changes nothing "
                             "twice\n";
                return kExitOutcomeUnknown;
            }
            written++;
            summary.created += s.created;
            summary.updated += s.updated;
            summary.unchanged += s.unchanged;
            progress.step(std::min(batch, users.size() - b));
        }
    }
    std::cout << "Imported " << users.size() << " users and " << tokens
              << " tokens from " << path << " in " << batches
              << (batches == 1 ? " batch" : " batches") << " ("
              << summary.created << " new, " << summary.updated << " updated, "
              << summary.unchanged << " unchanged).\n";
    if (summary.unchanged > 0) {
        std::cout << summary.unchanged
                  << " users were already imported with the same fields and "
                     "were left alone.\n";
    }
    report_import_notes(notes);
    return 0;
}

// The split layout (docs/operations.md, "Two stores"): `directory init`
// marks the user store as feeding the token directory at directory_url
// and builds the directory from it; `directory sync` applies the pending
// outbox entries (rebuilding the directory when it cannot continue);
// `directory status` shows both sides. The one command that runs with a
// separate directory while the replayer is not yet wired into every change.
int directory(Session &session, const CommandArgs &args)
{
    const IssuerSettings &settings = session.settings();
    const std::string &action = args.positional[0];
    if (action != "init" && action != "sync" && action != "status") {
        throw UsageError("expected init, sync or status, not \"" + action +
                         "\"");
    }
    std::optional<RedisEndpoint> endpoint = directory_endpoint(settings);
    if (!endpoint) {
        throw std::runtime_error("Error: directory_url is not set (or names "
                                 "the redis store itself): there is no "
                                 "separate token directory");
    }
    const std::chrono::milliseconds timeout(settings.redis_timeout_ms);
    ScriptLibrary scripts(settings.scripts_dir);
    RedisConnection store(redis_endpoint(settings), timeout);
    scripts.load(store);
    Reply marked = store.command({"GET", keys::kDirectoryId});
    std::string id = reply_string(marked.get());
    if (id.empty() && action != "init") {
        throw std::runtime_error("Error: this user store feeds no token "
                                 "directory yet: run `authtokenctl directory "
                                 "init`");
    }
    if (action == "status") {
        std::cout << "directory id " << id << "\n"
                  << "outbox: numbered up to "
                  << read_outbox_number(store, keys::kOutboxSequence)
                  << ", acknowledged up to "
                  << read_outbox_number(store, keys::kOutboxAcked) << "\n";
    }
    RedisConnection dir(*endpoint, timeout);
    // Nothing is written before the directory is known to be another
    // database: by the servers' run_id, which no spelling of an address
    // hides (localhost and 127.0.0.1), and not another user store.
    std::string store_server = server_run_id(store);
    if (!store_server.empty() && store_server == server_run_id(dir) &&
        endpoint->db == redis_endpoint(settings).db) {
        throw std::runtime_error(
            "Error: directory_url " + describe_endpoint(*endpoint) +
            " names the same Redis server (run_id " + store_server +
            ") and database as redis: there is no separate token directory");
    }
    Reply foreign = dir.command({"GET", keys::kDirectoryId});
    if (!reply_is_nil(foreign.get())) {
        throw std::runtime_error(
            "Error: directory_url " + describe_endpoint(*endpoint) +
            " is a user store (it feeds token directory " +
            reply_string(foreign.get()) + "), not a token directory");
    }
    if (id.empty()) {
        id = generate_token_key().substr(0, 32);
        scripts.run(store, "directory_mark", {}, {id});
    }
    if (action == "status") {
        Reply state =
            dir.command({"HMGET", keys::kDirectory, "id", "applied", "state"});
        std::string at = reply_string(reply_element(state.get(), 1));
        std::string dir_id = reply_string(reply_element(state.get(), 0));
        std::cout << "directory " << describe_endpoint(*endpoint) << ": ";
        if (reply_is_nil(reply_element(state.get(), 0))) {
            std::cout << "empty (it will be rebuilt)\n";
        } else if (dir_id != id) {
            // Another deployment's directory, or one this store fed under
            // another id: the next sync or change takes it over (rebuild).
            std::cout << "carries directory id " << dir_id
                      << ", not this user store's: the next `directory "
                         "sync` (or change) rebuilds it as "
                      << id << "\n";
        } else {
            std::cout << reply_string(reply_element(state.get(), 2))
                      << ", applied up to " << (at.empty() ? "0" : at) << "\n";
        }
        return 0;
    }
    scripts.load(dir);
    OutboxReplayer replayer(scripts, id);
    replayer.set_min_replicas(settings.directory_min_replicas,
                              replica_wait(settings));
    OutboxReplayer::Progress p;
    try {
        p = replayer.drain(store, dir);
    } catch (const OutboxReplayer::ReplicasShort &e) {
        std::cerr << "authtokenctl: directory " << describe_endpoint(*endpoint)
                  << ": applied on its primary, not yet acknowledged ("
                  << e.what()
                  << "); `authtokenctl directory sync` waits again\n";
        return kExitRecorded;
    }
    if (p.rebuild) {
        std::cout << "Rebuilt the token directory: " << p.rebuilt
                  << " token records copied, " << p.swept
                  << " stale records checked.\n";
    }
    if (p.waited) {
        std::cout << "Waited for another replayer's rebuild of the token "
                     "directory.\n";
    }
    std::cout << "Applied " << p.entries << " outbox entries; the directory "
              << "has every change up to " << p.applied << ".\n";
    return 0;
}

// Schema version 2 to 3 in the Redis behind `conn` (redis/SCHEMA.md,
// Versioning): token records renamed to their base64url names, one SCAN
// step of kMigrateTokensBatch keys per atomic function call. The first
// call marks the database 3-partial, after which every writer renames what
// it touches and nginx reads both names; the call that ends the SCAN marks
// it 3. Interrupted, a re-run starts a new SCAN and finishes the job.
int migrate_token_names(UserStore &store, RedisConnection &conn,
                        const std::string &what)
{
    Reply keys_now = conn.command({"DBSIZE"});
    MigrateTokensBatch sum;
    std::string cursor = "0";
    std::size_t batches = 0;
    // DBSIZE: every key, not only token records; a bound for the bar.
    auto progress = std::make_unique<Progress>(
        "rename", static_cast<std::size_t>(reply_integer(keys_now.get())));
    do {
        MigrateTokensBatch b;
        try {
            b = store.migrate_tokens_batch(conn, cursor,
                                           UserStore::kMigrateTokensBatch);
        } catch (const ScriptRefused &e) {
            throw std::runtime_error(std::string("Error: ") + e.what() + " (" +
                                     what + ")");
        } catch (const RedisError &e) {
            std::cerr << "authtokenctl: redis: " << e.what() << "\n"
                      << "Error: interrupted in batch " << batches + 1
                      << " of renaming " << what << ": " << sum.renamed
                      << " renamed before it, that batch was made whole "
                         "before then or not at all, and will not be made "
                         "later; nginx reads both names meanwhile; running "
                         "`authtokenctl migrate` again finishes the job and "
                         "changes nothing twice\n";
            return kExitOutcomeUnknown;
        }
        batches++;
        sum.renamed += b.renamed;
        sum.looked_at += b.looked_at;
        cursor = b.cursor;
        progress->step(static_cast<std::size_t>(b.looked_at));
    } while (cursor != "0");
    progress.reset();
    Reply schema = conn.command({"GET", keys::kSchema});
    std::cout << "Renamed " << sum.renamed << " " << what
              << " to schema version 3's names in " << batches
              << (batches == 1 ? " batch" : " batches")
              << "; the database is marked version "
              << (reply_is_nil(schema.get()) ? std::string("(none: empty)")
                                             : reply_string(schema.get()))
              << ".\n";
    return 0;
}

// The schema value of the Redis behind `conn` when the rename of token
// records to version 3's names has not started there ("1" or "2"; the
// value of a schema this release does not know too, which
// authtoken_migrate_tokens refuses), else nullopt (an empty database,
// 3-partial, 3).
std::optional<std::string> rename_not_started(RedisConnection &conn)
{
    Reply schema = conn.command({"GET", keys::kSchema});
    if (reply_is_nil(schema.get())) {
        return std::nullopt;
    }
    std::string value = reply_string(schema.get());
    if (value == keys::kSchemaMigrating ||
        value == std::to_string(keys::kSchemaVersion)) {
        return std::nullopt;
    }
    return value;
}

// Schema version 1 to 2 (redis/SCHEMA.md), in batches of kMigrateBatch
// users by uid, each one atomic function call that keeps Redis answering
// others. A batch rewrites only records still in version 1's form, so a
// re-run after an interruption (Ctrl-C, kill, a timeout) goes through the
// batches done before without changing them and finishes the job.
int migrate(Session &session, const CommandArgs &args)
{
    UserStore &store = session.store();
    const std::size_t total = store.user_count();
    MigrateBatch sum;
    std::uint64_t after = 0;
    std::size_t batches = 0;
    {
        Progress progress("migrate", total);
        for (;;) {
            MigrateBatch b;
            try {
                b = store.migrate_batch(after, UserStore::kMigrateBatch);
            } catch (const ScriptRefused &e) {
                throw std::runtime_error(
                    std::string("Error: ") + e.what() + "; nothing was " +
                    (batches == 0
                         ? "migrated"
                         : "migrated after uid " + std::to_string(after)));
            } catch (const RedisError &e) {
                // The batch in flight is one atomic function call: it was
                // made whole before the timeout or not at all, never later.
                std::cerr << "authtokenctl: redis: " << e.what() << "\n"
                          << "Error: interrupted in batch " << batches + 1
                          << " (the users after uid " << after
                          << "): " << sum.migrated + sum.already
                          << " users before it were done, that batch was made "
                             "whole before then or not at all, and will not be "
                             "made later; running `authtokenctl migrate` again "
                             "finishes the job and changes nothing twice\n";
                return kExitOutcomeUnknown;
            }
            if (b.last_uid == 0) {
                break; // the call that found no uid left marked version 2
            }
            batches++;
            sum.migrated += b.migrated;
            sum.already += b.already;
            after = b.last_uid;
            progress.step(static_cast<std::size_t>(b.migrated + b.already));
        }
    }
    std::cout << "Migrated " << sum.migrated << " of "
              << sum.migrated + sum.already << " users to schema version 2 in "
              << batches << (batches == 1 ? " batch" : " batches") << " ("
              << sum.already << " already were).\n";
    // The rename makes every token an nginx of an earlier release cannot
    // find (it reads hex names only, and says so at info): only the
    // operator knows that none is left, on the primary or a replica.
    if (!args.has("--nginx-upgraded")) {
        std::optional<std::string> store_at =
            rename_not_started(session.connection());
        std::optional<std::string> directory_at;
        if (RedisConnection *dir = session.directory_if_any()) {
            directory_at = rename_not_started(*dir);
        }
        if (store_at || directory_at) {
            std::cerr
                << "authtokenctl migrate: the rename of token records to "
                   "schema version 3's names was not started (the "
                << (store_at ? "user store is marked " + *store_at
                             : "token directory is marked " + *directory_at)
                << "): an nginx whose ngx_http_auth_token_module is of a "
                   "release before schema version 3 would answer 401 for "
                   "every token it has not cached, and log it only at info. "
                   "When every nginx reading this Redis or its replicas "
                   "runs ngx_http_auth_token_module of this release or later "
                   "(restarted: a reload keeps the old module; one that reads "
                   "schema 3-partial; docs/operations.md, "
                   "\"Upgrading to schema version 3\"), run `authtokenctl "
                   "migrate --nginx-upgraded`\n";
            return kExitUsage;
        }
    }
    int code =
        migrate_token_names(store, session.connection(), "token records");
    if (code != 0) {
        return code;
    }
    if (RedisConnection *dir = session.directory_if_any()) {
        code = migrate_token_names(store, *dir, "token directory records");
    }
    return code;
}

int init_secret(Session &, const CommandArgs &args)
{
    create_secret_file(args.positional[0]);
    std::cout << "Created secret file " << args.positional[0]
              << " (32 random bytes, mode 0600). Keep it with authtokend; "
                 "without it no stored token can be handed out again.\n";
    return 0;
}

const std::vector<Command> &commands()
{
    static const std::vector<Command> table = {
        {"init-secret",
         "init-secret PATH",
         "Creates PATH with 32 random bytes, mode 0600; refuses to replace\n"
         "an existing file.",
         {},
         {},
         1,
         init_secret},
        {"createuser",
         "createuser NAME [--superuser] [--staff] [--inactive] "
         "[--password-stdin] [--email E]",
         "Creates a user (a token too, unless auto_create_token is off).\n"
         "The password is read from one line of stdin with --password-stdin,\n"
         "else prompted twice on a terminal; with neither the user gets an\n"
         "unusable password.",
         {"--superuser", "--staff", "--inactive", "--password-stdin"},
         {"--email"},
         1,
         create_user},
        {"changepassword",
         "changepassword NAME [--password-stdin] [--revoke-token]",
         "Sets a new password. The token is left as it is (as in DRF) unless\n"
         "--revoke-token, which deletes it in the same command: nginx refuses\n"
         "it at once and the next login creates a new one. With\n"
         "tokens_per_user = many every token of the user is deleted with the\n"
         "new password, in one step.",
         {"--password-stdin", "--revoke-token"},
         {},
         1,
         change_password},
        {"deactivate",
         "deactivate NAME",
         "Sets is_active off; the token answers \"User inactive or "
         "deleted.\"\nin nginx from now on, and logins fail.",
         {},
         {},
         1,
         [](Session &s, const CommandArgs &a) {
             return set_active(s, a, false);
         }},
        {"activate",
         "activate NAME",
         "Sets is_active on again.",
         {},
         {},
         1,
         [](Session &s, const CommandArgs &a) {
             return set_active(s, a, true);
         }},
        {"deleteuser",
         "deleteuser NAME",
         "Deletes the user and its token (\"Invalid token.\" from now on).",
         {},
         {},
         1,
         delete_user},
        {"token",
         "token NAME [-r|--reset] [--ttl DURATION | --expires UNIX_TIME] "
         "[--name N]",
         "Prints the user's token, creating it if needed (DRF's\n"
         "drf_create_token) or if it has expired; -r replaces it: the old key\n"
         "fails at once. A token created here expires after --ttl (30d, "
         "1h30m,\n"
         "seconds) or at --expires (Unix seconds), else after token_ttl;\n"
         "an existing token keeps its expiry unless -r replaces it.\n"
         "With tokens_per_user = many: a new token every time (its key shown\n"
         "only now), named --name; -r deletes all the user's other tokens.",
         {"-r", "--reset"},
         {"--ttl", "--expires", "--name"},
         1,
         print_token},
        {"revoke",
         "revoke NAME",
         "Deletes the user's token; the next login creates a new one. With\n"
         "tokens_per_user = many: every token of the user, in one step.",
         {},
         {},
         1,
         revoke},
        {"tokens",
         "tokens NAME [--json]",
         "Lists the user's tokens as GET /api-tokens/ does: id (the first 16\n"
         "hex digits of the token's SHA-256, never the key), name, created,\n"
         "last used (and from where, when recorded), expires. --json: one\n"
         "JSON array of {id, name, created, expires, last_used,\n"
         "last_address}.",
         {"--json"},
         {},
         1,
         list_tokens},
        {"backfill",
         "backfill",
         "Gives a token to every user without one, and a new one to every\n"
         "user whose token has expired.",
         {},
         {},
         0,
         backfill},
        {"users",
         "users [--json]",
         "Lists users with their flags and token state (yes, no, expired),\n"
         "in columns\n"
         "aligned by display width (names escaped as \\xNN where they hold\n"
         "control characters); --json: one JSON array of {uid, username,\n"
         "is_active, is_staff, is_superuser, has_token, token_expired} for\n"
         "scripts (has_token is false for an expired token).",
         {"--json"},
         {},
         0,
         list_users},
        {"import-django",
         "import-django FILE [--escape-unsafe-usernames] [--allow-weak-keys]",
         "Imports `manage.py dumpdata auth.user authtoken.token` JSON: users\n"
         "keep their ids, password hashes and token keys. Checked whole\n"
         "before the first write, then written in atomic batches of 500\n"
         "users; running it again (after an interruption too) finishes\n"
         "the job and changes nothing twice. Refused, with how many and\n"
         "where: usernames with control characters or whitespace at either\n"
         "end (--escape-unsafe-usernames imports them as \\xNN/\\uNNNN\n"
         "escapes), token keys that are not 40 hex characters\n"
         "(--allow-weak-keys imports them), argon2/bcrypt/pbkdf2 hashes\n"
         "over the work caps. Passwords in no hash format (plain text) are\n"
         "imported unusable for login and counted.",
         {"--escape-unsafe-usernames", "--allow-weak-keys"},
         {},
         1,
         import_django},
        {"migrate",
         "migrate [--nginx-upgraded]",
         "Brings a database to schema version 3, in two steps. From version\n"
         "1: user records keep their token digest and sealed key as bytes,\n"
         "in Redis's compact encoding (atomic batches of 100 users). Then\n"
         "token records are renamed from authtoken:token:<64 hex> to\n"
         "authtoken:token:<43 base64url> (atomic SCAN steps of 500 keys), in\n"
         "the user store and in the separate token directory if there is\n"
         "one: the database is marked 3-partial first, nginx (of this\n"
         "version: upgrade it first) reads both names meanwhile, and it is\n"
         "marked 3 at the end. Verdicts stay right while it runs. Running it\n"
         "again (after an interruption too) finishes the job and changes\n"
         "nothing twice. The rename starts only with --nginx-upgraded: the\n"
         "operator's word that every nginx reading this Redis or its\n"
         "replicas runs the module of this release or later (an earlier one\n"
         "answers 401 for every renamed token); without it, exit 2 after\n"
         "the first step.",
         {"--nginx-upgraded"},
         {},
         0,
         migrate},
        {"directory",
         "directory init|sync|status",
         "The token directory at directory_url, apart from the user store\n"
         "(docs/operations.md, \"Two stores\"; being built). init: mark the\n"
         "user store as feeding it and build it from the user store; sync:\n"
         "apply the changes still in the outbox (rebuilding the directory\n"
         "when it restarted empty or lost writes); status: both sides.",
         {},
         {},
         1,
         directory},
    };
    return table;
}

const Command *find_command(const std::string &name)
{
    for (const Command &c : commands()) {
        if (name == c.name) {
            return &c;
        }
    }
    return nullptr;
}

bool wants_help(const std::vector<std::string> &args)
{
    return std::find(args.begin(), args.end(), "--help") != args.end() ||
           std::find(args.begin(), args.end(), "-h") != args.end();
}

int run(std::vector<std::string> args)
{
    auto flags = take_setting_flags(args);
    if (args.empty() || args[0] == "--help" || args[0] == "-h" ||
        args[0] == "help") {
        std::cout << kGlobalUsage;
        return args.empty() ? kExitUsage : 0;
    }
    const Command *command = find_command(args[0]);
    if (command == nullptr) {
        std::cerr << "authtokenctl: unknown command \"" << args[0] << "\"\n"
                  << kGlobalUsage;
        return kExitUsage;
    }
    std::vector<std::string> rest(args.begin() + 1, args.end());
    if (wants_help(rest)) {
        std::cout << "usage: authtokenctl " << command->usage << "\n\n"
                  << command->help << "\n";
        return 0;
    }
    CommandArgs parsed;
    try {
        parsed = parse_command_args(*command, rest);
    } catch (const UsageError &e) {
        std::cerr << "authtokenctl " << command->name << ": " << e.what()
                  << "\nusage: authtokenctl " << command->usage << "\n";
        return kExitUsage;
    }
    Session session(
        resolve_settings(flags, process_environment, read_config_file));
    try {
        return session.finish_directory(command->run(session, parsed));
    } catch (const UsageError &e) {
        // A value a command checks itself (token --ttl): nothing was done.
        std::cerr << "authtokenctl " << command->name << ": " << e.what()
                  << "\nusage: authtokenctl " << command->usage << "\n";
        return kExitUsage;
    }
}

} // namespace

int main(int argc, char **argv)
{
    try {
        std::vector<std::string> args(argv + 1, argv + argc);
        if (hide_redis_password_in_argv(argc, argv)) {
            std::cerr << "authtokenctl: warning: the Redis password in --redis "
                         "shows in `ps`; use AUTHTOKEN_REDIS_PASSWORD or "
                         "redis_password in the config file\n";
        }
        return run(std::move(args));
    } catch (const authtoken::WriteOutcomeUnknown &e) {
        // Saying "failed" here would be a lie half of the time: the
        // command may have run, or may run when a stalled Redis resumes.
        std::cerr << "authtokenctl: redis: " << e.what()
                  << ": check with `authtokenctl users` before trying again\n";
        return kExitOutcomeUnknown;
    } catch (const authtoken::RedisError &e) {
        std::cerr << "authtokenctl: redis: " << e.what() << "\n";
    } catch (const std::exception &e) {
        std::string what = e.what();
        // Messages that are already user-facing sentences stay as they are.
        if (what.compare(0, 6, "Error:") == 0 ||
            what.compare(0, 6, "Cannot") == 0) {
            std::cerr << what << "\n";
        } else {
            std::cerr << "authtokenctl: " << what << "\n";
        }
    }
    return kExitFailed;
}
