// Django compatibility of src/issuer/password_hasher: the hashes in
// t/fixtures/django-dumpdata.json were written by a real Django 3.2,
// and their passwords are listed in the fixtures' README.
#include "issuer/password_hasher.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// Last: cmocka defines macros (fail) that clash with the standard headers.
#include "core/tests/cmocka_cpp.h"

namespace
{

using namespace authtoken::passwords;
using namespace std::string_literals;

// The fixtures' passwords (README.md), as UTF-8 bytes.
constexpr std::string_view kAdminPassword = "admin-pass-123";
constexpr std::string_view kCarolPassword = "correct horse battery staple";
constexpr std::string_view kDavePassword = "p@ssw0rd-\xc3\xbc\xc3\x9f"; // üß
constexpr std::string_view kErinPassword = "erin's secret";
constexpr std::string_view kFrankPassword = "frank-inactive";
constexpr std::string_view kGracePassword = "no-token-yet";

// Vectors the fixtures do not have, made with Debian 12's python3-django
// 3.2.25 (+ python3-bcrypt 3.2.2, python3-argon2 21.1.0) and checked there
// with django.contrib.auth.hashers.check_password():
//   make_password('bcrypt-sha256 pässword', hasher='bcrypt_sha256')
//   make_password('legacy bcrypt', hasher=<BCryptPasswordHasher, rounds=4>)
//   make_password('0123456789' * 10, hasher=<the same>)
//   make_password('argon2i secret', hasher=<Argon2PasswordHasher with
//       type=argon2.low_level.Type.I, time_cost=1, memory_cost=64,
//       parallelism=2>), and the same with Type.D for 'argon2d secret'.
// The versionless argon2 one is argon2-cffi's
//   low_level.hash_secret(b'old argon2', b'legacysalt1234', time_cost=1,
//       memory_cost=64, parallelism=1, hash_len=16, type=Type.I,
//       version=0x10)
// with "v=16$" removed, the form argon2-cffi wrote before 16.0 (Django
// accepts it, reading version 1.0).
constexpr std::string_view kBcryptSha256Password =
    "bcrypt-sha256 p\xc3\xa4ssword";
constexpr std::string_view kBcryptSha256Hash =
    "bcrypt_sha256$$2b$12$ZAkm8whB3D.owezX/"
    "OQJGO83uDnjU2q94zU9sXR3jrwuUOLIkoQT2";
constexpr std::string_view kBcryptPassword = "legacy bcrypt";
constexpr std::string_view kBcryptHash =
    "bcrypt$$2b$04$b7UvPwzRDtI0OX5.VW8ivObUW3Ad6HKFiAjOTi/UykBfNN.vFiz.e";
constexpr std::string_view kBcryptLongHash =
    "bcrypt$$2b$04$odn8QyoRManIY0yjU3oVGe/KF.3JvghRPuEDT3Uu1tXzWStWlU63i";
constexpr std::string_view kArgon2iPassword = "argon2i secret";
constexpr std::string_view kArgon2iHash =
    "argon2$argon2i$v=19$m=64,t=1,p=2$aURwZFhMNlFGcUlJNlY5aTBwNEdNUw$"
    "F9OX7pELtImMnd9xSi/VSw";
constexpr std::string_view kArgon2dPassword = "argon2d secret";
constexpr std::string_view kArgon2dHash =
    "argon2$argon2d$v=19$m=64,t=1,p=2$QzhPSDlSZ09aZENmd3NqSUxBR2NFdQ$"
    "Pvm2E2ZOrlyAfZFb5wLyPA";
constexpr std::string_view kArgon2LegacyPassword = "old argon2";
constexpr std::string_view kArgon2LegacyHash =
    "argon2$argon2i$m=64,t=1,p=1$bGVnYWN5c2FsdDEyMzQ$hohhYOnZ66cqfxo2NwOAgg";

// Most tests do not need the production cost; these keep them fast.
const HasherPolicy kCheapPolicy{1000, true};
const HasherPolicy kDefaultPolicy{};

// The stored password of each user in the Django dump, read once.
const std::map<std::string, std::string> &load_django_users()
{
    static const std::map<std::string, std::string> users = [] {
        const std::string path =
            std::string(AUTHTOKEN_FIXTURES_DIR) + "/django-dumpdata.json";
        std::ifstream in(path);
        if (!in) {
            throw std::runtime_error("cannot open " + path);
        }
        const auto dump = nlohmann::json::parse(in);
        std::map<std::string, std::string> found;
        for (const auto &object : dump) {
            if (object.at("model") == "auth.user") {
                const auto &fields = object.at("fields");
                found[fields.at("username").get<std::string>()] =
                    fields.at("password").get<std::string>();
            }
        }
        return found;
    }();
    return users;
}

std::string stored_password(const std::string &username)
{
    try {
        const auto &users = load_django_users();
        const auto user = users.find(username);
        if (user != users.end()) {
            return user->second;
        }
        fail_msg("no user %s in the Django fixture", username.c_str());
    } catch (const std::exception &e) {
        fail_msg("reading the Django fixture: %s", e.what());
    }
    return {};
}

template <typename F> double seconds_taken(F &&work)
{
    const auto start = std::chrono::steady_clock::now();
    work();
    const std::chrono::duration<double> taken =
        std::chrono::steady_clock::now() - start;
    return taken.count();
}

bool is_alphanumeric(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

bool is_alphanumeric(std::string_view text)
{
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return is_alphanumeric(c); });
}

