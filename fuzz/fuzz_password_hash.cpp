// Django password hashes (authtoken::passwords): check_password(),
// must_update(), is_password_usable(), verify_password().
//
// The first input byte chooses a mode:
//
//   0  an arbitrary encoding and password. Nothing may crash or run long
//      (libFuzzer's -timeout and -rss_limit_mb catch that: a work factor
//      beyond the hasher's bounds must be refused before any hashing), and
//      the answers must agree: a "!" encoding is unusable, never matches and
//      never needs an update; verify_password() matches exactly when
//      check_password() does and asks for an update only with a match.
//      Encodings whose work factor is inside the bounds but costly (a real
//      600000-iteration hash) are only parsed, not checked, to keep the
//      fuzzer fast; they are cheap to refuse when out of bounds, so those
//      are checked.
//   1  PBKDF2, against Django's own rule: the target computes the
//      encoding with OpenSSL (salt, iterations and digest from the input),
//      optionally mutates one byte, and Django's verify() matches exactly
//      when re-encoding with the stored salt and int(iterations) gives back
//      the same string. must_update() follows Django upwards only: fewer
//      iterations than the policy, a salt under 22 characters, or
//      pbkdf2_sha1 (never more iterations than the policy: no downgrade).
//   2  argon2 (argon2id/i/d, v=16/19) hashed by libargon2 itself, in
//      Django's "argon2$..." form: the password matches, another does not.
//   3  bcrypt_sha256 and legacy bcrypt ($2a$/$2b$/$2y$, cost 4) from
//      libxcrypt: the password matches, another does not (except past
//      bcrypt's 72 bytes, which the legacy hasher ignores as Django does).
//
// In every mode make_password(raw, {1000, insecure}) round-trips.
#include "issuer/password_hasher.h"
#include "fuzz_support.h"

#include <argon2.h>
#include <crypt.h>
#include <openssl/evp.h>

#include <algorithm>
#include <memory>

namespace
{

namespace pw = authtoken::passwords;
using fuzz::Input;

std::vector<std::string> split(const std::string &s, char sep,
                               std::size_t max_splits = SIZE_MAX)
{
    std::vector<std::string> out;
    std::size_t from = 0;
    while (out.size() < max_splits) {
        std::size_t at = s.find(sep, from);
        if (at == std::string::npos) {
            break;
        }
        out.push_back(s.substr(from, at - from));
        from = at + 1;
    }
    out.push_back(s.substr(from));
    return out;
}

// The number a run of decimal digits spells, saturating; 0 if `s` has
// anything else. Looser than the hasher on purpose (leading zeros pass).
std::uint64_t loose_number(const std::string &s)
{
    if (s.empty()) {
        return 0;
    }
    std::uint64_t n = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return 0;
        }
        n = n > (UINT64_MAX - 9) / 10 ? UINT64_MAX : n * 10 + (c - '0');
    }
    return n;
}

bool starts_with(const std::string &s, const char *prefix)
{
    return s.rfind(prefix, 0) == 0;
}

// True when `encoded` might make check_password() do work that is allowed
// but slow (more than a few milliseconds). Errs towards true.
bool costly_but_within_bounds(const std::string &encoded)
{
    auto fields = split(encoded, '$');
    if (starts_with(encoded, "pbkdf2") && fields.size() > 1) {
        std::uint64_t n = loose_number(fields[1]);
        return n > 5000 && n <= pw::kMaxPbkdf2Iterations;
    }
    if (starts_with(encoded, "argon2")) {
        std::uint64_t m = 0, t = 0, p = 0;
        for (const auto &field : fields) {
            for (const auto &item : split(field, ',')) {
                if (starts_with(item, "m=")) {
                    m = loose_number(item.substr(2));
                } else if (starts_with(item, "t=")) {
                    t = loose_number(item.substr(2));
                } else if (starts_with(item, "p=")) {
                    p = loose_number(item.substr(2));
                }
            }
        }
        // The hasher's documented caps (password_hasher.h).
        bool within = m <= pw::kMaxArgon2MemoryKiB &&
                      t <= pw::kMaxArgon2TimeCost &&
                      p <= pw::kMaxArgon2Parallelism;
        return within && (m > 1024 || t > 4 || p > 4);
    }
    if (starts_with(encoded, "bcrypt")) {
        for (const auto &field : fields) {
            std::uint64_t cost = field.size() == 2 ? loose_number(field) : 0;
            if (cost > 6 && cost <= 16) {
                return true;
            }
        }
    }
    return false;
}

