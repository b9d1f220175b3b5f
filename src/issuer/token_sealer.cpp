#include "issuer/token_sealer.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <openssl/crypto.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

namespace authtoken
{
namespace
{

// Schema version 1's text form: "v1:" + hex(nonce || ciphertext || tag).
constexpr std::string_view kHexPrefix = "v1:";
// The binary forms' first byte (token_sealer.h).
constexpr unsigned char kRawKey = 0x01;
constexpr unsigned char kPackedHexKey = 0x02;
constexpr std::size_t kNonceSize = 12;
constexpr std::size_t kTagSize = 16;
constexpr std::size_t kGeneratedKeySize = 40; // DRF: hexlify(urandom(20))

struct FreeCipherCtx {
    void operator()(EVP_CIPHER_CTX *ctx) const noexcept
    {
        EVP_CIPHER_CTX_free(ctx);
    }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, FreeCipherCtx>;

// Closes a file descriptor when it goes out of scope.
class FileDescriptor
{
  public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    ~FileDescriptor()
    {
        if (fd_ >= 0) {
            close(fd_);
        }
    }
    FileDescriptor(const FileDescriptor &) = delete;
    FileDescriptor &operator=(const FileDescriptor &) = delete;
    int get() const
    {
        return fd_;
    }

  private:
    int fd_;
};

std::optional<std::vector<unsigned char>> from_hex(std::string_view text)
{
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        return -1;
    };
    if (text.size() % 2 != 0) {
        return std::nullopt;
    }
    std::vector<unsigned char> out;
    out.reserve(text.size() / 2);
    for (std::size_t i = 0; i < text.size(); i += 2) {
        int hi = nibble(text[i]);
        int lo = nibble(text[i + 1]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        out.push_back(static_cast<unsigned char>(hi * 16 + lo));
    }
    return out;
}

const unsigned char *bytes_of(std::string_view s)
{
    return reinterpret_cast<const unsigned char *>(s.data());
}

// True for the keys DRF and this issuer generate: 40 lowercase hex digits,
// which seal as the 20 bytes they spell.
bool is_generated_key(std::string_view key)
{
    return key.size() == kGeneratedKeySize &&
           std::all_of(key.begin(), key.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

std::string to_hex(const unsigned char *bytes, std::size_t size)
{
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(size * 2);
    for (std::size_t i = 0; i < size; i++) {
        out.push_back(hex[bytes[i] >> 4]);
        out.push_back(hex[bytes[i] & 0x0f]);
    }
    return out;
}

// AES-256-GCM of `plain` under `secret` with associated data `format`
// (when non-zero) then `digest_hex`: nonce || ciphertext || tag.
std::vector<unsigned char> gcm_seal(const unsigned char *secret,
                                    unsigned char format,
                                    std::string_view digest_hex,
                                    const std::vector<unsigned char> &plain)
{
    std::vector<unsigned char> out(kNonceSize + plain.size() + kTagSize);
    if (RAND_bytes(out.data(), kNonceSize) != 1) {
        throw std::runtime_error("OpenSSL RAND_bytes failed");
    }
    CipherCtx ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    if (!ctx ||
        EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, secret,
                           out.data()) != 1 ||
        (format != 0 &&
         EVP_EncryptUpdate(ctx.get(), nullptr, &len, &format, 1) != 1) ||
        EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes_of(digest_hex),
                          static_cast<int>(digest_hex.size())) != 1 ||
        EVP_EncryptUpdate(ctx.get(), out.data() + kNonceSize, &len,
                          plain.data(), static_cast<int>(plain.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), out.data() + kNonceSize + len, &len) !=
            1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize,
                            out.data() + kNonceSize + plain.size()) != 1) {
        throw std::runtime_error("AES-256-GCM sealing failed");
    }
    return out;
}

// The plaintext of nonce || ciphertext || tag, or nullopt when the tag
// does not verify (another secret, digest or format, or a flipped bit).
std::optional<std::vector<unsigned char>> gcm_open(const unsigned char *secret,
                                                   unsigned char format,
                                                   std::string_view digest_hex,
                                                   const unsigned char *raw,
                                                   std::size_t size)
{
    if (size < kNonceSize + kTagSize + 1) {
        return std::nullopt;
    }
    std::size_t text_size = size - kNonceSize - kTagSize;
    std::vector<unsigned char> plain(text_size);
    std::vector<unsigned char> tag(raw + size - kTagSize, raw + size);
    CipherCtx ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    if (!ctx ||
        EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, secret,
                           raw) != 1 ||
        (format != 0 &&
         EVP_DecryptUpdate(ctx.get(), nullptr, &len, &format, 1) != 1) ||
        EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes_of(digest_hex),
                          static_cast<int>(digest_hex.size())) != 1 ||
        EVP_DecryptUpdate(ctx.get(), plain.data(), &len, raw + kNonceSize,
                          static_cast<int>(text_size)) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize,
                            tag.data()) != 1) {
        return std::nullopt;
    }
    // The tag is checked here: a wrong secret, digest or any flipped bit
    // ends in failure, and the plaintext is thrown away.
    if (EVP_DecryptFinal_ex(ctx.get(), plain.data() + len, &len) != 1) {
        OPENSSL_cleanse(plain.data(), plain.size());
        return std::nullopt;
    }
    return plain;
}

} // namespace

