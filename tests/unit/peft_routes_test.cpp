// lib/peft/routes and the routed parts of lib/peft/apply: NAME=DIR operands, route files,
// batches put in route order, routed adapters on a model (each row as a model with only its
// adapter computes it), head tensors swapped in and back.
#include "core/error.hpp"
#include "helpers.hpp"
#include "nn/model.hpp"
#include "peft/apply.hpp"
#include "peft/routes.hpp"

#include <doctest/doctest.h>
#include <deque>
#include <numeric>
#include <set>

using namespace lowrank;
using namespace lowrank::testing;

TEST_CASE("parse_named_adapter: NAME=DIR, plain folders, folders with '=' in them, bad names") {
    auto named = parse_named_adapter("sst2=runs/sst2/adapter");
    REQUIRE(named);
    CHECK(named->name == "sst2");
    CHECK(named->path == "runs/sst2/adapter");
    CHECK(parse_named_adapter("runs/adapter") == std::nullopt);
    CHECK(parse_named_adapter("./a=b") == std::nullopt);
    CHECK(parse_named_adapter("runs/x=1/adapter") == std::nullopt);
    CHECK(parse_named_adapter("a=b=c")->path == "b=c");
    CHECK_THROWS_AS(parse_named_adapter("=adapter"), usage_error);
    CHECK_THROWS_AS(parse_named_adapter("-=adapter"), usage_error);
    CHECK_THROWS_AS(parse_named_adapter("a b=adapter"), usage_error);
    CHECK_THROWS_AS(parse_named_adapter("name="), usage_error);
}

TEST_CASE("read_routes: one name per line, '-' for none; errors name the file and the line") {
    scratch_folder folder;
    auto write = [&](const std::string& text) {
        write_file(folder.file("routes"), text);
        return folder.file("routes");
    };
    const std::vector<std::string> names = {"a", "b"};
    CHECK(read_routes(write("a\nb\n-\n a \r\nb"), names) == std::vector<std::size_t>{0, 1, no_route, 0, 1});
    CHECK(read_routes(write("\xEF\xBB\xBF" "b\n"), names) == std::vector<std::size_t>{1});
    CHECK(read_routes(write(""), names).empty());
    try {
        read_routes(write("a\nb\nc\n"), names);
        FAIL("no error");
    } catch (const error& failure) {
        CHECK(std::string(failure.what()) == folder.file("routes") + ":3: no adapter named 'c' (the adapters: a, b; '-' for none)");
    }
    try {
        read_routes(write("a\n\nb\n"), names);
        FAIL("no error");
    } catch (const error& failure) {
        CHECK(std::string(failure.what()).starts_with(folder.file("routes") + ":2: an empty line"));
    }
}

TEST_CASE("route_batch: each route's rows in a run, in their order; rows of no route last") {
    std::vector<std::size_t> routes = {2, 0, no_route, 2, 0, 0};
    routed_batch batch = route_batch(routes, 3);
    CHECK(batch.order == std::vector<std::size_t>{1, 4, 5, 0, 3, 2});
    REQUIRE(batch.ranges.size() == 3);
    CHECK((batch.ranges[0].begin == 0 && batch.ranges[0].end == 3));
    CHECK((batch.ranges[1].begin == 3 && batch.ranges[1].end == 3));  // a route with no row
    CHECK((batch.ranges[2].begin == 3 && batch.ranges[2].end == 5));
}

namespace {

// A tiny gpt2 classifier with `adapters` attached (route i for adapter i when routed), base
// and adapters loaded; the adapters' heads are returned by route.
struct adapted_model {
    std::unique_ptr<model> network;
    std::deque<adapter> adapters;
    std::vector<std::vector<replacement>> heads;

