//! Slurm: `seqlab submit` turns the pending cells of a plan into one job
//! array (one task per cell or replicate, each a `seqlab run --only
//! <experiment/cell[/seed=S]>` against the shared results root) plus a report job that runs once the
//! array has ended, and `seqlab status` asks `squeue` which cells are queued
//! or running. This is the only module that knows about Slurm.
//!
//! Each submission lives in `<results>/.slurm/<timestamp>/`:
//!
//! ```text
//! cells          one `experiment/cell` (or `experiment/cell/seed=S`) a line; task i runs line i+1
//! array.sbatch   the job array script
//! report.sbatch  the report job script (`--dependency=afterany:<array>`)
//! jobs           `array <id>` and `report <id>` once submitted
//! logs/          `<array>_<task>.out` per cell, `report-<id>.out`
//! ```
use crate::config::Cell;
use crate::results::store::{self, State};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `seqlab submit`: options of the Slurm job array (the command line fills them).
#[derive(Debug, Clone, Default)]
pub struct SubmitOptions {
    /// The experiment files, passed on to every task.
    pub files: Vec<PathBuf>,
    /// `--set` overrides, passed on to every task.
    pub sets: Vec<String>,
    /// `--sweep` axes, passed on to every task.
    pub sweeps: Vec<String>,
    /// Results root; must be on storage every node sees.
    pub results: PathBuf,
    pub partition: Option<String>,
    pub time: Option<String>,
    /// CPUs per cell; also the libtorch threads each cell runs with.
    pub cpus_per_task: usize,
    pub gpus_per_task: Option<usize>,
    /// At most this many cells run at once (the array's `%K` throttle).
    pub max_parallel: Option<usize>,
    /// Extra `sbatch` options for both jobs.
    pub sbatch_args: Vec<String>,
    /// Print the scripts instead of submitting them.
    pub dry_run: bool,
}

/// Everything the two scripts need, with absolute paths.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPlan {
    pub binary: PathBuf,
    pub files: Vec<PathBuf>,
    pub sets: Vec<String>,
    /// `--sweep` arguments, passed on to every task.
    pub sweeps: Vec<String>,
    pub root: PathBuf,
    /// `<root>/.slurm/<timestamp>`.
    pub folder: PathBuf,
    /// `experiment/cell` of each task, in task order.
    pub cells: Vec<String>,
    pub partition: Option<String>,
    pub time: Option<String>,
    pub cpus_per_task: usize,
    pub gpus_per_task: Option<usize>,
    pub max_parallel: Option<usize>,
    pub sbatch_args: Vec<String>,
}

/// Where a cell stands in the Slurm queue.
#[derive(Debug, Clone, PartialEq)]
pub enum Queued {
    /// Waiting to start, as job `<array>_<task>`.
    Pending(String),
    Running(String),
}

/// Quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=,:+@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn path_text(p: &Path) -> String {
    shell_quote(&p.display().to_string())
}

/// `0-<n-1>` with `%K` when throttled.
pub fn array_spec(tasks: usize, max_parallel: Option<usize>) -> String {
    let mut spec = format!("0-{}", tasks.saturating_sub(1));
    if let Some(k) = max_parallel {
        let _ = write!(spec, "%{k}");
    }
    spec
}

/// `#SBATCH` lines shared by both jobs: partition, time, extra args.
fn common_directives(plan: &JobPlan) -> String {
    let mut s = String::new();
    if let Some(p) = &plan.partition {
        let _ = writeln!(s, "#SBATCH --partition={p}");
    }
    if let Some(t) = &plan.time {
        let _ = writeln!(s, "#SBATCH --time={t}");
    }
    for a in &plan.sbatch_args {
        let _ = writeln!(s, "#SBATCH {a}");
    }
    s
}

