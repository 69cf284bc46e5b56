//! A new file read the way the cell read its training file: the same
//! columns in the same order (checked), missing cells filled by the same
//! policy, normalised with the saved statistics (never refitted), and
//! padded with `delay + horizon` unknown rows so a window may end at the
//! file's last row and still forecast beyond it.
use super::Loaded;
use crate::data::series;
use crate::data::timestamp;
use crate::data::window::{matrix_on, ListOrder, ListSelector, Windows};
use crate::data::Table;
use anyhow::{bail, Context, Result};
use tch::Tensor;

/// The rows of a new file, in original units and normalised on the device.
pub struct Rows {
    pub file: String,
    pub table: Table,
    /// Seconds between rows: the cell's frequency, else inferred from the file.
    pub freq: Option<i64>,
    /// `(rows + pad, features)` and `(rows + pad, targets)`, normalised; pad rows are NaN.
    inputs: Tensor,
    targets: Tensor,
}

/// Reads `path` with the cell's columns and statistics.
pub fn read(loaded: &Loaded, path: &std::path::Path) -> Result<Rows> {
    read_rows(loaded, path, None)
}

/// [`read`] of only the file's last rows, enough for the window ending
/// after its last row: a large plain CSV / TSV is not read whole (any other
/// file, or a tail that does not read cleanly, is read whole).
pub fn read_last(loaded: &Loaded, path: &std::path::Path) -> Result<Rows> {
    let c = &loaded.table;
    let tail = super::tail::copy(path, c.lookback + c.delay + c.horizon + 16);
    if let Some(tmp) = &tail {
        if let Ok(rows) = read_rows(loaded, path, Some(tmp.path())) {
            return Ok(rows);
        }
    }
    read_rows(loaded, path, None)
}

/// Reads `path` (or `part`, a copy of some of its rows, named as `path`).
fn read_rows(
    loaded: &Loaded,
    path: &std::path::Path,
    part: Option<&std::path::Path>,
) -> Result<Rows> {
    let file = path.display().to_string();
    let pre = &loaded.preprocess;
    let mut cfg = loaded.table.clone();
    cfg.path = part.unwrap_or(path).display().to_string();
    if !cfg.series_column.is_empty() {
        bail!("{}: the cell was trained on several series (data.series_column = {:?}); predict reads one series at a time — give it a file of one series without that column, or train without data.series_column", loaded.trained.dir.display(), cfg.series_column);
    }
    // Exactly the saved columns: features then targets, as training listed them.
    cfg.features = pre.features.clone();
    let mut table = series::read(&cfg).with_context(|| {
        format!(
            "{file}: the cell {} was trained on the columns {}",
            loaded.trained.dir.display(),
            pre.columns.join(", ")
        )
    })?;
    if table.columns != pre.columns {
        bail!(
            "{file}: the columns read are {} but the cell was trained on {} (in this order)",
            table.columns.join(", "),
            pre.columns.join(", ")
        );
    }
    if table.rows == 0 {
        bail!("{file}: no rows");
    }
    series::fill_missing(&mut table, cfg.missing, &file)?;
    let freq = match &pre.freq {
        Some(f) => Some(timestamp::parse_freq(f).map_err(|e| {
            anyhow::anyhow!(
                "{}: freq: {e}",
                loaded
                    .trained
                    .dir
                    .join(crate::results::PREPROCESS)
                    .display()
            )
        })?),
        None => table.times.as_deref().and_then(timestamp::infer_freq),
    };
    let f = table.columns.len();
    let pad = cfg.delay + cfg.horizon;
    let mut values = vec![f32::NAN; (table.rows + pad) * f];
    for r in 0..table.rows {
        for c in 0..f {
            values[r * f + c] =
                ((table.values[r * f + c] as f64 - pre.shift[c]) / pre.scale[c]) as f32;
        }
    }
    let all = matrix_on(&values, f, loaded.device);
    let select = |cols: Vec<usize>| {
        let index: Vec<i64> = cols.into_iter().map(|c| c as i64).collect();
        all.index_select(1, &Tensor::from_slice(&index).to_device(loaded.device))
            .contiguous()
    };
    Ok(Rows {
        file,
        freq,
        inputs: select(loaded.feature_columns()),
        targets: select(loaded.target_columns()),
        table,
    })
}

