#include "embed/zero_shot.hpp"

#include "bpe/utf8.hpp"
#include "core/error.hpp"
#include "core/input.hpp"
#include "core/progress.hpp"
#include "core/text.hpp"
#include "embed/clip_embed.hpp"
#include "nn/matmul.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <numeric>
#include <set>

namespace lowrank {

std::vector<std::string> read_class_names(const std::string& path) {
    input_text input(path);
    std::vector<std::string> names;
    std::set<std::string, std::less<>> seen;
    line_cursor lines(strip_byte_order_mark(input.text()));
    std::string_view line;
    while (lines.next(line)) {
        std::string_view name = trim(line);
        if (name.empty()) continue;
        if (!is_utf8_text(name)) throw error_at(display_name(path), lines.line_number(), "not UTF-8 text");
        if (name.find('\t') != std::string_view::npos)
            throw error_at(display_name(path), lines.line_number(), "a class name holds a tab");
        if (!seen.emplace(name).second)
            throw error_at(display_name(path), lines.line_number(), fmt::format("class '{}' is named twice", name));
        names.emplace_back(name);
    }
    if (names.empty()) throw error_in(display_name(path), "no class names (one per line)");
    return names;
}

void check_templates(const std::vector<std::string>& templates) {
    for (const std::string& text : templates)
        if (text.find("{}") == std::string::npos)
            throw usage_error(fmt::format("--template '{}' has no {{}} where the class name goes", text));
}

namespace {

std::string fill(const std::string& text, const std::string& name) {
    std::string out;
    std::size_t start = 0, at;
    while ((at = text.find("{}", start)) != std::string::npos) {
        out.append(text, start, at - start).append(name);
        start = at + 2;
    }
    return out.append(text, start);
}

}  // namespace

std::vector<float> class_embeddings(clip_model& model, const bpe_tokenizer& tokenizer,
                                    const std::vector<std::string>& classes, const std::vector<std::string>& templates,
                                    std::size_t batch_size) {
    const std::size_t P = model.config().projection_dim, T = templates.size();
    std::vector<std::string> prompts;  // class-major: class c's prompts are rows c·T .. c·T+T−1
    for (const std::string& name : classes)
        for (const std::string& text : templates) prompts.push_back(fill(text, name));
    token_rows rows = tokenize_texts(prompts, tokenizer, caption_context(model.config().text), "the class prompts");
    std::vector<float> prompt_embeddings;
    progress quiet("", "", 0, true);
    embed_texts(model, rows, batch_size, quiet, [&](const float* values, std::size_t count) {
        prompt_embeddings.insert(prompt_embeddings.end(), values, values + count * P);
    });
    std::vector<float> out(classes.size() * P);
    for (std::size_t c = 0; c < classes.size(); ++c) {
        float* mean = out.data() + c * P;
        for (std::size_t t = 0; t < T; ++t)
            for (std::size_t j = 0; j < P; ++j) mean[j] += prompt_embeddings[(c * T + t) * P + j] / static_cast<float>(T);
        double norm = 0;
        for (std::size_t j = 0; j < P; ++j) norm += static_cast<double>(mean[j]) * mean[j];
        auto inverse = static_cast<float>(1 / std::max(std::sqrt(norm), 1e-12));
        for (std::size_t j = 0; j < P; ++j) mean[j] *= inverse;
    }
    return out;
}

zero_shot_writer::zero_shot_writer(output_stream& out, std::vector<std::string> classes,
                                   std::vector<float> class_embeddings, float logit_scale, std::size_t top)
    : out_(out),
      classes_(std::move(classes)),
      class_embeddings_(std::move(class_embeddings)),
      scale_(std::exp(logit_scale)),
      top_(std::min(top, classes_.size())),
      width_(class_embeddings_.size() / classes_.size()) {
    std::string header = "index";
    if (top_ == 1) {
        header += "\tprediction";
    } else {
        for (std::size_t k = 1; k <= top_; ++k) header += fmt::format("\tlabel{}\tprobability{}", k, k);
    }
    out_.write(header + "\n");
}

void zero_shot_writer::write(const float* image_embeddings, std::size_t count) {
    const std::size_t C = classes_.size();
    logits_.resize(count * C);
    // logits = e^{logit_scale} · images·classesᵀ: (count, C)
    matmul({.m = count, .n = C, .k = width_, .a = image_embeddings, .lda = width_, .b = class_embeddings_.data(),
            .ldb = width_, .transpose_b = true, .c = logits_.data(), .ldc = C, .alpha = scale_});
    std::string text;
    std::vector<std::size_t> order(C);
    std::vector<double> probabilities(C);
    for (std::size_t i = 0; i < count; ++i, ++index_) {
        const float* row = logits_.data() + i * C;
        double maximum = *std::max_element(row, row + C), sum = 0;
        for (std::size_t c = 0; c < C; ++c) sum += probabilities[c] = std::exp(static_cast<double>(row[c]) - maximum);
        std::iota(order.begin(), order.end(), 0);
        // most likely first; ties by class order
        std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(top_), order.end(),
                          [&](std::size_t a, std::size_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
        text += std::to_string(index_);
        for (std::size_t k = 0; k < top_; ++k) {
            text += '\t';
            text += classes_[order[k]];
            if (top_ > 1) text += fmt::format("\t{:.6f}", probabilities[order[k]] / sum);
        }
        text += '\n';
    }
    out_.write(text);
}

}  // namespace lowrank