void check_make_password(const std::string &raw)
{
    const pw::HasherPolicy policy{1000, true}; // insecure_test_hashing
    std::string encoded = pw::make_password(raw, policy);
    std::string d = "raw " + fuzz::repr(raw) + "\nencoded " + encoded;
    auto fields = split(encoded, '$');
    FUZZ_CHECK(fields.size() == 4 && fields[0] == "pbkdf2_sha256" &&
                   fields[1] == "1000" && fields[2].size() == 22 &&
                   fields[3].size() == 44,
               d);
    FUZZ_CHECK(pw::is_password_usable(encoded), d);
    FUZZ_CHECK(pw::check_password(raw, encoded), d);
    FUZZ_CHECK(!pw::check_password(raw + "x", encoded), d);
    FUZZ_CHECK(!pw::must_update(encoded, policy), d);
    FUZZ_CHECK(pw::must_update(encoded, pw::HasherPolicy{1001, true}), d);
    pw::PasswordVerdict v = pw::verify_password(raw, encoded, policy);
    FUZZ_CHECK(v.matched && !v.must_update, d);
}

// --- mode 0 ----------------------------------------------------------------

void run_arbitrary(Input &in)
{
    std::string raw = in.short_string();
    std::string encoded = in.rest();
    std::string d =
        "raw " + fuzz::repr(raw) + "\nencoded " + fuzz::repr(encoded);
    const pw::HasherPolicy policy{1000, true}; // insecure_test_hashing

    bool unusable = !encoded.empty() && encoded[0] == '!';
    FUZZ_CHECK(pw::is_password_usable(encoded) == !unusable, d);
    bool update = pw::must_update(encoded, policy);
    if (update) {
        // Only a parsed encoding can need an update.
        FUZZ_CHECK(starts_with(encoded, "pbkdf2_sha256$") ||
                       starts_with(encoded, "pbkdf2_sha1$") ||
                       starts_with(encoded, "argon2$") ||
                       starts_with(encoded, "bcrypt_sha256$") ||
                       starts_with(encoded, "bcrypt$"),
                   d);
    }
    if (unusable) {
        FUZZ_CHECK(!update, d);
    }
    if (costly_but_within_bounds(encoded)) {
        return;
    }
    bool matched = pw::check_password(raw, encoded);
    if (unusable) {
        FUZZ_CHECK(!matched, d);
    }
    pw::PasswordVerdict v = pw::verify_password(raw, encoded, policy);
    FUZZ_CHECK(v.matched == matched, d);
    FUZZ_CHECK(!v.must_update || (v.matched && update), d);
}

// --- mode 1: PBKDF2 against Django's rule ----------------------------------

