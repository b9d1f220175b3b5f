#include "issuer/password_hasher.h"

#include "core/digit_values.h"

#include <argon2.h>
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace authtoken::passwords
{
namespace
{

using Bytes = std::vector<unsigned char>;

// Django's RANDOM_STRING_CHARS, from which it draws salts and the tail of
// unusable passwords.
constexpr std::string_view kRandomStringChars =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

// Django's salt_entropy is 128 bits: ceil(128 / log2(62)) = 22 characters.
// Its must_update_salt() asks for a new salt below that length.
constexpr std::size_t kSaltLength = 22;

constexpr char kUnusablePrefix = '!';
constexpr std::size_t kUnusableSuffixLength = 40;

constexpr std::string_view kPbkdf2Sha256 = "pbkdf2_sha256";
constexpr std::string_view kPbkdf2Sha1 = "pbkdf2_sha1";
constexpr std::string_view kArgon2 = "argon2";
constexpr std::string_view kBcryptSha256 = "bcrypt_sha256";
constexpr std::string_view kBcrypt = "bcrypt";

// Django's password column is 128 characters; anything far longer is not a
// hash Django wrote, and bounding it bounds every field parsed below.
constexpr std::size_t kMaxEncodedLength = 1024;

// What a stored hash may ask for. kStrict is what a login will run
// (password_hasher.h has the argon2 caps and why); kSyntax only bounds the
// numbers so that a hash over the caps can be told from a malformed one.
struct WorkBounds {
    std::uint64_t pbkdf2_iterations;
    std::uint64_t argon2_memory_kib;
    std::uint64_t argon2_passes;
    std::uint64_t argon2_lanes;
    std::uint64_t argon2_work; // memory x passes
    unsigned bcrypt_cost;
};
// bcrypt cost 16 is 16 times Django's default of 12.
constexpr WorkBounds kStrict{kMaxPbkdf2Iterations, kMaxArgon2MemoryKiB,
                             kMaxArgon2TimeCost,   kMaxArgon2Parallelism,
                             kMaxArgon2Work,       16};
constexpr WorkBounds kSyntax{UINT32_MAX, UINT32_MAX, UINT32_MAX,
                             0xFFFFFF,   UINT64_MAX, 31};

// bcrypt only reads the first 72 bytes of its input, and Python's bcrypt 3.x
// (Django's) silently ignores the rest. libxcrypt instead refuses inputs over
// 512 bytes, so the cut is made here.
constexpr std::size_t kBcryptMaxInput = 72;

// --- text fields -----------------------------------------------------------

std::vector<std::string_view> split_fields(std::string_view text, char sep)
{
    std::vector<std::string_view> fields;
    for (;;) {
        const std::size_t end = text.find(sep);
        fields.push_back(text.substr(0, end));
        if (end == std::string_view::npos) {
            return fields;
        }
        text.remove_prefix(end + 1);
    }
}

// Django writes numbers with "%d", and compares the whole re-encoded string,
// so only canonical decimal can ever match: digits only, no sign, no
// leading zero.
std::optional<std::uint64_t> parse_decimal(std::string_view text,
                                           std::uint64_t min, std::uint64_t max)
{
    // 19 digits always fit in 64 bits, so the loop cannot overflow.
    if (text.empty() || text.size() > 19 ||
        (text.size() > 1 && text.front() == '0')) {
        return std::nullopt;
    }
    std::uint64_t value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (value < min || value > max) {
        return std::nullopt;
    }
    return value;
}

// Returns the text after `prefix`, if `text` starts with it.
std::optional<std::string_view> strip_prefix(std::string_view text,
                                             std::string_view prefix)
{
    if (text.substr(0, prefix.size()) != prefix) {
        return std::nullopt;
    }
    return text.substr(prefix.size());
}

// --- base64 ----------------------------------------------------------------

enum class Base64Padding { required, forbidden };

// Strict standard base64. Django's PBKDF2 hash is padded; argon2's salt and
// hash are not (libargon2 writes them so). Only the one canonical spelling of
// a byte string decodes (no stray characters, exact padding, unused bits
// zero), so comparing decoded bytes is as strict as Django comparing the
// encoded strings.
std::optional<Bytes> decode_base64(std::string_view text, Base64Padding padding)
{
    std::string_view body = text;
    while (!body.empty() && body.back() == '=') {
        body.remove_suffix(1);
    }
    const std::size_t pad = text.size() - body.size();
    const std::size_t expected_pad = (4 - body.size() % 4) % 4;
    if (body.size() % 4 == 1) {
        return std::nullopt;
    }
    if (padding == Base64Padding::required ? pad != expected_pad : pad != 0) {
        return std::nullopt;
    }

    Bytes out;
    out.reserve(body.size() * 3 / 4);
    std::uint32_t acc = 0;
    unsigned bits = 0;
    for (const char c : body) {
        const int value = base64_digit_value(c);
        if (value < 0) {
            return std::nullopt;
        }
        acc = (acc << 6) | static_cast<std::uint32_t>(value);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<unsigned char>(acc >> bits));
        }
        acc &= (1U << bits) - 1;
    }
    if (acc != 0) {
        return std::nullopt;
    }
    return out;
}

