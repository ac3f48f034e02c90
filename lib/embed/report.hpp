// How paired embeddings sit on the sphere (Wang & Isola, "Understanding Contrastive
// Representation Learning through Alignment and Uniformity on the Hypersphere", 2020):
//   alignment  = mean over pairs of ‖x_i − y_i‖²                       (α = 2; lower: closer pairs)
//   uniformity = log of the mean over distinct pairs i < j of e^{−2‖u_i − u_j‖²}   (t = 2; lower:
//                more spread), for the images and for the texts
// The contrastive loss trades the two, and its temperature sets the exchange rate.
#pragma once

#include <cstddef>

namespace lowrank {

struct embedding_report {
    std::size_t pairs = 0;
    double alignment = 0, uniformity_images = 0, uniformity_texts = 0;
    double positive_cosine = 0;  // mean cos(x_i, y_i)
    double negative_cosine = 0;  // mean cos(x_i, y_j) over i ≠ j
};

// images, texts: (rows, width), row i of each a pair, L2-normalised; rows ≥ 2. Exact, in
// O(rows² · width) time (products of blocks of rows) and O(rows · width) memory.
embedding_report report_embeddings(const float* images, const float* texts, std::size_t rows, std::size_t width);

}  // namespace lowrank
