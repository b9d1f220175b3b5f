// The module's reading of a token record: Redis's reply to
// `HMGET authtoken:token:<digest> uid user active expires`, parsed by
// hiredis's own reader (the one the module's connection uses), turned into
// a TokenRecordView the way RedisLink::on_reply() does, and judged by
// authtoken::judge_token_record() (src/core/token_record.*).
//
// The first input byte picks the mode:
//   - even: the rest is raw bytes on the wire, fed to hiredis's reader in
//     pieces (sizes from the input), as a socket would deliver them;
//   - odd: the rest is a well-formed 4-element reply whose elements (nil or
//     a bulk string of any bytes) come from the input, so the judging is
//     reached for every record shape, not only the ones the raw mode finds.
//
// Invariants:
//   - any byte sequence is either an incomplete reply, a protocol error
//     hiredis reports, or a reply that the module reads as a record or
//     refuses ("unexpected reply to HMGET"); nothing crashes or leaks;
//   - the verdict equals a reference judge written from redis/SCHEMA.md and
//     token_record.h, not from token_record.cpp: all fields nil -> unknown;
//     uid and expires (when present) decimal numbers of 1..18 digits, user
//     a usable user name (non-empty, no control byte or DEL, no leading or
//     trailing space), active exactly "0" or "1", else malformed; an expires
//     other than 0 at or before `now` -> expired; active "0" -> inactive;
//     otherwise valid;
//   - never valid when active is not exactly "1" (fail closed);
//   - time only moves a record towards expiry: expired now stays expired
//     later, valid now was valid (or, for expires = 0, is valid) earlier.
#include "core/token_record.h"
#include "fuzz_support.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace
{

using authtoken::TokenRecordView;
using authtoken::TokenVerdict;

const char *name(TokenVerdict v)
{
    switch (v) {
    case TokenVerdict::valid:
        return "valid";
    case TokenVerdict::unknown:
        return "unknown";
    case TokenVerdict::expired:
        return "expired";
    case TokenVerdict::inactive:
        return "inactive";
    case TokenVerdict::malformed:
        return "malformed";
    }
    return "?";
}

// A decimal number as SCHEMA.md writes them: ASCII digits only, at most 18
// of them (so that it fits an int64 whatever they are). Computed digit by
// digit in unsigned arithmetic, apart from the production parser.
std::optional<unsigned long long> reference_decimal(std::string_view s)
{
    if (s.empty() || s.size() > 18) {
        return std::nullopt;
    }
    unsigned long long v = 0;
    for (unsigned char c : s) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        v = v * 10 + (c - '0');
    }
    return v;
}

// A user name that may become $auth_token_user (token_record.h): not
// empty, not starting or ending with a space, and no C0 control byte or
// DEL anywhere; bytes from 0x80 up are allowed.
bool reference_user_name(std::string_view s)
{
    if (s.empty() || s.front() == ' ' || s.back() == ' ') {
        return false;
    }
    return std::none_of(s.begin(), s.end(), [](char ch) {
        auto c = static_cast<unsigned char>(ch);
        return c <= 0x1f || c == 0x7f;
    });
}

TokenVerdict reference_judge(const TokenRecordView &r, std::int64_t now)
{
    if (!r.uid && !r.user && !r.active && !r.expires) {
        return TokenVerdict::unknown;
    }
    bool readable = r.uid && reference_decimal(*r.uid) && r.user &&
                    reference_user_name(*r.user) && r.active &&
                    (*r.active == "0" || *r.active == "1") &&
                    (!r.expires || reference_decimal(*r.expires));
    if (!readable) {
        return TokenVerdict::malformed;
    }
    unsigned long long expires = r.expires ? *reference_decimal(*r.expires) : 0;
    if (expires != 0 && now >= 0 &&
        expires <= static_cast<unsigned long long>(now)) {
        return TokenVerdict::expired;
    }
    return *r.active == "1" ? TokenVerdict::valid : TokenVerdict::inactive;
}

std::string show(const TokenRecordView &r, std::int64_t now)
{
    auto field = [](const std::optional<std::string_view> &f) {
        return f ? fuzz::repr(*f) : std::string("nil");
    };
    return "uid=" + field(r.uid) + " user=" + field(r.user) +
           " active=" + field(r.active) + " expires=" + field(r.expires) +
           " now=" + std::to_string(now);
}

void check_record(const TokenRecordView &record, std::int64_t now)
{
    authtoken::TokenJudgement judged =
        authtoken::judge_token_record(record, now);
    TokenVerdict got = judged.verdict;
    TokenVerdict want = reference_judge(record, now);
    FUZZ_CHECK(got == want, show(record, now) + ": got " + name(got) +
                                ", expected " + name(want));
    // The expiry comes with the verdict (nobody parses it again): the
    // record's for a token that names a user, 0 for the others.
    unsigned long long want_expires =
        authtoken::names_user(got) && record.expires
            ? *reference_decimal(*record.expires)
            : 0;
    FUZZ_CHECK(static_cast<unsigned long long>(judged.expires) == want_expires,
               show(record, now) + ": expires " +
                   std::to_string(judged.expires) + ", expected " +
                   std::to_string(want_expires));
    if (got == TokenVerdict::valid) {
        FUZZ_CHECK(record.active && *record.active == "1",
                   show(record, now) + ": valid without active=1");
        std::int64_t earlier = now > 0 ? now / 2 : now;
        FUZZ_CHECK(authtoken::judge_token_record(record, earlier).verdict ==
                       TokenVerdict::valid,
                   show(record, now) + ": valid now but not earlier");
    }
    if (got == TokenVerdict::expired && now < INT64_MAX / 2) {
        FUZZ_CHECK(authtoken::judge_token_record(record, now * 2 + 1).verdict ==
                       TokenVerdict::expired,
                   show(record, now) + ": expired now but not later");
    }
}

