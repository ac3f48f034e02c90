// Progress of long work on stderr: count, rate and, when the total is known, percentage
// and time left. Shown only when stderr is a terminal and the tool is not --quiet; at most
// ten updates a second; safe to advance from several threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace lowrank {

class progress {
public:
    // total = 0: unknown. `unit` names what is counted ("lines", "merges", "MB").
    progress(std::string label, std::string unit, std::uint64_t total, bool quiet);
    ~progress();  // finish()
    progress(const progress&) = delete;
    progress& operator=(const progress&) = delete;

    void advance(std::uint64_t count = 1);
    void set_total(std::uint64_t total) { total_ = total; }
    // Erases the progress line.
    void finish();

    bool shown() const { return enabled_; }

private:
    void draw(std::uint64_t done);

    std::string label_, unit_;
    std::atomic<std::uint64_t> done_{0};
    std::atomic<std::uint64_t> total_;
    bool enabled_;
    bool drawn_ = false;
    std::chrono::steady_clock::time_point start_, last_draw_;
    std::mutex draw_mutex_;
};

// "12.3M", "4.5k", "17": counts and rates for people.
std::string human_count(double count);
// "1:02:03" or "2:03".
std::string human_duration(double seconds);

}  // namespace lowrank
