// The training loop's pieces: the data order (a pure function of seed and position, split
// between ranks), checkpoints read back as written, data readers' checks.
#include "core/error.hpp"
#include "nn/parameters.hpp"
#include "train/data_parallel.hpp"
#include "train/order.hpp"
#include "train/state.hpp"

#include <algorithm>
#include <doctest/doctest.h>
#include <filesystem>
#include <limits>
#include <numeric>
#include <set>
#include <vector>

using namespace lowrank;

TEST_CASE("data_order: each epoch a seeded permutation; the stream runs on across epochs") {
    data_order shuffled(10, 3, true), again(10, 3, true), plain(10, 3, false);
    std::vector<std::size_t> epoch0, epoch1;
    for (std::uint64_t p = 0; p < 10; ++p) epoch0.push_back(shuffled.example(p));
    for (std::uint64_t p = 10; p < 20; ++p) epoch1.push_back(shuffled.example(p));
    auto sorted = [](std::vector<std::size_t> v) {
        std::sort(v.begin(), v.end());
        return v;
    };
    std::vector<std::size_t> all(10);
    std::iota(all.begin(), all.end(), 0);
    CHECK(sorted(epoch0) == all);
    CHECK(sorted(epoch1) == all);
    CHECK(epoch0 != epoch1);
    CHECK(epoch0 == data_order::permutation(10, 3, 0));
    CHECK(epoch1 == data_order::permutation(10, 3, 1));
    CHECK(data_order::permutation(10, 4, 0) != epoch0);
    for (std::uint64_t p = 25; p-- > 0;) CHECK(again.example(p) == shuffled.example(p));  // any order of access
    CHECK(plain.example(13) == 3);
    CHECK(shuffled.epoch(19) == 1);
}

TEST_CASE("batch_start: a step's positions follow one another; ranks share each micro-batch") {
    step_shape one{.batch_size = 4, .micro_batches = 2, .ranks = 1};
    CHECK(batch_start(one, 0, 0) == 0);
    CHECK(batch_start(one, 0, 1) == 4);
    CHECK(batch_start(one, 3, 1) == 28);
    // Two ranks of batch 2 read, together, what one process of batch 4 reads.
    step_shape two{.batch_size = 2, .micro_batches = 2, .ranks = 2};
    for (std::uint64_t step = 0; step < 3; ++step)
        for (std::size_t micro = 0; micro < 2; ++micro) {
            std::set<std::uint64_t> ranks, single;
            for (std::size_t rank = 0; rank < 2; ++rank)
                for (std::size_t i = 0; i < 2; ++i) ranks.insert(batch_start(two, step, micro, rank) + i);
            for (std::size_t i = 0; i < 4; ++i) single.insert(batch_start(one, step, micro) + i);
            CHECK(ranks == single);
        }
    // Rank k's micro-batch m is pass m·n + k of one process that accumulates M·n passes.
    step_shape accumulated{.batch_size = 2, .micro_batches = 4, .ranks = 1};
    for (std::uint64_t step = 0; step < 3; ++step)
        for (std::size_t micro = 0; micro < 2; ++micro)
            for (std::size_t rank = 0; rank < 2; ++rank)
                CHECK(batch_start(two, step, micro, rank) == batch_start(accumulated, step, micro * 2 + rank));
}

TEST_CASE("process_group: a process no launcher started is a group of one") {
    process_group& group = process_group::world();
    CHECK(&group == &process_group::world());
    CHECK(group.rank() == 0);
    CHECK(group.size() == 1);
    CHECK_FALSE(group.launched());
    std::vector<float> values{1.5f, -2.0f};
    group.sum(values);  // alone: the sum over one rank
    CHECK(values == std::vector<float>{1.5f, -2.0f});
    // Failures come through as they were thrown: rank 0 speaks for the job.
    CHECK_NOTHROW(group.together([] {}));
    CHECK_THROWS_WITH_AS(group.together([] { throw error("data.u16: short"); }), "data.u16: short", error);
    CHECK_THROWS_AS(group.together([] { throw usage_error("--rank"); }), usage_error);
    CHECK_THROWS_WITH_AS(group.fail_together(error("step 3: the loss is nan")), "step 3: the loss is nan", error);
    CHECK(process_group::finish(3) == 3);
}

TEST_CASE("parameter_set: extras after the gradients, in the same buffer") {
    parameter_set parameters;
    parameters.add("w", {3});
    parameters.find("w")->trainable = true;
    parameters.allocate(2);
    const std::size_t gradients = parameters.trainable_values().size();  // 3, padded to 64 bytes
    CHECK(parameters.gradients().size() == gradients);
    auto all = parameters.gradients_and_extras();
    REQUIRE(all.size() == gradients + 2);
    CHECK(all.data() == parameters.gradients().data());
    std::fill(all.begin(), all.end(), 1.0f);
    parameters.zero_gradients();
    CHECK(std::all_of(all.begin(), all.end(), [](float v) { return v == 0.0f; }));
}

TEST_CASE("training_state: a checkpoint reads back as written; none in an empty folder") {
    const auto folder = std::filesystem::temp_directory_path() / "lowrank-train-state-test";
    std::filesystem::remove_all(folder);
    CHECK_FALSE(load_training_state(folder.string()));
    training_state state;
    state.steps = 12;
    state.elapsed = 3.25;
    state.best_metric = 0.8125;
    state.best_step = 10;
    state.settings = R"({"lr":0.001})";
    state.layout = R"([["a",[2]]])";
    state.log = "step\tloss\n1\t2.5\n";
    state.values = {1.5f, -2.0f};
    state.first_moment = {0.25f, 0.5f};
    state.second_moment = {1e-8f, 3.0f};
    state.best_values = {1.0f, 2.0f};
    save_training_state(folder.string(), state);
    auto read = load_training_state(folder.string());
    REQUIRE(read);
    CHECK(read->steps == 12);
    CHECK(read->elapsed == 3.25);
    CHECK(read->best_metric == 0.8125);
    CHECK(read->best_step == 10);
    CHECK(read->settings == state.settings);
    CHECK(read->layout == state.layout);
    CHECK(read->log == state.log);
    CHECK(read->values == state.values);
    CHECK(read->first_moment == state.first_moment);
    CHECK(read->second_moment == state.second_moment);
    CHECK(read->best_values == state.best_values);
    state.best_metric.reset();
    state.best_values.clear();
    save_training_state(folder.string(), state);
    read = load_training_state(folder.string());
    CHECK_FALSE(read->best_metric);
    CHECK(read->best_values.empty());
    // A damaged checkpoint with a NaN in its moments is refused, not trained from.
    state.second_moment[1] = std::numeric_limits<float>::quiet_NaN();
    save_training_state(folder.string(), state);
    CHECK_THROWS_WITH_AS(load_training_state(folder.string()),
                         doctest::Contains("tensor 'second_moment' holds a NaN or an infinity at element 1"), error);
    std::filesystem::remove_all(folder);
}
