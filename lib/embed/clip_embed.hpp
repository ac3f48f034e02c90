// CLIP embeddings of many images and texts, as clip-embed makes them: a model loaded from
// a checkpoint, images from image files (CLIP's preprocessing, vit-patchify's library
// code) or from a patches .npy, captions tokenised with CLIP's rules or token ids from
// bpe-encode, all embedded in batches on all threads, in input order, in bounded memory.
//
//     auto model = load_clip_model("clip-vit-base-patch32", warnings);
//     image_batches images(files, model->config().vision);
//     embed_images(*model, images, 32, bar, [&](const float* rows, std::size_t count) { ... });
#pragma once

#include "bpe/tokenizer.hpp"
#include "core/progress.hpp"
#include "nn/clip.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lowrank {

// A clip model's checkpoint (a .safetensors file, a sharded checkpoint's index, or a
// folder in Hugging Face's layout), loaded. Tensors the model does not use are reported in
// `warnings`; a model of another architecture is an error naming the file.
std::unique_ptr<clip_model> load_clip_model(const std::string& path, std::vector<std::string>& warnings);

// Where a model's tokenizer is when none is named: the model's folder, or the folder of the
// model's file, when it holds vocab.json and merges.txt or tokenizer.json; else nothing.
std::string tokenizer_beside(const std::string& model_path);

// The images to embed, in batches: image files (decoded and preprocessed as Hugging Face's
// CLIPImageProcessor does, for the model's image and patch size), or a patches .npy of
// shape (N, patches, C·P·P) as vit-patchify writes it ("-": standard input), read row by row.
class image_batches {
public:
    image_batches(std::vector<std::string> files, const vision_tower_config& vision);
    image_batches(const std::string& patches_path, const vision_tower_config& vision);
    ~image_batches();

    std::size_t count() const { return count_; }
    // The next up to `batch` images' patches, (images, N, C·P·P), into `patches`: how many
    // (0 at the end). Image files are decoded on all threads.
    std::size_t next(std::size_t batch, std::vector<float>& patches);

private:
    struct files_source;
    struct npy_source;
    std::unique_ptr<files_source> files_;
    std::unique_ptr<npy_source> npy_;
    std::size_t count_ = 0, image_features_ = 0, delivered_ = 0;
};

// Token ids for the text tower: (rows, time), each row BOS, the text's tokens, EOS, padding.
struct token_rows {
    std::string path;  // where they come from, for messages
    std::size_t rows = 0, time = 0;
    std::vector<std::int32_t> ids;
};

// The context of captions for a model: CLIP's 77, or fewer when the model has fewer positions.
std::size_t caption_context(const text_tower_config& text);

// Texts tokenised as CLIP's tokenizer does: lower case, "</w>" word ends, <|startoftext|>
// and <|endoftext|> around, content cut to fit `context`, padded with <|endoftext|>.
token_rows tokenize_texts(const std::vector<std::string>& texts, const bpe_tokenizer& tokenizer, std::size_t context,
                          const std::string& source);
// One caption per line of a file ("-": standard input); empty lines are empty captions.
token_rows tokenize_captions(const std::string& path, const bpe_tokenizer& tokenizer, std::size_t context);
// Token ids as bpe-encode writes them: an integer .npy of shape (N, T), checked against the
// model (ids in its vocabulary, T within its positions).
token_rows read_token_ids(const std::string& path, const text_tower_config& text);

// Receives each batch's L2-normalised embeddings, (count, projection_dim), in input order.
using embedding_sink = std::function<void(const float* embeddings, std::size_t count)>;

void embed_images(clip_model& model, image_batches& images, std::size_t batch_size, progress& bar,
                  const embedding_sink& sink);
void embed_texts(clip_model& model, const token_rows& texts, std::size_t batch_size, progress& bar,
                 const embedding_sink& sink);

}  // namespace lowrank
