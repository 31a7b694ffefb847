//! `minor_faults`: what a test or example reads from the kernel to count the pages it faulted
//! in. Counts, not time: a loop that reuses its memory faults in nothing once warm, so a test
//! can assert on it without timing anything.

/// Minor page faults of this process so far (0 where /proc is missing).
pub fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces; fields after its closing ')' are plain.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    // After ')' come field 3 (state) onwards; minflt is field 10, so the 8th of these.
    after_name
        .split_whitespace()
        .nth(7)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg_attr(miri, ignore)] // reads /proc, which Miri's isolation refuses
    fn touching_fresh_pages_counts_faults() {
        let before = super::minor_faults();
        let pages = vec![1u8; 64 * 4096];
        assert!(pages.iter().step_by(4096).all(|&b| b == 1));
        // Where /proc exists the fresh pages were faulted in; elsewhere both reads are 0.
        assert!(super::minor_faults() >= before);
    }
}