    adapted_model(const std::vector<std::string>& paths, bool routed) {
        checkpoint file("tests/data/nn/gpt2-classify.safetensors");
        network = std::make_unique<model>(file.config());
        auto sites = lora_sites_of(*network);
        auto head = network->head_parameters();
        std::set<const parameter*> declared;
        for (std::size_t i = 0; i < paths.size(); ++i) {
            adapter& source = adapters.emplace_back(paths[i]);
            for (const parameter* p : attach_adapter(source, network->parameters(), sites, "adapter" + std::to_string(i),
                                                     routed ? i : lora_branch::every_row, head))
                declared.insert(p);
        }
        network->parameters().allocate();
        load_parameters(network->parameters(), file, network->arch(),
                        {[&](const parameter& p) { return declared.contains(&p); }});
        for (std::size_t i = 0; i < paths.size(); ++i) {
            std::string tag = "adapter" + std::to_string(i);
            if (routed)
                heads.push_back(load_routed_adapter(adapters[i], network->parameters(), tag));
            else
                load_adapter(adapters[i], network->parameters(), tag);
        }
    }

    std::vector<float> logits(const std::vector<std::int32_t>& ids, std::size_t batch, std::size_t time) {
        std::vector<float> values(batch * network->config.label_count());
        const float* hidden = network->gpt2->forward(ids.data(), batch, time, nullptr, false);
        network->gpt2->score_forward(hidden, batch, time, nullptr, values.data());
        return values;
    }
};

}  // namespace

TEST_CASE("routed adapters: each row as the model with only its adapter; its head swapped in and back") {
    const std::string adapter_path = "tests/data/nn/adapter-classify";  // LoRA on c_fc, a score head
    const std::size_t batch = 4, time = 5, labels = 3;
    std::vector<std::int32_t> ids(batch * time);
    std::iota(ids.begin(), ids.end(), 3);
    adapted_model base({}, false), single({adapter_path}, false), routed({adapter_path}, true);
    auto base_logits = base.logits(ids, batch, time), adapted_logits = single.logits(ids, batch, time);

    // Rows 1 and 2 go through the adapter; 0 and 3 through none (the head stays the base's).
    std::vector<item_range> ranges = {{1, 3}};
    routed.network->set_routes(ranges);
    std::vector<float> values = routed.logits(ids, batch, time);
    parameter& score = *routed.network->parameters().find("score.weight");
    const float* own_score = score.value;
    {
        replacement_scope scope(routed.heads[0]);
        CHECK(score.value == routed.heads[0][0].values->data());
        const float* hidden = routed.network->gpt2->forward(ids.data(), batch, time, nullptr, false);
        routed.network->gpt2->score_forward(hidden + 1 * time * routed.network->gpt2->width(), 2, time, nullptr, values.data() + labels);
    }
    CHECK(score.value == own_score);
    for (std::size_t row = 0; row < batch; ++row) {
        const auto& expected = row == 1 || row == 2 ? adapted_logits : base_logits;
        for (std::size_t l = 0; l < labels; ++l)
            CHECK(values[row * labels + l] == doctest::Approx(expected[row * labels + l]).epsilon(1e-5));
    }
    CHECK(adapted_logits[labels] != doctest::Approx(base_logits[labels]).epsilon(1e-3));  // the adapter matters
}

TEST_CASE("routed adapters: whole tensors other than the head are refused, naming them") {
    checkpoint file("tests/data/nn/gpt2-lm.safetensors");
    model network(file.config());
    auto sites = lora_sites_of(network);
    adapter source("tests/data/peft/gpt2-bitfit.safetensors");  // biases trained in full
    CHECK_NOTHROW(attach_adapter(source, network.parameters(), sites, "adapter0"));
    try {
        attach_adapter(source, network.parameters(), sites, "adapter1", 0, network.head_parameters());
        FAIL("no error");
    } catch (const error& failure) {
        CHECK(std::string(failure.what()).find("replaces 'transformer.h.0.") != std::string::npos);
        CHECK(std::string(failure.what()).find("cannot change from row to row") != std::string::npos);
    }
}
