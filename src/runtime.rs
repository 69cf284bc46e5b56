//! Process-wide settings the binary applies before any work starts.

/// Lets glibc's allocator keep freed blocks of up to 32 MiB for reuse.
///
/// A training step allocates and frees the same few-megabyte tensors every
/// time; with glibc's default, each of those is a fresh `mmap`, so every step
/// pays for page faults and zeroing of memory it just gave back (about a
/// tenth of a GRU step). Memory the process once held stays with it.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator's thresholds; called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// Ends the process quietly when the reader of its output goes away
/// (`seqlab describe … | head`), as command-line tools do, instead of
/// panicking on the failed write.
pub fn quiet_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any other
    // thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
