// Streaming checkpoints: shard indexes, checkpoints in one file or in shards, folder
// outputs, kernel copies into an output, releasing mapped pages, strict JSON.
#include "core/error.hpp"
#include "core/input.hpp"
#include "core/output.hpp"
#include "formats/json.hpp"
#include "formats/sharded.hpp"
#include "helpers.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <unistd.h>

using namespace lowrank;
using namespace lowrank::testing;

namespace {

const std::string clip_sharded = "tests/data/peft/clip-sharded";

// A small safetensors file holding F32 tensors named `names`, each [2] = {i, i}.
void write_small_model(const std::string& path, const std::vector<std::string>& names) {
    std::vector<float> values(2 * names.size());
    std::vector<tensor_data> tensors;
    for (std::size_t i = 0; i < names.size(); ++i) {
        values[2 * i] = values[2 * i + 1] = static_cast<float>(i);
        tensors.push_back({{names[i], dtype::f32, {2}},
                           {reinterpret_cast<const std::byte*>(values.data() + 2 * i), 2 * sizeof(float)}});
    }
    output_stream out(path, output_kind::binary);
    write_safetensors(out, tensors, {{"format", "pt"}});
    out.commit();
}

}  // namespace

TEST_CASE("parse_json_strict keeps key order and refuses repeated keys") {
    auto document = parse_json_strict(R"({"b": 1, "a": {"x": 2}})", "f.json", "test file");
    CHECK(document.begin().key() == "b");
    CHECK_THROWS_WITH_AS(parse_json_strict(R"({"a": 1, "a": 2})", "f.json", "test file"),
                         "f.json: test file repeats the key 'a'", error);
    CHECK_THROWS_WITH_AS(parse_json_strict("{", "f.json", "test file"),
                         doctest::Contains("f.json: test file is not valid JSON"), error);
    CHECK(python_style_json(nlohmann::json::parse(R"({"b": [1, 2], "a": {}, "c": "\u00e9"})")) ==
          "{\n  \"a\": {},\n  \"b\": [\n    1,\n    2\n  ],\n  \"c\": \"\\u00e9\"\n}");
}

TEST_CASE("shard index: read, written as transformers writes it, and refused when malformed") {
    auto index = parse_shard_index(
        R"({"metadata": {"total_size": 96, "format": "pt"}, "weight_map": {"b": "model-2.safetensors", "a": "model-1.safetensors"}})",
        "index.json");
    CHECK(index.total_size() == 96);
    CHECK(index.shard_files() == std::vector<std::string>{"model-1.safetensors", "model-2.safetensors"});
    index.set_total_size(100);
    CHECK(shard_index_text(index) ==
          "{\n  \"metadata\": {\n    \"format\": \"pt\",\n    \"total_size\": 100\n  },\n  \"weight_map\": {\n"
          "    \"a\": \"model-1.safetensors\",\n    \"b\": \"model-2.safetensors\"\n  }\n}\n");
    CHECK(parse_shard_index(shard_index_text(index), "again").weight_map == index.weight_map);
    // The fixture's index was written by Python's json.dumps: we write it byte for byte again.
    std::string fixture = read_file(clip_sharded + "/model.safetensors.index.json");
    CHECK(shard_index_text(parse_shard_index(fixture, "fixture")) == fixture);

    CHECK_THROWS_WITH_AS(parse_shard_index("[]", "i.json"), "i.json: shard index is not a JSON object", error);
    CHECK_THROWS_WITH_AS(parse_shard_index("{}", "i.json"), "i.json: no \"weight_map\" object", error);
    CHECK_THROWS_WITH_AS(parse_shard_index(R"({"weight_map": {}})", "i.json"), "i.json: weight_map lists no tensor",
                         error);
    CHECK_THROWS_WITH_AS(parse_shard_index(R"({"weight_map": {"a": 3}})", "i.json"),
                         "i.json: weight_map: tensor 'a': shard is not a string", error);
    for (const char* name : {"../x.safetensors", "sub/x.safetensors", ".hidden", ""})
        CHECK_THROWS_WITH_AS(parse_shard_index(fmt::format(R"({{"weight_map": {{"a": "{}"}}}})", name), "i.json"),
                             doctest::Contains("is not a plain file name"), error);
    CHECK_THROWS_WITH_AS(parse_shard_index(R"({"weight_map": {"a": "x", "a": "y"}})", "i.json"),
                         "i.json: shard index repeats the key 'a'", error);
}