bool is_padded_base64(std::string_view text)
{
    if (text.size() % 4 != 0) {
        return false;
    }
    for (std::size_t i = 0; i < text.size(); i++) {
        const char c = text[i];
        const bool body = is_alphanumeric(c) || c == '+' || c == '/';
        const bool padding = c == '=' && i >= text.size() - 2;
        if (!body && !padding) {
            return false;
        }
    }
    return true;
}

std::vector<std::string> split_on_dollar(const std::string &text)
{
    std::vector<std::string> fields;
    std::size_t start = 0;
    for (;;) {
        const std::size_t end = text.find('$', start);
        fields.push_back(text.substr(start, end - start));
        if (end == std::string::npos) {
            return fields;
        }
        start = end + 1;
    }
}

// Replaces the first `from` in `text` with `to`.
std::string with_replaced(std::string text, std::string_view from,
                          std::string_view to)
{
    const std::size_t at = text.find(from);
    if (at == std::string::npos) {
        fail_msg("%.*s not in %s", static_cast<int>(from.size()), from.data(),
                 text.c_str());
        return text;
    }
    return text.replace(at, from.size(), to);
}

// --- the Django fixture ------------------------------------------------------

void test_pbkdf2_sha256_fixtures_match(void **)
{
    assert_true(check_password(kAdminPassword, stored_password("admin")));
    assert_true(check_password(kCarolPassword, stored_password("carol")));
    assert_true(check_password(kGracePassword, stored_password("grace")));
}

// dave's hash has the 600000 iterations of Django 4.2+ and a non-ASCII
// password, hashed as its UTF-8 bytes.
void test_pbkdf2_sha256_600000_utf8_fixture(void **)
{
    const std::string dave = stored_password("dave");
    assert_true(check_password(kDavePassword, dave));
    // The same text in ISO-8859-1 is other bytes, so another password.
    assert_false(check_password("p@ssw0rd-\xfc\xdf", dave));
}

void test_pbkdf2_sha1_fixture(void **)
{
    const std::string frank = stored_password("frank");
    assert_true(check_password(kFrankPassword, frank));
    assert_false(check_password("frank-inactivE", frank));
}

void test_argon2id_fixture(void **)
{
    const std::string erin = stored_password("erin");
    assert_true(check_password(kErinPassword, erin));
    assert_false(check_password("erin's secreT", erin));
}

void test_wrong_passwords_do_not_match(void **)
{
    const std::string admin = stored_password("admin");
    assert_false(check_password("admin-pass-124", admin));
    assert_false(check_password("Admin-pass-123", admin));
    assert_false(check_password("admin-pass-12", admin));
    assert_false(check_password("admin-pass-123\n", admin));
    assert_false(check_password("", admin));
    assert_false(check_password(kCarolPassword, admin));
    assert_false(check_password(kAdminPassword, stored_password("carol")));
    assert_false(check_password(kAdminPassword, stored_password("grace")));
}

void test_unusable_password_never_matches(void **)
{
    const std::string heidi = stored_password("heidi");
    assert_false(is_password_usable(heidi));
    assert_false(check_password("", heidi));
    assert_false(check_password(heidi, heidi));
    assert_false(check_password(heidi.substr(1), heidi));
    assert_false(check_password(kAdminPassword, "!"));
    assert_false(
        check_password(kAdminPassword, "!" + stored_password("admin")));
    assert_false(must_update(heidi, kDefaultPolicy));
}

