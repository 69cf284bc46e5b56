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

/// Makes libtorch's CUDA backend available where this machine has an
/// NVIDIA driver. The linker leaves `libtorch_cuda.so` out of the binary's
/// needed libraries (no symbol of it is called by name: it registers itself
/// with libtorch when it is loaded), so without this `auto` would never find
/// a GPU. Loaded once, and only where a driver is present, so machines
/// without one do not pay for mapping it. Returns why it could not be
/// loaded, where it could not.
pub fn load_cuda() -> Option<&'static str> {
    static TRIED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    TRIED
        .get_or_init(|| {
            let driver = ["/proc/driver/nvidia/version", "/dev/nvidiactl"]
                .iter()
                .any(|p| std::path::Path::new(p).exists());
            if !driver {
                return Some("no NVIDIA driver on this machine".into());
            }
            dlopen_torch_cuda()
        })
        .as_deref()
}

/// Loads `libtorch_cuda.so` from the loader's path (the binary's run path,
/// `LD_LIBRARY_PATH`), then from the folder the binary was linked against.
#[cfg(unix)]
fn dlopen_torch_cuda() -> Option<String> {
    let mut names = vec!["libtorch_cuda.so".to_string()];
    if let Some(dir) = option_env!("SEQLAB_LIBTORCH_LIB") {
        names.push(format!("{dir}/libtorch_cuda.so"));
    }
    let mut why = String::new();
    for name in names {
        let Ok(c) = std::ffi::CString::new(name) else {
            continue;
        };
        // SAFETY: loads libtorch's own CUDA library, whose initialisers
        // register the CUDA backend with the libtorch already loaded; the
        // handle is kept for the life of the process.
        let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        if !handle.is_null() {
            return None;
        }
        // SAFETY: dlerror returns a thread-local message or null.
        let err = unsafe { libc::dlerror() };
        if !err.is_null() {
            // SAFETY: a NUL-terminated string owned by libc, copied at once.
            why = unsafe { std::ffi::CStr::from_ptr(err) }
                .to_string_lossy()
                .into_owned();
        }
    }
    Some(if why.is_empty() {
        "libtorch_cuda.so not found".into()
    } else {
        why
    })
}

#[cfg(not(unix))]
fn dlopen_torch_cuda() -> Option<String> {
    Some("CUDA is only looked for on Linux".into())
}

/// Cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
