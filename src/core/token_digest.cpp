#include "token_digest.h"

#include <openssl/evp.h>

#include <stdexcept>

namespace authtoken {

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

bool TokenDigester::digest_hex(std::string_view key, Sha256Hex &out) noexcept
{
    static constexpr char hex[] = "0123456789abcdef";
    unsigned char raw[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (EVP_DigestInit_ex(ctx_.get(), md_.get(), nullptr) != 1 ||
        EVP_DigestUpdate(ctx_.get(), key.data(), key.size()) != 1 ||
        EVP_DigestFinal_ex(ctx_.get(), raw, &len) != 1 || len != 32) {
        return false;
    }
    for (unsigned int i = 0; i < 32; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 0x0f];
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
