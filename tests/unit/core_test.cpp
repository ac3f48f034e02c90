#include "core/cli.hpp"
#include "core/error.hpp"
#include "core/input.hpp"
#include "core/output.hpp"
#include "core/progress.hpp"
#include "core/random.hpp"
#include "core/text.hpp"
#include "core/threads.hpp"
#include "helpers.hpp"

#include <atomic>
#include <doctest/doctest.h>
#include <filesystem>
#include <set>
#include <sys/stat.h>
#include <thread>

using namespace lowrank;
using namespace lowrank::testing;

TEST_CASE("error messages name the file and line") {
    CHECK(std::string(error_at("data.tsv", 12, "bad").what()) == "data.tsv:12: bad");
    CHECK(std::string(error_in("-", "bad").what()) == "<stdin>: bad");
}

TEST_CASE("trim, split and strict number parsing") {
    CHECK(trim("  a b\t") == "a b");
    CHECK(split("a,,b", ',').size() == 3);
    CHECK(split("", ',').size() == 1);
    CHECK(parse_double(" 2.5 ") == 2.5);
    CHECK(parse_double("+1e3") == 1000.0);
    CHECK(!parse_double("2.5x"));
    CHECK(!parse_double(""));
    CHECK(!parse_double("1e999"));
    // The fast path for plain decimals gives the same doubles as the general parser.
    for (const char* text : {"0.1", "-12.375", "5.", ".5", "0.30000000000000004", "123456789012345", "4.0000"})
        CHECK_MESSAGE(parse_double(text) == std::strtod(text, nullptr), text);
    CHECK(parse_double("1e5") == 1e5);
    CHECK(parse_double("12345678901234567890") == 12345678901234567890.0);
    CHECK(!parse_double("-"));
    CHECK(!parse_double("."));
    CHECK(!parse_double("1.2.3"));
    CHECK(parse_integer("-42") == -42);
    CHECK(!parse_integer("4.2"));
    CHECK(join({"a", "b", "c"}, ", ") == "a, b, c");
}

TEST_CASE("line_cursor: LF, CRLF, a last line without newline") {
    line_cursor lines("one\r\ntwo\n\nfour");
    std::string_view line;
    std::vector<std::string> seen;
    while (lines.next(line)) seen.emplace_back(line);
    CHECK(seen == std::vector<std::string>{"one", "two", "", "four"});
    CHECK(lines.line_number() == 4);
    CHECK(strip_byte_order_mark("\xEF\xBB\xBFx") == "x");
}

TEST_CASE("input_text and mapped_file read files; errors name them") {
    scratch_folder folder;
    write_file(folder.file("a.txt"), "hello\n");
    write_file(folder.file("empty"), "");
    CHECK(input_text(folder.file("a.txt")).text() == "hello\n");
    CHECK(mapped_file(folder.file("empty")).size() == 0);
    CHECK_THROWS_WITH_AS(mapped_file(folder.file("absent")), doctest::Contains("No such file"), error);
    CHECK_THROWS_WITH_AS(mapped_file(folder.path().string()), doctest::Contains("is a directory"), error);
    CHECK_THROWS_WITH_AS(input_text(folder.path().string()), doctest::Contains("is a directory"), error);
}

TEST_CASE("output_stream replaces the target only on commit") {
    scratch_folder folder;
    std::string target = folder.file("out.txt");
    write_file(target, "old");
    {
        output_stream out(target, output_kind::text);
        out.write("new contents");
        CHECK(read_file(target) == "old");  // not visible before commit
    }
    CHECK(read_file(target) == "old");  // dropped without commit
    {
        output_stream out(target, output_kind::text);
        out.write("new contents");
        out.commit();
    }
    CHECK(read_file(target) == "new contents");
    std::size_t files = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(folder.path())) ++files;
    CHECK(files == 1);  // no temporary file left behind
    CHECK_THROWS_WITH_AS(output_stream(folder.file("absent/out.txt"), output_kind::text),
                         doctest::Contains("cannot create"), error);
    CHECK_THROWS_WITH_AS(output_stream(folder.path().string(), output_kind::text),
                         doctest::Contains("is a directory"), error);
}