TEST_CASE("safetensors_checkpoint: a sharded folder, a folder with model.safetensors, a file") {
    safetensors_checkpoint sharded(clip_sharded, page_loading::lazy);
    CHECK(sharded.is_folder());
    CHECK(sharded.is_sharded());
    CHECK(sharded.file_names() == std::vector<std::string>{"model-00001-of-00003.safetensors",
                                                           "model-00002-of-00003.safetensors",
                                                           "model-00003-of-00003.safetensors"});
    const auto* found = sharded.find("text_model.encoder.layers.1.self_attn.q_proj.weight");
    REQUIRE(found);
    CHECK(found->file == 1);
    CHECK(found->tensor->shape == std::vector<std::uint64_t>{16, 16});
    CHECK(sharded.find("absent") == nullptr);
    CHECK(sharded.config_text()->find("\"clip\"") != std::string::npos);
    CHECK(sharded.config_path() == clip_sharded + "/config.json");

    scratch_folder folder;
    std::filesystem::create_directory(folder.file("single"));
    write_small_model(folder.file("single/model.safetensors"), {"a", "b"});
    safetensors_checkpoint single(folder.file("single"));
    CHECK(single.is_folder());
    CHECK(!single.is_sharded());
    CHECK(single.tensor_count() == 2);
    CHECK(!single.config_text());

    safetensors_checkpoint file("tests/data/peft/vit.safetensors");
    CHECK(!file.is_folder());
    CHECK(file.config_text()->find("\"vit\"") != std::string::npos);  // from __metadata__
    CHECK(file.config_path() == "tests/data/peft/vit.safetensors");
}

TEST_CASE("safetensors_checkpoint: shards and index that disagree are refused, naming both") {
    scratch_folder folder;
    auto broken = [&](const std::string& name, const std::string& index, const std::vector<std::string>& shard_one,
                      const std::vector<std::string>& shard_two) {
        std::string path = folder.file(name);
        std::filesystem::create_directory(path);
        write_file(path + "/model.safetensors.index.json", index);
        write_small_model(path + "/one.safetensors", shard_one);
        if (!shard_two.empty()) write_small_model(path + "/two.safetensors", shard_two);
        return path;
    };
    std::string missing = broken("missing", R"({"weight_map": {"a": "one.safetensors", "b": "two.safetensors"}})", {"a"}, {});
    CHECK_THROWS_WITH_AS(safetensors_checkpoint{missing}, doctest::Contains("shard 'two.safetensors' is missing"), error);
    std::string unlisted = broken("unlisted", R"({"weight_map": {"a": "one.safetensors"}})", {"a", "b"}, {});
    CHECK_THROWS_WITH_AS(safetensors_checkpoint{unlisted},
                         doctest::Contains("one.safetensors: tensor 'b' is not in model.safetensors.index.json"), error);
    std::string absent = broken("absent", R"({"weight_map": {"a": "one.safetensors", "z": "one.safetensors"}})", {"a"}, {});
    CHECK_THROWS_WITH_AS(safetensors_checkpoint{absent},
                         doctest::Contains("one.safetensors: no tensor 'z', which model.safetensors.index.json"), error);
    std::string twice = broken("twice", R"({"weight_map": {"a": "one.safetensors", "b": "two.safetensors"}})", {"a"},
                               {"a", "b"});
    CHECK_THROWS_WITH_AS(safetensors_checkpoint{twice}, doctest::Contains("tensor 'a' is also in one.safetensors"), error);
    std::string moved = broken("moved", R"({"weight_map": {"a": "two.safetensors", "b": "one.safetensors"}})", {"a"},
                               {"b"});
    CHECK_THROWS_WITH_AS(safetensors_checkpoint{moved},
                         doctest::Contains("tensor 'a' is listed under two.safetensors"), error);
    std::filesystem::create_directory(folder.file("empty"));
    CHECK_THROWS_WITH_AS(safetensors_checkpoint{folder.file("empty")},
                         doctest::Contains("a folder without model.safetensors.index.json or model.safetensors"), error);
}

TEST_CASE("safetensors_header_bytes keeps the given order and matches the writer's bytes") {
    scratch_folder folder;
    write_small_model(folder.file("m.safetensors"), {"a", "b"});
    safetensors_file file(folder.file("m.safetensors"));
    std::string header = safetensors_header_bytes({{"a", dtype::f32, {2}}, {"b", dtype::f32, {2}}}, file.metadata());
    std::string written = read_file(folder.file("m.safetensors"));
    CHECK(written.substr(0, file.data_offset()) == header);
    std::string reversed = safetensors_header_bytes({{"b", dtype::f32, {2}}, {"a", dtype::f32, {2}}}, {});
    CHECK(reversed.find("\"b\"") < reversed.find("\"a\""));
    CHECK(reversed.size() % 8 == 0);
}

