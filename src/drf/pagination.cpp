#include "drf/pagination.h"

#include <algorithm>
#include <map>

namespace authtoken
{

std::optional<std::string> query_get(const std::vector<FormField> &fields,
                                     std::string_view name)
{
    auto last =
        std::find_if(fields.rbegin(), fields.rend(),
                     [&](const FormField &f) { return f.name == name; });
    if (last == fields.rend()) {
        return std::nullopt;
    }
    return last->value;
}

std::string quote_plus(std::string_view text)
{
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-' ||
            c == '~') {
            out.push_back(static_cast<char>(c));
        } else if (c == ' ') {
            out.push_back('+');
        } else {
            out.push_back('%');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 15]);
        }
    }
    return out;
}

std::string page_link(std::string_view base,
                      const std::vector<FormField> &fields,
                      std::optional<std::size_t> page)
{
    // std::string's < on UTF-8 is code point order, as Python's sorted().
    std::map<std::string, std::vector<std::string>> params;
    for (const FormField &f : fields) {
        params[f.name].push_back(f.value);
    }
    params.erase("page");
    if (page) {
        params["page"] = {std::to_string(*page)};
    }
    std::string query;
    for (const auto &[name, values] : params) {
        for (const std::string &value : values) {
            query.append(query.empty() ? "" : "&")
                .append(quote_plus(name))
                .append("=")
                .append(quote_plus(value));
        }
    }
    std::string link(base);
    if (!query.empty()) {
        link.append("?").append(query);
    }
    return link;
}

std::optional<std::size_t> valid_page(std::string_view text,
                                      std::size_t num_pages)
{
    if (text == "last") {
        return num_pages;
    }
    auto space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
    while (!text.empty() && space(text.back())) {
        text.remove_suffix(1);
    }
    while (!text.empty() && space(text.front())) {
        text.remove_prefix(1);
    }
    bool negative = false;
    if (!text.empty() && (text.front() == '+' || text.front() == '-')) {
        negative = text.front() == '-';
        text.remove_prefix(1);
    }
    if (text.empty() ||
        text.find_first_not_of("0123456789") != std::string_view::npos) {
        return std::nullopt;
    }
    // Leading zeros are fine for int(); a number past the last page is
    // refused however long it is.
    std::size_t first = text.find_first_not_of('0');
    std::string_view digits =
        first == std::string_view::npos ? "0" : text.substr(first);
    if (negative || digits.size() > 18) {
        return std::nullopt;
    }
    std::size_t n = std::stoull(std::string(digits));
    if (n < 1 || n > num_pages) {
        return std::nullopt;
    }
    return n;
}

std::size_t page_count(std::size_t count, std::size_t per_page)
{
    return std::max<std::size_t>(1, (count + per_page - 1) / per_page);
}

} // namespace authtoken
