#include "issuer/store/login_throttle.h"

#include "core/redis_keys.h"
#include "issuer/token_key.h"

#include <string>
#include <vector>

namespace authtoken
{

std::vector<LoginThrottle::Subject>
LoginThrottle::subjects(std::string_view username,
                        std::string_view address) const
{
    std::vector<Subject> out;
    auto add = [&](const char *kind, ThrottleRate rate, unsigned in_flight,
                   std::string_view scope, const std::string &subject) {
        if (!rate.enabled() && in_flight == 0) {
            return;
        }
        out.push_back(
            {kind, rate, in_flight, keys::throttle_key(scope, subject),
             keys::throttle_key(std::string(scope) + "-in-flight", subject)});
    };
    if (!address.empty()) {
        // An address is an IP literal or a prefix: it has no '|', so the
        // pair splits unambiguously at the first one.
        add("hard", settings_.per_user_address, 0, "user-addr",
            std::string(address) + "|" + std::string(username));
        add("hard", settings_.per_address, settings_.address_in_flight, "addr",
            std::string(address));
    }
    add("delay", settings_.per_user, settings_.user_in_flight, "user",
        std::string(username));
    return out;
}

ThrottleTicket LoginThrottle::reserve(RedisConnection &conn,
                                      std::string_view username,
                                      std::string_view address) const
{
    ThrottleTicket ticket;
    ticket.username = std::string(username);
    ticket.address = std::string(address);
    std::vector<Subject> list = subjects(username, address);
    if (list.empty()) {
        return ticket;
    }
    std::vector<std::string> keys, args;
    args.emplace_back("reserve");
    // Distinct members for attempts in the same millisecond.
    args.push_back(generate_token_key().substr(0, 12));
    args.push_back(std::to_string(settings_.in_flight_lifetime.count()));
    args.push_back(std::to_string(settings_.first_delay.count()));
    args.push_back(std::to_string(settings_.max_delay.count()));
    for (const Subject &s : list) {
        keys.push_back(s.window_key);
        keys.push_back(s.in_flight_key);
        args.emplace_back(s.kind);
        args.push_back(std::to_string(s.rate.requests));
        args.push_back(std::to_string(s.rate.seconds * 1000ULL));
        args.push_back(std::to_string(s.in_flight));
    }
    std::vector<std::string_view> key_views(keys.begin(), keys.end());
    std::vector<std::string_view> arg_views(args.begin(), args.end());
    Reply reply = scripts_.run(conn, "throttle", key_views, arg_views);
    ticket.wait_ms = reply_integer(reply_element(reply.get(), 0));
    ticket.delay_ms = reply_integer(reply_element(reply.get(), 1));
    ticket.member = reply_string(reply_element(reply.get(), 2));
    return ticket;
}

void LoginThrottle::finish(RedisConnection &conn, const ThrottleTicket &ticket,
                           bool failed) const
{
    if (ticket.member.empty()) {
        return;
    }
    std::vector<std::string> keys;
    for (const Subject &s : subjects(ticket.username, ticket.address)) {
        keys.push_back(s.window_key);
        keys.push_back(s.in_flight_key);
    }
    std::vector<std::string_view> key_views(keys.begin(), keys.end());
    scripts_.run(conn, "throttle", key_views,
                 {failed ? "fail" : "succeed", ticket.member});
}

} // namespace authtoken