/// The job array script: task i runs line i+1 of `cells`.
pub fn array_script(plan: &JobPlan) -> String {
    let mut s = String::from("#!/bin/bash\n");
    let _ = writeln!(s, "#SBATCH --job-name=seqlab");
    let _ = writeln!(
        s,
        "#SBATCH --array={}",
        array_spec(plan.cells.len(), plan.max_parallel)
    );
    let _ = writeln!(
        s,
        "#SBATCH --output={}/logs/%A_%a.out",
        plan.folder.display()
    );
    let _ = writeln!(s, "#SBATCH --ntasks=1");
    let _ = writeln!(s, "#SBATCH --cpus-per-task={}", plan.cpus_per_task);
    if let Some(g) = plan.gpus_per_task {
        let _ = writeln!(s, "#SBATCH --gpus-per-task={g}");
    }
    // A warning before the time limit, and requeueable: see REQUEUE.
    let _ = writeln!(s, "#SBATCH --signal=B:USR1@{WARNING_SECONDS}");
    let _ = writeln!(s, "#SBATCH --requeue");
    let _ = writeln!(s, "#SBATCH --open-mode=append");
    s.push_str(&common_directives(plan));
    s.push_str(
        "# One seqlab cell per task; the cell list is `cells`, one `experiment/cell` a line.\n",
    );
    s.push_str("set -euo pipefail\n");
    let _ = writeln!(
        s,
        "cell=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {})",
        path_text(&plan.folder.join("cells"))
    );
    s.push_str("echo \"seqlab: task $SLURM_ARRAY_TASK_ID runs $cell on $(hostname)\"\n");
    let mut cmd = format!("{} run", path_text(&plan.binary));
    for f in &plan.files {
        let _ = write!(cmd, " {}", path_text(f));
    }
    let _ = write!(
        cmd,
        " --only \"$cell\" --jobs 1 --threads {} --results {} --no-report",
        plan.cpus_per_task,
        path_text(&plan.root)
    );
    for set in &plan.sets {
        let _ = write!(cmd, " --set {}", shell_quote(set));
    }
    for sweep in &plan.sweeps {
        let _ = write!(cmd, " --sweep {}", shell_quote(sweep));
    }
    s.push_str(&cmd);
    s.push_str(" &\n");
    s.push_str(REQUEUE);
    s
}

/// Seconds before the time limit at which Slurm warns a task (SIGUSR1 to
/// the batch shell); a later `--sbatch-arg=--signal=…` overrides it.
pub const WARNING_SECONDS: u32 = 120;

/// The end of the array script: seqlab runs in the background so that the
/// shell can take Slurm's warning before the time limit (USR1) or a TERM
/// (`scancel`, preemption, the limit itself) and pass a TERM on: the cell
/// stops at the next step boundary and keeps its last end-of-epoch
/// checkpoint (`seqlab run` exits 130). After the warning the task then
/// requeues itself, and resumes from the checkpoint when it runs again;
/// after a TERM alone it ends (a cancelled task stays cancelled; the next
/// `seqlab submit`, or Slurm's own requeue of a preempted job, resumes it).
/// Any other ending is the task's own exit status.
const REQUEUE: &str = r#"pid=$!
warned=0
trap 'warned=1; kill -TERM "$pid" 2>/dev/null || true' USR1
trap 'kill -TERM "$pid" 2>/dev/null || true' TERM
rc=0
wait "$pid" || rc=$?
# A trapped signal ends `wait` early: wait for seqlab itself.
while kill -0 "$pid" 2>/dev/null; do rc=0; wait "$pid" || rc=$?; done
if [[ $warned -eq 1 && $rc -eq 130 ]]; then
    echo "seqlab: task $SLURM_ARRAY_TASK_ID stopped with its checkpoint before the time limit; requeueing it"
    scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
    exit 0
fi
exit "$rc"
"#;

/// The report job script; submitted with `--dependency=afterany:<array>`.
pub fn report_script(plan: &JobPlan) -> String {
    let mut s = String::from("#!/bin/bash\n");
    let _ = writeln!(s, "#SBATCH --job-name=seqlab-report");
    let _ = writeln!(
        s,
        "#SBATCH --output={}/logs/report-%j.out",
        plan.folder.display()
    );
    let _ = writeln!(s, "#SBATCH --ntasks=1");
    let _ = writeln!(s, "#SBATCH --cpus-per-task=1");
    s.push_str(&common_directives(plan));
    s.push_str("set -euo pipefail\n");
    let _ = writeln!(
        s,
        "exec {} report {}",
        path_text(&plan.binary),
        path_text(&plan.root)
    );
    s
}

/// The `sbatch` command line that submits the report job after `array_id`.
pub fn report_dependency(array_id: u64) -> String {
    format!("--dependency=afterany:{array_id}")
}

/// The job id in `sbatch` output: `--parsable` (`123` or `123;cluster`) or
/// the plain `Submitted batch job 123`.
pub fn parse_job_id(stdout: &str) -> Option<u64> {
    let line = stdout.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let id = line
        .strip_prefix("Submitted batch job ")
        .unwrap_or(line)
        .split(';')
        .next()?;
    id.trim().parse().ok()
}

/// Parses `squeue -h -r -o '%F %K %T'` lines into (array id, task, state).
pub fn parse_queue(stdout: &str) -> Vec<(u64, usize, String)> {
    stdout
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let job = it.next()?.parse().ok()?;
            let task = it.next()?.parse().ok()?;
            Some((job, task, it.next()?.to_string()))
        })
        .collect()
}

