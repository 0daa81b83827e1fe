//! Memory figures from `/proc`: this test process's own (the proxy runs in-process, so
//! they are its own) or a child's (the real binary).

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
pub fn status_bytes(field: &str) -> u64 {
    process_status_bytes("self", field)
}

/// A field of `/proc/<process>/status` in bytes; `process` is a pid or `self`.
pub fn process_status_bytes(process: &str, field: &str) -> u64 {
    let path = format!("/proc/{process}/status");
    let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no {field} in {path}"))
}
