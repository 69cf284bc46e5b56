//! results/index.html: one self-contained page with the summary table
//! (sortable by column), every figure, and links to each cell's files (to
//! each replicate's, for a cell of replicates).
use super::figures::Figures;
use super::summary::{headline, test_value, Row};
use crate::results::store;
use std::fmt::Write as _;
use std::path::Path;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const FILES: [&str; 6] = [
    "config.toml",
    "metrics.csv",
    "summary.toml",
    "timing.csv",
    "model.txt",
    "history.png",
];

pub fn write(root: &Path, rows: &[Row], figures: &Figures) -> anyhow::Result<()> {
    let mut h = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>seqlab results</title>\n<style>\nbody{font-family:sans-serif;margin:2em;max-width:1200px}\ntable{border-collapse:collapse}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}\nth{cursor:pointer;background:#f0f0f0}figure{margin:1em 0}img{max-width:100%;border:1px solid #ddd}\n.failed{color:#b00}\n</style></head><body>\n<h1>seqlab results</h1>\n<table id=\"summary\"><thead><tr>",
    );
    for c in [
        "experiment",
        "cell",
        "status",
        "epochs",
        "best epoch",
        "best validation",
        "test",
        "params",
        "train s",
        "files",
    ] {
        let _ = write!(h, "<th>{c}</th>");
    }
    h.push_str("</tr></thead><tbody>\n");
    for r in rows {
        let rel = r
            .dir
            .strip_prefix(root)
            .unwrap_or(&r.dir)
            .to_string_lossy()
            .to_string();
        let links: Vec<String> = if r.replicated() {
            r.runs
                .iter()
                .filter(|run| run.dir.join("summary.toml").exists())
                .map(|run| {
                    let name = run.dir.file_name().unwrap_or_default().to_string_lossy();
                    let class = if run.status == "complete" {
                        ""
                    } else {
                        " class=\"failed\""
                    };
                    format!(
                        "<a{class} href=\"{}/{}/summary.toml\">{}</a>",
                        esc(&rel),
                        esc(&name),
                        esc(&name)
                    )
                })
                .collect()
        } else {
            FILES
                .iter()
                .filter(|f| r.dir.join(f).exists())
                .map(|f| format!("<a href=\"{}/{}\">{}</a>", esc(&rel), f, f))
                .collect()
        };
        let test = match test_value(r) {
            t if t == "-" => String::new(),
            t => t,
        };
        let status = if r.status == "complete" {
            esc(&r.status_label())
        } else {
            format!(
                "<span class=\"failed\">{} {}</span>",
                esc(&r.status_label()),
                esc(&r.reason)
            )
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{status}</td><td>{}</td><td>{}</td><td>{}</td><td>{test}</td><td>{}</td><td>{:.0}</td><td>{}</td></tr>",
            esc(&r.experiment),
            esc(&r.cell),
            r.epochs,
            r.best_epoch,
            esc(&headline(r)),
            r.params,
            r.train_seconds,
            links.join(" ")
        );
    }
    h.push_str("</tbody></table>\n");
    h.push_str(&super::evaluations::html(
        &super::evaluations::collect(rows),
        root,
        esc,
    ));
    h.push_str("<h2>Figures</h2>\n");
    for (caption, path) in figures {
        let _ = writeln!(
            h,
            "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
            esc(path),
            esc(caption),
            esc(caption)
        );
    }
    h.push_str(
        "<script>\ndocument.querySelectorAll('#summary th').forEach((th,i)=>th.onclick=()=>{const b=th.closest('table').tBodies[0];const rows=[...b.rows];const d=th.dataset.d=th.dataset.d==='1'?'-1':'1';const v=r=>{const t=r.cells[i].innerText;const n=parseFloat(t);return isNaN(n)?t:n};rows.sort((a,c)=>(v(a)>v(c)?1:v(a)<v(c)?-1:0)*d);rows.forEach(r=>b.appendChild(r));});\n</script>\n</body></html>\n",
    );
    store::write_atomic(&root.join("index.html"), h.as_bytes())?;
    Ok(())
}
