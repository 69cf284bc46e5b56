//! The `report` stage: the summary tables (CSV, Markdown, HTML page), the
//! statistics of replicates and the comparison figures, all from the files
//! runs wrote; and `seqlab diff`, which tells a significant change from noise
//! where both sides have replicates.
pub mod confusion;
pub mod diff;
pub mod figures;
pub mod html;
pub mod leaderboard;
pub mod plot;
pub mod stats;
pub mod summary;

use std::path::Path;

/// Writes summary.{csv,md}, replicates.csv, statistics.csv, figures/ and
/// index.html under `root`.
pub fn write_all(root: &Path) -> anyhow::Result<()> {
    let rows = summary::collect(root)?;
    summary::write_csv(root, &rows)?;
    summary::write_replicates_csv(root, &rows)?;
    summary::write_statistics_csv(root, &rows)?;
    summary::write_markdown(root, &rows)?;
    let figures = figures::draw(root, &rows)?;
    html::write(root, &rows, &figures)?;
    Ok(())
}
