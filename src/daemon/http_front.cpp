#include "daemon/http_front.h"

#include "core/drf_messages.h"
#include "daemon/client_address.h"
#include "daemon/event_log.h"
#include "drf/json_renderer.h"

#include <atomic>
#include <cstdlib>

namespace authtoken
{
namespace
{

constexpr const char *kObtainPath = "/api-token-auth/";
constexpr const char *kAllow = "POST, OPTIONS";

std::string too_large_body(std::size_t limit)
{
    return render_drf_detail(drf::body_larger_than_detail(limit));
}

// The client's address (client_address.h). A trusted proxy that does not
// send the configured header is a configuration mistake that makes all its
// clients share one throttle: said once, as a warning.
std::string client_of(const HttpRequest &req, const IssuerSettings &settings)
{
    ClientAddress client = client_address(
        req.peer, settings.real_ip_header,
        settings.real_ip_header.empty() ? std::string()
                                        : req.header(settings.real_ip_header),
        settings.trusted_proxies);
    static std::atomic<bool> warned{false};
    if (client.header_missing && !warned.exchange(true)) {
        log::warn("a request from the trusted proxy " + client.address +
                  " has no address in the real_ip_header \"" +
                  settings.real_ip_header +
                  "\": using the proxy's address (set proxy_set_header " +
                  settings.real_ip_header + " $remote_addr; in nginx)");
    }
    return client.address;
}

// DRF's MethodNotAllowed; a HEAD answer has no body by definition (the
// server drops it).
HttpResponse method_not_allowed(const HttpRequest &req)
{
    HttpResponse res = json_answer(
        405, render_drf_detail(drf::method_not_allowed_detail(req.method)));
    res.set_header("Allow", kAllow);
    log::info(req.method + " " + req.path + ": 405");
    return res;
}

HttpResponse options_answer()
{
    HttpResponse res =
        json_answer(200, R"({"name":"Obtain Auth Token","renders":)"
                         R"(["application/json"],"parses":)"
                         R"(["application/json",)"
                         R"("application/x-www-form-urlencoded",)"
                         R"("multipart/form-data"]})");
    res.set_header("Allow", kAllow);
    return res;
}

HttpResponse obtain_too_large(const HttpRequest &req,
                              const IssuerSettings &settings)
{
    HttpResponse res = json_answer(413, too_large_body(settings.max_body_size));
    res.set_header("Allow", kAllow);
    res.close = true;
    log::info("obtain-token from " + client_of(req, settings) +
              ": 413 body over the limit");
    return res;
}

// Runs on a worker thread: it waits for Redis, the throttle and a hashing
// slot. The body is the raw bytes; DRF's parsers (obtain_request.cpp)
// decide from Content-Type what they are. A request with neither
// Content-Length nor Transfer-Encoding has no body (RFC 9112, 6.3), as
// Django reads it.
HttpResponse handle_obtain(const HttpRequest &req,
                           const IssuerSettings &settings,
                           const ObtainService &obtain)
{
    if (req.body_too_large) {
        return obtain_too_large(req, settings);
    }
    std::string client = client_of(req, settings);
    ObtainAnswer answer =
        obtain.obtain(req.header("Content-Type"), req.body, client);
    HttpResponse res = json_answer(answer.status, std::move(answer.body));
    res.withdraw = std::move(answer.withdraw);
    res.settle = std::move(answer.settle);
    res.set_header("Allow", kAllow);
    if (answer.retry_after > 0) {
        res.set_header("Retry-After", std::to_string(answer.retry_after));
    } else if (answer.status == 503) {
        res.set_header("Retry-After", std::string(drf::kUnavailableRetryAfter));
    }
    // Beyond DRF (its view sets no caching headers): a token is a
    // credential, and no cache on the way may keep it (RFC 6749 5.1 asks
    // the same of OAuth token answers). Set last, after Allow and
    // Retry-After, where it has always been sent (json_answer's
    // CacheControl::no_store would put it first).
    res.set_header("Cache-Control", "no-store");
    return res;
}

// With a separate token directory the answer also says whether changes
// reach the edges (`state`: "ok", or "behind" when the directory does not
// answer PING or the last attempt to apply the outbox failed; the top
// `status` is then "degraded"), whether it answers, how many outbox
// entries it has not applied yet (`pending`) and the last one it has
// (`applied`). Still 200: logins and reads work, and every issuer shares
// the one directory, so a 503 would take them all out of a load balancer
// at once; writes are answered 503 meanwhile (docs/authtokend.md).
HttpResponse handle_health(RedisPool &pool, const DirectorySync *sync)
{
    try {
        RedisPool::Lease conn = pool.lease();
        conn->command({"PING"});
        if (sync != nullptr && sync->split()) {
            DirectorySync::Status st = sync->status();
            return json_answer(
                200, std::string(R"({"status":")") +
                         (st.behind ? "degraded" : "ok") +
                         R"(","directory":{"state":")" +
                         (st.behind ? "behind" : "ok") + R"(","reachable":)" +
                         (st.reachable ? "true" : "false") + R"(,"pending":)" +
                         std::to_string(st.pending) + R"(,"applied":)" +
                         std::to_string(st.acked) + "}}");
        }
        return json_answer(200, R"({"status":"ok"})");
    } catch (const RedisError &e) {
        log::error(std::string("healthz: redis failed: ") + e.what());
        HttpResponse res = json_answer(drf::kUnavailable);
        res.set_header("Retry-After", std::string(drf::kUnavailableRetryAfter));
        return res;
    }
}

// GET /metrics: the exposition, rendered at each scrape (HEAD: its
// headers); it only reads counters, so it is answered on the event loop.
// Other methods get 405 with Allow, as on the obtain-token path.
HttpResponse metrics_answer(const HttpRequest &req,
                            const IssuerMetrics &metrics)
{
    if (req.method != "GET" && req.method != "HEAD") {
        HttpResponse res = json_answer(
            405, render_drf_detail(drf::method_not_allowed_detail(req.method)));
        res.set_header("Allow", "GET, HEAD");
        log::info(req.method + " " + req.path + ": 405");
        return res;
    }
    HttpResponse res;
    res.body = metrics.render();
    res.content_type = IssuerMetrics::kContentType;
    res.set_header("Cache-Control", "no-store");
    return res;
}

// A request that may write: every method but GET, HEAD and OPTIONS.
bool writes(const HttpRequest &req)
{
    return req.method != "GET" && req.method != "HEAD" &&
           req.method != "OPTIONS";
}

// A writing handler's success is sent only once the token directory has
// the change (directory_sync.h); else 503 with what is true, after the
// answer's withdraw() takes back what only it would have handed out.
std::function<HttpResponse(const HttpRequest &)>
settled(DirectorySync *sync,
        std::function<HttpResponse(const HttpRequest &)> handler)
{
    return [sync, handler = std::move(handler)](const HttpRequest &r) {
        HttpResponse res = handler(r);
        auto sent = [](HttpResponse &&answer) {
            if (answer.settle) {
                answer.settle(false);
            }
            return std::move(answer);
        };
        if (sync == nullptr || res.status < 200 || res.status > 299) {
            return sent(std::move(res));
        }
        DirectorySync::Settled settled = sync->settle();
        if (settled == DirectorySync::Settled::applied) {
            return sent(std::move(res));
        }
        const drf::DrfError &error = settled == DirectorySync::Settled::recorded
                                         ? drf::kDirectoryBehind
                                         : drf::kDirectoryNotFed;
        log::warn(r.method + " " + r.path + ": " + std::to_string(res.status) +
                  " withheld, 503: " + std::string(error.detail));
        // What only the withheld answer would have handed out (a many-mode
        // login's new token) is taken back: no client could use it.
        if (res.withdraw) {
            res.withdraw();
        }
        if (res.settle) {
            res.settle(true);
        }
        HttpResponse behind = json_answer(error, CacheControl::no_store);
        behind.set_header("Retry-After",
                          std::string(drf::kUnavailableRetryAfter));
        return behind;
    };
}

// An announced body over the limit is refused before it is read.
bool announces_too_large(const HttpRequest &req, std::size_t limit)
{
    if (!req.has_header("Content-Length")) {
        return false;
    }
    std::string value = req.header("Content-Length");
    char *end = nullptr;
    unsigned long long length = std::strtoull(value.c_str(), &end, 10);
    return end != value.c_str() && length > limit;
}

// Every route, in one place (route() adds the directory's settling to
// the writing ones). Called on the event loop as soon as a
// request's head is in: answers that need neither the body nor Redis are
// given here; the rest name a handler that the server runs on a worker
// thread once the body is in.
Dispatch route_only(const HttpRequest &req, const IssuerSettings &settings,
                    const ObtainService &obtain, const TokenEndpoints &tokens,
                    RedisPool &pool, const IssuerMetrics *metrics,
                    const AdminApi *admin, const DirectorySync *sync)
{
    Dispatch d;
    if (admin != nullptr && std::string_view(req.path).substr(
                                0, kAdminPrefix.size()) == kAdminPrefix) {
        if (announces_too_large(req, settings.max_body_size)) {
            d.answer = json_answer(413, too_large_body(settings.max_body_size));
            d.answer->close = true;
            log::info(req.method + " " + req.path +
                      ": 413 body over the limit");
            return d;
        }
        d.handler = [admin](const HttpRequest &r) { return admin->handle(r); };
        return d;
    }
    if (req.path == kObtainPath) {
        if (req.method == "POST") {
            if (announces_too_large(req, settings.max_body_size)) {
                d.answer = obtain_too_large(req, settings);
                return d;
            }
            d.handler = [&settings, &obtain](const HttpRequest &r) {
                return handle_obtain(r, settings, obtain);
            };
        } else if (req.method == "OPTIONS") {
            d.answer = options_answer();
        } else {
            // Refused before any body is read; a body that may follow is
            // not read, and the server then closes the connection.
            d.answer = method_not_allowed(req);
        }
        return d;
    }
    // The user's own tokens (token_endpoints.h): every method reaches the
    // handler, which authenticates before it looks at the method, as DRF.
    if (auto match = TokenEndpoints::match(req.path)) {
        d.handler = [&tokens, m = *match](const HttpRequest &r) {
            return tokens.handle(m, r);
        };
        return d;
    }
    if (req.path == "/healthz" &&
        (req.method == "GET" || req.method == "HEAD")) {
        d.handler = [&pool, sync](const HttpRequest &) {
            return handle_health(pool, sync);
        };
        return d;
    }
    // With the metrics setting off the path is unknown (404).
    if (req.path == "/metrics" && metrics != nullptr) {
        d.answer = metrics_answer(req, *metrics);
        return d;
    }
    log::info(req.method + " " + req.path + ": 404");
    d.answer = json_answer(drf::kNotFound);
    return d;
}

Dispatch route(const HttpRequest &req, const IssuerSettings &settings,
               const ObtainService &obtain, const TokenEndpoints &tokens,
               RedisPool &pool, const IssuerMetrics *metrics,
               const AdminApi *admin, DirectorySync *sync)
{
    Dispatch d =
        route_only(req, settings, obtain, tokens, pool, metrics, admin, sync);
    if (d.handler && writes(req)) {
        d.handler = settled(sync, std::move(d.handler));
    }
    return d;
}

} // namespace

Router make_router(const IssuerSettings &settings, const ObtainService &obtain,
                   const TokenEndpoints &tokens, RedisPool &pool,
                   const IssuerMetrics *metrics, const AdminApi *admin,
                   DirectorySync *sync)
{
    return [&settings, &obtain, &tokens, &pool, metrics, admin,
            sync](const HttpRequest &req) {
        return route(req, settings, obtain, tokens, pool, metrics, admin, sync);
    };
}

} // namespace authtoken