// RedisLink::on_reply()'s reading of an HMGET reply (src/module/
// ngx_http_auth_token_redis.cpp): an array of exactly 4 elements, each a
// bulk string or nil; anything else is an error, never a record.
std::optional<TokenRecordView> record_of(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        return std::nullopt;
    }
    TokenRecordView record;
    std::optional<std::string_view> *fields[] = {
        &record.uid, &record.user, &record.active, &record.expires};
    for (std::size_t i = 0; i < 4; i++) {
        const redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_STRING) {
            *fields[i] = std::string_view(e->str, e->len);
        } else if (e->type != REDIS_REPLY_NIL) {
            return std::nullopt;
        }
    }
    return record;
}

struct ReaderFree {
    void operator()(redisReader *r) const
    {
        redisReaderFree(r);
    }
};
struct ReplyFree {
    void operator()(void *r) const
    {
        freeReplyObject(r);
    }
};

// Feeds `wire` to a fresh hiredis reader in pieces and judges every
// complete reply, until the reader reports a protocol error.
void judge_wire(const std::string &wire, fuzz::Input &sizes, std::int64_t now)
{
    std::unique_ptr<redisReader, ReaderFree> reader(redisReaderCreate());
    std::size_t at = 0;
    while (at < wire.size()) {
        std::size_t n = 1 + sizes.byte() % 64;
        if (n > wire.size() - at) {
            n = wire.size() - at;
        }
        if (redisReaderFeed(reader.get(), wire.data() + at, n) != REDIS_OK) {
            return;
        }
        at += n;
        for (;;) {
            void *raw = nullptr;
            if (redisReaderGetReply(reader.get(), &raw) != REDIS_OK) {
                FUZZ_CHECK(reader->err != 0, "an error without a reason");
                return; // a protocol error: the module drops the connection
            }
            if (raw == nullptr) {
                break; // incomplete: wait for more bytes
            }
            std::unique_ptr<void, ReplyFree> reply(raw);
            if (auto record = record_of(static_cast<redisReply *>(raw))) {
                check_record(*record, now);
            }
        }
    }
}

// A bulk string, or nil.
void append_element(std::string &wire, const std::optional<std::string> &v)
{
    if (!v) {
        wire += "$-1\r\n";
        return;
    }
    wire += "$" + std::to_string(v->size()) + "\r\n" + *v + "\r\n";
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data,
                                      std::size_t size)
{
    fuzz::Input in(data, size);
    bool structured = in.byte() & 1;
    // `now`: around today's Unix time, or anything (8 bytes) when the next
    // byte's top bit is set.
    std::int64_t now = 1795000000;
    std::uint8_t how = in.byte();
    if (how & 0x80) {
        std::uint64_t v = 0;
        for (int i = 0; i < 8; i++) {
            v = (v << 8) | in.byte();
        }
        now = static_cast<std::int64_t>(v);
    } else {
        now += static_cast<std::int64_t>(how) * 100000 - 6400000;
    }

    if (structured) {
        std::string wire = "*4\r\n";
        std::array<std::optional<std::string>, 4> values;
        std::uint8_t nils = in.byte();
        for (std::size_t i = 0; i < 4; i++) {
            if (!(nils & (1u << i))) {
                values[i] = in.until('\0');
            }
        }
        for (const auto &v : values) {
            append_element(wire, v);
        }
        fuzz::Input whole(reinterpret_cast<const std::uint8_t *>("\x40"), 1);
        judge_wire(wire, whole, now);
        return 0;
    }
    std::string sizes_and_wire = in.rest();
    // the first 8 bytes cut the wire into pieces, the rest is the wire
    std::string cuts = sizes_and_wire.substr(0, 8);
    std::string wire =
        sizes_and_wire.size() > 8 ? sizes_and_wire.substr(8) : "";
    // hiredis 0.14's reader believes the element and byte counts it is
    // sent ("*2000000000" makes it calloc 16 GB): a known limit of that
    // version (1.x has maxelements), outside what this target checks, and
    // the module talks only to its configured Redis. Counts stay small.
    // Any '*' or '$' (wherever hiredis might take it for a header, sign
    // and all) followed by 5 or more digits before the line ends: skipped.
    for (std::size_t i = 0; i < wire.size(); i++) {
        if (wire[i] != '*' && wire[i] != '$') {
            continue;
        }
        std::size_t digits = 0;
        for (std::size_t j = i + 1; j < wire.size() && wire[j] != '\r'; j++) {
            digits += wire[j] >= '0' && wire[j] <= '9';
        }
        if (digits >= 5) {
            return 0;
        }
    }
    fuzz::Input sizes(reinterpret_cast<const std::uint8_t *>(cuts.data()),
                      cuts.size());
    judge_wire(wire, sizes, now);
    return 0;
}
