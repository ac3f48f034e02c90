// The objectives of the vision models: vit's classify on patches, clip's contrastive losses
// on patches and captions.
#include "core/error.hpp"
#include "train/data.hpp"
#include "train/objective_parts.hpp"
#include "train/order.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <numeric>

namespace lowrank {
namespace {

// CLIP keeps its logit scale at most ln 100 (a temperature of at least 0.01).
const float max_logit_scale = std::log(100.0f);

class vit_objective : public objective {
public:
    vit_objective(vit_model& model, const objective_settings& settings, const std::vector<std::string>& train,
                  const std::vector<std::string>& dev)
        : model_(model), train_patches_(train[0], model.config().vision),
          train_labels_(read_labels(train[1], settings.label_column, false, class_names(settings, model.config()))),
          order_(train_patches_.rows(), settings.seed, true) {
        metric_ = settings.metric.empty() ? "acc" : settings.metric;
        check_same_rows(train[0], train_patches_.rows(), train[1], train_labels_.size(), "labels");
        if (!dev.empty()) {
            dev_patches_.emplace(dev[0], model.config().vision);
            dev_labels_ = read_labels(dev[1], settings.label_column, false, class_names(settings, model.config()));
            check_same_rows(dev[0], dev_patches_->rows(), dev[1], dev_labels_.size(), "labels");
        }
    }

    std::size_t examples() const override { return train_patches_.rows(); }

    pass_result accumulate(std::uint64_t first, std::size_t count, float scale, std::uint64_t) override {
        rows_.resize(count);
        classes_.resize(count);
        for (std::size_t i = 0; i < count; ++i) {
            rows_[i] = order_.example(first + i);
            classes_[i] = train_labels_.classes[rows_[i]];
        }
        patches_.resize(count * train_patches_.row_size());
        train_patches_.copy(rows_, patches_.data());
        const std::size_t K = model_.config().label_count();
        const float* logits = model_.forward(patches_.data(), count, true);
        d_logits_.resize(count * K);
        double sum = cross_entropy(logits, classes_.data(), count, K, d_logits_.data(), scale / static_cast<float>(count)).sum;
        model_.backward(d_logits_.data());
        return {sum / static_cast<double>(count), count * (model_.config().vision.patches() + 1)};
    }

    double evaluate(std::size_t batch_size) override {
        const std::size_t K = model_.config().label_count(), N = dev_patches_->rows();
        std::vector<std::int32_t> predicted;
        double loss = 0;
        for (std::size_t begin = 0; begin < N; begin += batch_size) {
            rows_.resize(std::min(batch_size, N - begin));
            std::iota(rows_.begin(), rows_.end(), begin);
            patches_.resize(rows_.size() * dev_patches_->row_size());
            dev_patches_->copy(rows_, patches_.data());
            const float* logits = model_.forward(patches_.data(), rows_.size(), false);
            loss += cross_entropy(logits, dev_labels_.classes.data() + begin, rows_.size(), K, nullptr, 0).sum;
            for (std::size_t i = 0; i < rows_.size(); ++i)
                predicted.push_back(static_cast<std::int32_t>(std::max_element(logits + i * K, logits + (i + 1) * K) -
                                                              (logits + i * K)));
        }
        if (metric_ == "loss") return loss / static_cast<double>(N);
        return classification_metric(metric_, dev_labels_.classes, predicted, K);
    }

private:
    vit_model& model_;
    patch_rows train_patches_;
    label_column train_labels_;
    std::optional<patch_rows> dev_patches_;
    label_column dev_labels_;
    data_order order_;
    std::vector<std::size_t> rows_;
    std::vector<std::int32_t> classes_;
    std::vector<float> patches_, d_logits_;
};

class clip_objective : public objective {
public:
    clip_objective(clip_model& model, const objective_settings& settings, const std::vector<std::string>& train,
                   const std::vector<std::string>& dev)
        : model_(model), settings_(settings), train_patches_(train[0], model.config().vision),
          train_captions_(read_token_rows(train[1], model.config().text, std::nullopt)),
          order_(train_patches_.rows(), settings.seed, true) {
        metric_ = settings.metric.empty() ? "acc" : settings.metric;
        check_same_rows(train[0], train_patches_.rows(), train[1], train_captions_.rows, "captions");
        if (!dev.empty()) {
            dev_patches_.emplace(dev[0], model.config().vision);
            dev_captions_ = read_token_rows(dev[1], model.config().text, std::nullopt);
            check_same_rows(dev[0], dev_patches_->rows(), dev[1], dev_captions_.rows, "captions");
        }
        if (settings.temperature) model.logit_scale().value[0] = -std::log(*settings.temperature);
    }

    std::size_t examples() const override { return train_patches_.rows(); }

