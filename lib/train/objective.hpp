// The training objectives (--task): the data each reads, one forward and backward pass over
// a batch of it, and the evaluation of dev data with the task's metric.
//
//   lm        next-token prediction on a token stream, in windows of `context` tokens that
//             start at random positions (window of stream position p: a uniform start from
//             random_generator(seed, 2^62 + p)): mean −log p(x_{t+1} | x_≤t)
//   lm-pairs  (x, y) rows, the loss on the y tokens only: mean −log p(y_t | x, y_<t)
//             (operands X Y, two arrays of ids; or IDS MASK, the mask 1 on the tokens the
//             loss counts)
//   classify  cross-entropy of the classification head's logits (gpt2: pooled at the last
//             token; vit: at the class token) against class labels
//   regress   squared error of the head's one output against numbers (MSELoss)
//   clip      image patches and their captions: symmetric InfoNCE with the learnable
//             logit scale (clamped to [0, ln 100] after each step, as CLIP does), or the
//             triplet, N-pair or contrastive loss (nn/loss.hpp)
//
// Dev metrics: loss (every task; lower is better), acc, f1, mcc (classify), pearson,
// spearman (regress), acc (clip: the fraction of images whose caption is the most similar
// of all the dev captions, and of captions whose image is, averaged).
#pragma once

#include "nn/loss.hpp"
#include "nn/model.hpp"
#include "train/method.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lowrank {

enum class contrastive_kind { infonce, triplet, npair, contrastive };
std::optional<contrastive_kind> contrastive_from_name(std::string_view name);

struct objective_settings {
    task_kind task = task_kind::lm;
    std::uint64_t seed = 0;
    std::size_t context = 0;               // lm: tokens per window (0: as many as the model takes)
    std::optional<std::int32_t> pad_id;    // rows of ids: the padding token (default: the config's)
    std::string label_column;              // classify, regress: labels from this TSV column
    std::vector<std::string> label_names;  // classify: the classes' names by id (default: the config's)
    bool loss_mask = false;                // lm-pairs: operands IDS MASK rather than X Y
    std::string metric;                    // the dev metric ("": the task's first)
    contrastive_kind loss = contrastive_kind::infonce;
    float lambda = 0.5f;                   // InfoNCE: weight of the image-to-text direction
    float margin = 0.2f;                   // triplet, contrastive
    std::optional<float> temperature;      // InfoNCE: the initial τ = e^{−logit_scale} (default: the model's)
};

struct pass_result {
    double loss = 0;          // the batch's mean loss
    std::size_t tokens = 0;   // tokens and patches the pass read
};

class objective {
public:
    virtual ~objective() = default;

    // Training examples (an epoch).
    virtual std::size_t examples() const = 0;
    // Forward and backward on the examples at stream positions [first, first + count) of the
    // data order (order.hpp): adds scale · ∇(their mean loss) to the gradients.
    virtual pass_result accumulate(std::uint64_t first, std::size_t count, float scale, std::uint64_t dropout_seed) = 0;
    // The dev metric, in batches of batch_size (no dev data: a logic error).
    virtual double evaluate(std::size_t batch_size) = 0;
    // After each optimizer step (CLIP clamps its logit scale).
    virtual void after_step() {}

    const std::string& metric() const { return metric_; }
    bool higher_is_better() const { return metric_ != "loss"; }

protected:
    std::string metric_;
};

// The metrics a task offers, the default first.
std::vector<std::string> task_metrics(task_kind task);

// Reads the training data (and the dev data, when given: the same operands), checking them
// against the model. Throws usage_error for operands that do not fit the task, error for
// data that do not fit the model.
std::unique_ptr<objective> make_objective(model& target, const objective_settings& settings,
                                          const std::vector<std::string>& train, const std::vector<std::string>& dev);

// What make_objective expects as operands: "TOKENS", "X Y", "INPUT LABELS"...
std::string task_operands(task_kind task, bool loss_mask);

}  // namespace lowrank
