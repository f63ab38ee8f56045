//! Resident-memory figures from `/proc/self/status` (Linux).

use std::fs;

/// Current resident set size (`VmRSS`) in bytes; 0 where unavailable.
pub fn rss_bytes() -> u64 {
    field_bytes("VmRSS:")
}

/// Peak resident set size so far (`VmHWM`) in bytes; 0 where unavailable.
pub fn peak_rss_bytes() -> u64 {
    field_bytes("VmHWM:")
}

fn field_bytes(name: &str) -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}
