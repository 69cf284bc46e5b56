//! HTTP downloads that never leave a file looking valid when they fail: the
//! body goes to a temporary file in the destination folder (removed on any
//! error), is size-capped and verified by the caller, and only then renamed
//! into place. A progress bar shows on a terminal only.
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest download accepted (the IMDB archive is 84 MB, the Jena zip 13 MB).
pub const MAX_DOWNLOAD_BYTES: u64 = 200 << 20;

/// A file that is deleted when dropped, unless `persist`ed.
#[derive(Debug)]
pub struct TempPath {
    path: PathBuf,
    keep: bool,
}

impl TempPath {
    /// A fresh temporary name in `dir`, based on `name`.
    pub fn new(dir: &Path, name: &str) -> TempPath {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        TempPath {
            path: dir.join(format!(".{name}.part-{}-{n}", std::process::id())),
            keep: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file to `dest` (atomic within one folder).
    pub fn persist(mut self, dest: &Path) -> Result<()> {
        std::fs::rename(&self.path, dest).with_context(|| {
            format!("cannot move {} to {}", self.path.display(), dest.display())
        })?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What to tell a user whose download failed.
pub fn by_hand(url: &str, dest: &Path) -> String {
    format!(
        "without internet access, download {url} on another machine and put it at {} \
         (or set SEQLAB_DATA to the folder that holds it, or set data.path)",
        dest.display()
    )
}

/// Downloads `url` into a temporary file in `dir` (at most `max_bytes`).
/// `dest` is only named in error messages.
pub fn download_to_temp(url: &str, dir: &Path, dest: &Path, max_bytes: u64) -> Result<TempPath> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data folder {}", dir.display()))?;
    let name = dest
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let tmp = TempPath::new(dir, &name);
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .build();
    let response = match agent.get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => {
            bail!(
                "downloading {url} failed: HTTP {code} {}; {}",
                r.status_text(),
                by_hand(url, dest)
            )
        }
        Err(e) => bail!("downloading {url} failed: {e}; {}", by_hand(url, dest)),
    };
    let expected: Option<u64> = response
        .header("Content-Length")
        .and_then(|v| v.trim().parse().ok());
    if let Some(len) = expected.filter(|&l| l > max_bytes) {
        bail!("downloading {url}: the server announces {len} bytes, more than the {max_bytes} allowed; is the URL right?");
    }
    let bar = ProgressBar::with_draw_target(
        expected,
        if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("downloading {name}"));
    let mut out = std::fs::File::create(tmp.path())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    let mut reader = response.into_reader().take(max_bytes + 1);
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0u64;
    loop {
        let n = reader.read(&mut buf).with_context(|| {
            format!(
                "downloading {url} broke off after {got} bytes; try again, or {}",
                by_hand(url, dest)
            )
        })?;
        if n == 0 {
            break;
        }
        got += n as u64;
        if got > max_bytes {
            bail!("downloading {url}: more than {max_bytes} bytes; is the URL right?");
        }
        out.write_all(&buf[..n])
            .with_context(|| format!("cannot write {}", tmp.path().display()))?;
        bar.set_position(got);
    }
    bar.finish_and_clear();
    if let Some(len) = expected.filter(|&l| l != got) {
        bail!(
            "downloading {url} broke off: got {got} of {len} bytes; try again, or {}",
            by_hand(url, dest)
        );
    }
    out.sync_all()?;
    Ok(tmp)
}
