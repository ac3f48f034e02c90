#include "core/progress.hpp"

#include <cmath>
#include <cstdio>
#include <fmt/format.h>
#include <unistd.h>

namespace lowrank {

using clock = std::chrono::steady_clock;

std::string human_count(double count) {
    if (count >= 1e9) return fmt::format("{:.1f}G", count / 1e9);
    if (count >= 1e6) return fmt::format("{:.1f}M", count / 1e6);
    if (count >= 1e4) return fmt::format("{:.1f}k", count / 1e3);
    return fmt::format("{:.0f}", count);
}

std::string human_duration(double seconds) {
    auto total = static_cast<long long>(std::llround(std::max(0.0, seconds)));
    long long hours = total / 3600, minutes = total / 60 % 60, rest = total % 60;
    if (hours > 0) return fmt::format("{}:{:02}:{:02}", hours, minutes, rest);
    return fmt::format("{}:{:02}", minutes, rest);
}

progress::progress(std::string label, std::string unit, std::uint64_t total, bool quiet)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(!quiet && ::isatty(STDERR_FILENO)),
      start_(clock::now()),
      last_draw_(start_) {}

progress::~progress() { finish(); }

void progress::advance(std::uint64_t count) {
    std::uint64_t done = done_.fetch_add(count, std::memory_order_relaxed) + count;
    if (!enabled_) return;
    auto now = clock::now();
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    std::unique_lock lock(draw_mutex_, std::try_to_lock);
    if (!lock.owns_lock() || now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    draw(done);
}

void progress::draw(std::uint64_t done) {
    double seconds = std::chrono::duration<double>(clock::now() - start_).count();
    double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
    std::string line = fmt::format("\r{}: {} {}", label_, human_count(static_cast<double>(done)), unit_);
    std::uint64_t total = total_.load();
    if (total > 0) {
        double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
        line = fmt::format("\r{}: {:3.0f}% {}/{} {}", label_, 100 * fraction, human_count(static_cast<double>(done)),
                           human_count(static_cast<double>(total)), unit_);
    }
    line += fmt::format(", {} {}/s", human_count(rate), unit_);
    if (total > 0 && rate > 0 && done < total)
        line += ", " + human_duration(static_cast<double>(total - done) / rate) + " left";
    line += "\x1b[K";  // erase what a longer previous line left
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
    drawn_ = true;
}

void progress::finish() {
    std::lock_guard lock(draw_mutex_);
    if (drawn_) {
        std::fputs("\r\x1b[K", stderr);
        std::fflush(stderr);
        drawn_ = false;
    }
}

}  // namespace lowrank
