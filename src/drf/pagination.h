// DRF's PageNumberPagination around a request's query string
// (rest_framework 3.14, pagination.py and utils/urls.py; Django 4.2,
// core/paginator.py), for the staff admin API's user list. The query string
// itself is parsed as Django's QueryDict (drf/form_parser.h).
#pragma once

#include "drf/form_parser.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace authtoken
{

// QueryDict.get(name): the last value of `name`, nullopt when absent.
std::optional<std::string> query_get(const std::vector<FormField> &fields,
                                     std::string_view name);

// urllib.parse.quote_plus(text) for UTF-8 text: ASCII letters, digits and
// "_.-~" as they are, a space as '+', every other byte as %XX (upper case).
std::string quote_plus(std::string_view text);

// replace_query_param(url, "page", page) when `page` is set, else
// remove_query_param(url, "page"): `base` (scheme, host and path, no
// query) followed by the query `fields` with `page` replaced or dropped,
// re-encoded as urlencode(sorted(parse_qs(query).items()), doseq=True):
// names sorted (by code point), each name's values in their order.
std::string page_link(std::string_view base,
                      const std::vector<FormField> &fields,
                      std::optional<std::size_t> page);

// The page PageNumberPagination.paginate_queryset() asks for, checked as
// Django's Paginator.validate_number() does, of `num_pages` pages (at
// least 1: allow_empty_first_page): `text` is "last"
// (last_page_strings) or what Python's int() accepts of ASCII (digits
// with an optional sign, surrounding whitespace); nullopt for anything
// else, below 1 or past the last page: DRF's NotFound("Invalid page.").
std::optional<std::size_t> valid_page(std::string_view text,
                                      std::size_t num_pages);

// Django's Paginator.num_pages with allow_empty_first_page: ceil(count /
// per_page), at least 1. `per_page` must not be 0.
std::size_t page_count(std::size_t count, std::size_t per_page);

} // namespace authtoken
