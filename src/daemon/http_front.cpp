#include "daemon/http_front.h"

#include "core/drf_messages.h"
#include "daemon/client_address.h"
#include "daemon/event_log.h"
#include "drf/json_renderer.h"

#include <atomic>

namespace authtoken
{
namespace
{

constexpr const char *kObtainPath = "/api-token-auth/";
constexpr const char *kJson = "application/json";
constexpr const char *kAllow = "POST, OPTIONS";
// httplib parses multipart bodies itself when it sees that media type; the
// obtain handler needs the raw bytes (DRF's parsers decide, in
// obtain_request.cpp), so the pre-routing handler moves the header here.
constexpr const char *kStashedContentType = "X-Authtoken-Content-Type";

// Answers and then drops the connection: used when the rest of the body
// was not read (over the limit), so it must not be taken for the next
// request. httplib closes a connection whose content provider reports
// failure; the whole answer is written before that.
void answer_and_close(httplib::Response &res, int status, std::string body)
{
    res.status = status;
    auto shared = std::make_shared<std::string>(std::move(body));
    res.set_header("Connection", "close");
    res.set_content_provider(
        shared->size(), kJson,
        [shared](size_t offset, size_t length, httplib::DataSink &sink) {
            sink.write(shared->data() + offset, length);
            return offset + length < shared->size();
        });
}

std::string too_large_body(std::size_t limit)
{
    return render_drf_detail(drf::body_larger_than_detail(limit));
}

// The client's address (client_address.h). A trusted proxy that does not
// send the configured header is a configuration mistake that makes all its
// clients share one throttle: said once, as a warning.
std::string client_of(const httplib::Request &req,
                      const IssuerSettings &settings)
{
    ClientAddress client = client_address(
        req.remote_addr, settings.real_ip_header,
        settings.real_ip_header.empty()
            ? std::string()
            : req.get_header_value(settings.real_ip_header.c_str()),
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

void answer_method_not_allowed(const httplib::Request &req,
                               httplib::Response &res)
{
    res.status = 405;
    res.set_header("Allow", kAllow);
    // DRF's MethodNotAllowed; a HEAD answer has no body by definition.
    res.set_content(
        render_drf_detail(drf::method_not_allowed_detail(req.method)), kJson);
}

httplib::Server::HandlerResponse
check_obtain_request(const httplib::Request &req, httplib::Response &res,
                     const IssuerSettings &settings)
{
    if (req.path != kObtainPath) {
        return httplib::Server::HandlerResponse::Unhandled;
    }
    // Other methods are refused before any body is read (httplib would
    // wait for the end of a body-less PATCH until the timeout). A body
    // that may follow is not read, so the connection is closed after.
    if (req.method != "POST" && req.method != "OPTIONS") {
        answer_method_not_allowed(req, res);
        if (req.method != "GET" && req.method != "HEAD") {
            std::string body = std::move(res.body);
            res.body.clear();
            res.headers.erase("Content-Type");
            answer_and_close(res, 405, std::move(body));
        }
        log::info(req.method + " " + req.path + ": 405");
        return httplib::Server::HandlerResponse::Handled;
    }
    // Before the body is read: refuse an announced oversize body at once.
    if (req.has_header("Content-Length") &&
        req.get_header_value<uint64_t>("Content-Length") >
            settings.max_body_size) {
        res.set_header("Allow", kAllow);
        answer_and_close(res, 413, too_large_body(settings.max_body_size));
        log::info("obtain-token from " + client_of(req, settings) +
                  ": 413 body over the limit");
        return httplib::Server::HandlerResponse::Handled;
    }
    // The request object is ours (httplib passes it const only by
    // convention here); see kStashedContentType.
    auto &mutable_req = const_cast<httplib::Request &>(req);
    // A client's own header of that name must not pass for the stash: it
    // would override the real Content-Type (a 415 turned into a form parse).
    mutable_req.headers.erase(kStashedContentType);
    auto it = mutable_req.headers.find("Content-Type");
    if (it != mutable_req.headers.end()) {
        mutable_req.headers.emplace(kStashedContentType, it->second);
        mutable_req.headers.erase("Content-Type");
    }
    return httplib::Server::HandlerResponse::Unhandled;
}

void handle_obtain(const httplib::Request &req, httplib::Response &res,
                   const httplib::ContentReader &read_body,
                   const IssuerSettings &settings, const ObtainService &obtain)
{
    res.set_header("Allow", kAllow);
    std::string body;
    bool too_large = false;
    // A request with neither Content-Length nor Transfer-Encoding has no
    // body (RFC 9112, 6.3), as Django reads it; httplib would wait for one
    // until the read timeout (`curl -X POST` with no -d). Chunked bodies
    // announce no length: stop reading at the limit.
    bool complete = true;
    if (req.has_header("Content-Length") ||
        req.has_header("Transfer-Encoding")) {
        complete = read_body([&](const char *data, size_t length) {
            if (body.size() + length > settings.max_body_size) {
                too_large = true;
                return false;
            }
            body.append(data, length);
            return true;
        });
    }
    std::string client = client_of(req, settings);
    if (too_large) {
        answer_and_close(res, 413, too_large_body(settings.max_body_size));
        log::info("obtain-token from " + client + ": 413 body over the limit");
        return;
    }
    if (!complete) {
        answer_and_close(res, 400, std::string(drf::kIncompleteBody.body));
        log::info("obtain-token from " + client + ": 400 body not read");
        return;
    }
    ObtainAnswer answer =
        obtain.obtain(req.get_header_value(kStashedContentType), body, client);
    res.status = answer.status;
    if (answer.retry_after > 0) {
        res.set_header("Retry-After", std::to_string(answer.retry_after));
    } else if (answer.status == 503) {
        res.set_header("Retry-After", std::string(drf::kUnavailableRetryAfter));
    }
    // Beyond DRF (its view sets no caching headers): a token is a
    // credential, and no cache on the way may keep it (RFC 6749 5.1 asks
    // the same of OAuth token answers).
    res.set_header("Cache-Control", "no-store");
    res.set_content(answer.body, kJson);
}

void handle_health(httplib::Response &res, RedisPool &pool)
{
    try {
        RedisPool::Lease conn = pool.lease();
        conn->command({"PING"});
        res.set_content(R"({"status":"ok"})", kJson);
    } catch (const RedisError &e) {
        log::error(std::string("healthz: redis failed: ") + e.what());
        res.status = 503;
        res.set_header("Retry-After", std::string(drf::kUnavailableRetryAfter));
        res.set_content(std::string(drf::kUnavailable.body), kJson);
    }
}

// GET /metrics: the exposition, rendered at each scrape (HEAD: its
// headers). Other methods get 405 with Allow before any body is read, and
// the connection is closed, as on the obtain-token path. Runs before
// routing; with the metrics setting off the path is unknown (404).
httplib::Server::HandlerResponse route_metrics(const httplib::Request &req,
                                               httplib::Response &res,
                                               const IssuerMetrics *metrics)
{
    if (metrics == nullptr || req.path != "/metrics") {
        return httplib::Server::HandlerResponse::Unhandled;
    }
    if (req.method != "GET" && req.method != "HEAD") {
        res.set_header("Allow", "GET, HEAD");
        answer_and_close(
            res, 405,
            render_drf_detail(drf::method_not_allowed_detail(req.method)));
        log::info(req.method + " " + req.path + ": 405");
        return httplib::Server::HandlerResponse::Handled;
    }
    res.set_header("Cache-Control", "no-store");
    res.set_content(metrics->render(), IssuerMetrics::kContentType);
    return httplib::Server::HandlerResponse::Handled;
}

// Every error leaves as JSON: handlers set their own bodies; this fills in
// the ones httplib makes by itself (404, 400 for unparsable requests, 413
// for oversize bodies elsewhere, 500).
httplib::Server::HandlerResponse fill_error_body(const httplib::Request &req,
                                                 httplib::Response &res)
{
    if (!res.body.empty() || res.has_header("Content-Type")) {
        return httplib::Server::HandlerResponse::Unhandled;
    }
    std::string_view body = drf::kRequestFailed.body;
    for (const drf::DrfError &error :
         {drf::kParseError, drf::kNotFound, drf::kBodyTooLarge,
          drf::kUriTooLong, drf::kServerError}) {
        if (error.status == res.status) {
            body = error.body;
        }
    }
    log::info(req.method + " " + req.path + ": " + std::to_string(res.status));
    res.set_content(std::string(body), kJson);
    return httplib::Server::HandlerResponse::Handled;
}

} // namespace

void install_routes(httplib::Server &server, const IssuerSettings &settings,
                    const ObtainService &obtain, RedisPool &pool,
                    const IssuerMetrics *metrics)
{
    server.set_pre_routing_handler(
        [&settings, metrics](const httplib::Request &req,
                             httplib::Response &res) {
            if (route_metrics(req, res, metrics) ==
                httplib::Server::HandlerResponse::Handled) {
                return httplib::Server::HandlerResponse::Handled;
            }
            return check_obtain_request(req, res, settings);
        });
    server.Post(kObtainPath,
                [&settings, &obtain](const httplib::Request &req,
                                     httplib::Response &res,
                                     const httplib::ContentReader &reader) {
                    handle_obtain(req, res, reader, settings, obtain);
                });
    // GET also answers HEAD (httplib routes HEAD to GET handlers and drops
    // the body), which gives DRF's 405 with an empty body.
    server.Get(kObtainPath, answer_method_not_allowed);
    server.Put(kObtainPath, answer_method_not_allowed);
    server.Patch(kObtainPath, answer_method_not_allowed);
    server.Delete(kObtainPath, answer_method_not_allowed);
    server.Options(
        kObtainPath, [](const httplib::Request &, httplib::Response &res) {
            res.set_header("Allow", kAllow);
            res.set_content(R"({"name":"Obtain Auth Token","renders":)"
                            R"(["application/json"],"parses":)"
                            R"(["application/json",)"
                            R"("application/x-www-form-urlencoded",)"
                            R"("multipart/form-data"]})",
                            kJson);
        });
    server.Get("/healthz",
               [&pool](const httplib::Request &, httplib::Response &res) {
                   handle_health(res, pool);
               });
    server.set_error_handler(
        httplib::Server::HandlerWithResponse(fill_error_body));
    server.set_exception_handler([](const httplib::Request &req,
                                    httplib::Response &res,
                                    std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
            std::rethrow_exception(ep);
        } catch (const std::exception &e) {
            what = e.what();
        } catch (...) {
        }
        log::error(req.method + " " + req.path + ": 500: " + what);
        res.status = 500;
        res.set_content(std::string(drf::kServerError.body), kJson);
    });
    server.set_payload_max_length(settings.max_body_size);
    server.set_read_timeout(settings.read_timeout, 0);
    server.set_write_timeout(settings.write_timeout, 0);
}

} // namespace authtoken
