//! `seqlab doctor`: which libtorch this binary runs on and what it can use.
use std::path::PathBuf;

/// The torch library folder baked in at build time (see build.rs).
pub fn libtorch_dir() -> Option<PathBuf> {
    option_env!("SEQLAB_LIBTORCH_LIB").map(PathBuf::from)
}

/// libtorch's version, read from the `torch/version.py` beside its library folder.
pub fn libtorch_version() -> Option<String> {
    let text = std::fs::read_to_string(libtorch_dir()?.parent()?.join("version.py")).ok()?;
    let line = text.lines().find(|l| l.starts_with("__version__"))?;
    Some(line.split('\'').nth(1)?.split('+').next()?.to_string())
}

/// The doctor's report; an error says what to do when libtorch is unusable.
pub fn report() -> anyhow::Result<String> {
    let dir = libtorch_dir().ok_or_else(|| {
        anyhow::anyhow!(
            "this seqlab was built without a known libtorch folder; rebuild with `make build`"
        )
    })?;
    if !dir.join("libtorch_cpu.so").exists() {
        anyhow::bail!(
            "libtorch is missing from {} (the torch venv moved or was deleted); run `make build` to recreate it",
            dir.display()
        );
    }
    let version = libtorch_version().unwrap_or_else(|| "unknown".into());
    let missing = crate::runtime::load_cuda();
    let cuda = match (tch::Cuda::is_available(), missing) {
        (true, _) => "true".to_string(),
        (false, Some(why)) => format!("false ({why})"),
        (false, None) => "false".to_string(),
    };
    Ok(format!(
        "seqlab {}\nlibtorch {version}\ntorch library: {}\ncuda: {cuda}\ncuda devices: {}\ncudnn: {}\nintra-op threads: {}\nmemory available: {}\n",
        env!("CARGO_PKG_VERSION"),
        dir.display(),
        tch::Cuda::device_count(),
        tch::Cuda::cudnn_is_available(),
        tch::get_num_threads(),
        memory_line(),
    ))
}

/// What the memory estimates are held against: RAM, and each CUDA device's
/// free memory.
fn memory_line() -> String {
    use crate::model::memory::{available, human, Pool};
    let show = |p: Pool| match available(p) {
        Some(b) => format!("{} {}", human(b), p.name()),
        None => format!("unknown {}", p.name()),
    };
    let cuda = (0..tch::Cuda::device_count().max(0) as usize).map(Pool::Cuda);
    std::iter::once(Pool::Host)
        .chain(cuda)
        .map(show)
        .collect::<Vec<_>>()
        .join(", ")
}
