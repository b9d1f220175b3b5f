// str() of a Python float: what DRF's CharField makes of a JSON number with
// a fraction or an exponent.
#pragma once

#include <string>

namespace authtoken
{

// The shortest digits that read back as the same double, in fixed notation
// when the decimal exponent is between -4 and 16 ("0.0001", "1e+16",
// "100.0", "1e-05"), "inf"/"-inf" for infinities, "nan" for NaN.
std::string python_float_repr(double value);

} // namespace authtoken