// --- the other hashers Django ships ------------------------------------------

void test_argon2i_argon2d_and_versionless_vectors(void **)
{
    assert_true(check_password(kArgon2iPassword, kArgon2iHash));
    assert_false(check_password(kArgon2dPassword, kArgon2iHash));
    assert_true(check_password(kArgon2dPassword, kArgon2dHash));
    assert_false(check_password(kArgon2iPassword, kArgon2dHash));
    assert_true(check_password(kArgon2LegacyPassword, kArgon2LegacyHash));
    assert_false(check_password("old argon3", kArgon2LegacyHash));

    // Every parameter takes part: the same salt and hash under another
    // variety, version or cost do not match.
    const std::string argon2i(kArgon2iHash);
    assert_false(check_password(
        kArgon2iPassword, with_replaced(argon2i, "argon2i$", "argon2d$")));
    assert_false(check_password(kArgon2iPassword,
                                with_replaced(argon2i, "v=19", "v=16")));
    assert_false(
        check_password(kArgon2iPassword, with_replaced(argon2i, "t=1", "t=2")));
    assert_false(check_password(kArgon2iPassword,
                                with_replaced(argon2i, "m=64", "m=72")));
}

void test_bcrypt_sha256_vector(void **)
{
    assert_true(check_password(kBcryptSha256Password, kBcryptSha256Hash));
    assert_false(check_password("bcrypt-sha256 password", kBcryptSha256Hash));
    assert_false(check_password("", kBcryptSha256Hash));
    // Without the SHA-256 step it is another hasher.
    const std::string as_plain_bcrypt =
        "bcrypt$" + std::string(kBcryptSha256Hash.substr(14));
    assert_false(check_password(kBcryptSha256Password, as_plain_bcrypt));
}

void test_legacy_bcrypt_vector(void **)
{
    assert_true(check_password(kBcryptPassword, kBcryptHash));
    assert_false(check_password("legacy bcrypT", kBcryptHash));
    // Python's bcrypt refuses NUL bytes, and C strings would cut there.
    assert_false(check_password("legacy bcrypt\0tail"s, kBcryptHash));
    assert_false(check_password("legacy bcrypt\0"s, kBcryptHash));

    // bcrypt reads 72 bytes; Django (Python's bcrypt 3.x) ignores the rest,
    // however long, where libxcrypt alone would refuse over 512 bytes.
    std::string long_password;
    for (int i = 0; i < 70; i++) {
        long_password += "0123456789";
    }
    assert_true(check_password(long_password.substr(0, 100), kBcryptLongHash));
    assert_true(check_password(long_password.substr(0, 72), kBcryptLongHash));
    assert_true(check_password(long_password, kBcryptLongHash));
    assert_false(check_password(long_password.substr(0, 71), kBcryptLongHash));
}

// --- make_password
// -------------------------------------------------------------

void test_make_password_has_djangos_format(void **)
{
    const std::string encoded = make_password(kAdminPassword, kCheapPolicy);
    const auto fields = split_on_dollar(encoded);
    assert_int_equal(fields.size(), 4);
    assert_string_equal(fields[0].c_str(), "pbkdf2_sha256");
    assert_string_equal(fields[1].c_str(), "1000");
    assert_int_equal(fields[2].size(), 22);
    assert_true(is_alphanumeric(fields[2]));
    // base64 of the 32-byte key: 44 characters, one "=" of padding.
    assert_int_equal(fields[3].size(), 44);
    assert_true(is_padded_base64(fields[3]));
    assert_true(fields[3].back() == '=' && fields[3][42] != '=');
}

void test_make_password_round_trips(void **)
{
    const std::string encoded = make_password(kDavePassword, kCheapPolicy);
    assert_true(check_password(kDavePassword, encoded));
    assert_false(check_password(kAdminPassword, encoded));
    assert_false(check_password("", encoded));
    assert_false(must_update(encoded, kCheapPolicy));

    const std::string empty = make_password("", kCheapPolicy);
    assert_true(check_password("", empty));
    assert_false(check_password(" ", empty));
}

void test_make_password_uses_600000_iterations_by_default(void **)
{
    assert_int_equal(kDefaultPolicy.pbkdf2_iterations, 600000);
    const std::string encoded = make_password(kGracePassword, kDefaultPolicy);
    assert_string_equal(split_on_dollar(encoded)[1].c_str(), "600000");
    assert_true(check_password(kGracePassword, encoded));
    assert_false(must_update(encoded, kDefaultPolicy));
}

