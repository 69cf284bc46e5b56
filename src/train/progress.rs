//! Per-run progress: an indicatif bar on a terminal, one plain line per
//! epoch otherwise (CI, logs), or — in a cell's worker process — one line
//! per event on standard output for the scheduler to draw.
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};

/// Where a run's progress goes.
#[derive(Clone, Copy)]
pub enum Sink<'a> {
    /// A bar under the scheduler's bars on a terminal; plain epoch lines on stderr otherwise.
    Bars(Option<&'a MultiProgress>),
    /// Event lines on stdout (`start N`, `step E S LOSS`, `epoch TEXT`), read by the parent.
    Lines,
}

pub struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    label: String,
}

/// The prefix of every event line a worker writes on stdout.
pub const EVENT: &str = "@seqlab ";

fn event(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{EVENT}{text}");
    let _ = out.flush();
}

impl Progress {
    /// A bar under `multi` when stderr is a terminal, plain lines otherwise.
    pub fn new(sink: Sink, label: &str, total_steps: u64) -> Self {
        let multi = match sink {
            Sink::Bars(m) => m,
            Sink::Lines => {
                event(&format!("start {total_steps}"));
                return Progress {
                    bar: None,
                    lines: true,
                    label: label.to_string(),
                };
            }
        };
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
            lines: false,
            label: label.to_string(),
        }
    }

    /// After each training step.
    pub fn step(&self, epoch: usize, step: usize, running_loss: f64) {
        if self.lines {
            event(&format!("step {epoch} {step} {running_loss}"));
        } else if let Some(b) = &self.bar {
            b.inc(1);
            if step.is_multiple_of(10) {
                b.set_message(format!("epoch {epoch} step {step} loss {running_loss:.4}"));
            }
        }
    }

    /// After each epoch.
    pub fn epoch(&self, line: &str) {
        if self.lines {
            event(&format!("epoch {}", line.replace('\n', " ")));
            return;
        }
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