TEST_CASE("progress figures for people") {
    CHECK(human_count(17) == "17");
    CHECK(human_count(45'600) == "45.6k");
    CHECK(human_count(12'340'000) == "12.3M");
    CHECK(human_duration(62) == "1:02");
    CHECK(human_duration(3723) == "1:02:03");
    progress hidden("work", "items", 10, true);  // quiet: never drawn
    hidden.advance(5);
    CHECK(!hidden.shown());
}

TEST_CASE("output_stream writes a device or a named pipe in place, never renaming over it") {
    {
        output_stream out("/dev/null", output_kind::binary);
        CHECK_FALSE(out.is_regular_file());
        out.write("discarded");
        out.commit();
    }
    struct stat info {};
    REQUIRE(::stat("/dev/null", &info) == 0);
    CHECK(S_ISCHR(info.st_mode));  // still the device, not a regular file renamed over it

    scratch_folder folder;
    std::string pipe = folder.file("pipe");
    REQUIRE(::mkfifo(pipe.c_str(), 0600) == 0);
    std::string received;
    std::thread reader([&] { received = read_file(pipe); });
    {
        output_stream out(pipe, output_kind::text);
        out.write("through the pipe");
        out.commit();
    }
    reader.join();
    CHECK(received == "through the pipe");
    output_stream regular(folder.file("plain"), output_kind::text);
    CHECK(regular.is_regular_file());
}

TEST_CASE("random_generator: seeded, streams differ, below() stays in range") {
    random_generator a(42), b(42), c(42, 1);
    std::uint64_t first = a.next();
    CHECK(first == b.next());
    CHECK(first != c.next());
    std::set<std::uint64_t> seen;
    for (int i = 0; i < 1000; ++i) {
        std::uint64_t value = a.below(7);
        CHECK(value < 7);
        seen.insert(value);
    }
    CHECK(seen.size() == 7);
    double sum = 0, squares = 0;
    for (int i = 0; i < 20000; ++i) {
        double x = a.normal();
        sum += x;
        squares += x * x;
    }
    CHECK(std::abs(sum / 20000) < 0.05);
    CHECK(std::abs(squares / 20000 - 1) < 0.05);
}

TEST_CASE("parallel_for covers every index once and passes exceptions on") {
    set_thread_count(2);
    std::vector<int> hits(1001);
    parallel_for(hits.size(), [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) ++hits[i];
    });
    CHECK(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; }));
    CHECK_THROWS_WITH(parallel_for(10, [](std::size_t begin, std::size_t) {
                          if (begin > 0) throw error("from a worker");
                      }),
                      "from a worker");
    parallel_for(0, [](std::size_t, std::size_t) { FAIL("called for an empty range"); });
}

TEST_CASE("ordered_parallel: takes in order, delivers in order, bounded, first failure in order") {
    for (int threads : {1, 2, 4}) {
        set_thread_count(threads);
        const std::size_t count = 500, slots = 6;
        std::vector<std::size_t> taken, delivered, results(slots);
        std::atomic<std::size_t> in_flight{0}, most_in_flight{0};
        ordered_parallel(
            count, slots, [&](std::size_t index, std::size_t) { taken.push_back(index); },
            [&](std::size_t index, std::size_t slot) {
                std::size_t now = ++in_flight;
                std::size_t seen = most_in_flight.load();
                while (now > seen && !most_in_flight.compare_exchange_weak(seen, now)) {}
                results[slot] = index * index;
                --in_flight;
            },
            [&](std::size_t index, std::size_t slot) {
                CHECK(results[slot] == index * index);
                delivered.push_back(index);
            });
        std::vector<std::size_t> all(count);
        for (std::size_t i = 0; i < count; ++i) all[i] = i;
        CHECK(taken == all);
        CHECK(delivered == all);
        CHECK(most_in_flight.load() <= static_cast<std::size_t>(threads));

        // Items 30 and 20 fail: the one that comes first in order is reported, after the
        // items before it were delivered.
        delivered.clear();
        CHECK_THROWS_WITH(ordered_parallel(
                              100, slots, [](std::size_t, std::size_t) {},
                              [](std::size_t index, std::size_t) {
                                  if (index == 30 || index == 20) throw error("item " + std::to_string(index));
                              },
                              [&](std::size_t index, std::size_t) { delivered.push_back(index); }),
                          "item 20");
        CHECK(delivered.size() == 20);
        CHECK_THROWS_WITH(ordered_parallel(
                              10, slots, [](std::size_t, std::size_t) {}, [](std::size_t, std::size_t) {},
                              [](std::size_t index, std::size_t) {
                                  if (index == 3) throw error("cannot write");
                              }),
                          "cannot write");
    }
}

namespace {

int run_cli(std::vector<std::string> arguments, std::string& metric, std::vector<std::string>& operands,
            bool& body_ran) {
    command_line cli("test-tool", "FILE...", "A tool for tests.");
    cli.options().add_options()("metric", value(&metric, "NAME")->default_value("acc"), "a metric");
    cli.operands(operands, 1, 2);
    std::vector<char*> argv;
    for (auto& argument : arguments) argv.push_back(argument.data());
    return cli.run(static_cast<int>(argv.size()), argv.data(), [&] { body_ran = true; });
}

}  // namespace

TEST_CASE("command_line: exit statuses and operands") {
    std::string metric;
    std::vector<std::string> operands;
    bool ran = false;
    CHECK(run_cli({"t", "--metric", "mcc", "a", "-"}, metric, operands, ran) == 0);
    CHECK(ran);
    CHECK(metric == "mcc");
    CHECK(operands == std::vector<std::string>{"a", "-"});
    ran = false;
    silenced_stderr quiet;
    CHECK(run_cli({"t"}, metric, operands, ran) == 2);
    CHECK(run_cli({"t", "a", "b", "c"}, metric, operands, ran) == 2);
    CHECK(run_cli({"t", "--nope", "a"}, metric, operands, ran) == 2);
    CHECK(run_cli({"t", "--threads", "0", "a"}, metric, operands, ran) == 2);
    CHECK(!ran);
}

TEST_CASE("command_line: help lists every option with its default") {
    command_line cli("test-tool", "FILE", "Summary.", output_option | threads_option | seed_option);
    std::string metric;
    cli.options().add_options()("metric", value(&metric, "NAME")->default_value("acc"), "a metric");
    std::string help = cli.help_text();
    for (const char* expected : {"Usage: test-tool [OPTION]... FILE", "--metric NAME", "(default: acc)",
                                 "-o, --output FILE", "--threads N", "--seed N", "-q, --quiet", "-h, --help",
                                 "--version"})
        CHECK_MESSAGE(help.find(expected) != std::string::npos, expected);
}
