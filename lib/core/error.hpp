// Errors raised by the library. The library never prints and never exits: it throws one
// of these, and the tool's main (through lowrank::command_line::run) prints it once as
// `tool: message` and picks the exit status.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace lowrank {

// A runtime failure: bad input, I/O. Exit status 1.
// The message names what went wrong and where: "FILE:LINE: what", "FILE: tensor X: what".
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A mistake on the command line. Exit status 2, with a hint to run --help.
class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A failure that another process of the same job reports: the ranks of a data-parallel run
// that meet one failure together tell it once, from one rank. The tool exits with `status`
// and prints nothing.
class reported_elsewhere : public std::exception {
public:
    explicit reported_elsewhere(int status) : status_(status) {}
    int status() const { return status_; }
    const char* what() const noexcept override { return "reported by another process"; }

private:
    int status_;
};

// How a file is named in messages: its path, or "<stdin>" for "-".
std::string display_name(std::string_view path);

// "FILE: what" and "FILE:LINE: what".
error error_in(std::string_view path, std::string_view what);
error error_at(std::string_view path, std::size_t line, std::string_view what);

// The message of an errno value, for messages about system calls.
std::string system_message(int errno_value);

}  // namespace lowrank
