// Reading a password for createuser / changepassword: one line from stdin
// with --password-stdin, or Django's interactive prompts (twice, without
// echo) on a terminal.
#pragma once

#include <optional>
#include <string>

namespace authtoken
{

// One line from stdin, without its line end; nullopt at end of input.
std::optional<std::string> read_password_line();

// Django's createsuperuser/changepassword dialogue: "Password: ",
// "Password (again): ", "Error: Your passwords didn't match." and
// "Error: Blank passwords aren't allowed.", three tries. Returns nullopt
// when the user gives up (or stdin is not a terminal).
std::optional<std::string> prompt_new_password();

bool stdin_is_terminal();

} // namespace authtoken
