#include "core/cli.hpp"

#include "core/error.hpp"
#include "core/output.hpp"
#include "core/threads.hpp"

#include <csignal>
#include <cstdio>
#include <fmt/format.h>
#include <new>
#include <sstream>

#ifndef LOWRANK_VERSION
#define LOWRANK_VERSION "unknown"
#endif

namespace lowrank {
namespace po = boost::program_options;

namespace {

constexpr std::size_t help_width = 80;
constexpr std::size_t description_column = 26;

// Appends `text` word-wrapped to the help width, continuation lines indented.
void append_wrapped(std::string& out, std::string_view text, std::size_t column) {
    std::size_t position = column;
    std::istringstream words{std::string(text)};
    std::string word;
    bool first = true;
    while (words >> word) {
        if (!first && position + 1 + word.size() > help_width) {
            out += '\n';
            out.append(column, ' ');
            position = column;
        } else if (!first) {
            out += ' ';
            ++position;
        }
        out += word;
        position += word.size();
        first = false;
    }
    out += '\n';
}

// One option as "  -o, --output FILE    description (default: -)".
void append_option(std::string& out, const po::option_description& option) {
    std::string names = option.format_name();  // "-o [ --output ]" or "--output"
    std::string short_name, long_name = "--" + option.long_name();
    if (names.size() >= 2 && names[0] == '-' && names[1] != '-') short_name = names.substr(0, 2);

    std::string parameter, default_text;
    if (option.semantic()->max_tokens() > 0) {
        std::string formatted = option.format_parameter();  // "N (=4)"
        std::size_t open = formatted.find(" (=");
        parameter = formatted.substr(0, open);
        if (open != std::string::npos) default_text = formatted.substr(open + 3, formatted.size() - open - 4);
    }
    std::string left = "  " + (short_name.empty() ? std::string("    ") : short_name + ", ") + long_name;
    if (!parameter.empty()) left += " " + parameter;
    out += left;
    if (left.size() + 2 > description_column) {
        out += '\n';
        out.append(description_column, ' ');
    } else {
        out.append(description_column - left.size(), ' ');
    }
    std::string description = option.description();
    if (!default_text.empty()) description += " (default: " + default_text + ")";
    append_wrapped(out, description, description_column);
}

void append_options(std::string& out, const char* title, const po::options_description& options) {
    if (options.options().empty()) return;
    out += fmt::format("\n{}:\n", title);
    for (const auto& option : options.options()) append_option(out, *option);
}

}  // namespace

command_line::command_line(std::string tool, std::string operand_usage, std::string summary, unsigned common)
    : tool_(std::move(tool)), operand_usage_(std::move(operand_usage)), summary_(std::move(summary)) {
    common_.threads = available_cores();
    auto add = common_options_.add_options();
    if (common & output_option)
        add("output,o", value(&common_.output, "FILE")->default_value("-"),
            "write the output to FILE (written atomically) instead of standard output");
    if (common & threads_option)
        add("threads", value(&common_.threads, "N")->default_value(common_.threads),
            "use N threads (the default is all cores); also sets OpenBLAS's thread count");
    if (common & seed_option)
        add("seed", value(&common_.seed, "N")->default_value(0), "seed of the random generator");
    add("quiet,q", flag(&common_.quiet), "no progress and no warnings on stderr");
    add("help,h", flag(&help_), "print this help and exit");
    add("version", flag(&version_), "print the version and exit");
}

void command_line::operands(std::vector<std::string>& into, std::size_t min, std::size_t max) {
    operands_ = &into;
    min_operands_ = min;
    max_operands_ = max;
}

std::string command_line::usage_line() const {
    return fmt::format("Usage: {} [OPTION]...{}{}", tool_, operand_usage_.empty() ? "" : " ", operand_usage_);
}

std::string command_line::help_text() const {
    std::string out = usage_line() + "\n";
    append_wrapped(out, summary_, 0);
    append_options(out, "Options", tool_options_);
    append_options(out, "Common options", common_options_);
    if (!epilog_.empty()) out += "\n" + epilog_ + (epilog_.ends_with('\n') ? "" : "\n");
    out += fmt::format("\nSee {}(1) for details.\n", tool_);
    return out;
}

bool command_line::given(const std::string& option) const {
    auto found = variables_.find(option);
    return found != variables_.end() && !found->second.defaulted();
}

void command_line::warn(std::string_view message) const {
    if (!common_.quiet) fmt::print(stderr, "{}: warning: {}\n", tool_, message);
}

void command_line::parse(int argc, char** argv) {
    po::options_description all;
    all.add(tool_options_).add(common_options_);
    std::vector<std::string> found_operands;
    po::options_description hidden;
    hidden.add_options()("lowrank-operand", po::value(&found_operands));
    all.add(hidden);
    po::positional_options_description positional;
    positional.add("lowrank-operand", -1);

    // No abbreviated long options: a script written today must mean the same tomorrow.
    int style = po::command_line_style::unix_style ^ po::command_line_style::allow_guessing;
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).style(style).run(),
              variables_);
    po::notify(variables_);
    if (help_ || version_) return;

    if (!operands_ && !found_operands.empty())
        throw usage_error(fmt::format("unexpected operand '{}'", found_operands.front()));
    if (operands_) {
        if (found_operands.size() < min_operands_)
            throw usage_error(found_operands.empty() ? "missing operand" : "too few operands");
        if (found_operands.size() > max_operands_)
            throw usage_error(fmt::format("unexpected operand '{}'", found_operands[max_operands_]));
        *operands_ = std::move(found_operands);
    }
    if (common_.threads < 1) throw usage_error("--threads must be at least 1");
}

int command_line::run(int argc, char** argv, const std::function<void()>& body) {
    // A closed pipe (`tool | head`) ends the tool quietly, as it does for cat and grep,
    // even when the parent process ignored SIGPIPE.
    std::signal(SIGPIPE, SIG_DFL);
    auto usage_failure = [&](std::string_view message) {
        std::fflush(stdout);
        if (speaks_)
            fmt::print(stderr, "{}: {}\n{}\nTry '{} --help' for more information.\n", tool_, message, usage_line(), tool_);
        return 2;
    };
    try {
        parse(argc, argv);
    } catch (const po::error& failure) {
        return usage_failure(failure.what());
    } catch (const usage_error& failure) {
        return usage_failure(failure.what());
    }
    try {
        if (help_) {
            if (speaks_) fmt::print("{}", help_text());
            check_stdout();
            return 0;
        }
        if (version_) {
            if (speaks_) fmt::print("{} (lowrank) {}\n", tool_, LOWRANK_VERSION);
            check_stdout();
            return 0;
        }
        set_thread_count(common_.threads);
        body();
        check_stdout();
        return 0;
    } catch (const usage_error& failure) {
        return usage_failure(failure.what());
    } catch (const reported_elsewhere& failure) {
        std::fflush(stdout);
        return failure.status();
    } catch (const std::bad_alloc&) {
        std::fflush(stdout);
        fmt::print(stderr, "{}: out of memory\n", tool_);
    } catch (const std::exception& failure) {
        std::fflush(stdout);
        fmt::print(stderr, "{}: {}\n", tool_, failure.what());
    }
    return 1;
}

}  // namespace lowrank
