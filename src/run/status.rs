//! `seqlab status`: where every cell of a results root stands — complete,
//! failed (with its reason), running, pending or missing — read from the
//! folders themselves (summaries, staging folders, lock files, the cell
//! lists of Slurm submissions) and, when Slurm is installed, from `squeue`.
//! A cell with replicates is listed replicate by replicate
//! (`experiment/cell/seed=<S>`).
use super::lock;
use super::slurm::{self, Queued};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What the folders say about one cell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    /// `status` and `reason` of its `summary.toml`.
    pub summary: Option<(String, String)>,
    /// Pid of a staging folder whose process is alive on this machine.
    pub live_staging: Option<i32>,
    /// Pid written in a lock file that is held.
    pub lock_holder: Option<String>,
    /// Listed in the latest Slurm submission.
    pub listed: bool,
    /// The last completed epoch of a checkpoint (an interrupted cell).
    pub checkpoint: Option<usize>,
}

/// Where a cell stands.
#[derive(Debug, Clone, PartialEq)]
pub enum CellStatus {
    Complete,
    Failed(String),
    Running(String),
    Pending(String),
    /// Stopped with a checkpoint after this epoch: `seqlab run` resumes it.
    Interrupted(usize),
    /// Not complete and nothing is running or queued for it.
    Missing,
}

impl CellStatus {
    pub fn label(&self) -> String {
        match self {
            CellStatus::Complete => "complete".into(),
            CellStatus::Failed(r) => format!("failed: {r}"),
            CellStatus::Running(how) => format!("running ({how})"),
            CellStatus::Pending(how) => format!("pending ({how})"),
            CellStatus::Interrupted(epoch) => format!(
                "interrupted at epoch {epoch}, checkpoint present (`seqlab run` resumes it)"
            ),
            CellStatus::Missing => {
                "missing (incomplete; run `seqlab submit` or `seqlab run` again)".into()
            }
        }
    }
}

/// Classifies a cell. `queue` is `None` when `squeue` cannot be asked,
/// otherwise the cell's entry in the queue, if any.
pub fn classify(e: &Evidence, queue: Option<Option<&Queued>>) -> CellStatus {
    if let Some(Some(Queued::Running(job))) = queue {
        return CellStatus::Running(format!("slurm job {job}"));
    }
    if let Some(pid) = e.live_staging {
        return CellStatus::Running(format!("pid {pid}"));
    }
    if let Some(pid) = &e.lock_holder {
        return CellStatus::Running(format!("lock held by pid {pid}"));
    }
    if let Some(Some(Queued::Pending(job))) = queue {
        return CellStatus::Pending(format!("slurm job {job}"));
    }
    match (&e.summary, e.checkpoint) {
        (Some((status, _)), _) if status == "complete" => return CellStatus::Complete,
        (_, Some(epoch)) => return CellStatus::Interrupted(epoch),
        (Some((_, reason)), None) => return CellStatus::Failed(reason.clone()),
        (None, None) => {}
    }
    if e.listed && queue.is_none() {
        return CellStatus::Pending("listed in the latest submission".into());
    }
    CellStatus::Missing
}

fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks whether the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// The evidence of every cell under one experiment folder, by cell name
/// (`cell`, or `cell/seed=<S>` inside a cell folder of replicates).
fn experiment_evidence(dir: &Path) -> BTreeMap<String, Evidence> {
    let mut cells = BTreeMap::new();
    folder_evidence(dir, "", true, &mut cells);
    // A free lock file of a cell whose replicates are listed one by one says nothing more.
    let parents: BTreeSet<String> = cells
        .keys()
        .filter_map(|k| k.rsplit_once('/').map(|(cell, _)| cell.to_string()))
        .collect();
    cells.retain(|k, e| !(parents.contains(k) && *e == Evidence::default()));
    cells
}

fn folder_evidence(
    dir: &Path,
    prefix: &str,
    descend: bool,
    cells: &mut BTreeMap<String, Evidence>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let path = entry.path();
        let own = entry.file_name().to_string_lossy().to_string();
        if let Some(hidden) = own.strip_prefix('.') {
            let hidden = format!("{prefix}{hidden}");
            if let Some(cell) = hidden.strip_suffix(".checkpoint") {
                let epoch = crate::results::checkpoint::epoch(&path);
                cells.entry(cell.to_string()).or_default().checkpoint = epoch;
            } else if let Some(cell) = hidden.strip_suffix(".lock") {
                let holder = lock::holder(&path);
                cells.entry(cell.to_string()).or_default().lock_holder = holder;
            } else if let Some((cell, pid)) = hidden.rsplit_once(".partial-") {
                if let Ok(pid) = pid.parse::<i32>() {
                    let e = cells.entry(cell.to_string()).or_default();
                    if alive(pid) {
                        e.live_staging = Some(pid);
                    }
                }
            }
        } else if let Some(s) = crate::results::store::read_summary(&path) {
            let field = |k: &str| s.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let reason = match field("reason") {
                r if r.is_empty() => "unknown".to_string(),
                r => r,
            };
            cells.entry(name).or_default().summary = Some((field("status"), reason));
        } else if descend && path.is_dir() {
            // A cell folder of replicates (`seed=<S>/` inside).
            folder_evidence(&path, &format!("{name}/"), false, cells);
        }
    }
}