std::string base64(const unsigned char *bytes, std::size_t n)
{
    static const char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (std::size_t i = 0; i < n; i += 3) {
        unsigned v = bytes[i] << 16;
        if (i + 1 < n) {
            v |= bytes[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= bytes[i + 2];
        }
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=';
        out += i + 2 < n ? kAlphabet[v & 63] : '=';
    }
    return out;
}

// PBKDF2PasswordHasher.encode(): "%s$%d$%s$%s" % (algorithm, iterations,
// salt, b64encode(pbkdf2(password, salt, iterations, digest))).
std::string django_pbkdf2_encode(const std::string &raw,
                                 const std::string &salt,
                                 std::uint64_t iterations, bool sha1)
{
    const EVP_MD *md = sha1 ? EVP_sha1() : EVP_sha256();
    unsigned char key[EVP_MAX_MD_SIZE];
    int size = EVP_MD_get_size(md);
    if (PKCS5_PBKDF2_HMAC(raw.data(), static_cast<int>(raw.size()),
                          reinterpret_cast<const unsigned char *>(salt.data()),
                          static_cast<int>(salt.size()),
                          static_cast<int>(iterations), md, size, key) != 1) {
        fuzz::fail("PKCS5_PBKDF2_HMAC", "");
    }
    return std::string(sha1 ? "pbkdf2_sha1" : "pbkdf2_sha256") + "$" +
           std::to_string(iterations) + "$" + salt + "$" +
           base64(key, static_cast<std::size_t>(size));
}

// Django's check for a PBKDF2 encoding: decode() is encoded.split("$", 3),
// verify() re-encodes with int(iterations) and the salt and compares the
// strings. Only the canonical spelling of the iteration count can survive
// that, so a non-canonical one is simply "no match" here. `ok` is false
// when the check would be too slow for the fuzzer.
bool django_pbkdf2_verify(const std::string &raw, const std::string &encoded,
                          bool &ok)
{
    ok = true;
    auto parts = split(encoded, '$', 3);
    if (parts.size() != 4 ||
        (parts[0] != "pbkdf2_sha256" && parts[0] != "pbkdf2_sha1")) {
        return false;
    }
    const std::string &digits = parts[1];
    if (digits.empty() || digits[0] == '0' || digits.size() > 7 ||
        loose_number(digits) == 0) {
        return false;
    }
    std::uint64_t iterations = loose_number(digits);
    if (iterations > 20000) {
        ok = false;
        return false;
    }
    // _check_encode_args(): an empty salt or one with "$" raises.
    const std::string &salt = parts[2];
    if (salt.empty() || salt.find('$') != std::string::npos) {
        return false;
    }
    return django_pbkdf2_encode(raw, salt, iterations,
                                parts[0] == "pbkdf2_sha1") == encoded;
}

void run_pbkdf2(Input &in)
{
    std::uint8_t flags = in.byte();
    std::uint64_t iterations = 1 + (in.byte() | (in.byte() << 8)) % 2000;
    std::string raw = in.short_string();
    std::string salt;
    for (char c : in.short_string()) {
        // Django salts are str; keep this one ASCII without "$", so that
        // its length in characters is its length in bytes.
        if (c != '$' && static_cast<unsigned char>(c) < 0x80) {
            salt += c;
        }
    }
    if (salt.empty()) {
        salt = "s";
    }
    bool sha1 = flags & 1;
    std::string encoded = django_pbkdf2_encode(raw, salt, iterations, sha1);
    std::string d =
        "raw " + fuzz::repr(raw) + "\nencoded " + fuzz::repr(encoded);

    FUZZ_CHECK(pw::check_password(raw, encoded), d);
    FUZZ_CHECK(!pw::check_password(raw + "x", encoded), d);
    // PBKDF2PasswordHasher.must_update(); another hasher always updates.
    bool short_salt = salt.size() * 5.954196310386876 < 128; // log2(62)
    bool want_update = sha1 || short_salt;
    FUZZ_CHECK(pw::must_update(
                   encoded, pw::HasherPolicy{static_cast<unsigned>(iterations),
                                             true}) == want_update,
               d);
    FUZZ_CHECK(pw::must_update(encoded, pw::HasherPolicy{static_cast<unsigned>(
                                                             iterations + 1),
                                                         true}),
               d);

    // One mutation, then Django's verdict on the mutated string.
    std::string mutated = encoded;
    std::size_t at = in.byte() % (mutated.size() + 1);
    char value = static_cast<char>(in.byte());
    switch ((flags >> 1) % 4) {
    case 0:
        if (at < mutated.size()) {
            mutated[at] = value;
        }
        break;
    case 1:
        mutated.insert(at, 1, value);
        break;
    case 2:
        if (at < mutated.size()) {
            mutated.erase(at, 1);
        }
        break;
    default:
        mutated.resize(at);
        break;
    }
    bool ok = true;
    bool want = django_pbkdf2_verify(raw, mutated, ok);
    if (ok) {
        d += "\nmutated " + fuzz::repr(mutated) +
             "\nDjango: " + (want ? "match" : "no match");
        FUZZ_CHECK(pw::check_password(raw, mutated) == want, d);
    }
}

// --- mode 2: argon2 from libargon2 ------------------------------------------

void run_argon2(Input &in)
{
    std::uint8_t flags = in.byte();
    // Small work factors: libargon2 starts a thread per lane, so two lanes
    // only now and then.
    std::uint32_t lanes = (flags & 0xc0) == 0xc0 ? 2 : 1;
    std::uint32_t passes = 1 + (flags >> 1) % 2;
    std::uint32_t memory = 8 * lanes + in.byte() % 25;
    argon2_type type = static_cast<argon2_type>((flags >> 3) % 3);
    std::uint32_t version =
        (flags & 0x20) ? ARGON2_VERSION_10 : ARGON2_VERSION_13;
    std::size_t hash_length = 4 + in.byte() % 61;
    std::string salt = in.short_string();
    if (salt.size() < ARGON2_MIN_SALT_LENGTH) {
        salt.resize(ARGON2_MIN_SALT_LENGTH, 'S');
    }
    std::string raw = in.short_string();

    std::vector<unsigned char> hash(hash_length);
    std::size_t encoded_length = argon2_encodedlen(
        passes, memory, lanes, static_cast<std::uint32_t>(salt.size()),
        static_cast<std::uint32_t>(hash_length), type);
    std::string encoded(encoded_length, '\0');
    int rc = argon2_hash(passes, memory, lanes, raw.data(), raw.size(),
                         salt.data(), salt.size(), hash.data(), hash.size(),
                         encoded.data(), encoded.size(), type, version);
    FUZZ_CHECK(rc == ARGON2_OK, argon2_error_message(rc));
    encoded.resize(std::char_traits<char>::length(encoded.c_str()));
    // Django's Argon2PasswordHasher stores "argon2" + argon2-cffi's string.
    std::string django = "argon2" + encoded;
    std::string d = "raw " + fuzz::repr(raw) + "\nencoded " + django;
    FUZZ_CHECK(pw::check_password(raw, django), d);
    FUZZ_CHECK(!pw::check_password(raw + "x", django), d);
    FUZZ_CHECK(pw::must_update(django, pw::HasherPolicy{1000, true}), d);
    // The bare libargon2 string is not a Django encoding.
    FUZZ_CHECK(!pw::check_password(raw, encoded), d);
}

// --- mode 3: bcrypt from libxcrypt -------------------------------------------

std::string sha256_hex(const std::string &raw)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned length = 0;
    EVP_Digest(raw.data(), raw.size(), digest, &length, EVP_sha256(), nullptr);
    static const char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < length; i++) {
        out += kHex[digest[i] >> 4];
        out += kHex[digest[i] & 15];
    }
    return out;
}

