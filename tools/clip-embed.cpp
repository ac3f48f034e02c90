// clip-embed: CLIP image and text embeddings, zero-shot classification, image-text
// similarities, and the alignment and uniformity of paired embeddings.
#include "bpe/tokenizer.hpp"
#include "core/cli.hpp"
#include "core/error.hpp"
#include "core/input.hpp"
#include "core/output.hpp"
#include "embed/clip_embed.hpp"
#include "embed/report.hpp"
#include "embed/zero_shot.hpp"
#include "formats/npy.hpp"
#include "nn/matmul.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <limits>
#include <optional>

using namespace lowrank;

namespace {

struct settings {
    std::string model, files_from, patches, text, ids, tokenizer, zeroshot, precision = "float32";
    std::vector<std::string> images, templates;
    std::size_t batch_size = 32, top = 5;
    bool similarity = false, report = false, concatenate = false;
};

class embedding_run {
public:
    embedding_run(const command_line& cli, const settings& options) : cli_(cli), options_(options) {
        std::vector<std::string> warnings;
        model_ = load_clip_model(options.model, warnings);
        for (const auto& warning : warnings) cli.warn(warning);
    }

    bool has_images() const { return !options_.images.empty() || !options_.files_from.empty() || !options_.patches.empty(); }
    bool has_texts() const { return !options_.text.empty() || !options_.ids.empty(); }
    std::size_t width() const { return model_->config().projection_dim; }

    image_batches images() const {
        if (!options_.patches.empty()) return image_batches(options_.patches, model_->config().vision);
        std::vector<std::string> files = options_.images;
        if (!options_.files_from.empty()) {
            input_text list(options_.files_from);
            line_cursor lines(list.text());
            std::string_view line;
            while (lines.next(line)) {
                if (line.find('\0') != std::string_view::npos)
                    throw error_at(options_.files_from, lines.line_number(), "a NUL byte: not a list of paths");
                if (!line.empty()) files.emplace_back(line);
            }
            if (files.empty()) throw error_in(options_.files_from, "no image paths (one per line)");
        }
        return image_batches(std::move(files), model_->config().vision);
    }

    const bpe_tokenizer& tokenizer() {
        if (!tokenizer_) {
            std::string path = options_.tokenizer.empty() ? tokenizer_beside(options_.model) : options_.tokenizer;
            if (path.empty())
                throw usage_error(fmt::format("no tokenizer beside {} (vocab.json and merges.txt, or tokenizer.json): "
                                              "give --tokenizer DIR", options_.model));
            tokenizer_.emplace(load_tokenizer({.path = path}, split_pattern::clip));
        }
        return *tokenizer_;
    }

    token_rows texts() {
        if (!options_.ids.empty()) return read_token_ids(options_.ids, model_->config().text);
        return tokenize_captions(options_.text, tokenizer(), caption_context(model_->config().text));
    }

    // Streams image embeddings, batch by batch, to `sink`.
    void each_image_batch(image_batches& source, const embedding_sink& sink) {
        progress bar("clip-embed", "images", source.count(), cli_.common().quiet);
        embed_images(*model_, source, options_.batch_size, bar, sink);
    }

    std::vector<float> all_texts(const token_rows& rows) {
        std::vector<float> out;
        progress bar("clip-embed", "texts", rows.rows, cli_.common().quiet);
        embed_texts(*model_, rows, options_.batch_size, bar, [&](const float* values, std::size_t count) {
            out.insert(out.end(), values, values + count * width());
        });
        return out;
    }

    void write_embeddings(output_stream& out) {
        if (has_images()) {
            image_batches source = images();
            npy_writer writer(out, dtype::f32, {width()}, source.count());
            each_image_batch(source, [&](const float* values, std::size_t count) { writer.write_rows(values, count); });
            writer.finish();
        } else {
            token_rows rows = texts();
            npy_writer writer(out, dtype::f32, {width()}, rows.rows);
            progress bar("clip-embed", "texts", rows.rows, cli_.common().quiet);
            embed_texts(*model_, rows, options_.batch_size, bar,
                        [&](const float* values, std::size_t count) { writer.write_rows(values, count); });
            writer.finish();
        }
    }

