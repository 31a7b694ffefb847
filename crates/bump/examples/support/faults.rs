//! What the bump examples read from the kernel, shared by `#[path]` (an `examples/` subfolder
//! without a `main.rs` is not an example of its own).

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
