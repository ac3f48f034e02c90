// Correlation coefficients, as SciPy's pearsonr and spearmanr compute them.
#pragma once

#include <span>
#include <vector>

namespace lowrank {

// Pearson's r = Σ(x−x̄)(y−ȳ) / sqrt(Σ(x−x̄)² · Σ(y−ȳ)²), clipped to [−1, 1].
// NaN when either input is constant (SciPy returns NaN and warns) or has fewer than 2 values.
double pearson(std::span<const double> x, std::span<const double> y);

// Spearman's ρ: Pearson's r of the ranks, ties given their average rank.
double spearman(std::span<const double> x, std::span<const double> y);

// 1-based ranks with ties averaged (scipy.stats.rankdata, method "average").
// Values must not be NaN.
std::vector<double> average_ranks(std::span<const double> values);

}  // namespace lowrank
