// The command line every tool shares: its own options plus the common ones, registered
// here once so that all tools agree on them. A tool's main looks like
//
//     int main(int argc, char** argv) {
//         lowrank::command_line cli("glue-eval", "GOLD PRED", "Compute GLUE metrics.");
//         cli.options().add_options()("metric", value(&metrics), "...");
//         std::vector<std::string> files;
//         cli.operands(files, 2, 2);
//         return cli.run(argc, argv, [&] { ... });
//     }
//
// run() prints --help (stdout, exit 0) and --version, reports usage errors with a short
// usage on stderr (exit 2), applies --threads, runs the body, checks stdout, and prints
// any error once as "tool: message" (exit 1); a failure reported_elsewhere exits with its
// status and prints nothing.
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

namespace program_options = boost::program_options;

// Common options a tool offers besides -h/--help, --version and -q/--quiet.
enum common_option : unsigned {
    output_option = 1u << 0,   // -o/--output FILE
    threads_option = 1u << 1,  // --threads N
    seed_option = 1u << 2,     // --seed N
};

struct common_values {
    std::string output = "-";
    int threads = 1;
    std::uint64_t seed = 0;
    bool quiet = false;
};

class command_line {
public:
    command_line(std::string tool, std::string operand_usage, std::string summary,
                 unsigned common = output_option | threads_option);

    // Register the tool's own options here.
    program_options::options_description& options() { return tool_options_; }
    // Where operands go, and how many are allowed (max = -1: any number).
    void operands(std::vector<std::string>& into, std::size_t min, std::size_t max);
    // Text printed after the options in --help (examples, where to read more).
    void epilog(std::string text) { epilog_ = std::move(text); }

    int run(int argc, char** argv, const std::function<void()>& body);

    const common_values& common() const { return common_; }
    const std::string& tool() const { return tool_; }
    // Whether an option was given on the command line (not just defaulted).
    bool given(const std::string& option) const;
    // "tool: warning: message" on stderr, unless --quiet.
    void warn(std::string_view message) const;
    // In a job whose processes all parse the same command line (under mpirun), one speaks
    // for all: the others print no --help, --version or usage error, and exit alike.
    void speaks(bool speaking) { speaks_ = speaking; }

    // The --help text (for tests and for run()).
    std::string help_text() const;

private:
    void parse(int argc, char** argv);
    std::string usage_line() const;

    std::string tool_, operand_usage_, summary_, epilog_;
    program_options::options_description tool_options_, common_options_;
    program_options::variables_map variables_;
    common_values common_;
    std::vector<std::string>* operands_ = nullptr;
    std::size_t min_operands_ = 0, max_operands_ = 0;
    bool help_ = false, version_ = false, speaks_ = true;
};

// A typed option value, with the name shown in --help (`--threads N`).
template <class T>
program_options::typed_value<T>* value(T* target, const char* value_name = "VALUE") {
    return program_options::value<T>(target)->value_name(value_name);
}

// A flag (no value).
inline program_options::typed_value<bool>* flag(bool* target) { return program_options::bool_switch(target); }

}  // namespace lowrank