void run_bcrypt(Input &in)
{
    static const char *const kPrefixes[] = {"$2b$", "$2a$", "$2y$"};
    std::uint8_t flags = in.byte();
    bool prehash = flags & 1;
    const char *prefix = kPrefixes[(flags >> 1) % 3];
    std::string entropy = in.take(16);
    entropy.resize(16, '\x5a');
    std::string raw = in.short_string();
    if (!prehash) {
        // Python's bcrypt refuses NUL, so legacy hashes never contain one.
        raw.erase(std::remove(raw.begin(), raw.end(), '\0'), raw.end());
    }

    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    FUZZ_CHECK(crypt_gensalt_rn(prefix, 4, entropy.data(),
                                static_cast<int>(entropy.size()), setting,
                                sizeof setting) != nullptr,
               prefix);
    std::string phrase = prehash ? sha256_hex(raw) : raw.substr(0, 72);
    auto scratch = std::make_unique<crypt_data>();
    const char *hashed =
        crypt_rn(phrase.c_str(), setting, scratch.get(), sizeof(crypt_data));
    FUZZ_CHECK(hashed != nullptr && hashed[0] != '*', setting);
    std::string django =
        std::string(prehash ? "bcrypt_sha256$" : "bcrypt$") + hashed;
    std::string d = "raw " + fuzz::repr(raw) + "\nencoded " + django;
    FUZZ_CHECK(pw::check_password(raw, django), d);
    if (prehash || raw.size() < 72) {
        FUZZ_CHECK(!pw::check_password(raw + "x", django), d);
    } else {
        FUZZ_CHECK(pw::check_password(raw + "x", django), d);
    }
    FUZZ_CHECK(pw::must_update(django, pw::HasherPolicy{1000, true}), d);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data,
                                      std::size_t size)
{
    Input in(data, size);
    std::uint8_t mode = in.byte();
    try {
        switch (mode % 4) {
        case 0:
            run_arbitrary(in);
            break;
        case 1:
            run_pbkdf2(in);
            break;
        case 2:
            run_argon2(in);
            break;
        default:
            run_bcrypt(in);
            break;
        }
        if (mode & 0x80) {
            check_make_password(std::string(
                reinterpret_cast<const char *>(data), size > 64 ? 64 : size));
        }
    } catch (const std::exception &e) {
        fuzz::fail("the hasher threw", e.what());
    }
    return 0;
}