/// Every cell of the results root with its status, sorted by `experiment/cell`.
pub fn collect(root: &Path) -> Vec<(String, CellStatus)> {
    let listed: BTreeSet<String> = slurm::submissions(root)
        .last()
        .map(|f| slurm::listed_cells(f).into_iter().collect())
        .unwrap_or_default();
    let queue = slurm::queued_cells(root);
    let mut evidence: BTreeMap<String, Evidence> = BTreeMap::new();
    let experiments = std::fs::read_dir(root).into_iter().flatten().flatten();
    for exp in experiments.filter(|e| e.path().is_dir()) {
        let exp_name = exp.file_name().to_string_lossy().to_string();
        if exp_name.starts_with('.') {
            continue;
        }
        for (cell, e) in experiment_evidence(&exp.path()) {
            evidence.insert(format!("{exp_name}/{cell}"), e);
        }
    }
    for key in &listed {
        evidence.entry(key.clone()).or_default().listed = true;
    }
    evidence
        .into_iter()
        .map(|(key, e)| {
            let q = queue.as_ref().map(|q| q.get(&key));
            let status = classify(&e, q);
            (key, status)
        })
        .collect()
}

/// Prints the table and a one-line count; returns the exit code.
pub fn print(root: &Path) -> anyhow::Result<i32> {
    if !root.is_dir() {
        anyhow::bail!(
            "{}: no such results folder; run `seqlab run …` or `seqlab submit …` first",
            root.display()
        );
    }
    let cells = collect(root);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (key, status) in &cells {
        println!("{key:<48} {}", status.label());
        let kind = match status {
            CellStatus::Complete => "complete",
            CellStatus::Failed(_) => "failed",
            CellStatus::Running(_) => "running",
            CellStatus::Pending(_) => "pending",
            CellStatus::Interrupted(_) => "interrupted",
            CellStatus::Missing => "missing",
        };
        *counts.entry(kind).or_default() += 1;
    }
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!("{} cell(s): {}", cells.len(), summary.join(", "));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(status: &str, reason: &str) -> Evidence {
        Evidence {
            summary: Some((status.into(), reason.into())),
            ..Evidence::default()
        }
    }

    #[test]
    fn summaries_decide_when_nothing_runs() {
        assert_eq!(classify(&done("complete", ""), None), CellStatus::Complete);
        assert_eq!(
            classify(&done("failed", "loss became NaN"), Some(None)),
            CellStatus::Failed("loss became NaN".into())
        );
    }

    #[test]
    fn running_evidence_wins_over_an_old_summary() {
        let mut e = done("failed", "x");
        e.live_staging = Some(42);
        assert_eq!(classify(&e, None), CellStatus::Running("pid 42".into()));
        let e = Evidence {
            lock_holder: Some("7".into()),
            ..Evidence::default()
        };
        assert_eq!(
            classify(&e, Some(None)),
            CellStatus::Running("lock held by pid 7".into())
        );
        let q = Queued::Running("12_3".into());
        assert_eq!(
            classify(&Evidence::default(), Some(Some(&q))),
            CellStatus::Running("slurm job 12_3".into())
        );
    }

    #[test]
    fn listed_cells_are_pending_without_squeue_and_missing_once_their_task_ended() {
        let listed = Evidence {
            listed: true,
            ..Evidence::default()
        };
        assert!(matches!(classify(&listed, None), CellStatus::Pending(_)));
        assert_eq!(classify(&listed, Some(None)), CellStatus::Missing);
        let q = Queued::Pending("12_0".into());
        assert_eq!(
            classify(&listed, Some(Some(&q))),
            CellStatus::Pending("slurm job 12_0".into())
        );
        assert_eq!(classify(&Evidence::default(), None), CellStatus::Missing);
    }

    #[test]
    fn folders_alone_give_complete_failed_and_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let write = |rel: &str, text: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("exp/a=1/summary.toml", "status = \"complete\"\n");
        write(
            "exp/a=2/summary.toml",
            "status = \"failed\"\nreason = \"loss became inf\"\n",
        );
        write("exp/.a=3.lock", "999999");
        write("exp/.a=4.partial-999999/config.toml", "");
        write("exp/.a=6.checkpoint/state.json", "{\"epoch\": 3}");
        write(
            "exp/a=6/summary.toml",
            "status = \"failed\"\nreason = \"killed\"\n",
        );
        write(".slurm/20260101-000000/cells", "exp/a=1\nexp/a=5\n");
        let cells: BTreeMap<String, CellStatus> = collect(root).into_iter().collect();
        assert_eq!(cells["exp/a=1"], CellStatus::Complete);
        assert_eq!(
            cells["exp/a=2"],
            CellStatus::Failed("loss became inf".into())
        );
        assert_eq!(cells["exp/a=3"], CellStatus::Missing);
        assert_eq!(cells["exp/a=4"], CellStatus::Missing);
        assert!(matches!(
            cells["exp/a=5"],
            CellStatus::Pending(_) | CellStatus::Missing
        ));
        assert_eq!(cells["exp/a=6"], CellStatus::Interrupted(3));
        assert_eq!(
            cells["exp/a=6"].label(),
            "interrupted at epoch 3, checkpoint present (`seqlab run` resumes it)"
        );
        assert_eq!(cells.len(), 6);
    }
}
