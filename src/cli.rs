//! The command line: clap definitions and the hand-over to each stage.
use crate::config;
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "seqlab",
    version,
    about = "Declarative experiment runner for sequence models on libtorch"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command that reads experiment files.
#[derive(Args, Debug, Clone, Default)]
pub struct Overrides {
    /// Override a resolved key, e.g. `--set train.epochs=5` or `--set layers.0.units=64` (repeatable; values are TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Add a grid axis, e.g. `--sweep layers.0.units=16,32,64` (repeatable; values are TOML, bare words are strings); the cells are those of the same `[grid]` line.
    #[arg(long = "sweep", value_name = "KEY=V1,V2,…")]
    pub sweeps: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run every cell of the experiment files (skipping complete ones) and write the report.
    Run(RunArgs),
    /// List experiments and cells, their content ids and whether results are current.
    Plan {
        files: Vec<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
        /// Print each cell's resolved config.
        #[arg(long)]
        show_config: bool,
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// Also estimate each cell's time from a probe: a few training steps on random inputs.
        #[arg(long)]
        time: bool,
    },
    /// Validate files, grid cells and model shapes without loading data or training.
    Check {
        files: Vec<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
        /// Accept cells whose memory estimate exceeds what this machine has.
        #[arg(long)]
        force: bool,
    },
    /// Keras-style model summary: output shapes and parameter counts.
    Describe {
        files: Vec<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Print the JSON Schema of experiment files (for editor completion).
    Schema,
    /// Write results/summary.{csv,md}, index.html and the comparison figures.
    Report {
        #[arg(default_value = "results")]
        results: PathBuf,
        /// A published table (`model,horizon,mse,mae`): write a long-horizon
        /// leaderboard as summary.md, with mse.png and forecast figures.
        #[arg(long)]
        reference: Option<PathBuf>,
        /// The target the leaderboard's forecast figures show.
        #[arg(long, default_value = "OT")]
        target: String,
    },
    /// Compare two results folders; exit 1 when a watched metric regressed (with replicates: significantly).
    Diff(DiffArgs),
    /// Datasets: fetch, inspect, or generate synthetic Jena data.
    #[command(subcommand)]
    Data(DataCommand),
    /// Versions, libtorch location, CUDA and threads.
    Doctor,
    /// Time train steps, validation steps and batches of experiment files.
    Bench(BenchArgs),
    /// Submit the pending cells to Slurm: one job array, then a report job.
    Submit(SubmitArgs),
    /// Where every cell of a results folder stands: complete, failed, running, pending, missing.
    Status {
        #[arg(default_value = "results")]
        results: PathBuf,
    },
    /// Forecast with a trained table cell: the window ending at the file's last row (default), at a time, or a backtest.
    Predict(PredictArgs),
    /// A trained cell's metrics on a split of another file, written to CELL/eval/NAME/.
    Evaluate(EvaluateArgs),
    /// Internal: run one cell read from stdin (the scheduler starts one such process per cell).
    #[command(name = "cell-worker", hide = true)]
    CellWorker {
        #[arg(long)]
        results: PathBuf,
        #[arg(long)]
        threads: usize,
    },
}

impl RunArgs {
    /// The scheduler's options; workers run this very executable.
    pub fn options(&self) -> Result<crate::run::scheduler::RunOptions> {
        Ok(crate::run::scheduler::RunOptions {
            results: self.results.clone(),
            jobs: self.jobs,
            threads: self.threads,
            force: self.force,
            fail_fast: self.fail_fast,
            restart: self.restart,
            only: self.only.clone(),
            worker: std::env::current_exe().context("locating the seqlab executable")?,
        })
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Results root.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Cells run in parallel (default: as many as cores allow with ≥ 1 thread each).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// libtorch intra-op threads per cell (default: cores / jobs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Redo complete cells too.
    #[arg(long)]
    pub force: bool,
    /// Stop scheduling new cells after the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// Discard the checkpoints of incomplete cells: they start over from epoch 1.
    #[arg(long)]
    pub restart: bool,
    /// Only cells whose `experiment/cell` contains this text (exactly that cell when it is a whole `experiment/cell`).
    #[arg(long)]
    pub only: Option<String>,
    /// Skip writing the report at the end.
    #[arg(long)]
    pub no_report: bool,
}

/// `seqlab submit`: the Slurm job array's options as typed.
#[derive(Args, Debug, Clone, Default)]
pub struct SubmitArgs {
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Results root; must be on storage every node sees.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Slurm partition (`sbatch --partition`).
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit per cell (`sbatch --time`, e.g. `2:00:00`).
    #[arg(long)]
    pub time: Option<String>,
    /// CPUs per cell; also the libtorch threads each cell runs with.
    #[arg(long, default_value_t = 1)]
    pub cpus_per_task: usize,
    /// GPUs per cell (`sbatch --gpus-per-task`).
    #[arg(long)]
    pub gpus_per_task: Option<usize>,
    /// At most this many cells run at once (the array's `%K` throttle).
    #[arg(long)]
    pub max_parallel: Option<usize>,
    /// Extra `sbatch` option for both jobs, e.g. `--sbatch-arg=--account=lab` (repeatable).
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
    /// Print the scripts instead of submitting them.
    #[arg(long)]
    pub dry_run: bool,
}

impl SubmitArgs {
    pub fn options(&self) -> crate::run::slurm::SubmitOptions {
        crate::run::slurm::SubmitOptions {
            files: self.files.clone(),
            sets: self.overrides.sets.clone(),
            sweeps: self.overrides.sweeps.clone(),
            results: self.results.clone(),
            partition: self.partition.clone(),
            time: self.time.clone(),
            cpus_per_task: self.cpus_per_task,
            gpus_per_task: self.gpus_per_task,
            max_parallel: self.max_parallel,
            sbatch_args: self.sbatch_args.clone(),
            dry_run: self.dry_run,
        }
    }
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    pub a: PathBuf,
    pub b: PathBuf,
    /// Metrics to watch (default: every best/test value in the summaries).
    #[arg(long)]
    pub metric: Vec<String>,
    /// Allowed worsening: absolute (`0.01`) or relative (`5%`).
    #[arg(long, default_value = "0")]
    pub tolerance: String,
    /// Significance level of Welch's t-test where both sides have ≥ 2 replicates.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Also show timing differences.
    #[arg(long)]
    pub timing: bool,
    /// Print the comparison as JSON (for CI pipelines) instead of text.
    #[arg(long)]
    pub json: bool,
}

impl DiffArgs {
    /// The diff's options, the tolerance and alpha checked.
    pub fn options(&self) -> Result<crate::report::diff::DiffOptions> {
        crate::report::diff::DiffOptions::new(
            self.a.clone(),
            self.b.clone(),
            self.metric.clone(),
            &self.tolerance,
            self.alpha,
            self.timing,
            self.json,
        )
    }
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A complete cell folder, e.g. results/etth1_gru/default.
    pub cell: PathBuf,
    /// Table cells: a table with the cell's columns (CSV, TSV, .csv.gz).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Text cells: a text to classify (repeatable).
    #[arg(long = "text", conflicts_with = "data")]
    pub texts: Vec<String>,
    /// Text cells: a file of texts, one per line, or a CSV / TSV with a text column.
    #[arg(long, conflicts_with = "data")]
    pub input: Option<PathBuf>,
    /// The text column of a CSV / TSV --input (default: the cell's data.text_column, else "text").
    #[arg(long, requires = "input")]
    pub column: Option<String>,
    /// The window whose last input row is at this time.
    #[arg(long, conflicts_with_all = ["last", "from"])]
    pub at: Option<String>,
    /// The window whose last input row is the file's last row (the default).
    #[arg(long, conflicts_with = "from")]
    pub last: bool,
    /// Backtest: every window whose first target lies in [FROM, TO).
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    #[arg(long, requires = "from")]
    pub to: Option<String>,
    /// Write the forecasts here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Draw the forecast (a backtest: truth vs forecast) into this PNG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Write a backtest's metrics (TOML) here.
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// `cpu`, `cuda`, `cuda:N` or `auto` (default: the cell's train.device).
    #[arg(long)]
    pub device: Option<String>,
}

impl PredictArgs {
    pub fn options(&self) -> crate::predict::command::PredictOptions {
        use crate::predict::command::Windows;
        let windows = match (&self.at, &self.from, &self.to) {
            (Some(at), _, _) => Windows::At(at.clone()),
            (None, Some(from), Some(to)) => Windows::Backtest {
                from: from.clone(),
                to: to.clone(),
            },
            _ => Windows::Last,
        };
        crate::predict::command::PredictOptions {
            cell: self.cell.clone(),
            data: self.data.clone(),
            texts: self.texts.clone(),
            input: self.input.clone(),
            column: self.column.clone(),
            windows,
            out: self.out.clone(),
            plot: self.plot.clone(),
            metrics: self.metrics.clone(),
            device: self.device.clone(),
        }
    }
}

#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// A complete cell folder.
    pub cell: PathBuf,
    /// A table with the cell's columns, or (text cells) a labelled collection:
    /// a folder of class folders, its .tar.gz, or a CSV / TSV / JSON-lines file.
    #[arg(long)]
    pub data: PathBuf,
    /// Tables: test / val (the config's splits applied to the file) or all (every
    /// window); default test. Text cells: all (every document), the default.
    #[arg(long)]
    pub split: Option<String>,
    /// The evaluation's folder under CELL/eval/ (default: <file stem>-<split>).
    #[arg(long)]
    pub name: Option<String>,
    /// `cpu`, `cuda`, `cuda:N` or `auto` (default: the cell's train.device).
    #[arg(long)]
    pub device: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Download whatever of the book's datasets is missing from the data directory.
    Fetch {
        /// Leave Jena alone (e.g. runs use a synthetic CSV through `--set data.path=…`).
        #[arg(long)]
        skip_jena: bool,
        /// Leave IMDB alone.
        #[arg(long)]
        skip_imdb: bool,
    },
    /// What is in the data directory (files, rows, checksums); with a PATH,
    /// a table's columns, types, rows, time range, frequency, gaps and missing cells;
    /// for a text collection (a class-per-subfolder folder, its .tar.gz, or a CSV
    /// with --text-column/--label-column): classes, lengths and vocabulary.
    Info {
        path: Option<PathBuf>,
        /// The table's time column (default: the first column that reads as a time).
        #[arg(long)]
        time_column: Option<String>,
        /// The table's series column (long format).
        #[arg(long, default_value = "")]
        series_column: String,
        /// A text CSV / TSV: the column holding the documents (with --label-column).
        #[arg(long, default_value = "")]
        text_column: String,
        /// A text CSV / TSV: the column holding the classes (with --text-column).
        #[arg(long, default_value = "")]
        label_column: String,
    },
    /// Write a deterministic synthetic Jena-format CSV.
    SynthJena {
        #[arg(long, default_value_t = 420_551)]
        rows: usize,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 2009)]
        seed: u64,
    },
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Timed train steps per repetition (validation: 3/5 of it).
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Repetitions; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// CSV to append results to.
    #[arg(long, default_value = "benches/results.csv")]
    pub out: PathBuf,
    /// libtorch intra-op threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Loads and expands every file; all errors of all files together.
