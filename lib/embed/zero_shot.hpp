// CLIP's zero-shot classification (Radford et al. 2021): each class is the text embedding
// of prompts naming it ("a photo of a {}."); with several templates, the prompts'
// normalised embeddings are averaged and the mean normalised again (prompt ensembling).
// An image's class probabilities are softmax(e^{logit_scale} · cos(image, class)).
#pragma once

#include "bpe/tokenizer.hpp"
#include "core/output.hpp"
#include "nn/clip.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace lowrank {

// Class names, one per line (blank lines skipped): errors for a name holding a tab, a
// name given twice, or no names.
std::vector<std::string> read_class_names(const std::string& path);

// Checks templates: each holds "{}" (a usage_error otherwise).
void check_templates(const std::vector<std::string>& templates);

// The class embeddings: (classes, projection_dim), normalised.
std::vector<float> class_embeddings(clip_model& model, const bpe_tokenizer& tokenizer,
                                    const std::vector<std::string>& classes, const std::vector<std::string>& templates,
                                    std::size_t batch_size);

// Writes predictions as TSV: a header, then per image its index and its `top` most likely
// classes, each with its probability ("index  label1  probability1 ..."); with top = 1,
// GLUE's submission format ("index  prediction"), which glue-eval scores.
class zero_shot_writer {
public:
    zero_shot_writer(output_stream& out, std::vector<std::string> classes, std::vector<float> class_embeddings,
                     float logit_scale, std::size_t top);
    // image_embeddings: (count, projection_dim), normalised.
    void write(const float* image_embeddings, std::size_t count);

private:
    output_stream& out_;
    std::vector<std::string> classes_;
    std::vector<float> class_embeddings_;
    float scale_;
    std::size_t top_, width_, index_ = 0;
    std::vector<float> logits_;
};

}  // namespace lowrank
