// vit-patchify as a library: image files and IDX files in, one .npy of patches out, in
// input order, streamed with bounded memory on thread_count() threads; and back.
#pragma once

#include "image/decode.hpp"
#include "image/patchify.hpp"
#include "image/preprocess.hpp"

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace lowrank {

struct collection_settings {
    preprocess_settings preprocess;
    std::size_t patch = 16;
    patch_layout layout = patch_layout::conv;
    bool draft = false;      // decode large JPEGs at a reduced size (decode.hpp)
    bool skip_bad = false;   // skip inputs that fail, with a warning, instead of stopping
    bool all_idx = false;    // read every input as an IDX file, whatever its name
    bool quiet = false;      // no progress line
};

struct collection_outputs {
    std::string patches = "-";  // the .npy; "-" is standard output
    std::string index;          // TSV: row, file, record, width, height; empty: none
    std::string labels;         // .npy of int64 labels; empty: none
    std::string preview;        // PNG of the first image's patches; empty: none
};

struct collection_summary {
    std::size_t written = 0, skipped = 0;
};

// One image to its patches, as patchify_collection makes them for each: only the part of a
// JPEG the crop keeps is decoded (at a reduced size under settings.draft), then prepared
// and patchified. Safe to use from several threads at once.
class image_patchifier {
public:
    explicit image_patchifier(const collection_settings& settings);
    image_patchifier(const image_patchifier&) = delete;
    image_patchifier& operator=(const image_patchifier&) = delete;

    // An image file ("-": standard input) -> patches (resized); its shape. `stored`, when
    // given, receives the size stored in the file. Errors name the file.
    patch_shape patchify_file(const std::string& path, std::vector<float>& patches,
                              image_size* stored = nullptr) const;
    // A decoded image (or part) -> patches; `name` names it in errors.
    patch_shape patchify(image_part decoded, std::string_view name, std::vector<float>& patches) const;
    const normalizer& normalize() const { return normalize_; }

private:
    const collection_settings& settings_;
    normalizer normalize_;
    decode_options decode_;
};

// Where the labels of patches written to `output` go: "out.npy" -> "out.labels.npy".
std::string labels_path_beside(const std::string& output);

// Preprocesses and patchifies every image of `inputs`, in order, into one float32 .npy of
// shape (N, patches, C·P·P). An input is an image file, or an IDX file of images when its
// name says so (looks_like_idx) or settings.all_idx; `label_files[k]`, if given, holds the
// labels of the k-th IDX input. `warn` receives a line for each input skipped.
// The row count of a .npy on standard output (or a pipe) is written first, so a stream
// cannot take --skip-bad (a usage_error); a regular file gets its count at the end.
collection_summary patchify_collection(const std::vector<std::string>& inputs,
                                       const std::vector<std::string>& label_files,
                                       const collection_settings& settings, const collection_outputs& outputs,
                                       const std::function<void(const std::string&)>& warn);

// The rows of a patches .npy (N, patches, C·P·P) back to PNG images in `folder`, named by
// row number (000000.png, 000001.png ...). The patch size, layout, mean and std come from
// `settings`; the image size from its crop (or exact resize), else the grid is square.
// Returns the number of images written.
std::size_t unpatchify_file(const std::string& npy_path, const collection_settings& settings,
                            const std::string& folder);

}  // namespace lowrank