void test_make_password_salts_differ(void **)
{
    const std::string first = make_password(kAdminPassword, kCheapPolicy);
    const std::string second = make_password(kAdminPassword, kCheapPolicy);
    assert_string_not_equal(split_on_dollar(first)[2].c_str(),
                            split_on_dollar(second)[2].c_str());
    assert_string_not_equal(first.c_str(), second.c_str());
}

void test_make_unusable_password(void **)
{
    const std::string first = make_unusable_password();
    assert_int_equal(first.size(), 41);
    assert_true(first[0] == '!');
    assert_true(is_alphanumeric(std::string_view(first).substr(1)));
    assert_false(is_password_usable(first));
    assert_false(check_password("", first));
    assert_string_not_equal(first.c_str(), make_unusable_password().c_str());
    // Django's is_password_usable() only looks for the "!" prefix.
    assert_true(is_password_usable(""));
    assert_true(is_password_usable(stored_password("admin")));
}

void test_policy_outside_bounds_is_refused(void **)
{
    for (const HasherPolicy policy :
         {HasherPolicy{0, true}, HasherPolicy{kMaxPbkdf2Iterations + 1, true},
          HasherPolicy{1000}, HasherPolicy{599999}}) {
        bool refused = false;
        try {
            (void)make_password(kAdminPassword, policy);
        } catch (const std::invalid_argument &) {
            refused = true;
        }
        assert_true(refused);
    }
}

// The floor of 600000 iterations holds unless the policy names the
// insecure test setting; the cap is the hasher's own.
void test_pbkdf2_iterations_floor_and_cap(void **)
{
    check_policy(HasherPolicy{600000});
    check_policy(HasherPolicy{kMaxPbkdf2Iterations});
    check_policy(HasherPolicy{1, true});
    const std::string cheap = make_password("pw", HasherPolicy{1000, true});
    assert_true(cheap.rfind("pbkdf2_sha256$1000$", 0) == 0);
}

// argon2id as the default hasher: Django's Argon2PasswordHasher encoding,
// its defaults, round trips, and argon2 users stay argon2 on login.
void test_argon2id_as_default_hasher(void **)
{
    HasherPolicy argon2{1000, true, Hasher::argon2id};
    argon2.argon2_memory_kib = 1024; // keep the test fast
    argon2.argon2_time_cost = 2;
    argon2.argon2_parallelism = 2;
    const std::string encoded = make_password("s3cret", argon2);
    assert_true(encoded.rfind("argon2$argon2id$v=19$m=1024,t=2,p=2$", 0) == 0);
    assert_true(check_password("s3cret", encoded));
    assert_false(check_password("s3cret!", encoded));
    assert_int_equal(classify_password(encoded), PasswordFormat::usable);
    PasswordVerdict v = verify_password("s3cret", encoded, argon2);
    assert_true(v.matched);
    assert_false(v.must_update);
    // With the pbkdf2 default it is re-hashed into it, as Django does.
    assert_true(must_update(encoded, kCheapPolicy));
    // Weaker argon2 (argon2i, less memory, fewer passes) is upgraded, a
    // stronger one kept.
    assert_true(must_update(kArgon2iHash, argon2));
    HasherPolicy stronger = argon2;
    stronger.argon2_memory_kib = 2048;
    assert_true(must_update(encoded, stronger));
    stronger = argon2;
    stronger.argon2_time_cost = 3;
    assert_true(must_update(encoded, stronger));
    HasherPolicy weaker = argon2;
    weaker.argon2_memory_kib = 512;
    weaker.argon2_time_cost = 1;
    assert_false(must_update(encoded, weaker));
    // pbkdf2 users are moved to argon2id.
    assert_true(must_update(stored_password("dave"), argon2));
    // Django's own defaults are a valid policy.
    check_policy(HasherPolicy{600000, false, Hasher::argon2id});
}

