// Losses, each returning its value and writing the gradient of (gradient_scale · loss)
// with respect to its inputs where a gradient buffer is given (nullptr: value only).
//
// The contrastive losses take a batch of N pairs of embeddings (u_i, v_i): an image and its
// caption, an anchor and its positive. Pair i is the positive for row i; every v_j with
// j ≠ i is a negative for u_i ("in-batch negatives"). Embeddings are usually L2-normalised
// first (l2_normalize_forward in layers.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace lowrank {

// Targets equal to this count for nothing (PyTorch's and Hugging Face's convention).
constexpr std::int32_t ignore_index = -100;

struct cross_entropy_result {
    double sum = 0;           // Σ over counted rows of −log softmax(logits)[target]
    std::size_t counted = 0;  // rows whose target is not ignore_index
};

// logits: (rows, classes), targets: (rows), each in [0, classes) or ignore_index.
// dlogits (may be logits itself: computed in place) = scale · (softmax − onehot(target)) on
// counted rows, 0 on ignored ones. The mean loss is sum / counted: pass scale = 1/counted
// for its gradient.
cross_entropy_result cross_entropy(const float* logits, const std::int32_t* targets, std::size_t rows,
                                   std::size_t classes, float* dlogits, float scale);

// Σ (prediction − target)² over count values; dprediction = scale · 2 (prediction − target).
// (Mean squared error, as MSELoss: pass scale = 1/count and divide the sum by count.)
double squared_error(const float* prediction, const float* target, std::size_t count, float* dprediction, float scale);

// The gradients of a contrastive loss: du, dv (N, dim) are added to; d_logit_scale too.
struct contrastive_gradients {
    float* du = nullptr;
    float* dv = nullptr;
    float* d_logit_scale = nullptr;
    float scale = 1;  // gradients of scale · loss
};

// Symmetric InfoNCE (CLIP's loss): logits = e^{logit_scale} · u·vᵀ (N×N), i.e. the cosine
// similarities over the temperature τ = e^{−logit_scale};
//   loss = λ · CE(rows: each u_i picks its v_i) + (1 − λ) · CE(columns: each v_i picks u_i),
// each CE the mean over the N pairs. CLIP's is λ = 0.5.
double info_nce_loss(const float* u, const float* v, std::size_t n, std::size_t dim, float logit_scale, float lambda,
                     const contrastive_gradients& gradients);

// N-pair loss (Sohn 2016): mean over i of log(1 + Σ_{j≠i} exp(u_i·v_j − u_i·v_i)), the
// cross-entropy of row i of u·vᵀ with target i.
double n_pair_loss(const float* u, const float* v, std::size_t n, std::size_t dim,
                   const contrastive_gradients& gradients);

// Triplet loss with margin m (FaceNet's, with in-batch negatives): with d the squared
// Euclidean distance, mean over all (i, j ≠ i) of max(0, m + d(u_i, v_i) − d(u_i, v_j)).
double triplet_loss(const float* u, const float* v, std::size_t n, std::size_t dim, float margin,
                    const contrastive_gradients& gradients);

// Pairwise contrastive loss with margin m (Hadsell, Chopra, LeCun 2006): with d the
// Euclidean distance, ½ · mean over positives (i, i) of d² + ½ · mean over negatives
// (i, j ≠ i) of max(0, m − d)².
double contrastive_loss(const float* u, const float* v, std::size_t n, std::size_t dim, float margin,
                        const contrastive_gradients& gradients);

}  // namespace lowrank
