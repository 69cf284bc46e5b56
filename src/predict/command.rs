//! The two commands as the command line hands them over: options types
//! owned by this stage, and what each prints or writes. Everything is
//! computed before anything is written, so an error leaves no file behind.
use super::evaluate::{self, Split};
use super::{forecast, load_table, rows, text};
use anyhow::Result;
use std::io::Write as _;
use std::path::PathBuf;

/// Which windows `seqlab predict` forecasts.
#[derive(Debug, Clone, PartialEq)]
pub enum Windows {
    /// The window ending after the file's last row.
    Last,
    /// The window whose last input row is at this time.
    At(String),
    /// Every window whose first target lies in `[from, to)`.
    Backtest { from: String, to: String },
}

#[derive(Debug, Clone)]
pub struct PredictOptions {
    pub cell: PathBuf,
    /// A table with the cell's columns (table cells).
    pub data: Option<PathBuf>,
    /// Texts to classify (text cells): given one by one…
    pub texts: Vec<String>,
    /// …or read from a file: one per line, or a CSV / TSV column.
    pub input: Option<PathBuf>,
    /// The input file's text column (default: the cell's `data.text_column`, else `text`).
    pub column: Option<String>,
    pub windows: Windows,
    /// The forecast CSV; standard output when `None`.
    pub out: Option<PathBuf>,
    pub plot: Option<PathBuf>,
    /// A backtest's metrics as TOML (they also go to standard error).
    pub metrics: Option<PathBuf>,
    pub device: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EvaluateOptions {
    pub cell: PathBuf,
    pub data: PathBuf,
    /// `test`, `val` or `all`; default: `test` for tables, `all` for texts.
    pub split: Option<String>,
    pub name: Option<String>,
    pub device: Option<String>,
}

/// `seqlab predict`: forecasts as CSV, optionally a figure and metrics.
pub fn predict(o: &PredictOptions) -> Result<i32> {
    let trained = crate::results::Trained::open(&o.cell)?;
    if text::is_text_cell(&trained) {
        return classify(trained, o);
    }
    if !o.texts.is_empty() || o.input.is_some() {
        anyhow::bail!(
            "{}: a table model (data.source = \"csv\"); --text and --input are for text classifiers — give a table with --data",
            o.cell.display()
        );
    }
    let Some(data) = &o.data else {
        anyhow::bail!(
            "{}: a table model; give the rows to forecast from with --data FILE",
            o.cell.display()
        );
    };
    let loaded = load_table(trained, o.device.as_deref())?;
    let rows = match o.windows {
        Windows::Last => rows::read_last(&loaded, data)?,
        _ => rows::read(&loaded, data)?,
    };
    let (lines, metrics) = match &o.windows {
        Windows::Last => (forecast::at(&loaded, &rows, rows.table.rows)?, None),
        Windows::At(t) => (forecast::at(&loaded, &rows, rows.row_at(t)? + 1)?, None),
        Windows::Backtest { from, to } => {
            let b = forecast::backtest(
                &loaded,
                &rows,
                rows.row_from(from, "--from")?,
                rows.row_from(to, "--to")?,
            )?;
            let text = format!(
                "windows = {}\n\n{}",
                b.windows,
                forecast::metrics_toml("backtest", &b.metrics)
            );
            (b.lines, Some(text))
        }
    };
    let csv = forecast::csv(&rows, &lines);
    if let Some(path) = &o.plot {
        let tmp = path.with_file_name(format!(
            ".{}.tmp-{}.png",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("plot"),
            std::process::id()
        ));
        let drawn = match &o.windows {
            Windows::Backtest { .. } => forecast::plot_series(&rows, &lines, 1, "backtest", &tmp),
            _ => forecast::plot_window(&loaded, &rows, &lines, &tmp),
        };
        drawn
            .and_then(|_| Ok(std::fs::rename(&tmp, path)?))
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })?;
    }
    if let (Some(path), Some(text)) = (&o.metrics, &metrics) {
        crate::results::store::write_atomic(path, text.as_bytes())?;
    }
    if let Some(text) = &metrics {
        eprint!("{text}");
    }
    match &o.out {
        Some(path) => crate::results::store::write_atomic(path, csv.as_bytes())?,
        None => std::io::stdout().write_all(csv.as_bytes())?,
    }
    Ok(0)
}

/// `seqlab predict` on a text cell: a label and class probabilities per text.
fn classify(trained: crate::results::Trained, o: &PredictOptions) -> Result<i32> {
    if o.data.is_some() || o.plot.is_some() || o.metrics.is_some() {
        anyhow::bail!(
            "{}: a text classifier; --data, --plot and --metrics are for table models — give texts with --text or --input",
            o.cell.display()
        );
    }
    let column = o
        .column
        .clone()
        .unwrap_or_else(|| match &trained.config.data {
            crate::config::DataSpec::Text(t) if !t.text_column.is_empty() => t.text_column.clone(),
            _ => "text".into(),
        });
    let mut texts = o.texts.clone();
    if let Some(path) = &o.input {
        texts.extend(text::read_texts(path, &column)?);
    }
    if texts.is_empty() {
        anyhow::bail!(
            "{}: nothing to classify; give texts with --text \"…\" (repeatable) or --input FILE",
            o.cell.display()
        );
    }
    let classifier = text::load(trained, o.device.as_deref())?;
    let probs = text::classify(&classifier, &texts);
    let csv = text::csv(classifier.classes(), &texts, &probs)?;
    match &o.out {
        Some(path) => crate::results::store::write_atomic(path, csv.as_bytes())?,
        None => std::io::stdout().write_all(csv.as_bytes())?,
    }
    Ok(0)
}

/// `seqlab evaluate`: metrics and a figure in `<cell>/eval/<name>/`.
pub fn evaluate(o: &EvaluateOptions) -> Result<i32> {
    let trained = crate::results::Trained::open(&o.cell)?;
    if text::is_text_cell(&trained) {
        let split = Split::parse(o.split.as_deref().unwrap_or("all"))?;
        if split != Split::All {
            anyhow::bail!(
                "--split {}: a text classifier is evaluated on every labelled document of the file (--split all)",
                split.name()
            );
        }
        let name = evaluate::folder_name(&o.data, split, o.name.as_deref())?;
        let classifier = text::load(trained, o.device.as_deref())?;
        let e = text::evaluate(&classifier, &o.data, &name)?;
        print!(
            "{} document(s)\n{}",
            e.documents,
            forecast::metrics_toml("all", &e.metrics)
        );
        println!("written to {}", e.dir.display());
        return Ok(0);
    }
    let split = Split::parse(o.split.as_deref().unwrap_or("test"))?;
    let loaded = load_table(trained, o.device.as_deref())?;
    let e = evaluate::run(&loaded, &o.data, split, o.name.as_deref())?;
    print!(
        "{} window(s)\n{}",
        e.windows,
        forecast::metrics_toml(split.name(), &e.metrics)
    );
    println!("written to {}", e.dir.display());
    Ok(0)
}