// Imported argon2 hashes asking for more than the caps never run, and
// import can tell them from malformed ones.
void test_argon2_caps(void **)
{
    const std::string base = "argon2$argon2id$v=19$m=102400,t=2,p=8$"
                             "c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA";
    assert_int_equal(classify_password(base), PasswordFormat::usable);
    for (const auto &[from, to] :
         std::vector<std::pair<std::string, std::string>>{
             {"m=102400", "m=262145"},
             {"t=2", "t=17"},
             {"p=8", "p=17"},
             {"m=102400,t=2", "m=262144,t=4"}, // m x t over 4 x Django's
             {"m=102400,t=2,p=8", "m=1048576,t=2,p=64"}}) {
        const std::string heavy = with_replaced(base, from, to);
        assert_int_equal(classify_password(heavy),
                         PasswordFormat::over_work_bounds);
        const double taken = seconds_taken(
            [&] { assert_false(check_password("password", heavy)); });
        assert_true(taken < 0.1);
    }
}

// argon2 never starts threads, whatever p the stored hash has: sample the
// process's thread count while an 8-lane hash is checked.
void test_argon2_runs_with_one_thread(void **)
{
    HasherPolicy argon2{1000, true, Hasher::argon2id};
    argon2.argon2_memory_kib = 65536;
    argon2.argon2_time_cost = 2;
    argon2.argon2_parallelism = 8;
    const std::string encoded = make_password("pw", argon2);
    auto threads = [] {
        std::ifstream status("/proc/self/status");
        std::string line;
        while (std::getline(status, line)) {
            if (line.rfind("Threads:", 0) == 0) {
                return std::stoi(line.substr(8));
            }
        }
        return -1;
    };
    std::atomic<bool> done{false};
    std::atomic<int> most{0};
    std::thread sampler([&] {
        while (!done) {
            most = std::max(most.load(), threads());
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    });
    for (int i = 0; i < 5; i++) {
        assert_true(check_password("pw", encoded));
    }
    done = true;
    sampler.join();
    print_message("most threads while checking p=8: %d\n", most.load());
    // This thread and the sampler.
    assert_int_equal(most.load(), 2);
}

// Legacy bcrypt reads 72 bytes: a match on a longer input must not store
// a hash of all that was typed.
void test_legacy_bcrypt_match_over_72_bytes_is_not_rehashed(void **)
{
    std::string hundred;
    for (int i = 0; i < 10; i++) {
        hundred += "0123456789";
    }
    PasswordVerdict v = verify_password(hundred, kBcryptLongHash, kCheapPolicy);
    assert_true(v.matched);
    assert_false(v.must_update);
    v = verify_password(hundred.substr(0, 72), kBcryptLongHash, kCheapPolicy);
    assert_true(v.matched);
    assert_true(v.must_update);
    // bcrypt_sha256 pre-hashes everything: its upgrade stays.
    v = verify_password(kBcryptSha256Password, kBcryptSha256Hash, kCheapPolicy);
    assert_true(v.matched);
    assert_true(v.must_update);
}

void test_classify_password(void **)
{
    assert_int_equal(classify_password(stored_password("dave")),
                     PasswordFormat::usable);
    assert_int_equal(classify_password(make_unusable_password()),
                     PasswordFormat::unusable);
    assert_int_equal(classify_password(""), PasswordFormat::empty);
    assert_int_equal(classify_password("hunter2"),
                     PasswordFormat::unknown_format);
    assert_int_equal(classify_password("my$ecret pass"),
                     PasswordFormat::unknown_format);
    assert_int_equal(classify_password("md5$abc$def"),
                     PasswordFormat::unsupported);
    assert_int_equal(classify_password("scrypt$16384$salt$8$1$aGFzaA=="),
                     PasswordFormat::unsupported);
    assert_int_equal(classify_password("pbkdf2_sha256$abc$salt$hash"),
                     PasswordFormat::malformed);
    assert_int_equal(classify_password(with_replaced(stored_password("admin"),
                                                     "$260000$", "$20000000$")),
                     PasswordFormat::over_work_bounds);
    assert_string_equal(describe(PasswordFormat::unknown_format),
                        "password in no known hash format");
}

// --- must_update
// ---------------------------------------------------------------

void test_must_update(void **)
{
    assert_true(must_update(stored_password("admin"), kDefaultPolicy));
    assert_false(must_update(stored_password("dave"), kDefaultPolicy));
    // Upwards only: Django re-hashes a stored count above the policy's
    // too, which silently weakens hashes when the setting is lowered.
    assert_false(
        must_update(stored_password("dave"), HasherPolicy{260000, true}));
    assert_false(must_update(stored_password("dave"), kCheapPolicy));
    assert_false(
        must_update(stored_password("admin"), HasherPolicy{260000, true}));
    assert_true(must_update(stored_password("frank"), kDefaultPolicy));
    assert_true(
        must_update(stored_password("frank"), HasherPolicy{260000, true}));
    assert_true(must_update(stored_password("erin"), kDefaultPolicy));
    assert_true(must_update(kArgon2iHash, kDefaultPolicy));
    assert_true(must_update(kBcryptSha256Hash, kDefaultPolicy));
    assert_true(must_update(kBcryptHash, kDefaultPolicy));
    // Salts under 128 bits of entropy (Django before 3.2 used 12
    // characters) are renewed too.
    const std::string short_salt = with_replaced(
        stored_password("dave"), "Y7RKHnivbWwu2IkN4KLrr7", "Y7RKHnivbWwu");
    assert_true(must_update(short_salt, kDefaultPolicy));
    // Nothing to re-hash when nothing could have matched.
    assert_false(must_update("", kDefaultPolicy));
    assert_false(must_update("md5$abc$def", kDefaultPolicy));
    assert_false(must_update("pbkdf2_sha256$600000$salt", kDefaultPolicy));
}

// --- malformed encodings
// -------------------------------------------------------

// Each is checked with the password that matches the hash it was derived
// from, so that a lenient parser would be caught matching.
void test_malformed_encodings_never_match(void **)
{
    const std::string admin = stored_password("admin");
    const std::string admin_hash = split_on_dollar(admin)[3];
    const std::string admin_salt = split_on_dollar(admin)[2];
    const std::string argon2i(kArgon2iHash);
    const std::string bcrypt(kBcryptSha256Hash);

    const std::vector<std::pair<std::string_view, std::string>> cases = {
        // pbkdf2
        {kAdminPassword, ""},
        {kAdminPassword, "$"},
        {kAdminPassword, "pbkdf2_sha256"},
        {kAdminPassword, "pbkdf2_sha256$"},
        {kAdminPassword, "pbkdf2_sha256$260000$" + admin_salt},
        {kAdminPassword, "pbkdf2_sha256$260000$" + admin_salt + "$"},
        {kAdminPassword, admin.substr(0, admin.size() - 1)},
        {kAdminPassword, admin.substr(0, admin.size() / 2)},
        {kAdminPassword, admin + "$"},
        {kAdminPassword, admin + "="},
        {kAdminPassword, admin + "$extra"},
        {kAdminPassword, with_replaced(admin, "I5sH", "I5s*")},
        {kAdminPassword, with_replaced(admin, "lI=", "lI")},
        {kAdminPassword, with_replaced(admin, "lI=", "lJ=")}, // unused bits
        {kAdminPassword, with_replaced(admin, admin_hash, "AAAA")},
        {kAdminPassword, with_replaced(admin, "$260000$", "$abc$")},
        {kAdminPassword, with_replaced(admin, "$260000$", "$$")},
        {kAdminPassword, with_replaced(admin, "$260000$", "$0$")},
        {kAdminPassword, with_replaced(admin, "$260000$", "$-260000$")},
        {kAdminPassword, with_replaced(admin, "$260000$", "$+260000$")},
        {kAdminPassword, with_replaced(admin, "$260000$", "$ 260000$")},
        {kAdminPassword, with_replaced(admin, "$260000$", "$0260000$")},
        {kAdminPassword, with_replaced(admin, "$260000$", "$260000.0$")},
        {kAdminPassword, with_replaced(admin, "$260000$", "$1000000000000$")},
        {kAdminPassword,
         with_replaced(admin, "$260000$", "$99999999999999999999999$")},
        {kAdminPassword, with_replaced(admin, admin_salt, "")},
        {kAdminPassword, with_replaced(admin, "pbkdf2_sha256", "pbkdf2_sha1")},
        // unknown algorithms
        {kAdminPassword,
         with_replaced(admin, "pbkdf2_sha256", "PBKDF2_SHA256")},
        {kAdminPassword,
         with_replaced(admin, "pbkdf2_sha256", "pbkdf2_sha512")},
        {kAdminPassword, with_replaced(admin, "pbkdf2_sha256", "md5")},
        {kAdminPassword, " " + admin},
        {"", "md5$$d41d8cd98f00b204e9800998ecf8427e"},
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        // argon2
        {kArgon2iPassword, "argon2"},
        {kArgon2iPassword, "argon2$"},
        {kArgon2iPassword, "argon2$argon2i"},
        {kArgon2iPassword, with_replaced(argon2i, "m=64,t=1,p=2$", "")},
        {kArgon2iPassword, with_replaced(argon2i, "m=64,t=1,p=2", "")},
        {kArgon2iPassword, with_replaced(argon2i, "m=64,", "")},
        {kArgon2iPassword, with_replaced(argon2i, ",p=2", "")},
        {kArgon2iPassword,
         with_replaced(argon2i, "m=64,t=1,p=2", "t=1,m=64,p=2")},
        {kArgon2iPassword,
         with_replaced(argon2i, "m=64,t=1,p=2", "m=64,t=1,p=2,")},
        {kArgon2iPassword, with_replaced(argon2i, "m=64", "m=1000000000000")},
        {kArgon2iPassword, with_replaced(argon2i, "m=64", "m=4294967296")},
        {kArgon2iPassword, with_replaced(argon2i, "m=64", "m=8")},
        {kArgon2iPassword, with_replaced(argon2i, "m=64", "m=")},
        {kArgon2iPassword, with_replaced(argon2i, "t=1", "t=0")},
        {kArgon2iPassword, with_replaced(argon2i, "t=1", "t=1000000")},
        {kArgon2iPassword, with_replaced(argon2i, "p=2", "p=0")},
        {kArgon2iPassword, with_replaced(argon2i, "p=2", "p=100000")},
        {kArgon2iPassword, with_replaced(argon2i, "v=19", "v=20")},
        {kArgon2iPassword, with_replaced(argon2i, "v=19", "v=019")},
        {kArgon2iPassword, with_replaced(argon2i, "v=19", "19")},
        {kArgon2iPassword, with_replaced(argon2i, "argon2i$", "argon2x$")},
        {kArgon2iPassword, with_replaced(argon2i, "argon2i$", "$")},
        {kArgon2iPassword, with_replaced(argon2i, "dNUw$", "dNUw=$")},
        {kArgon2iPassword, with_replaced(argon2i, "dNUw$", "dN*w$")},
        {kArgon2iPassword,
         with_replaced(argon2i, "aURwZFhMNlFGcUlJNlY5aTBwNEdNUw", "aURw")},
        {kArgon2iPassword,
         with_replaced(argon2i, "F9OX7pELtImMnd9xSi/VSw", "F9O")},
        {kArgon2iPassword,
         with_replaced(argon2i, "F9OX7pELtImMnd9xSi/VSw", "")},
        {kArgon2iPassword, argon2i.substr(0, argon2i.size() - 1)},
        {kArgon2iPassword, argon2i + "$"},
        // bcrypt
        {kBcryptSha256Password, "bcrypt_sha256$"},
        {kBcryptSha256Password, "bcrypt_sha256$$2b$12$"},
        {kBcryptSha256Password, bcrypt.substr(0, bcrypt.size() - 1)},
        {kBcryptSha256Password, bcrypt + "A"},
        {kBcryptSha256Password, with_replaced(bcrypt, "$$2b", "$2b")},
        {kBcryptSha256Password, with_replaced(bcrypt, "$2b$", "$2x$")},
        {kBcryptSha256Password, with_replaced(bcrypt, "$2b$", "$2c$")},
        {kBcryptSha256Password, with_replaced(bcrypt, "$12$", "$99$")},
        {kBcryptSha256Password, with_replaced(bcrypt, "$12$", "$31$")},
        {kBcryptSha256Password, with_replaced(bcrypt, "$12$", "$03$")},
        {kBcryptSha256Password, with_replaced(bcrypt, "$12$", "$4$")},
        {kBcryptSha256Password, with_replaced(bcrypt, "$12$", "$012$")},
        {kBcryptSha256Password, with_replaced(bcrypt, "ZAkm", "ZA+m")},
        {kBcryptSha256Password, with_replaced(bcrypt, "ZAkm", "ZA$m")},
    };
    for (const auto &[raw, encoded] : cases) {
        if (check_password(raw, encoded) ||
            must_update(encoded, kDefaultPolicy)) {
            fail_msg("accepted malformed \"%s\"", encoded.c_str());
        }
    }
}

// A hash asking for more work than kMaxPbkdf2Iterations is refused before
// any work is done (10 million iterations would take seconds).
void test_work_bounds_refuse_before_hashing(void **)
{
    const std::string admin = stored_password("admin");
    const std::string too_many =
        with_replaced(admin, "$260000$",
                      "$" + std::to_string(kMaxPbkdf2Iterations + 1) + "$");
    const double taken = seconds_taken(
        [&] { assert_false(check_password(kAdminPassword, too_many)); });
    assert_true(taken < 1.0);

    // Every argon2 parameter within its own bound, but 1 GiB x 64 passes
    // together would take minutes (found by fuzz_password_hash's review).
    const double heavy = seconds_taken([&] {
        assert_false(check_password("password",
                                    "argon2$argon2id$v=19$m=1048576,t=64,p=64$"
                                    "c2FsdHNhbHQ$aGFzaGhhc2g"));
    });
    assert_true(heavy < 1.0);
}

// --- verify_password and timing
// ------------------------------------------------

void test_verify_password(void **)
{
    PasswordVerdict verdict = verify_password(
        kAdminPassword, stored_password("admin"), kDefaultPolicy);
    assert_true(verdict.matched);
    assert_true(verdict.must_update);

    verdict =
        verify_password(kDavePassword, stored_password("dave"), kDefaultPolicy);
    assert_true(verdict.matched);
    assert_false(verdict.must_update);

    verdict = verify_password("", stored_password("heidi"), kCheapPolicy);
    assert_false(verdict.matched);
    assert_false(verdict.must_update);

    verdict = verify_password("wrong", stored_password("carol"), kCheapPolicy);
    assert_false(verdict.matched);
    assert_false(verdict.must_update);
}

// The point of run_dummy_check and of verify_password's hardening is time,
// so measure it, loosely: each must cost a sizable part of one real check at
// the default 600000 iterations (the bound is wide so that a loaded machine
// does not fail it, and narrow enough to catch a check that does nothing).
void test_dummy_and_hardened_checks_cost_a_default_check(void **)
{
    const std::string dave = stored_password("dave");
    const double real = seconds_taken(
        [&] { assert_true(check_password(kDavePassword, dave)); });
    const double dummy =
        seconds_taken([&] { run_dummy_check(kDavePassword, kDefaultPolicy); });
    // A wrong password against admin's 260000 iterations runs the other
    // 340000 too; an unusable password runs the dummy check.
    const double hardened = seconds_taken([&] {
        assert_false(
            verify_password("wrong", stored_password("admin"), kDefaultPolicy)
                .matched);
    });
    const double unusable = seconds_taken([&] {
        assert_false(
            verify_password("wrong", stored_password("heidi"), kDefaultPolicy)
                .matched);
    });
    print_message("600000-iteration check %.3f s, dummy %.3f s, hardened "
                  "%.3f s, unusable %.3f s\n",
                  real, dummy, hardened, unusable);
    assert_true(dummy > real / 3);
    assert_true(hardened > real / 3);
    assert_true(unusable > real / 3);
}

} // namespace

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pbkdf2_sha256_fixtures_match),
        cmocka_unit_test(test_pbkdf2_sha256_600000_utf8_fixture),
        cmocka_unit_test(test_pbkdf2_sha1_fixture),
        cmocka_unit_test(test_argon2id_fixture),
        cmocka_unit_test(test_wrong_passwords_do_not_match),
        cmocka_unit_test(test_unusable_password_never_matches),
        cmocka_unit_test(test_argon2i_argon2d_and_versionless_vectors),
        cmocka_unit_test(test_bcrypt_sha256_vector),
        cmocka_unit_test(test_legacy_bcrypt_vector),
        cmocka_unit_test(test_make_password_has_djangos_format),
        cmocka_unit_test(test_make_password_round_trips),
        cmocka_unit_test(test_make_password_uses_600000_iterations_by_default),
        cmocka_unit_test(test_make_password_salts_differ),
        cmocka_unit_test(test_make_unusable_password),
        cmocka_unit_test(test_policy_outside_bounds_is_refused),
        cmocka_unit_test(test_pbkdf2_iterations_floor_and_cap),
        cmocka_unit_test(test_argon2id_as_default_hasher),
        cmocka_unit_test(test_argon2_caps),
        cmocka_unit_test(test_argon2_runs_with_one_thread),
        cmocka_unit_test(
            test_legacy_bcrypt_match_over_72_bytes_is_not_rehashed),
        cmocka_unit_test(test_classify_password),
        cmocka_unit_test(test_must_update),
        cmocka_unit_test(test_malformed_encodings_never_match),
        cmocka_unit_test(test_work_bounds_refuse_before_hashing),
        cmocka_unit_test(test_verify_password),
        cmocka_unit_test(test_dummy_and_hardened_checks_cost_a_default_check),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
