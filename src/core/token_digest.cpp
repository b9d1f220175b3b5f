#include "core/token_digest.h"

#include "core/digit_values.h"

#include <openssl/evp.h>

#include <stdexcept>

namespace authtoken
{

void TokenDigester::FreeMd::operator()(evp_md_st *md) const noexcept
{
    EVP_MD_free(md);
}

void TokenDigester::FreeCtx::operator()(evp_md_ctx_st *ctx) const noexcept
{
    EVP_MD_CTX_free(ctx);
}

TokenDigester::TokenDigester()
    : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx_(EVP_MD_CTX_new())
{
    if (!md_ || !ctx_) {
        throw std::runtime_error("OpenSSL has no SHA-256");
    }
}

bool TokenDigester::digest(std::string_view key, Sha256 &raw,
                           Sha256Hex &hex) noexcept
{
    unsigned int len = 0;
    if (EVP_DigestInit_ex(ctx_.get(), md_.get(), nullptr) != 1 ||
        EVP_DigestUpdate(ctx_.get(), key.data(), key.size()) != 1 ||
        EVP_DigestFinal_ex(ctx_.get(), raw.data(), &len) != 1 || len != 32) {
        return false;
    }
    digest_to_hex(raw, hex);
    return true;
}

bool TokenDigester::digest_hex(std::string_view key, Sha256Hex &out) noexcept
{
    Sha256 raw;
    return digest(key, raw, out);
}

void digest_to_hex(const Sha256 &raw, Sha256Hex &hex) noexcept
{
    static constexpr char digits[] = "0123456789abcdef";
    for (std::size_t i = 0; i < raw.size(); i++) {
        hex[2 * i] = digits[raw[i] >> 4];
        hex[2 * i + 1] = digits[raw[i] & 0x0f];
    }
}

bool digest_from_hex(std::string_view hex, Sha256 &raw) noexcept
{
    if (hex.size() != 2 * raw.size()) {
        return false;
    }
    for (std::size_t i = 0; i < raw.size(); i++) {
        int hi = hex_digit_value(hex[2 * i]);
        int lo = hex_digit_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        raw[i] = static_cast<unsigned char>(hi << 4 | lo);
    }
    return true;
}

Sha256Hex token_digest_hex(std::string_view key)
{
    TokenDigester digester;
    Sha256Hex out{};
    if (!digester.digest_hex(key, out)) {
        throw std::runtime_error("SHA-256 failed");
    }
    return out;
}

} // namespace authtoken
