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

constexpr std::string_view kVersionPrefix = "v1:";
constexpr std::size_t kNonceSize = 12;
constexpr std::size_t kTagSize = 16;

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

std::string to_hex(const std::vector<unsigned char> &bytes)
{
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char b : bytes) {
        out.push_back(hex[b >> 4]);
        out.push_back(hex[b & 0x0f]);
    }
    return out;
}

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
    std::vector<unsigned char> out(kNonceSize + key.size() + kTagSize);
    if (RAND_bytes(out.data(), kNonceSize) != 1) {
        throw std::runtime_error("OpenSSL RAND_bytes failed");
    }
    CipherCtx ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    if (!ctx ||
        EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                           secret_->data(), out.data()) != 1 ||
        EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes_of(digest_hex),
                          static_cast<int>(digest_hex.size())) != 1 ||
        EVP_EncryptUpdate(ctx.get(), out.data() + kNonceSize, &len,
                          bytes_of(key), static_cast<int>(key.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), out.data() + kNonceSize + len, &len) !=
            1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize,
                            out.data() + kNonceSize + key.size()) != 1) {
        throw std::runtime_error("AES-256-GCM sealing failed");
    }
    return std::string(kVersionPrefix) + to_hex(out);
}

std::optional<std::string>
TokenSealer::unseal(std::string_view sealed, std::string_view digest_hex) const
{
    if (sealed.substr(0, kVersionPrefix.size()) != kVersionPrefix) {
        return std::nullopt;
    }
    auto raw = from_hex(sealed.substr(kVersionPrefix.size()));
    if (!raw || raw->size() < kNonceSize + kTagSize + 1) {
        return std::nullopt;
    }
    std::size_t text_size = raw->size() - kNonceSize - kTagSize;
    std::string key(text_size, '\0');
    std::vector<unsigned char> tag(raw->end() - kTagSize, raw->end());
    CipherCtx ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    if (!ctx ||
        EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                           secret_->data(), raw->data()) != 1 ||
        EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes_of(digest_hex),
                          static_cast<int>(digest_hex.size())) != 1 ||
        EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char *>(&key[0]),
                          &len, raw->data() + kNonceSize,
                          static_cast<int>(text_size)) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize,
                            tag.data()) != 1) {
        return std::nullopt;
    }
    // The tag is checked here: a wrong secret, digest or any flipped bit
    // ends in failure, and the plaintext is thrown away.
    if (EVP_DecryptFinal_ex(ctx.get(),
                            reinterpret_cast<unsigned char *>(&key[0]) + len,
                            &len) != 1) {
        return std::nullopt;
    }
    return key;
}

} // namespace authtoken