std::string encode_base64(const Bytes &bytes)
{
    // EVP_EncodeBlock writes 4 characters per 3 bytes, padded, and a NUL.
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int written =
        EVP_EncodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                        bytes.data(), static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(written));
    return out;
}

// --- primitives ------------------------------------------------------------

// Characters drawn uniformly from kRandomStringChars, as Django's
// get_random_string(). A random byte is used only below 248, the largest
// multiple of 62 under 256, so that `byte % 62` is unbiased; other bytes
// are skipped.
std::string random_string(std::size_t length)
{
    constexpr unsigned kAlphabet = kRandomStringChars.size();
    constexpr unsigned kAcceptBelow = 256 - 256 % kAlphabet;
    std::string out;
    out.reserve(length);
    std::array<unsigned char, 64> pool{};
    while (out.size() < length) {
        if (RAND_bytes(pool.data(), static_cast<int>(pool.size())) != 1) {
            throw std::runtime_error("OpenSSL RAND_bytes failed");
        }
        for (const unsigned char byte : pool) {
            if (out.size() == length) {
                break;
            }
            if (byte < kAcceptBelow) {
                out.push_back(kRandomStringChars[byte % kAlphabet]);
            }
        }
    }
    OPENSSL_cleanse(pool.data(), pool.size());
    return out;
}

enum class Pbkdf2Digest { sha256, sha1 };

const EVP_MD *evp_digest(Pbkdf2Digest digest)
{
    return digest == Pbkdf2Digest::sha256 ? EVP_sha256() : EVP_sha1();
}

// Django's pbkdf2(): the derived key is as long as the digest.
std::optional<Bytes> derive_pbkdf2(std::string_view raw, std::string_view salt,
                                   std::uint64_t iterations,
                                   Pbkdf2Digest digest)
{
    const EVP_MD *md = evp_digest(digest);
    if (raw.size() > INT_MAX || salt.size() > INT_MAX || iterations < 1 ||
        iterations > INT_MAX) {
        return std::nullopt;
    }
    Bytes key(static_cast<std::size_t>(EVP_MD_get_size(md)));
    if (PKCS5_PBKDF2_HMAC(raw.data(), static_cast<int>(raw.size()),
                          reinterpret_cast<const unsigned char *>(salt.data()),
                          static_cast<int>(salt.size()),
                          static_cast<int>(iterations), md,
                          static_cast<int>(key.size()), key.data()) != 1) {
        return std::nullopt;
    }
    return key;
}