TEST_CASE("mapped_file: lazy mapping and release keep the contents readable") {
    scratch_folder folder;
    std::string text(3 * 4096 + 100, 'x');
    text[5000] = 'y';
    write_file(folder.file("big"), text);
    mapped_file lazy(folder.file("big"), page_loading::lazy);
    CHECK(lazy.text() == text);
    lazy.release(10, 8000);
    lazy.release(0, lazy.size() + 50);  // past the end: clipped
    lazy.release(lazy.size() + 1, 10);
    CHECK(lazy.text()[5000] == 'y');  // faults back in from the file
    CHECK(lazy.text() == text);
}

TEST_CASE("output_stream::copy_from: kernel copies between writes, and a pipe falls back to read and write") {
    scratch_folder folder;
    write_file(folder.file("source"), "0123456789abcdef");
    int source = ::open(folder.file("source").c_str(), O_RDONLY);
    REQUIRE(source >= 0);
    {
        output_stream out(folder.file("copy"), output_kind::binary);
        out.write("<");
        out.copy_from(source, 4, 6, "source");
        out.write("|");
        out.copy_from(source, 0, 0, "source");
        out.copy_from(source, 10, 6, "source");
        out.write(">");
        out.flush();
        CHECK(read_file(out.written_path()) == "<456789|abcdef>");
        CHECK_THROWS_WITH_AS(out.copy_from(source, 12, 10, "source"), doctest::Contains("source: file ended early"),
                             error);
    }
    CHECK(!std::filesystem::exists(folder.file("copy")));
    int pipe_ends[2];
    REQUIRE(::pipe(pipe_ends) == 0);
    std::fflush(stdout);  // what doctest printed so far stays out of the pipe
    int saved = ::dup(STDOUT_FILENO);
    ::dup2(pipe_ends[1], STDOUT_FILENO);
    {
        output_stream out("-", output_kind::binary);
        out.copy_from(source, 0, 10, "source");
        out.commit();
    }
    ::dup2(saved, STDOUT_FILENO);
    ::close(saved);
    ::close(pipe_ends[1]);
    char got[16] = {};
    CHECK(::read(pipe_ends[0], got, sizeof got) == 10);
    CHECK(std::string(got) == "0123456789");
    ::close(pipe_ends[0]);
    ::close(source);
}

TEST_CASE("output_folder: all files or none, replacing an existing folder in one rename") {
    scratch_folder folder;
    std::string target = folder.file("out");
    auto leftovers = [&] {
        std::size_t count = 0;
        for (const auto& entry : std::filesystem::directory_iterator(folder.path()))
            count += entry.path().filename().string().starts_with(".out.tmp.");
        return count;
    };
    {
        output_folder out(target, false);
        output_stream file(out.file("a.txt"), output_kind::text);
        file.write("new");
        file.commit();
        CHECK(!std::filesystem::exists(target));
    }
    CHECK(!std::filesystem::exists(target));  // dropped without commit
    CHECK(leftovers() == 0);
    {
        output_folder out(target + "/", false);  // "out/" names the folder "out"
        output_stream file(out.file("a.txt"), output_kind::text);
        file.write("first");
        file.commit();
        out.commit();
    }
    CHECK(read_file(target + "/a.txt") == "first");
    CHECK_THROWS_WITH_AS(output_folder(target, false), doctest::Contains("out: exists and is not empty"), error);
    {
        output_folder out(target, true);
        output_stream file(out.file("b.txt"), output_kind::text);
        file.write("second");
        file.commit();
        CHECK(read_file(target + "/a.txt") == "first");
        out.commit();
    }
    CHECK(read_file(target + "/b.txt") == "second");
    CHECK(!std::filesystem::exists(target + "/a.txt"));  // the old folder is gone as a whole
    CHECK(leftovers() == 0);
    write_file(folder.file("plain"), "x");
    CHECK_THROWS_WITH_AS(output_folder(folder.file("plain"), true), doctest::Contains("exists and is not a folder"),
                         error);
    CHECK_THROWS_WITH_AS(output_folder(folder.file("absent/out"), true), doctest::Contains("cannot create"), error);
    std::filesystem::create_directory(folder.file("empty"));
    {
        output_folder out(folder.file("empty"), false);  // an empty folder is replaced too
        out.commit();
    }
    CHECK(std::filesystem::is_empty(folder.file("empty")));
}