SecretPage::SecretPage()
{
    const long page = sysconf(_SC_PAGESIZE);
    void *mem =
        mmap(nullptr, static_cast<std::size_t>(page), PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        throw std::runtime_error(std::string("cannot map the secret: ") +
                                 std::strerror(errno));
    }
    // Both are best effort on kernels or limits that refuse them; the
    // dump exclusion is the one that matters and has been in Linux since
    // 3.4.
    (void)madvise(mem, static_cast<std::size_t>(page), MADV_DONTDUMP);
    (void)mlock(mem, static_cast<std::size_t>(page));
    bytes_ = static_cast<unsigned char *>(mem);
}

SecretPage::~SecretPage()
{
    const long page = sysconf(_SC_PAGESIZE);
    OPENSSL_cleanse(bytes_, size());
    munlock(bytes_, static_cast<std::size_t>(page));
    munmap(bytes_, static_cast<std::size_t>(page));
}

std::unique_ptr<SecretPage> load_secret_file(const std::string &path)
{
    FileDescriptor fd(
        open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (fd.get() < 0) {
        if (errno == ELOOP) {
            throw std::runtime_error("secret file " + path +
                                     " is a symbolic link; refusing it "
                                     "(point the setting at the file itself)");
        }
        throw std::runtime_error("cannot open secret file " + path + ": " +
                                 std::strerror(errno) +
                                 " (create it with: authtokenctl "
                                 "init-secret " +
                                 path + ")");
    }
    struct stat st {
    };
    if (fstat(fd.get(), &st) != 0) {
        throw std::runtime_error("cannot stat secret file " + path);
    }
    if (!S_ISREG(st.st_mode)) {
        throw std::runtime_error("secret file " + path +
                                 " is not a regular file");
    }
    if (st.st_uid != geteuid()) {
        throw std::runtime_error("secret file " + path + " belongs to uid " +
                                 std::to_string(st.st_uid) +
                                 ", not to the user running (uid " +
                                 std::to_string(geteuid()) + "); chown it");
    }
    if ((st.st_mode & 077) != 0) {
        throw std::runtime_error("secret file " + path +
                                 " is readable by others; chmod 600 it");
    }
    if (st.st_size != 32) {
        throw std::runtime_error("secret file " + path +
                                 " must hold exactly 32 bytes");
    }
    auto secret = std::make_unique<SecretPage>();
    ssize_t n = read(fd.get(), secret->data(), SecretPage::size());
    if (n != static_cast<ssize_t>(SecretPage::size())) {
        throw std::runtime_error("cannot read secret file " + path);
    }
    return secret;
}

TokenSealer::TokenSealer(const SecretKey &secret)
    : secret_(std::make_unique<SecretPage>())
{
    std::copy(secret.begin(), secret.end(), secret_->data());
}

void create_secret_file(const std::string &path)
{
    SecretKey secret{};
    if (RAND_bytes(secret.data(), static_cast<int>(secret.size())) != 1) {
        throw std::runtime_error("OpenSSL RAND_bytes failed");
    }
    // O_EXCL: never replace an existing secret; 0600 from the start so the
    // bytes are never readable by others, not even for a moment.
    FileDescriptor fd(open(path.c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                           0600));
    if (fd.get() < 0) {
        throw std::runtime_error("cannot create secret file " + path + ": " +
                                 std::strerror(errno));
    }
    bool written = write(fd.get(), secret.data(), secret.size()) ==
                       static_cast<ssize_t>(secret.size()) &&
                   fsync(fd.get()) == 0;
    OPENSSL_cleanse(secret.data(), secret.size());
    if (!written) {
        throw std::runtime_error("cannot write secret file " + path);
    }
}

std::string TokenSealer::seal(std::string_view key,
                              std::string_view digest_hex) const
{
    std::vector<unsigned char> plain;
    unsigned char format = kRawKey;
    if (is_generated_key(key)) {
        format = kPackedHexKey;
        auto packed = from_hex(key);
        plain = std::move(*packed); // 40 hex digits always parse
    } else {
        plain.assign(bytes_of(key), bytes_of(key) + key.size());
    }
    // kRawKey keeps version 1's associated data (the digest alone), so
    // that a migrated value and a new one are sealed alike.
    std::vector<unsigned char> sealed =
        gcm_seal(secret_->data(), format == kPackedHexKey ? format : 0,
                 digest_hex, plain);
    OPENSSL_cleanse(plain.data(), plain.size());
    std::string out(1, static_cast<char>(format));
    out.append(reinterpret_cast<const char *>(sealed.data()), sealed.size());
    return out;
}

std::optional<std::string>
TokenSealer::unseal(std::string_view sealed, std::string_view digest_hex) const
{
    unsigned char format = kRawKey;
    std::optional<std::vector<unsigned char>> plain;
    if (sealed.substr(0, kHexPrefix.size()) == kHexPrefix) {
        // Version 1: the bytes of kRawKey's form, in hex.
        auto raw = from_hex(sealed.substr(kHexPrefix.size()));
        if (raw) {
            plain = gcm_open(secret_->data(), 0, digest_hex, raw->data(),
                             raw->size());
        }
    } else if (!sealed.empty()) {
        format = static_cast<unsigned char>(sealed[0]);
        if (format == kRawKey || format == kPackedHexKey) {
            plain =
                gcm_open(secret_->data(), format == kPackedHexKey ? format : 0,
                         digest_hex, bytes_of(sealed) + 1, sealed.size() - 1);
        }
    }
    if (!plain) {
        return std::nullopt;
    }
    std::optional<std::string> key;
    if (format != kPackedHexKey) {
        key.emplace(plain->begin(), plain->end());
    } else if (plain->size() == kGeneratedKeySize / 2) {
        key = to_hex(plain->data(), plain->size());
    }
    OPENSSL_cleanse(plain->data(), plain->size());
    return key;
}

} // namespace authtoken