    void write_zero_shot(output_stream& out) {
        std::vector<std::string> templates = options_.templates;
        if (templates.empty()) templates.push_back("a photo of a {}.");
        std::vector<std::string> classes = read_class_names(options_.zeroshot);
        std::vector<float> prompts = class_embeddings(*model_, tokenizer(), classes, templates, options_.batch_size);
        image_batches source = images();
        zero_shot_writer writer(out, std::move(classes), std::move(prompts), model_->logit_scale().value[0],
                                options_.top);
        each_image_batch(source, [&](const float* values, std::size_t count) { writer.write(values, count); });
    }

    void write_similarity(output_stream& out) {
        token_rows rows = texts();
        std::vector<float> text = all_texts(rows), similarity;
        image_batches source = images();
        npy_writer writer(out, dtype::f32, {rows.rows}, source.count());
        each_image_batch(source, [&](const float* values, std::size_t count) {
            similarity.resize(count * rows.rows);
            // (count, texts) = images·textsᵀ
            matmul({.m = count, .n = rows.rows, .k = width(), .a = values, .lda = width(), .b = text.data(),
                    .ldb = width(), .transpose_b = true, .c = similarity.data(), .ldc = rows.rows});
            writer.write_rows(similarity.data(), count);
        });
        writer.finish();
    }

    void write_report(output_stream& out) {
        token_rows rows = texts();
        std::vector<float> text = all_texts(rows), image;
        image_batches source = images();
        if (source.count() != rows.rows)
            throw error(fmt::format("--report pairs image i with text i: {} images, {} texts", source.count(), rows.rows));
        if (rows.rows < 2) throw error("--report needs two pairs or more");
        each_image_batch(source, [&](const float* values, std::size_t count) {
            image.insert(image.end(), values, values + count * width());
        });
        embedding_report report = report_embeddings(image.data(), text.data(), rows.rows, width());
        out.write(fmt::format("pairs\t{}\nalignment\t{:.6f}\nuniformity_images\t{:.6f}\nuniformity_texts\t{:.6f}\n"
                              "positive_cosine\t{:.6f}\nnegative_cosine\t{:.6f}\nlogit_scale\t{:.6f}\n",
                              report.pairs, report.alignment, report.uniformity_images, report.uniformity_texts,
                              report.positive_cosine, report.negative_cosine, model_->logit_scale().value[0]));
    }

private:
    const command_line& cli_;
    const settings& options_;
    std::unique_ptr<clip_model> model_;
    std::optional<bpe_tokenizer> tokenizer_;
};

void check_options(const command_line& cli, const settings& o, const std::vector<std::string>& operands) {
    if (o.concatenate) {
        if (operands.empty()) throw usage_error("--concatenate joins the .npy files named as operands: name them");
        return;
    }
    if (!operands.empty()) throw usage_error("operands are the files of --concatenate; images go with --images");
    if (o.model.empty()) throw usage_error("--model is required");
    if (o.batch_size == 0) throw usage_error("--batch-size must be at least 1");
    if (o.precision != "float32" && o.precision != "bf16")
        throw usage_error(fmt::format("--precision {}: float32 or bf16", o.precision));
    int image_sources = !o.images.empty() + !o.files_from.empty() + !o.patches.empty();
    if (!o.patches.empty() && image_sources > 1) throw usage_error("--patches replaces --images and --files-from");
    if (!o.text.empty() && !o.ids.empty()) throw usage_error("--text and --ids both give the texts: choose one");
    int from_stdin = std::count(o.images.begin(), o.images.end(), "-") + (o.files_from == "-") + (o.patches == "-") +
                     (o.text == "-") + (o.ids == "-");
    if (from_stdin > 1) throw usage_error("standard input can feed one input only");
    bool images = image_sources > 0, texts = !o.text.empty() || !o.ids.empty();
    if (!o.zeroshot.empty()) {
        if (!images) throw usage_error("--zeroshot classifies images: give --images, --files-from or --patches");
        if (texts || o.similarity || o.report) throw usage_error("--zeroshot takes images only");
        check_templates(o.templates);
    } else if (cli.given("template") || cli.given("top")) {
        throw usage_error("--template and --top go with --zeroshot");
    }
    if (o.top == 0) throw usage_error("--top must be at least 1");
    if (o.similarity && o.report) throw usage_error("--similarity and --report: one at a time");
    if ((o.similarity || o.report) && !(images && texts))
        throw usage_error(fmt::format("--{} needs images and texts", o.similarity ? "similarity" : "report"));
    if (images && texts && !o.similarity && !o.report)
        throw usage_error("images and texts together make --similarity or --report; embed them in two runs");
    if (!images && !texts) throw usage_error("nothing to embed: give --images, --files-from, --patches, --text or --ids");
}

}  // namespace