impl Rows {
    /// Windows ending at `ends`, batched as the cell's config says.
    pub fn windows(&self, loaded: &Loaded, ends: Vec<i64>) -> Windows {
        let c = &loaded.table;
        Windows::from_list(
            &self.inputs,
            &self.targets,
            c.horizon,
            c.lookback,
            c.step,
            ListSelector::new(ends, c.batch_size, c.delay, ListOrder::Sequential),
            c.reverse,
        )
    }

    /// The time of row `r`, extrapolated by the frequency past the last row.
    pub fn time_of(&self, r: usize) -> Option<i64> {
        let times = self.table.times.as_ref()?;
        match times.get(r) {
            Some(t) => Some(*t),
            None => {
                let last = *times.last()?;
                Some(last + self.freq? * (r + 1 - times.len()) as i64)
            }
        }
    }

    /// A row's time as printed (`YYYY-MM-DD HH:MM:SS`), or its row number without a time column.
    pub fn label(&self, r: usize) -> String {
        match self.time_of(r) {
            Some(t) => timestamp::format(t),
            None if self.table.times.is_some() => String::new(),
            None => r.to_string(),
        }
    }

    /// The row of an exact timestamp.
    pub fn row_at(&self, text: &str) -> Result<usize> {
        let Some(times) = &self.table.times else {
            bail!("--at needs a time column: the cell was trained without data.time_column; use --last");
        };
        let Some(t) = timestamp::parse(text, "") else {
            bail!("--at {text:?}: not a time; use ISO 8601 such as \"2018-02-20 23:00\"");
        };
        times.iter().position(|&x| x == t).with_context(|| {
            format!(
                "--at {text:?}: {} has no row at {}; its rows run from {} to {}",
                self.file,
                timestamp::format(t),
                timestamp::format(times[0]),
                timestamp::format(*times.last().expect("rows"))
            )
        })
    }

    /// The first row at or after `text` (rows past the end: the row count).
    pub fn row_from(&self, text: &str, flag: &str) -> Result<usize> {
        let Some(times) = &self.table.times else {
            bail!("{flag} needs a time column: the cell was trained without data.time_column");
        };
        let Some(t) = timestamp::parse(text, "") else {
            bail!("{flag} {text:?}: not a time; use ISO 8601 such as \"2018-02-01\" or \"2018-02-01 12:00\"");
        };
        Ok(times.partition_point(|&x| x < t))
    }

    /// Why the window ending at row `end` cannot be read, if it cannot:
    /// too few rows before it, a missing cell or a time gap among its inputs.
    pub fn check_inputs(&self, loaded: &Loaded, end: usize) -> Result<()> {
        let lookback = loaded.table.lookback;
        if end < lookback || end > self.table.rows {
            bail!(
                "{}: a window needs {lookback} rows before its end, and the window ending at row {end} has {}; give a later --at or a longer file",
                self.file,
                end.min(self.table.rows)
            );
        }
        let f = self.table.columns.len();
        for r in end - lookback..end {
            if let Some(c) = (0..f).find(|&c| self.table.values[r * f + c].is_nan()) {
                bail!(
                    "{}:{}: column {:?} is missing in the window's inputs; fill it in, or predict at another time",
                    self.file,
                    self.table.lines[r],
                    self.table.columns[c]
                );
            }
            if let (Some(times), Some(freq)) = (&self.table.times, self.freq) {
                if r > end - lookback && times[r] - times[r - 1] != freq {
                    bail!(
                        "{}:{}: a time gap before {} (rows every {} expected) inside the window's inputs; predict at another time",
                        self.file,
                        self.table.lines[r],
                        timestamp::format(times[r]),
                        timestamp::format_freq(freq)
                    );
                }
            }
        }
        Ok(())
    }
}
