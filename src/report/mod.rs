//! The `report` stage: the summary table (CSV, Markdown, HTML page) and the
//! comparison figures, all from the files runs wrote; and `seqlab diff`.
pub mod diff;
pub mod figures;
pub mod html;
pub mod leaderboard;
pub mod plot;
pub mod summary;

use std::path::Path;

/// Writes summary.csv, summary.md, figures/ and index.html under `root`.
pub fn write_all(root: &Path) -> anyhow::Result<()> {
    let rows = summary::collect(root)?;
    summary::write_csv(root, &rows)?;
    summary::write_markdown(root, &rows)?;
    let figures = figures::draw(root, &rows)?;
    html::write(root, &rows, &figures)?;
    Ok(())
}
