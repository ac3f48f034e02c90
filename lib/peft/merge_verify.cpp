// --verify: reads a written output file back and checks it against the base and the
// adapters, computing the expected change again in double precision with plain loops,
// independently of the float32 BLAS products the merge used.
#include "peft/merge.hpp"

#include "core/error.hpp"
#include "core/threads.hpp"

#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <limits>

namespace lowrank {
namespace {

// The spacing of `type`'s values around |value|: the size of one unit in the last place.
double dtype_spacing(dtype type, double value) {
    int mantissa_bits = type == dtype::bf16 ? 7 : type == dtype::f16 ? 10 : 23;
    int lowest_exponent = type == dtype::f16 ? -14 : -126;
    int exponent = value == 0 ? lowest_exponent : std::max(std::ilogb(value), lowest_exponent);
    return std::ldexp(1.0, exponent - mantissa_bits);
}

// W0 + ΔW in double, and a bound on the float32 rounding error of the merge's own
// computation of it: the merge rounds B A's products and sums (rank + 2 roundings at most
// per element) and W0 + ΔW once, each within half a float32 unit of the magnitudes involved.
struct expected_values {
    std::vector<double> value, error_bound;
};

void add_lora_expectation(const adapter& source, const merge_term& term, expected_values& expected) {
    const lora_pair& pair = *term.pair;
    std::vector<float> a = source.to_float(*pair.a), b = source.to_float(*pair.b);
    std::size_t rows = pair.delta_rows(), columns = pair.delta_columns(), rank = pair.rank;
    double epsilon = std::numeric_limits<float>::epsilon();
    parallel_for(rows, [&](std::size_t begin, std::size_t end) {
        std::vector<double> sum(columns), magnitude(columns);
        for (std::size_t row = begin; row < end; ++row) {
            std::fill(sum.begin(), sum.end(), 0.0);
            std::fill(magnitude.begin(), magnitude.end(), 0.0);
            for (std::size_t k = 0; k < rank; ++k) {
                double b_value = b[row * rank + k];
                const float* a_row = a.data() + k * columns;
                for (std::size_t column = 0; column < columns; ++column) {
                    sum[column] += b_value * a_row[column];
                    magnitude[column] += std::fabs(b_value * a_row[column]);
                }
            }
            for (std::size_t column = 0; column < columns; ++column) {
                std::size_t at = term.transposed ? column * rows + row : row * columns + column;
                expected.value[at] += term.factor * sum[column];
                expected.error_bound[at] += (rank + 2) * epsilon * std::fabs(term.factor) * magnitude[column];
            }
        }
    });
}

expected_values expect(const safetensors_checkpoint& base, const std::vector<weighted_adapter>& adapters,
                       const tensor_change& change) {
    std::vector<float> start = base.files()[change.file].to_float(*change.start);
    base.files()[change.file].release(*change.start);
    expected_values expected{std::vector<double>(start.begin(), start.end()), std::vector<double>(start.size())};
    double epsilon = std::numeric_limits<float>::epsilon();
    for (const auto& term : change.terms) {
        const adapter& source = adapters[term.source].source;
        if (term.what == merge_term::kind::lora) add_lora_expectation(source, term, expected);
        if (term.what == merge_term::kind::lora_bias) {
            std::vector<float> bias = source.to_float(*term.pair->bias);
            for (std::size_t i = 0; i < bias.size(); ++i) {
                expected.value[i] += term.factor * static_cast<double>(bias[i]);
                expected.error_bound[i] += epsilon * std::fabs(term.factor * bias[i]);
            }
        }
        if (term.what == merge_term::kind::replacement) {
            std::vector<float> replacement = source.to_float(*term.replacement->tensor);
            for (std::size_t i = 0; i < replacement.size(); ++i) {
                double change_of_value = term.factor * (replacement[i] - static_cast<double>(start[i]));
                expected.value[i] += change_of_value;
                expected.error_bound[i] += epsilon * std::fabs(change_of_value);
            }
        }
    }
    for (std::size_t i = 0; i < start.size(); ++i)
        expected.error_bound[i] += epsilon * (std::fabs(start[i]) + std::fabs(expected.value[i]));
    return expected;
}

// How far a changed tensor is from W0 + ΔW: the largest difference, and the largest part of
// a difference beyond what the float32 computation allows, in units of the dtype's spacing.
struct tensor_error {
    double difference = 0, units_beyond_slack = 0;
};

tensor_error measure_error(const std::vector<float>& written, const expected_values& expected, dtype type) {
    tensor_error worst;
    for (std::size_t i = 0; i < written.size(); ++i) {
        if (std::isnan(written[i]) != std::isnan(expected.value[i])) return {std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity()};
        if (std::isnan(written[i])) continue;
        double spacing = dtype_spacing(type, expected.value[i]);
        double error = std::fabs(written[i] - expected.value[i]);
        worst.difference = std::max(worst.difference, error);
        worst.units_beyond_slack =
            std::max(worst.units_beyond_slack, std::max(error - expected.error_bound[i], 0.0) / spacing);
    }
    return worst;
}

}  // namespace

verification verify_merged_file(const safetensors_checkpoint& base, const std::vector<weighted_adapter>& adapters,
                                const merge_plan& plan, std::size_t file, const std::string& written_path,
                                const std::vector<tensor_spec>& expected_tensors,
                                const std::map<std::string, std::string>& metadata) {
    safetensors_file written(written_path, page_loading::lazy);
    auto fail = [&](std::string_view what) {
        return error(fmt::format("verification failed: {}: {}", base.file_names()[file], what));
    };
    if (written.metadata() != metadata) throw fail("__metadata__ differs from what was meant");
    if (written.tensors().size() != expected_tensors.size()) throw fail("it holds another number of tensors");
    for (std::size_t i = 0; i < expected_tensors.size(); ++i) {
        const auto& tensor = written.tensors()[i];
        const auto& spec = expected_tensors[i];
        if (tensor.name != spec.name || tensor.type != spec.type || tensor.shape != spec.shape)
            throw fail(fmt::format("tensor {} is '{}', expected '{}'", i, tensor.name, spec.name));
    }
    verification result;
    const safetensors_file& source = base.files()[file];
    for (const auto& tensor : source.tensors()) {
        auto is_this = [&](const tensor_change& change) { return change.file == file && change.start == &tensor && !change.added; };
        if (std::any_of(plan.changes.begin(), plan.changes.end(), is_this)) continue;
        const tensor_info& copy = *written.find(tensor.name);
        auto original = source.bytes(tensor), copied = written.bytes(copy);
        if (original.size() != copied.size() || std::memcmp(original.data(), copied.data(), original.size()) != 0)
            throw fail(fmt::format("unchanged tensor '{}' differs from the base's", tensor.name));
        source.release(tensor);
        written.release(copy);
        ++result.unchanged;
    }
    for (const auto& change : plan.changes) {
        if (change.file != file) continue;
        const tensor_info& tensor = *written.find(change.name);
        std::vector<float> values = written.to_float(tensor);
        written.release(tensor);
        tensor_error error = measure_error(values, expect(base, adapters, change), tensor.type);
        // Rounding to nearest leaves at most half a unit; a little more allows for the double
        // computation's own rounding.
        if (error.units_beyond_slack > 0.5 + 1e-6)
            throw fail(fmt::format("tensor '{}' differs from W0 + ΔW by up to {:.3g}, more than the rounding to {} "
                                   "allows", change.name, error.difference, safetensors_name(tensor.type)));
        if (error.difference >= result.max_difference) {
            result.max_difference = error.difference;
            result.worst_tensor = change.name;
        }
        ++result.changed;
    }
    return result;
}

}  // namespace lowrank