int main(int argc, char** argv) {
    command_line cli("clip-embed", "[NPY...]",
                     "Embed images and texts with a CLIP model (a Hugging Face CLIPModel checkpoint, or a model "
                     "model-init or lora-merge wrote): L2-normalised embeddings as a float32 .npy of shape (N, "
                     "projection_dim), in input order. With --zeroshot, classify images among named classes (TSV); "
                     "with --similarity, write the image-text cosine matrix; with --report, the alignment and "
                     "uniformity of paired images and texts. With --concatenate, join .npy files (shards of one "
                     "run) in order.");
    settings options;
    std::vector<std::string> operands;
    cli.options().add_options()
        ("model", value(&options.model, "MODEL"),
         "the CLIP model: a .safetensors file, a sharded checkpoint's index, or a folder (config.json, "
         "model.safetensors, vocab.json, merges.txt) (required)")
        ("images", value(&options.images, "FILE")->multitoken()->composing(),
         "image files to embed (JPEG, PNG, BMP, GIF, TGA, PNM, PSD, HDR), preprocessed as CLIPImageProcessor does")
        ("files-from", value(&options.files_from, "LIST"), "read image paths from LIST, one per line (- for stdin)")
        ("patches", value(&options.patches, "FILE"),
         "patches from vit-patchify (.npy of shape (N, patches, C*P*P); - for stdin) instead of image files")
        ("text", value(&options.text, "FILE"), "captions to embed, one per line (- for stdin)")
        ("ids", value(&options.ids, "FILE"), "token ids to embed: an integer .npy (N, T) from bpe-encode")
        ("tokenizer", value(&options.tokenizer, "DIR"),
         "the CLIP tokenizer (vocab.json and merges.txt, or tokenizer.json; default: beside the model)")
        ("zeroshot", value(&options.zeroshot, "CLASSES"),
         "classify the images among the class names of CLASSES (one per line): TSV of index, labels, probabilities")
        ("template", value(&options.templates, "TEXT")->composing(),
         "with --zeroshot: a prompt with {} for the class name (default 'a photo of a {}.'); repeat to average "
         "several (prompt ensembling)")
        ("top", value(&options.top, "K")->default_value(5),
         "with --zeroshot: the K most likely classes per image; 1 writes GLUE's submission format (index, prediction)")
        ("similarity", flag(&options.similarity), "write the cosine similarity of every image with every text (.npy)")
        ("report", flag(&options.report),
         "write the alignment and uniformity of image i paired with text i (TSV)")
        ("batch-size", value(&options.batch_size, "N")->default_value(32), "images or texts per batch")
        ("precision", value(&options.precision, "NAME")->default_value("float32"),
         "float32, or bf16: matrix products in bfloat16 (oneDNN, CPUs with AVX512-BF16; float32 elsewhere)")
        ("concatenate", flag(&options.concatenate), "join the .npy files NPY... along their first dimension into -o");
    cli.operands(operands, 0, std::numeric_limits<std::size_t>::max());
    cli.epilog("Examples:\n"
               "  clip-embed --model clip-vit-base-patch32 --images photos/*.jpg -o images.npy\n"
               "  vit-patchify --patch 32 photos/*.jpg | clip-embed --model clip/ --patches - -o images.npy\n"
               "  clip-embed --model clip/ --text captions.txt -o texts.npy\n"
               "  clip-embed --model clip/ --zeroshot classes.txt --top 1 --images photos/*.jpg -o pred.tsv");
    return cli.run(argc, argv, [&] {
        check_options(cli, options, operands);
        if (options.concatenate) {
            output_stream out(cli.common().output, output_kind::binary);
            concatenate_npy(operands, out);
            out.commit();
            return;
        }
        if (options.precision == "bf16")
            if (std::string reason = set_matmul_precision(matmul_precision::bfloat16); !reason.empty())
                cli.warn(fmt::format("--precision bf16: {}; computing in float32", reason));
        bool text_output = !options.zeroshot.empty() || options.report;
        output_stream out(cli.common().output, text_output ? output_kind::text : output_kind::binary);
        embedding_run run(cli, options);
        if (!options.zeroshot.empty())
            run.write_zero_shot(out);
        else if (options.similarity)
            run.write_similarity(out);
        else if (options.report)
            run.write_report(out);
        else
            run.write_embeddings(out);
        out.commit();
    });
}
