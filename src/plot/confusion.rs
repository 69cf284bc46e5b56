//! `confusion.png`: a text classifier's confusion matrix on the test split,
//! drawn from the `confusion.csv` the run wrote (rows: true classes, top to
//! bottom; columns: predicted classes). A cell's shade is its share of the
//! true class (the row's recall), its label the count; the diagonal holds
//! the correct answers.
use super::{fonts, FONT};
use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// The figure's size in pixels for `classes` classes: square cells of 24
/// to 80 px, plus room for the title and the class names.
pub fn size(classes: usize) -> (u32, u32) {
    let k = classes.max(1) as u32;
    let cell = (480 / k).clamp(24, 80);
    (k * cell + 220, k * cell + 200)
}

/// Class names and counts from a `confusion.csv`.
pub fn read(path: &Path) -> Result<(Vec<String>, Vec<Vec<u64>>)> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let classes: Vec<String> = csv
        .headers()
        .with_context(|| format!("{}: no header", path.display()))?
        .iter()
        .skip(1)
        .map(String::from)
        .collect();
    let mut counts = Vec::new();
    for (i, record) in csv.records().enumerate() {
        let record = record.with_context(|| format!("{}: line {}", path.display(), i + 2))?;
        let row: Vec<u64> = record
            .iter()
            .skip(1)
            .map(|c| c.parse::<u64>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("{}:{}: not a count", path.display(), i + 2))?;
        if row.len() != classes.len() {
            bail!(
                "{}:{}: {} counts for {} classes",
                path.display(),
                i + 2,
                row.len(),
                classes.len()
            );
        }
        counts.push(row);
    }
    if counts.len() != classes.len() {
        bail!(
            "{}: {} rows for {} classes",
            path.display(),
            counts.len(),
            classes.len()
        );
    }
    Ok((classes, counts))
}

/// Draws `out` from the `confusion.csv` at `csv_path`.
pub fn figure(csv_path: &Path, title: &str, out: &Path) -> Result<()> {
    let (classes, counts) = read(csv_path)?;
    draw(&classes, &counts, title, out)
}

/// Draws a confusion matrix of `counts[true][predicted]` into `out`.
pub fn draw(classes: &[String], counts: &[Vec<u64>], title: &str, out: &Path) -> Result<()> {
    fonts();
    let k = classes.len();
    anyhow::ensure!(k > 0, "no classes to draw for {title}");
    let (w, h) = size(k);
    let root = BitMapBackend::new(out, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let total: u64 = counts.iter().flatten().sum();
    let correct: u64 = (0..k).map(|i| counts[i][i]).sum();
    let caption = format!(
        "{title}: test accuracy {:.1} % ({correct}/{total})",
        100.0 * correct as f64 / total.max(1) as f64
    );
    let font = (FONT, 16).into_font();
    let name = |i: usize| {
        let n = &classes[i];
        if n.chars().count() > 14 {
            format!("{}…", n.chars().take(13).collect::<String>())
        } else {
            n.clone()
        }
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(&caption, (FONT, 16))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(110)
        .build_cartesian_2d(0..k as i32, 0..k as i32)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|_| String::new())
        .x_desc("predicted class")
        .y_desc("true class")
        .axis_desc_style((FONT, 14))
        .draw()?;
    let label_size = if k <= 8 { 14 } else { 11 };
    for (i, row) in counts.iter().enumerate().take(k) {
        let row_total: u64 = row.iter().sum();
        let y = (k - 1 - i) as i32;
        for (j, &n) in row.iter().enumerate() {
            let share = n as f64 / row_total.max(1) as f64;
            // White to the book's blue, by the row's share.
            let c = |full: u8| (255.0 - share * (255.0 - full as f64)).round() as u8;
            let fill = RGBColor(c(31), c(119), c(180));
            let corners = [(j as i32, y), (j as i32 + 1, y + 1)];
            chart.draw_series([
                Rectangle::new(corners, fill.filled()),
                Rectangle::new(corners, RGBColor(200, 200, 200)),
            ])?;
            if k <= 20 {
                let ink = if share > 0.5 { WHITE } else { BLACK };
                let style = TextStyle::from((FONT, label_size).into_font())
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                let (px, py) = chart.backend_coord(&(j as i32, y + 1));
                let (qx, qy) = chart.backend_coord(&(j as i32 + 1, y));
                root.draw_text(&n.to_string(), &style, ((px + qx) / 2, (py + qy) / 2))?;
            }
        }
    }
    // Class names beside the rows and under the columns.
    let names = TextStyle::from(font.resize(12.0)).color(&BLACK);
    for i in 0..k {
        let y = (k - 1 - i) as i32;
        let (px, py) = chart.backend_coord(&(0, y + 1));
        let (_, qy) = chart.backend_coord(&(0, y));
        root.draw_text(
            &name(i),
            &names.pos(Pos::new(HPos::Right, VPos::Center)),
            (px - 6, (py + qy) / 2),
        )?;
        let (ax, ay) = chart.backend_coord(&(i as i32, 0));
        let (bx, _) = chart.backend_coord(&(i as i32 + 1, 0));
        root.draw_text(
            &name(i),
            &names.pos(Pos::new(HPos::Center, VPos::Top)),
            ((ax + bx) / 2, ay + 6),
        )?;
    }
    root.present()
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_grow_with_the_classes_within_bounds() {
        assert_eq!(size(2), (2 * 80 + 220, 2 * 80 + 200));
        assert_eq!(size(10), (10 * 48 + 220, 10 * 48 + 200));
        assert_eq!(size(100).0, 100 * 24 + 220);
    }

    #[test]
    fn csv_is_read_back_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("confusion.csv");
        std::fs::write(&p, "true\\predicted,a,\"b,c\"\na,3,1\n\"b,c\",0,2\n").unwrap();
        let (classes, counts) = read(&p).unwrap();
        assert_eq!(classes, ["a", "b,c"]);
        assert_eq!(counts, [vec![3, 1], vec![0, 2]]);
        std::fs::write(&p, "true\\predicted,a,b\na,3,1\n").unwrap();
        assert!(read(&p).is_err());
    }
}
