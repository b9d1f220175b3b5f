// cmocka's header needs these standard headers first.
#pragma once

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <csetjmp>

extern "C" {
#include <cmocka.h>
}
