//! Per-run progress: an indicatif bar on a terminal, one plain line per
//! epoch otherwise (CI, logs).
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;

pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
}

impl Progress {
    /// A bar under `multi` when stderr is a terminal, plain lines otherwise.
    pub fn new(multi: Option<&MultiProgress>, label: &str, total_steps: u64) -> Self {
        let bar = multi.filter(|_| std::io::stderr().is_terminal()).map(|m| {
            let b = m.add(ProgressBar::new(total_steps));
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:.bold} [{bar:30}] {pos}/{len} {msg} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_prefix(label.to_string());
            b
        });
        Progress {
            bar,
            label: label.to_string(),
        }
    }

    /// After each training step.
    pub fn step(&self, epoch: usize, step: usize, running_loss: f64) {
        if let Some(b) = &self.bar {
            b.inc(1);
            if step.is_multiple_of(10) {
                b.set_message(format!("epoch {epoch} step {step} loss {running_loss:.4}"));
            }
        }
    }

    /// After each epoch.
    pub fn epoch(&self, line: &str) {
        match &self.bar {
            Some(b) => b.set_message(line.to_string()),
            None => eprintln!("{}: {line}", self.label),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
