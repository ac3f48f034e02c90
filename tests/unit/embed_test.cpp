#include "core/error.hpp"
#include "core/output.hpp"
#include "embed/report.hpp"
#include "formats/npy.hpp"
#include "helpers.hpp"
#include "nn_testing.hpp"

#include <cmath>
#include <doctest/doctest.h>
#include <filesystem>

using namespace lowrank;
using namespace lowrank::testing;

namespace {

std::vector<float> unit_rows(std::size_t rows, std::size_t width, std::uint64_t seed) {
    auto values = random_values(rows * width, seed);
    for (std::size_t i = 0; i < rows; ++i) {
        double norm = 0;
        for (std::size_t j = 0; j < width; ++j) norm += values[i * width + j] * values[i * width + j];
        for (std::size_t j = 0; j < width; ++j) values[i * width + j] /= static_cast<float>(std::sqrt(norm));
    }
    return values;
}

void write_array(const std::string& path, const std::vector<float>& values, std::vector<std::size_t> shape) {
    output_stream out(path, output_kind::binary);
    write_npy(out, dtype::f32, shape, values.data());
    out.commit();
}

}  // namespace

TEST_CASE("alignment and uniformity against the definitions, in double") {
    const std::size_t rows = 300, width = 7;  // more rows than a block of the Gram matrix
    auto x = unit_rows(rows, width, 1), y = unit_rows(rows, width, 2);
    auto distance = [&](const std::vector<float>& a, std::size_t i, const std::vector<float>& b, std::size_t j) {
        double sum = 0;
        for (std::size_t k = 0; k < width; ++k) sum += std::pow(double(a[i * width + k]) - b[j * width + k], 2);
        return sum;
    };
    double alignment = 0, potential_x = 0, potential_y = 0, positive = 0, negative = 0;
    for (std::size_t i = 0; i < rows; ++i) {
        alignment += distance(x, i, y, i) / rows;
        positive += (1 - distance(x, i, y, i) / 2) / rows;
        for (std::size_t j = 0; j < rows; ++j) {
            if (j != i) negative += (1 - distance(x, i, y, j) / 2) / (rows * (rows - 1.0));
            if (j <= i) continue;
            potential_x += std::exp(-2 * distance(x, i, x, j));
            potential_y += std::exp(-2 * distance(y, i, y, j));
        }
    }
    double pairs = rows * (rows - 1) / 2.0;
    embedding_report report = report_embeddings(x.data(), y.data(), rows, width);
    CHECK(report.pairs == rows);
    CHECK(report.alignment == doctest::Approx(alignment).epsilon(1e-6));
    CHECK(report.uniformity_images == doctest::Approx(std::log(potential_x / pairs)).epsilon(1e-5));
    CHECK(report.uniformity_texts == doctest::Approx(std::log(potential_y / pairs)).epsilon(1e-5));
    CHECK(report.positive_cosine == doctest::Approx(positive).epsilon(1e-5));
    CHECK(report.negative_cosine == doctest::Approx(negative).epsilon(1e-4));
    CHECK_THROWS(report_embeddings(x.data(), y.data(), 1, width));
}

TEST_CASE("npy_row_reader: rows in blocks, as floats; a truncated file names itself") {
    scratch_folder folder;
    auto values = random_values(10 * 6, 3);
    write_array(folder.file("a.npy"), values, {10, 2, 3});
    npy_row_reader reader(folder.file("a.npy"));
    CHECK(reader.rows() == 10);
    CHECK(reader.row_bytes() == 24);
    std::vector<float> block, all;
    while (std::size_t count = reader.read_rows(4, block)) {
        CHECK(count == (all.size() == 48 ? 2u : 4u));
        all.insert(all.end(), block.begin(), block.end());
    }
    CHECK(all == values);
    std::filesystem::resize_file(folder.file("a.npy"), std::filesystem::file_size(folder.file("a.npy")) - 30);
    npy_row_reader cut(folder.file("a.npy"));
    CHECK_THROWS_WITH_AS(while (cut.read_rows(4, block)) {}, doctest::Contains("truncated"), error);
    std::ofstream(folder.file("bad.npy")) << "\x93NUMPY";
    CHECK_THROWS_AS(npy_row_reader(folder.file("bad.npy")), error);
    CHECK_THROWS_AS(npy_row_reader(folder.file("absent.npy")), error);
}

TEST_CASE("concatenate_npy: numpy.concatenate's bytes; rows of another shape are refused") {
    scratch_folder folder;
    auto first = random_values(3 * 4, 4), second = random_values(5 * 4, 5);
    write_array(folder.file("first.npy"), first, {3, 4});
    write_array(folder.file("second.npy"), second, {5, 4});
    std::vector<float> both = first;
    both.insert(both.end(), second.begin(), second.end());
    write_array(folder.file("expected.npy"), both, {8, 4});
    {
        output_stream out(folder.file("joined.npy"), output_kind::binary);
        concatenate_npy({folder.file("first.npy"), folder.file("second.npy")}, out);
        out.commit();
    }
    CHECK(read_file(folder.file("joined.npy")) == read_file(folder.file("expected.npy")));
    write_array(folder.file("wide.npy"), random_values(2 * 5, 6), {2, 5});
    output_stream out(folder.file("bad.npy"), output_kind::binary);
    CHECK_THROWS_WITH_AS(concatenate_npy({folder.file("first.npy"), folder.file("wide.npy")}, out),
                         doctest::Contains("wide.npy: holds <f4 rows of shape (5)"), error);
}