/// `YYYYmmdd-HHMMSS` in UTC.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::calendar::civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `<root>/.slurm/<timestamp>`, suffixed `-2`, `-3`… when taken.
fn new_folder(root: &Path) -> PathBuf {
    let base = root.join(".slurm").join(timestamp());
    let mut folder = base.clone();
    let mut n = 2;
    while folder.exists() {
        folder = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    folder
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p)
        .with_context(|| format!("{}: cannot make the path absolute", p.display()))
}

/// The folder of each earlier submission, oldest first.
pub fn submissions(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join(".slurm"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// The cells a submission folder lists.
pub fn listed_cells(folder: &Path) -> Vec<String> {
    std::fs::read_to_string(folder.join("cells"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The array job id recorded in a submission folder.
fn array_job(folder: &Path) -> Option<u64> {
    std::fs::read_to_string(folder.join("jobs"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("array ")?.trim().parse().ok())
}

/// Queued and running cells of every submission, or `None` when `squeue`
/// cannot be asked (Slurm not installed or not reachable).
pub fn queued_cells(root: &Path) -> Option<BTreeMap<String, Queued>> {
    let out = Command::new("squeue")
        .args(["-h", "-r", "-o", "%F %K %T"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let queue = parse_queue(&String::from_utf8_lossy(&out.stdout));
    let mut cells = BTreeMap::new();
    for folder in submissions(root) {
        let Some(job) = array_job(&folder) else {
            continue;
        };
        let listed = listed_cells(&folder);
        for (_, task, state) in queue.iter().filter(|(j, _, _)| *j == job) {
            let Some(cell) = listed.get(*task) else {
                continue;
            };
            let id = format!("{job}_{task}");
            let q = if state == "PENDING" {
                Queued::Pending(id)
            } else {
                Queued::Running(id)
            };
            cells.insert(cell.clone(), q);
        }
    }
    Some(cells)
}

fn sbatch(args: &[String], script: &Path) -> Result<u64> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .arg(script)
        .output()
        .context("cannot start `sbatch`; is Slurm installed on this machine? (`seqlab submit --dry-run` prints the scripts)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "sbatch {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse_job_id(&stdout).with_context(|| format!("sbatch printed no job id: {}", stdout.trim()))
}

/// The cells still to run: not complete and not already queued or running.
fn pending_cells(cells: &[Cell], root: &Path) -> Vec<String> {
    let queued = queued_cells(root).unwrap_or_default();
    cells
        .iter()
        .filter(|c| store::state(root, c) != State::Complete)
        .map(|c| c.key())
        .filter(|key| !queued.contains_key(key))
        .collect()
}

/// Plans, writes and submits the job array and the report job; returns
/// the exit code.
pub fn submit(cells: &[Cell], args: &SubmitOptions) -> Result<i32> {
    let root = absolute(&args.results)?;
    let pending = pending_cells(cells, &root);
    if pending.is_empty() {
        println!(
            "seqlab: all {} cell(s) are complete or already queued; nothing to submit",
            cells.len()
        );
        return Ok(0);
    }
    let plan = JobPlan {
        binary: std::env::current_exe()
            .context("cannot find the seqlab binary")?
            .canonicalize()?,
        files: args
            .files
            .iter()
            .map(|f| f.canonicalize().with_context(|| f.display().to_string()))
            .collect::<Result<_>>()?,
        sets: args.sets.clone(),
        sweeps: args.sweeps.clone(),
        folder: new_folder(&root),
        root,
        cells: pending,
        partition: args.partition.clone(),
        time: args.time.clone(),
        cpus_per_task: args.cpus_per_task.max(1),
        gpus_per_task: args.gpus_per_task,
        max_parallel: args.max_parallel,
        sbatch_args: args.sbatch_args.clone(),
    };
    if args.dry_run {
        println!("# {} cell(s): {}", plan.cells.len(), plan.cells.join(" "));
        println!(
            "# {}\n{}",
            plan.folder.join("array.sbatch").display(),
            array_script(&plan)
        );
        println!(
            "# {} (sbatch {} …)\n{}",
            plan.folder.join("report.sbatch").display(),
            report_dependency(0).replace(":0", ":<array id>"),
            report_script(&plan)
        );
        return Ok(0);
    }
    write_folder(&plan)?;
    let array = sbatch(&[], &plan.folder.join("array.sbatch"))?;
    record_job(&plan.folder, "array", array)?;
    let report = sbatch(
        &[report_dependency(array)],
        &plan.folder.join("report.sbatch"),
    )?;
    record_job(&plan.folder, "report", report)?;
    println!(
        "seqlab: submitted {} cell(s) as job array {array}, report job {report}; logs in {}",
        plan.cells.len(),
        plan.folder.join("logs").display()
    );
    Ok(0)
}

fn write_folder(plan: &JobPlan) -> Result<()> {
    let logs = plan.folder.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| logs.display().to_string())?;
    let mut cells = plan.cells.join("\n");
    cells.push('\n');
    store::write_atomic(&plan.folder.join("cells"), cells.as_bytes())?;
    store::write_atomic(
        &plan.folder.join("array.sbatch"),
        array_script(plan).as_bytes(),
    )?;
    store::write_atomic(
        &plan.folder.join("report.sbatch"),
        report_script(plan).as_bytes(),
    )?;
    Ok(())
}

fn record_job(folder: &Path, kind: &str, id: u64) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(folder.join("jobs"))?;
    writeln!(f, "{kind} {id}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> JobPlan {
        JobPlan {
            binary: "/opt/seqlab/bin/seqlab".into(),
            files: vec!["/home/user/exp/grid.toml".into()],
            sets: vec!["train.epochs=2".into(), "experiment.title='a b'".into()],
            sweeps: vec![],
            root: "/shared/results".into(),
            folder: "/shared/results/.slurm/20260101-000000".into(),
            cells: vec!["grid/units=3".into(), "grid/units=32".into()],
            partition: Some("gpu".into()),
            time: Some("1:00:00".into()),
            cpus_per_task: 2,
            gpus_per_task: Some(1),
            max_parallel: Some(4),
            sbatch_args: vec!["--account=lab".into()],
        }
    }

    #[test]
    fn array_spec_throttles_with_percent() {
        assert_eq!(array_spec(4, None), "0-3");
        assert_eq!(array_spec(4, Some(2)), "0-3%2");
        assert_eq!(array_spec(1, None), "0-0");
    }

    #[test]
    fn array_script_has_directives_and_one_exact_cell_per_task() {
        let s = array_script(&plan());
        for line in [
            "#SBATCH --array=0-1%4",
            "#SBATCH --output=/shared/results/.slurm/20260101-000000/logs/%A_%a.out",
            "#SBATCH --cpus-per-task=2",
            "#SBATCH --gpus-per-task=1",
            "#SBATCH --partition=gpu",
            "#SBATCH --time=1:00:00",
            "#SBATCH --account=lab",
            "cell=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" /shared/results/.slurm/20260101-000000/cells)",
            "/opt/seqlab/bin/seqlab run /home/user/exp/grid.toml --only \"$cell\" --jobs 1 --threads 2 --results /shared/results --no-report --set train.epochs=2 --set 'experiment.title='\\''a b'\\''' &",
            "#SBATCH --signal=B:USR1@120",
            "#SBATCH --requeue",
            "#SBATCH --open-mode=append",
            "    scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"",
        ] {
            assert!(s.lines().any(|l| l == line), "missing {line:?} in\n{s}");
        }
        assert!(s.starts_with("#!/bin/bash\n"));
    }

    #[test]
    fn report_script_runs_the_report_with_common_directives_only() {
        let s = report_script(&plan());
        assert!(s.contains("exec /opt/seqlab/bin/seqlab report /shared/results\n"));
        assert!(s.contains("#SBATCH --account=lab\n"));
        assert!(s.contains("#SBATCH --partition=gpu\n"));
        assert!(!s.contains("--array") && !s.contains("gpus"));
        assert_eq!(report_dependency(41), "--dependency=afterany:41");
    }

    #[test]
    fn job_ids_from_sbatch_output() {
        assert_eq!(parse_job_id("123\n"), Some(123));
        assert_eq!(parse_job_id("123;cluster\n"), Some(123));
        assert_eq!(parse_job_id("Submitted batch job 77\n"), Some(77));
        assert_eq!(parse_job_id("sbatch: error\n"), None);
        assert_eq!(parse_job_id(""), None);
    }

    #[test]
    fn queue_lines_parse_into_array_tasks() {
        let q = parse_queue("12 0 RUNNING\n12 3 PENDING\n13 N/A PENDING\n");
        assert_eq!(
            q,
            vec![(12, 0, "RUNNING".into()), (12, 3, "PENDING".into())]
        );
    }

    #[test]
    fn shell_quoting_keeps_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("layers.0.units=32"), "layers.0.units=32");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn timestamps_sort_and_have_a_fixed_shape() {
        let t = timestamp();
        assert_eq!(t.len(), 15, "{t}");
        assert_eq!(&t[8..9], "-");
        assert!(t.starts_with("20"));
    }
}