pub fn plan_files(
    files: &[PathBuf],
    overrides: &Overrides,
) -> Result<Vec<config::Cell>, Vec<String>> {
    let mut cells = Vec::new();
    let mut errors = Vec::new();
    if files.is_empty() {
        errors
            .push("no experiment files given; e.g. `seqlab check experiments/*.toml`".to_string());
    }
    for file in files {
        let expanded = config::load(file, &overrides.sets).and_then(|mut l| {
            config::sweep::apply(&mut l, &overrides.sweeps)?;
            config::expand(&l)
        });
        match expanded {
            Ok(c) => cells.extend(c),
            Err(e) => errors.extend(e.0),
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in &cells {
        if !seen.insert(c.key()) {
            errors.push(format!(
                "experiment `{}` cell `{}` appears twice; give each file a unique [experiment] name",
                c.experiment, c.name
            ));
        }
    }
    if errors.is_empty() {
        Ok(cells)
    } else {
        Err(errors)
    }
}

fn print_errors(errors: &[String]) -> ! {
    for e in errors {
        eprintln!("error: {e}");
    }
    eprintln!("{} error(s); nothing was run", errors.len());
    std::process::exit(1);
}

/// Every cell of the files with its model shapes checked; on any error,
/// prints them all and exits 1 before anything runs.
fn checked_cells(files: &[PathBuf], overrides: &Overrides, force: bool) -> Vec<config::Cell> {
    let cells = plan_files(files, overrides).unwrap_or_else(|e| print_errors(&e));
    let errors: Vec<String> = first_replicates(&cells)
        .flat_map(|c| {
            crate::model::infer(&c.config)
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(move |m| format!("{}/{}: {m}", c.experiment, c.name))
        })
        .collect();
    if !errors.is_empty() {
        print_errors(&errors);
    }
    let errors = check_tables(&cells);
    if !errors.is_empty() {
        print_errors(&errors);
    }
    if !force {
        let errors = check_memory(&cells);
        if !errors.is_empty() {
            print_errors(&errors);
        }
    }
    cells
}

/// Cells whose memory estimate exceeds what the machine has available.
fn check_memory(cells: &[config::Cell]) -> Vec<String> {
    use crate::model::memory::{self, Pool};
    first_replicates(cells)
        .filter_map(|c| {
            let pool = Pool::of_config(&c.config);
            let limit = memory::available(pool)?;
            let estimate = memory::estimate(&c.config).ok()?;
            memory::check_fits(&estimate, limit, pool)
                .err()
                .map(|e| format!("{}/{}: {e}", c.experiment, c.name))
        })
        .collect()
}

/// Reads every distinct table (`source = "csv"`) the cells use and cuts its
/// windows, and encodes every text collection (`source = "text"`) and checks
/// its classes against the model's output, so bad input stops the command
/// before anything runs or is written.
fn check_tables(cells: &[config::Cell]) -> Vec<String> {
    let mut seen: Vec<&config::CsvData> = Vec::new();
    let mut texts: Vec<&config::TextData> = Vec::new();
    let mut errors = Vec::new();
    for c in cells {
        if let config::DataSpec::Text(t) = &c.config.data {
            if texts.contains(&t.as_ref()) {
                continue;
            }
            texts.push(t.as_ref());
            let classes = crate::data::text::check_collection(t);
            let checked = classes.and_then(|classes| {
                let inferred =
                    crate::model::infer(&c.config).map_err(|e| anyhow::anyhow!(e.join("; ")))?;
                crate::model::shape::check_classes(&inferred, c.config.train.loss, &classes)
                    .map_err(|e| anyhow::anyhow!(e))
            });
            if let Err(e) = checked {
                errors.push(format!("{}/{}: {e:#}", c.experiment, c.name));
            }
            continue;
        }
        let config::DataSpec::Csv(csv) = &c.config.data else {
            continue;
        };
        if seen.contains(&csv.as_ref()) {
            continue;
        }
        seen.push(csv.as_ref());
        if let Err(e) = crate::data::series::check(csv) {
            errors.push(format!("{}/{}: {e:#}", c.experiment, c.name));
        }
    }
    errors
}

/// One unit per cell: replicates share their cell's model and data.
fn first_replicates(cells: &[config::Cell]) -> impl Iterator<Item = &config::Cell> {
    cells
        .iter()
        .filter(|c| c.replicate.is_none_or(|r| r.index == 0))
}

/// Runs the parsed command; the process exit code comes back.
pub fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Check {
            files,
            overrides,
            force,
        } => {
            let cells = checked_cells(&files, &overrides, force);
            let distinct = first_replicates(&cells).count();
            let runs = if cells.len() > distinct {
                format!(" ({} runs with their replicates)", cells.len())
            } else {
                String::new()
            };
            println!(
                "ok: {} file(s), {distinct} cell(s) checked{runs}",
                files.len(),
            );
            Ok(0)
        }
        Command::Plan {
            files,
            overrides,
            show_config,
            results,
            time,
        } => {
            let cells = plan_files(&files, &overrides).unwrap_or_else(|e| print_errors(&e));
            let threads = crate::run::scheduler::budget(cells.len(), None, None).1;
            for c in &cells {
                let state = crate::results::store::state(&results, c);
                let memory = crate::model::memory::estimate(&c.config)
                    .map(|e| crate::model::memory::human(e.total()))
                    .unwrap_or_else(|_| "?".into());
                let time = if time {
                    crate::train::probe::cell_seconds(&c.config, threads)
                        .map(|s| {
                            format!(
                                "  time {} (estimate)",
                                crate::train::probe::human_seconds(s)
                            )
                        })
                        .unwrap_or_else(|_| "  time ?".into())
                } else {
                    String::new()
                };
                println!(
                    "{:<28} {:<32} {}  {:<22}  memory {memory}{time}",
                    c.experiment,
                    c.unit(),
                    c.id,
                    state.label(),
                );
                if show_config {
                    println!("{}", c.config_toml());
                }
            }
            Ok(0)
        }
        Command::Describe { files, overrides } => {
            let cells = plan_files(&files, &overrides).unwrap_or_else(|e| print_errors(&e));
            for c in first_replicates(&cells) {
                println!("{} / {}", c.experiment, c.name);
                match crate::model::describe(&c.config) {
                    Ok(t) => println!("{t}"),
                    Err(e) => print_errors(&e),
                }
            }
            Ok(0)
        }
        Command::Schema => {
            let schema = schemars::schema_for!(config::Config);
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(0)
        }
        Command::Doctor => {
            print!("{}", crate::doctor::report()?);
            Ok(0)
        }
        Command::Data(cmd) => {
            let dir = crate::data::data_dir();
            match cmd {
                DataCommand::Fetch {
                    skip_jena,
                    skip_imdb,
                } => {
                    if !skip_jena {
                        let p = crate::data::fetch::locate_jena("", &dir)?;
                        println!("jena: {}", p.display());
                    }
                    if !skip_imdb {
                        let p = crate::data::fetch::locate_imdb("", &dir)?;
                        println!("imdb: {}", p.display());
                    }
                }
                DataCommand::Info { path: None, .. } => print!("{}", crate::data::info(&dir)?),
                DataCommand::Info {
                    path: Some(path),
                    text_column,
                    label_column,
                    ..
                } if crate::data::text_info::is_text(
                    &path,
                    !text_column.is_empty() || !label_column.is_empty(),
                ) =>
                {
                    print!(
                        "{}",
                        crate::data::text_info::text_info(&path, &text_column, &label_column)?
                    )
                }
                DataCommand::Info {
                    path: Some(path),
                    time_column,
                    series_column,
                    ..
                } => print!(
                    "{}",
                    crate::data::describe::table_info(
                        &path,
                        time_column.as_deref(),
                        &series_column
                    )?
                ),
                DataCommand::SynthJena { rows, out, seed } => {
                    crate::data::synth::write_synthetic_jena(rows, seed, &out)
                        .with_context(|| format!("writing {}", out.display()))?;
                    println!("wrote {rows} synthetic Jena rows to {}", out.display());
                }
            }
            Ok(0)
        }
        Command::Run(args) => {
            let cells = checked_cells(&args.files, &args.overrides, args.force);
            let code = crate::run::scheduler::run(cells, &args.options()?)?;
            // The report after the run, unless asked not to or interrupted.
            if !args.no_report && code != 130 {
                crate::report::write_all(&args.results)?;
                println!("report: {}", args.results.join("index.html").display());
            }
            Ok(code)
        }
        Command::CellWorker { results, threads } => {
            let stop = crate::run::scheduler::worker_stop_flag();
            crate::run::worker::serve(&results, threads, &stop)
        }
        Command::Report {
            results,
            reference,
            target,
        } => {
            if !results.is_dir() {
                bail!(
                    "{}: no such results folder; run `seqlab run …` first",
                    results.display()
                );
            }
            crate::report::write_all(&results)?;
            println!("report written to {}", results.join("index.html").display());
            if let Some(reference) = reference {
                let published = crate::report::leaderboard::read_reference(&reference)?;
                crate::report::leaderboard::write(
                    &results,
                    &published,
                    &reference.display().to_string(),
                    &target,
                )?;
                println!(
                    "leaderboard written to {}",
                    results.join("summary.md").display()
                );
            }
            Ok(0)
        }
        Command::Diff(args) => crate::report::diff::run(&args.options()?),
        Command::Bench(args) => {
            let cells =
                plan_files(&args.files, &args.overrides).unwrap_or_else(|e| print_errors(&e));
            let cells: Vec<config::Cell> = first_replicates(&cells).cloned().collect();
            crate::train::bench::run(
                &cells,
                &crate::train::bench::BenchOptions {
                    steps: args.steps,
                    repeat: args.repeat,
                    out: args.out.clone(),
                    threads: args.threads,
                    sets: args.overrides.sets.clone(),
                },
            )
        }
        Command::Submit(args) => {
            // The cluster's nodes, not this machine, decide what fits.
            let cells = checked_cells(&args.files, &args.overrides, true);
            crate::run::slurm::submit(&cells, &args.options())
        }
        Command::Status { results } => crate::run::status::print(&results),
        Command::Predict(args) => crate::predict::command::predict(&args.options()),
        Command::Evaluate(args) => {
            crate::predict::command::evaluate(&crate::predict::command::EvaluateOptions {
                cell: args.cell,
                data: args.data,
                split: args.split,
                name: args.name,
                device: args.device,
            })
        }
    }
}