    pass_result accumulate(std::uint64_t first, std::size_t count, float scale, std::uint64_t) override {
        if (count < 2) throw usage_error("--batch-size: a contrastive loss needs at least 2 pairs per batch");
        rows_.resize(count);
        for (std::size_t i = 0; i < count; ++i) rows_[i] = order_.example(first + i);
        embed(train_patches_, train_captions_, true);
        const std::size_t N = count, P = model_.config().projection_dim;
        d_image_.assign(N * P, 0.0f);
        d_text_.assign(N * P, 0.0f);
        double loss = contrastive(scale, true);
        std::vector<float> d_embeds(N * P, 0.0f);
        l2_normalize_backward(image_.data(), image_norms_.data(), d_image_.data(), N, P, d_embeds.data());
        model_.backward_image(d_embeds.data());
        std::fill(d_embeds.begin(), d_embeds.end(), 0.0f);
        l2_normalize_backward(text_.data(), text_norms_.data(), d_text_.data(), N, P, d_embeds.data());
        model_.backward_text(d_embeds.data());
        return {loss, N * (model_.config().vision.patches() + 1 + train_captions_.time)};
    }

    void after_step() override {
        float& value = model_.logit_scale().value[0];
        if (model_.logit_scale().trainable) value = std::clamp(value, 0.0f, max_logit_scale);
    }

    double evaluate(std::size_t batch_size) override {
        const std::size_t N = dev_patches_->rows(), P = model_.config().projection_dim;
        std::vector<float> images, texts;
        double loss = 0;
        std::size_t batches = 0;
        for (std::size_t begin = 0; begin < N; begin += batch_size) {
            rows_.resize(std::min(batch_size, N - begin));
            std::iota(rows_.begin(), rows_.end(), begin);
            embed(*dev_patches_, dev_captions_, false);
            images.insert(images.end(), image_.begin(), image_.end());
            texts.insert(texts.end(), text_.begin(), text_.end());
            if (metric_ == "loss" && rows_.size() > 1) {
                loss += contrastive(0, false);
                ++batches;
            }
        }
        if (metric_ == "loss") return loss / static_cast<double>(std::max<std::size_t>(batches, 1));
        // Retrieval: image i's most similar caption, and caption i's most similar image.
        std::vector<float> similarity(N * N);
        for (std::size_t i = 0; i < N; ++i)
            for (std::size_t j = 0; j < N; ++j) {
                float sum = 0;
                for (std::size_t k = 0; k < P; ++k) sum += images[i * P + k] * texts[j * P + k];
                similarity[i * N + j] = sum;
            }
        std::size_t right = 0;
        for (std::size_t i = 0; i < N; ++i) {
            std::size_t best_text = 0, best_image = 0;
            for (std::size_t j = 1; j < N; ++j) {
                if (similarity[i * N + j] > similarity[i * N + best_text]) best_text = j;
                if (similarity[j * N + i] > similarity[best_image * N + i]) best_image = j;
            }
            right += (best_text == i) + (best_image == i);
        }
        return static_cast<double>(right) / static_cast<double>(2 * N);
    }

private:
    // The rows_' normalised image and text embeddings into image_, text_ (N, P).
    void embed(const patch_rows& patches, const token_rows& captions, bool training) {
        const std::size_t N = rows_.size(), P = model_.config().projection_dim, T = captions.time;
        patches_.resize(N * patches.row_size());
        patches.copy(rows_, patches_.data());
        ids_.resize(N * T);
        for (std::size_t i = 0; i < N; ++i) std::copy_n(captions.row(rows_[i]), T, ids_.data() + i * T);
        image_.resize(N * P);
        text_.resize(N * P);
        image_norms_.resize(N);
        text_norms_.resize(N);
        l2_normalize_forward(model_.encode_image(patches_.data(), N, training), N, P, image_.data(), image_norms_.data());
        l2_normalize_forward(model_.encode_text(ids_.data(), N, T, training), N, P, text_.data(), text_norms_.data());
    }

    // The loss of image_ (u) against text_ (v); with gradients, scale · its gradient into
    // d_image_, d_text_ and the logit scale's.
    double contrastive(float scale, bool gradients) {
        const std::size_t N = rows_.size(), P = model_.config().projection_dim;
        contrastive_gradients g;
        if (gradients) g = {d_image_.data(), d_text_.data(), model_.logit_scale().gradient, scale};
        switch (settings_.loss) {
        case contrastive_kind::infonce:
            return info_nce_loss(image_.data(), text_.data(), N, P, model_.logit_scale().value[0], settings_.lambda, g);
        case contrastive_kind::npair: return n_pair_loss(image_.data(), text_.data(), N, P, g);
        case contrastive_kind::triplet: return triplet_loss(image_.data(), text_.data(), N, P, settings_.margin, g);
        case contrastive_kind::contrastive:
            return contrastive_loss(image_.data(), text_.data(), N, P, settings_.margin, g);
        }
        return 0;
    }

    clip_model& model_;
    objective_settings settings_;
    patch_rows train_patches_;
    token_rows train_captions_;
    std::optional<patch_rows> dev_patches_;
    token_rows dev_captions_;
    data_order order_;
    std::vector<std::size_t> rows_;
    std::vector<std::int32_t> ids_;
    std::vector<float> patches_, image_, text_, image_norms_, text_norms_, d_image_, d_text_;
};

}  // namespace

std::unique_ptr<objective> make_vision_objective(model& target, const objective_settings& settings,
                                                 const std::vector<std::string>& train,
                                                 const std::vector<std::string>& dev) {
    if (target.vit) return std::make_unique<vit_objective>(*target.vit, settings, train, dev);
    return std::make_unique<clip_objective>(*target.clip, settings, train, dev);
}

}  // namespace lowrank