bool equal_constant_time(const Bytes &a, const Bytes &b)
{
    // The lengths come from the stored encoding, not from the password, so
    // comparing them first leaks nothing secret.
    return a.size() == b.size() &&
           CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// Django's BCryptSHA256PasswordHasher feeds bcrypt the lowercase hex SHA-256
// of the password. This is deliberately not the token digest of src/core:
// that one may change with the token scheme, this one is fixed by Django.
std::optional<std::string> sha256_hex(std::string_view raw)
{
    constexpr std::string_view kHex = "0123456789abcdef";
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    if (EVP_Digest(raw.data(), raw.size(), digest.data(), &length, EVP_sha256(),
                   nullptr) != 1) {
        return std::nullopt;
    }
    std::string hex;
    hex.reserve(std::size_t{2} * length);
    for (unsigned int i = 0; i < length; i++) {
        hex.push_back(kHex[digest[i] >> 4]);
        hex.push_back(kHex[digest[i] & 0x0f]);
    }
    return hex;
}

// --- the encodings Django writes -------------------------------------------

// "pbkdf2_sha256$<iterations>$<salt>$<base64 of the derived key>"
struct Pbkdf2Encoding {
    Pbkdf2Digest digest = Pbkdf2Digest::sha256;
    std::uint64_t iterations = 0;
    std::string_view salt;
    Bytes hash;
};

// "argon2$<variety>$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>", salt and
// hash unpadded base64. Hashes from argon2-cffi before 16.0 omit "v=..$",
// which means version 1.0 (0x10), as libargon2 reads it.
struct Argon2Encoding {
    argon2_type type = Argon2_id;
    std::uint32_t version = ARGON2_VERSION_13;
    std::uint32_t memory_kib = 0;
    std::uint32_t passes = 0;
    std::uint32_t lanes = 0;
    Bytes salt;
    Bytes hash;
};

// "bcrypt_sha256$$2b$12$<22 salt + 31 hash characters>", or the same with
// "bcrypt$" (Django's legacy hasher, which does not pre-hash).
struct BcryptEncoding {
    bool sha256_prehash = true;
    std::string_view crypt_hash; // "$2b$12$...", bcrypt's own string
};

using Encoding = std::variant<Pbkdf2Encoding, Argon2Encoding, BcryptEncoding>;

std::optional<Pbkdf2Encoding>
parse_pbkdf2(const std::vector<std::string_view> &fields, Pbkdf2Digest digest,
             const WorkBounds &bounds)
{
    if (fields.size() != 4) {
        return std::nullopt;
    }
    Pbkdf2Encoding parsed;
    parsed.digest = digest;
    const auto iterations =
        parse_decimal(fields[1], 1, bounds.pbkdf2_iterations);
    if (!iterations || fields[2].empty()) {
        return std::nullopt;
    }
    parsed.iterations = *iterations;
    parsed.salt = fields[2];
    auto hash = decode_base64(fields[3], Base64Padding::required);
    const auto key_size =
        static_cast<std::size_t>(EVP_MD_get_size(evp_digest(digest)));
    if (!hash || hash->size() != key_size) {
        return std::nullopt;
    }
    parsed.hash = std::move(*hash);
    return parsed;
}

std::optional<argon2_type> parse_argon2_variety(std::string_view text)
{
    if (text == "argon2id") {
        return Argon2_id;
    }
    if (text == "argon2i") {
        return Argon2_i;
    }
    if (text == "argon2d") {
        return Argon2_d;
    }
    return std::nullopt;
}

std::optional<std::uint32_t> parse_argon2_version(std::string_view text)
{
    const auto digits = strip_prefix(text, "v=");
    if (!digits) {
        return std::nullopt;
    }
    const auto version =
        parse_decimal(*digits, ARGON2_VERSION_10, ARGON2_VERSION_13);
    if (!version ||
        (*version != ARGON2_VERSION_10 && *version != ARGON2_VERSION_13)) {
        return std::nullopt;
    }
    return static_cast<std::uint32_t>(*version);
}

// One "<name>=<decimal>" item of the parameter list.
std::optional<std::uint32_t> parse_argon2_param(std::string_view text,
                                                std::string_view name,
                                                std::uint64_t min,
                                                std::uint64_t max)
{
    const auto digits = strip_prefix(text, name);
    if (!digits) {
        return std::nullopt;
    }
    const auto value = parse_decimal(*digits, min, max);
    if (!value) {
        return std::nullopt;
    }
    return static_cast<std::uint32_t>(*value);
}

// "m=..,t=..,p=.." in exactly this order, as libargon2 writes and reads it.
bool parse_argon2_params(std::string_view text, Argon2Encoding &parsed,
                         const WorkBounds &bounds)
{
    const auto items = split_fields(text, ',');
    if (items.size() != 3) {
        return false;
    }
    const auto lanes =
        parse_argon2_param(items[2], "p=", 1, bounds.argon2_lanes);
    // libargon2 wants at least 8 KiB per lane; it would refuse less anyway.
    const auto memory = parse_argon2_param(
        items[0], "m=", lanes ? 8 * std::uint64_t{*lanes} : 8,
        bounds.argon2_memory_kib);
    const auto passes =
        parse_argon2_param(items[1], "t=", 1, bounds.argon2_passes);
    if (!memory || !passes || !lanes ||
        std::uint64_t{*memory} * *passes > bounds.argon2_work) {
        return false;
    }
    parsed.memory_kib = *memory;
    parsed.passes = *passes;
    parsed.lanes = *lanes;
    return true;
}

std::optional<Argon2Encoding>
parse_argon2(const std::vector<std::string_view> &fields,
             const WorkBounds &bounds)
{
    // With the version field: argon2, variety, v=, params, salt, hash.
    const bool has_version = fields.size() == 6;
    if (!has_version && fields.size() != 5) {
        return std::nullopt;
    }
    Argon2Encoding parsed;
    const auto type = parse_argon2_variety(fields[1]);
    if (!type) {
        return std::nullopt;
    }
    parsed.type = *type;
    parsed.version = ARGON2_VERSION_10;
    if (has_version) {
        const auto version = parse_argon2_version(fields[2]);
        if (!version) {
            return std::nullopt;
        }
        parsed.version = *version;
    }
    const std::size_t params_at = has_version ? 3 : 2;
    if (!parse_argon2_params(fields[params_at], parsed, bounds)) {
        return std::nullopt;
    }
    auto salt = decode_base64(fields[params_at + 1], Base64Padding::forbidden);
    auto hash = decode_base64(fields[params_at + 2], Base64Padding::forbidden);
    if (!salt || salt->size() < ARGON2_MIN_SALT_LENGTH || !hash ||
        hash->size() < ARGON2_MIN_OUTLEN) {
        return std::nullopt;
    }
    parsed.salt = std::move(*salt);
    parsed.hash = std::move(*hash);
    return parsed;
}

bool is_bcrypt_alphabet(char c)
{
    return c == '.' || c == '/' || (c >= 'A' && c <= 'Z') ||
           (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// bcrypt writes its cost as exactly two digits, "04" to "31".
std::optional<unsigned> parse_bcrypt_cost(std::string_view text,
                                          unsigned max_cost)
{
    constexpr unsigned kMinBcryptCost = 4;
    if (text.size() != 2 || text[0] < '0' || text[0] > '9' || text[1] < '0' ||
        text[1] > '9') {
        return std::nullopt;
    }
    const auto cost =
        static_cast<unsigned>((text[0] - '0') * 10 + (text[1] - '0'));
    if (cost < kMinBcryptCost || cost > max_cost) {
        return std::nullopt;
    }
    return cost;
}

// Django splits "bcrypt_sha256$$2b$12$..." into the algorithm and bcrypt's
// own string "$2b$12$...", whose fields are the variant, a two-digit cost,
// and 53 characters of salt and hash.
std::optional<BcryptEncoding>
parse_bcrypt(std::string_view encoded,
             const std::vector<std::string_view> &fields, bool sha256_prehash,
             const WorkBounds &bounds)
{
    constexpr std::size_t kSaltAndHashLength = 53;
    if (fields.size() != 5 || !fields[1].empty()) {
        return std::nullopt;
    }
    // 2a and 2y are the same algorithm as 2b for inputs of 72 bytes or
    // fewer, which is all bcrypt ever reads here.
    const std::string_view variant = fields[2];
    if (variant != "2b" && variant != "2a" && variant != "2y") {
        return std::nullopt;
    }
    if (!parse_bcrypt_cost(fields[3], bounds.bcrypt_cost)) {
        return std::nullopt;
    }
    const std::string_view salt_and_hash = fields[4];
    if (salt_and_hash.size() != kSaltAndHashLength) {
        return std::nullopt;
    }
    if (!std::all_of(salt_and_hash.begin(), salt_and_hash.end(),
                     is_bcrypt_alphabet)) {
        return std::nullopt;
    }
    BcryptEncoding parsed;
    parsed.sha256_prehash = sha256_prehash;
    parsed.crypt_hash = encoded.substr(fields[0].size() + 1);
    return parsed;
}

// Identifies the hasher by the text before the first "$", as Django's
// identify_hasher(), then parses every field. Anything that is not exactly
// what Django could have written yields nothing, before any costly work.
std::optional<Encoding> parse_encoding(std::string_view encoded,
                                       const WorkBounds &bounds = kStrict)
{
    if (encoded.empty() || encoded.size() > kMaxEncodedLength ||
        encoded.front() == kUnusablePrefix) {
        return std::nullopt;
    }
    const auto fields = split_fields(encoded, '$');
    const std::string_view algorithm = fields.front();
    if (algorithm == kPbkdf2Sha256) {
        return parse_pbkdf2(fields, Pbkdf2Digest::sha256, bounds);
    }
    if (algorithm == kPbkdf2Sha1) {
        return parse_pbkdf2(fields, Pbkdf2Digest::sha1, bounds);
    }
    if (algorithm == kArgon2) {
        return parse_argon2(fields, bounds);
    }
    if (algorithm == kBcryptSha256) {
        return parse_bcrypt(encoded, fields, true, bounds);
    }
    if (algorithm == kBcrypt) {
        return parse_bcrypt(encoded, fields, false, bounds);
    }
    return std::nullopt;
}

// --- checking --------------------------------------------------------------

bool matches(std::string_view raw, const Pbkdf2Encoding &stored)
{
    const auto key =
        derive_pbkdf2(raw, stored.salt, stored.iterations, stored.digest);
    return key && equal_constant_time(*key, stored.hash);
}

// argon2 with the stored lanes but one thread: argon2_hash() would start
// one thread per lane (64 for a hostile hash), on top of the daemon's own
// bound on concurrent hashes. The result is the same either way.
int argon2_one_thread(const Argon2Encoding &params, std::string_view raw,
                      Bytes &out)
{
    Bytes salt = params.salt;
    argon2_context context{};
    context.out = out.data();
    context.outlen = static_cast<std::uint32_t>(out.size());
    // libargon2 takes the password as non-const for its optional wiping,
    // which is off (flags below).
    context.pwd =
        reinterpret_cast<std::uint8_t *>(const_cast<char *>(raw.data()));
    context.pwdlen = static_cast<std::uint32_t>(raw.size());
    context.salt = salt.data();
    context.saltlen = static_cast<std::uint32_t>(salt.size());
    context.t_cost = params.passes;
    context.m_cost = params.memory_kib;
    context.lanes = params.lanes;
    context.threads = 1;
    context.version = params.version;
    context.flags = ARGON2_DEFAULT_FLAGS;
    return argon2_ctx(&context, params.type);
}

bool matches(std::string_view raw, const Argon2Encoding &stored)
{
    if (raw.size() > UINT32_MAX) {
        return false;
    }
    // Raw hashing with the stored parameters rather than argon2_verify(), so
    // that the parameters are the ones bounded above and not whatever
    // libargon2's own decoder accepts.
    Bytes computed(stored.hash.size());
    const int rc = argon2_one_thread(stored, raw, computed);
    return rc == ARGON2_OK && equal_constant_time(computed, stored.hash);
}

// bcrypt as Python's bcrypt.hashpw() runs it for Django: the stored string
// is the setting (libxcrypt reads the variant, cost and salt from its start)
// and the result must reproduce it exactly.
bool matches(std::string_view raw, const BcryptEncoding &stored)
{
    std::string phrase;
    if (stored.sha256_prehash) {
        auto hex = sha256_hex(raw);
        if (!hex) {
            return false;
        }
        phrase = std::move(*hex);
    } else {
        // Python's bcrypt refuses NUL bytes, so Django never stored a hash
        // of such a password; a C string could not carry it anyway.
        if (raw.find('\0') != std::string_view::npos) {
            return false;
        }
        phrase.assign(raw.substr(0, kBcryptMaxInput));
    }
    const std::string setting(stored.crypt_hash);

    // crypt_data is about 32 KiB: too large for a daemon thread's stack.
    // make_unique value-initialises it, which is the zeroing crypt_rn needs.
    auto scratch = std::make_unique<crypt_data>();
    const char *computed = crypt_rn(phrase.c_str(), setting.c_str(),
                                    scratch.get(), sizeof(crypt_data));
    OPENSSL_cleanse(phrase.data(), phrase.size());
    if (computed == nullptr || computed[0] == '*') {
        return false;
    }
    const std::string_view result(computed);
    return result.size() == setting.size() &&
           CRYPTO_memcmp(result.data(), setting.data(), setting.size()) == 0;
}

bool matches(std::string_view raw, const Encoding &stored)
{
    return std::visit(
        [raw](const auto &encoding) { return matches(raw, encoding); }, stored);
}

bool is_default_hasher(const Encoding &stored, const HasherPolicy &policy)
{
    if (policy.hasher == Hasher::argon2id) {
        const auto *argon2 = std::get_if<Argon2Encoding>(&stored);
        return argon2 != nullptr && argon2->type == Argon2_id;
    }
    const auto *pbkdf2 = std::get_if<Pbkdf2Encoding>(&stored);
    return pbkdf2 != nullptr && pbkdf2->digest == Pbkdf2Digest::sha256;
}

// Django's rule, upwards only: another hasher always needs a re-hash; the
// policy's own one when its work factor is below the policy's or its salt
// has less than 128 bits of entropy. Django re-hashes on any difference,
// which silently weakens stored hashes when the setting is lowered; here a
// hash stronger than the policy stays as it is.
bool needs_rehash(const Encoding &stored, const HasherPolicy &policy)
{
    if (!is_default_hasher(stored, policy)) {
        return true;
    }
    if (policy.hasher == Hasher::argon2id) {
        const auto &argon2 = std::get<Argon2Encoding>(stored);
        return argon2.version < ARGON2_VERSION_13 ||
               argon2.memory_kib < policy.argon2_memory_kib ||
               argon2.passes < policy.argon2_time_cost ||
               argon2.salt.size() < kSaltLength;
    }
    const auto &pbkdf2 = std::get<Pbkdf2Encoding>(stored);
    return pbkdf2.iterations < policy.pbkdf2_iterations ||
           pbkdf2.salt.size() < kSaltLength;
}

unsigned checked_iterations(const HasherPolicy &policy)
{
    check_policy(policy);
    return policy.pbkdf2_iterations;
}

// Django's PBKDF2PasswordHasher.harden_runtime(): after a wrong password
// against an older, cheaper hash, run the iterations it lacks, so that the
// answer takes as long as with the current default.
void harden_runtime(std::string_view raw, const Pbkdf2Encoding &stored,
                    unsigned iterations)
{
    if (stored.iterations < iterations) {
        (void)derive_pbkdf2(raw, stored.salt, iterations - stored.iterations,
                            stored.digest);
    }
}

std::string make_argon2id(std::string_view raw, const HasherPolicy &policy)
{
    constexpr std::size_t kArgon2HashLength = 32; // argon2-cffi's default
    const std::string salt = random_string(kSaltLength);
    Argon2Encoding params;
    params.type = Argon2_id;
    params.version = ARGON2_VERSION_13;
    params.memory_kib = policy.argon2_memory_kib;
    params.passes = policy.argon2_time_cost;
    params.lanes = policy.argon2_parallelism;
    params.salt.assign(salt.begin(), salt.end());
    Bytes hash(kArgon2HashLength);
    if (raw.size() > UINT32_MAX ||
        argon2_one_thread(params, raw, hash) != ARGON2_OK) {
        throw std::runtime_error("argon2 failed");
    }
    // argon2-cffi's encoding: unpadded base64; Django adds "argon2".
    auto unpadded = [](const Bytes &bytes) {
        std::string text = encode_base64(bytes);
        while (!text.empty() && text.back() == '=') {
            text.pop_back();
        }
        return text;
    };
    return std::string(kArgon2) +
           "$argon2id$v=19$m=" + std::to_string(params.memory_kib) +
           ",t=" + std::to_string(params.passes) +
           ",p=" + std::to_string(params.lanes) + "$" + unpadded(params.salt) +
           "$" + unpadded(hash);
}

} // namespace

void check_policy(const HasherPolicy &policy)
{
    const unsigned floor =
        policy.allow_insecure_iterations ? 1 : kMinPbkdf2Iterations;
    if (policy.pbkdf2_iterations < floor ||
        policy.pbkdf2_iterations > kMaxPbkdf2Iterations) {
        throw std::invalid_argument("pbkdf2 iterations must be between " +
                                    std::to_string(floor) + " and " +
                                    std::to_string(kMaxPbkdf2Iterations));
    }
    const unsigned lanes = policy.argon2_parallelism;
    if (lanes < 1 || lanes > kMaxArgon2Parallelism ||
        policy.argon2_time_cost < 1 ||
        policy.argon2_time_cost > kMaxArgon2TimeCost ||
        policy.argon2_memory_kib < 8 * lanes ||
        policy.argon2_memory_kib > kMaxArgon2MemoryKiB ||
        std::uint64_t{policy.argon2_memory_kib} * policy.argon2_time_cost >
            kMaxArgon2Work) {
        throw std::invalid_argument("argon2 parameters outside the caps");
    }
}

std::string make_password(std::string_view raw, const HasherPolicy &policy)
{
    const unsigned iterations = checked_iterations(policy);
    if (policy.hasher == Hasher::argon2id) {
        return make_argon2id(raw, policy);
    }
    const std::string salt = random_string(kSaltLength);
    const auto key = derive_pbkdf2(raw, salt, iterations, Pbkdf2Digest::sha256);
    if (!key) {
        throw std::runtime_error("PBKDF2 failed");
    }
    std::string encoded(kPbkdf2Sha256);
    encoded += '$';
    encoded += std::to_string(iterations);
    encoded += '$';
    encoded += salt;
    encoded += '$';
    encoded += encode_base64(*key);
    return encoded;
}

std::string make_unusable_password()
{
    return kUnusablePrefix + random_string(kUnusableSuffixLength);
}

bool check_password(std::string_view raw, std::string_view encoded)
{
    const auto stored = parse_encoding(encoded);
    return stored && matches(raw, *stored);
}

bool must_update(std::string_view encoded, const HasherPolicy &policy)
{
    checked_iterations(policy);
    const auto stored = parse_encoding(encoded);
    return stored && needs_rehash(*stored, policy);
}

PasswordFormat classify_password(std::string_view encoded)
{
    if (encoded.empty()) {
        return PasswordFormat::empty;
    }
    if (encoded.front() == kUnusablePrefix) {
        return PasswordFormat::unusable;
    }
    if (parse_encoding(encoded)) {
        return PasswordFormat::usable;
    }
    if (encoded.size() <= kMaxEncodedLength &&
        parse_encoding(encoded, kSyntax)) {
        return PasswordFormat::over_work_bounds;
    }
    const std::string_view algorithm = encoded.substr(0, encoded.find('$'));
    if (algorithm.size() == encoded.size()) {
        return PasswordFormat::unknown_format;
    }
    for (const std::string_view name :
         {kPbkdf2Sha256, kPbkdf2Sha1, kArgon2, kBcryptSha256, kBcrypt}) {
        if (algorithm == name) {
            return PasswordFormat::malformed;
        }
    }
    // django.contrib.auth.hashers' other algorithm names.
    for (const std::string_view name :
         {"scrypt", "md5", "sha1", "unsalted_md5", "unsalted_sha1", "crypt"}) {
        if (algorithm == name) {
            return PasswordFormat::unsupported;
        }
    }
    return PasswordFormat::unknown_format;
}

const char *describe(PasswordFormat format)
{
    switch (format) {
    case PasswordFormat::usable:
        return "usable";
    case PasswordFormat::unusable:
        return "unusable password";
    case PasswordFormat::empty:
        return "empty password";
    case PasswordFormat::over_work_bounds:
        return "password hash over the work caps";
    case PasswordFormat::unsupported:
        return "password hash of an unsupported Django hasher";
    case PasswordFormat::unknown_format:
        return "password in no known hash format";
    case PasswordFormat::malformed:
        return "malformed password hash";
    }
    return "unknown";
}

bool is_password_usable(std::string_view encoded)
{
    return encoded.empty() || encoded.front() != kUnusablePrefix;
}

void run_dummy_check(std::string_view raw, const HasherPolicy &policy)
{
    // The salt's value does not change the cost, only its length could, so a
    // fixed one of the default length spares the CSPRNG.
    constexpr std::string_view kDummySalt = "dummydummydummydummydu";
    static_assert(kDummySalt.size() == kSaltLength);
    const unsigned iterations = checked_iterations(policy);
    if (policy.hasher == Hasher::argon2id) {
        Argon2Encoding params;
        params.memory_kib = policy.argon2_memory_kib;
        params.passes = policy.argon2_time_cost;
        params.lanes = policy.argon2_parallelism;
        params.salt.assign(kDummySalt.begin(), kDummySalt.end());
        Bytes out(32);
        (void)argon2_one_thread(params, raw.substr(0, UINT32_MAX), out);
        return;
    }
    (void)derive_pbkdf2(raw, kDummySalt, iterations, Pbkdf2Digest::sha256);
}

PasswordVerdict verify_password(std::string_view raw, std::string_view encoded,
                                const HasherPolicy &policy)
{
    const unsigned iterations = checked_iterations(policy);
    const auto stored = parse_encoding(encoded);
    if (!stored) {
        run_dummy_check(raw, policy);
        return {};
    }
    PasswordVerdict verdict;
    verdict.matched = matches(raw, *stored);
    const bool rehash = needs_rehash(*stored, policy);
    // Legacy bcrypt matched on the first 72 bytes only: what was typed past
    // them is not the user's password, so it must not become it.
    const auto *bcrypt = std::get_if<BcryptEncoding>(&*stored);
    const bool truncated_match = bcrypt != nullptr && !bcrypt->sha256_prehash &&
                                 raw.size() > kBcryptMaxInput;
    verdict.must_update = verdict.matched && rehash && !truncated_match;
    // Like Django, only the default hasher is hardened: a user whose hash
    // uses another algorithm is told apart by timing anyway.
    if (!verdict.matched && rehash && is_default_hasher(*stored, policy) &&
        policy.hasher == Hasher::pbkdf2_sha256) {
        harden_runtime(raw, std::get<Pbkdf2Encoding>(*stored), iterations);
    }
    return verdict;
}

} // namespace authtoken::passwords
