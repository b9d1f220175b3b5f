#include "password_prompt.h"

#include <termios.h>
#include <unistd.h>

#include <iostream>

namespace authtoken
{
namespace
{

// Turns terminal echo off for its lifetime, and back on even when an
// exception or EOF ends the prompt early.
class EchoOff
{
  public:
    EchoOff()
    {
        if (tcgetattr(STDIN_FILENO, &saved_) == 0) {
            termios quiet = saved_;
            quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
            active_ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
        }
    }
    ~EchoOff()
    {
        if (active_) {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
        }
    }
    EchoOff(const EchoOff &) = delete;
    EchoOff &operator=(const EchoOff &) = delete;

  private:
    termios saved_{};
    bool active_ = false;
};

std::optional<std::string> ask(const char *prompt)
{
    std::cerr << prompt << std::flush;
    EchoOff quiet;
    std::optional<std::string> line = read_password_line();
    std::cerr << "\n";
    return line;
}

} // namespace

bool stdin_is_terminal()
{
    return isatty(STDIN_FILENO) == 1;
}

std::optional<std::string> read_password_line()
{
    std::string line;
    if (!std::getline(std::cin, line)) {
        return std::nullopt;
    }
    if (!line.empty() && line.back() == '\r') {
        line.pop_back();
    }
    return line;
}

std::optional<std::string> prompt_new_password()
{
    if (!stdin_is_terminal()) {
        return std::nullopt;
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        auto first = ask("Password: ");
        if (!first) {
            return std::nullopt;
        }
        auto second = ask("Password (again): ");
        if (!second) {
            return std::nullopt;
        }
        if (*first != *second) {
            std::cerr << "Error: Your passwords didn't match.\n";
            continue;
        }
        if (first->empty()) {
            std::cerr << "Error: Blank passwords aren't allowed.\n";
            continue;
        }
        return first;
    }
    return std::nullopt;
}

} // namespace authtoken
