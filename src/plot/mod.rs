//! Figures with plotters: a run's training history (styled like the book's:
//! training as dots, validation as a line), horizontal bar charts comparing
//! runs, and line charts of a series. Plots read only files runs wrote.
//!
//! With replicates, a history shows the mean curve per epoch and the
//! min–max band of the replicates (training: a vertical min–max line at each
//! dot), and a bar the mean with the 95 % interval as a whisker and each
//! replicate as a dot. One run draws exactly as before.
pub mod confusion;

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

pub(crate) const FONT: &str = "sans-serif";
static FONT_ONCE: Once = Once::new();

/// Registers the bundled DejaVu Sans, so figures need no system fonts.
pub(crate) fn fonts() {
    FONT_ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, bytes);
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, bytes);
    });
}

/// A metrics.csv read back: column names and columns of values.
pub struct Table {
    pub header: Vec<String>,
    pub columns: Vec<Vec<f64>>,
}

impl Table {
    pub fn read(path: &Path) -> Result<Table> {
        let mut reader =
            csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
        let header: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
        let mut columns = vec![Vec::new(); header.len()];
        for (line, record) in reader.records().enumerate() {
            let record = record?;
            for (i, field) in record.iter().enumerate() {
                let v: f64 = field.parse().with_context(|| {
                    format!(
                        "{}: line {}: `{field}` is not a number",
                        path.display(),
                        line + 2
                    )
                })?;
                columns[i].push(v);
            }
        }
        Ok(Table { header, columns })
    }

    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.header
            .iter()
            .position(|h| h == name)
            .map(|i| self.columns[i].as_slice())
    }
}

/// A curve per epoch: the value (the mean over replicates) and, for
/// several replicates, their minimum and maximum.
struct Series {
    mean: Vec<f64>,
    band: Option<(Vec<f64>, Vec<f64>)>,
}

impl Series {
    /// The column `name` of every table, epoch by epoch over the tables
    /// that reached that epoch; `None` when a table lacks the column.
    fn of(tables: &[Table], name: &str) -> Option<Series> {
        let columns: Vec<&[f64]> = tables
            .iter()
            .map(|t| t.column(name))
            .collect::<Option<_>>()?;
        if let [one] = columns.as_slice() {
            return Some(Series {
                mean: one.to_vec(),
                band: None,
            });
        }
        let epochs = columns.iter().map(|c| c.len()).max().unwrap_or(0);
        let at =
            |i: usize| -> Vec<f64> { columns.iter().filter_map(|c| c.get(i)).copied().collect() };
        let mean = (0..epochs)
            .map(|i| {
                let xs = at(i);
                xs.iter().sum::<f64>() / xs.len() as f64
            })
            .collect();
        let lo = (0..epochs)
            .map(|i| at(i).into_iter().fold(f64::INFINITY, f64::min))
            .collect();
        let hi = (0..epochs)
            .map(|i| at(i).into_iter().fold(f64::NEG_INFINITY, f64::max))
            .collect();
        Some(Series {
            mean,
            band: Some((lo, hi)),
        })
    }

    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        let band = self.band.iter().flat_map(|(lo, hi)| lo.iter().chain(hi));
        self.mean.iter().chain(band).copied()
    }
}

/// One panel of a history figure.
struct Panel<'a> {
    ylabel: &'a str,
    train: Series,
    val: Series,
    reference: Option<(String, f64)>,
}

/// `history.png`: loss (or MAE in °C) per epoch, plus accuracy for
/// classification runs; the baseline as a horizontal reference line.
pub fn history(
    metrics: &Path,
    title: &str,
    baseline: Option<(String, f64)>,
    out: &Path,
) -> Result<()> {
    history_of(&[metrics.to_path_buf()], title, baseline, out)
}

/// A history figure of several replicates' `metrics.csv`: the mean curves
/// and the replicates' min–max band (one file: exactly [`history`]).
pub fn history_of(
    metrics: &[PathBuf],
    title: &str,
    baseline: Option<(String, f64)>,
    out: &Path,
) -> Result<()> {
    fonts();
    anyhow::ensure!(!metrics.is_empty(), "no metrics to plot for {title}");
    let tables: Vec<Table> = metrics
        .iter()
        .map(|m| Table::read(m))
        .collect::<Result<_>>()?;
    let pair =
        |train: &str, val: &str| Some((Series::of(&tables, train)?, Series::of(&tables, val)?));
    let mut panels = Vec::new();
    if let Some((train, val)) = pair("train_mae_degc", "val_mae_degc") {
        panels.push(Panel {
            ylabel: "MAE (°C)",
            train,
            val,
            reference: baseline,
        });
    } else if let Some((train, val)) = pair("train_loss", "val_loss") {
        panels.push(Panel {
            ylabel: "loss",
            train,
            val,
            reference: baseline,
        });
    }
    if let Some((train, val)) = pair("train_accuracy", "val_accuracy") {
        panels.push(Panel {
            ylabel: "accuracy",
            train,
            val,
            reference: None,
        });
    }
    anyhow::ensure!(
        !panels.is_empty(),
        "{}: no loss columns to plot",
        metrics[0].display()
    );
    let replicates = tables.len();
    let height = 620 * panels.len() as u32;
    let tmp = out.with_extension("tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (1000, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let areas = root.split_evenly((panels.len(), 1));
        for (area, p) in areas.iter().zip(&panels) {
            let epochs = p.train.mean.len().max(1) as f64;
            let mut values: Vec<f64> = p.train.values().chain(p.val.values()).collect();
            if let Some((_, r)) = &p.reference {
                values.push(*r);
            }
            let (lo, hi) = bounds(&values);
            let caption = if replicates > 1 {
                format!(
                    "{title}: training and validation {}, mean of {replicates} replicates, band min–max",
                    p.ylabel
                )
            } else {
                format!("{title}: training and validation {}", p.ylabel)
            };
            let size = caption_size(area, &caption);
            let mut chart = ChartBuilder::on(area)
                .caption(caption, (FONT, size))
                .margin(20)
                .x_label_area_size(50)
                .y_label_area_size(80)
                .build_cartesian_2d(0.5..epochs + 0.5, lo..hi)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .x_labels((epochs as usize).clamp(2, 20))
                .x_label_formatter(&|x| {
                    if (x - x.round()).abs() < 1e-6 {
                        format!("{x:.0}")
                    } else {
                        String::new()
                    }
                })
                .y_desc(p.ylabel)
                .label_style((FONT, 18))
                .axis_desc_style((FONT, 20))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()?;
            let blue = RGBColor(31, 87, 180);
            if let Some((lo, hi)) = &p.val.band {
                let outline: Vec<(f64, f64)> = hi
                    .iter()
                    .enumerate()
                    .map(|(i, v)| ((i + 1) as f64, *v))
                    .chain(
                        lo.iter()
                            .enumerate()
                            .rev()
                            .map(|(i, v)| ((i + 1) as f64, *v)),
                    )
                    .collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        outline,
                        blue.mix(0.18).filled(),
                    )))?
                    .label("validation, min–max of replicates")
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 6), (x + 20, y + 6)], blue.mix(0.18).filled())
                    });
            }
            if let Some((lo, hi)) = &p.train.band {
                chart.draw_series(lo.iter().zip(hi).enumerate().map(|(i, (l, h))| {
                    let x = (i + 1) as f64;
                    PathElement::new(vec![(x, *l), (x, *h)], blue.mix(0.5).stroke_width(2))
                }))?;
            }
            let (train_label, val_label) = if replicates > 1 {
                ("training (mean)", "validation (mean)")
            } else {
                ("training", "validation")
            };
            chart
                .draw_series(
                    p.train
                        .mean
                        .iter()
                        .enumerate()
                        .map(|(i, v)| Circle::new(((i + 1) as f64, *v), 5, blue.filled())),
                )?
                .label(train_label)
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, blue.filled()));
            chart
                .draw_series(LineSeries::new(
                    p.val
                        .mean
                        .iter()
                        .enumerate()
                        .map(|(i, v)| ((i + 1) as f64, *v)),
                    blue.stroke_width(3),
                ))?
                .label(val_label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(3))
                });
            if let Some((name, r)) = &p.reference {
                let red = RGBColor(200, 30, 30);
                chart
                    .draw_series(LineSeries::new(
                        vec![(0.5, *r), (epochs + 0.5, *r)],
                        red.stroke_width(2),
                    ))?
                    .label(format!("{name} ({r:.3})"))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .label_font((FONT, 18))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(if p.ylabel == "accuracy" {
                    SeriesLabelPosition::LowerRight
                } else {
                    SeriesLabelPosition::UpperRight
                })
                .draw()?;
        }
        root.present()?;
    }
    std::fs::rename(&tmp, out)?;
    Ok(())
}

fn bounds(values: &[f64]) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(1e-3);
    (lo - pad, hi + pad)
}

/// The largest caption size up to 24 px (down to 12) at which `text` fits
/// the area's width with the chart's margins: long experiment descriptions
/// shrink instead of running off both edges.
fn caption_size<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str) -> u32 {
    let room = area.dim_in_pixel().0.saturating_sub(50);
    (12..=24)
        .rev()
        .find(|&size| {
            area.estimate_text_size(text, &(FONT, size).into_font().into())
                .is_ok_and(|(w, _)| w <= room)
        })
        .unwrap_or(12)
}

/// One bar: a value and, for a cell of replicates, the 95 % interval of the
/// mean (drawn as a whisker) and every replicate's value (drawn as dots).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub ci: Option<(f64, f64)>,
    pub dots: Vec<f64>,
}

impl Bar {
    /// A plain bar (one run).
    pub fn single(label: String, value: f64) -> Bar {
        Bar {
            label,
            value,
            ci: None,
            dots: vec![],
        }
    }

    /// The furthest right anything of the bar reaches.
    fn reach(&self) -> f64 {
        let ci = self.ci.map_or(self.value, |(_, hi)| hi);
        self.dots.iter().copied().fold(self.value.max(ci), f64::max)
    }
}

/// Horizontal bars, one per label, with an optional reference line; a bar
/// of replicates adds its whisker and dots.
pub fn bars(
    title: &str,
    xlabel: &str,
    items: &[Bar],
    reference: Option<(String, f64)>,
    out: &Path,
) -> Result<()> {
    fonts();
    anyhow::ensure!(!items.is_empty(), "nothing to plot for {title}");
    let n = items.len();
    let height = (160 + 60 * n) as u32;
    let mut hi = items.iter().map(Bar::reach).fold(0.0f64, f64::max);
    if let Some((_, r)) = &reference {
        hi = hi.max(*r);
    }
    let hi = if hi > 0.0 { hi * 1.2 } else { 1.0 };
    let label_width = items.iter().map(|i| i.label.len()).max().unwrap_or(10) as u32 * 10 + 20;
    let tmp = out.with_extension("tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (1100, height.max(400))).into_drawing_area();
        root.fill(&WHITE)?;
        let names: Vec<String> = items.iter().map(|i| i.label.clone()).collect();
        let caption = match &reference {
            Some((name, r)) => format!("{title} (red line: {name}, {r:.3})"),
            None => title.to_string(),
        };
        let caption = if items.iter().any(|b| b.ci.is_some() || !b.dots.is_empty()) {
            format!("{caption}; mean, 95 % CI, replicates as dots")
        } else {
            caption
        };
        let size = caption_size(&root, &caption);
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (FONT, size))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(label_width)
            .build_cartesian_2d(0.0..hi, 0.0..n as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n * 2 + 1)
            .y_label_formatter(&|y| {
                let i = (*y - 0.5).round();
                if (*y - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                    names[n - 1 - i as usize].clone()
                } else {
                    String::new()
                }
            })
            .x_desc(xlabel)
            .label_style((FONT, 18))
            .axis_desc_style((FONT, 20))
            .draw()?;
        let blue = RGBColor(31, 87, 180);
        let red = RGBColor(200, 30, 30);
        if let Some((_, r)) = &reference {
            chart.draw_series(LineSeries::new(
                vec![(*r, 0.0), (*r, n as f64)],
                red.stroke_width(3),
            ))?;
        }
        let orange = RGBColor(230, 120, 20);
        for (k, bar) in items.iter().enumerate() {
            let v = &bar.value;
            let y = (n - 1 - k) as f64;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, y + 0.2), (*v, y + 0.8)],
                blue.filled(),
            )))?;
            if let Some((lo, up)) = bar.ci {
                let (mid, cap) = (y + 0.5, 0.15);
                let black = BLACK.stroke_width(2);
                chart.draw_series([
                    PathElement::new(vec![(lo, mid), (up, mid)], black),
                    PathElement::new(vec![(lo, mid - cap), (lo, mid + cap)], black),
                    PathElement::new(vec![(up, mid - cap), (up, mid + cap)], black),
                ])?;
            }
            let spread = bar.dots.len().saturating_sub(1).max(1) as f64;
            chart.draw_series(bar.dots.iter().enumerate().map(|(i, d)| {
                // Spread vertically inside the bar so equal values stay visible.
                let dy = 0.3 + 0.4 * i as f64 / spread;
                Circle::new((*d, y + dy), 4, orange.filled())
            }))?;
            // The value right of the bar, moved past the reference line when they would touch.
            let right = bar.reach();
            let mut x = right + hi * 0.01;
            if let Some((_, r)) = &reference {
                if (x - r).abs() < hi * 0.06 {
                    x = r.max(right) + hi * 0.015;
                }
            }
            let text = match bar.ci {
                Some((lo, up)) => format!("{v:.3} ± {:.3}", (up - lo) / 2.0),
                None => format!("{v:.3}"),
            };
            chart.draw_series(std::iter::once(Text::new(text, (x, y + 0.62), (FONT, 18))))?;
        }
        root.present()?;
    }
    std::fs::rename(&tmp, out)?;
    Ok(())
}

/// Cartesian f64 × f64 coordinates.
type Xy =
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>;

/// A titled x–y chart with the light grid every line chart here uses.
fn xy_chart<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    title: &str,
    xlabel: &str,
    ylabel: &str,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Result<ChartContext<'a, BitMapBackend<'b>, Xy>> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, caption_size(root, title)))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc(xlabel)
        .y_desc(ylabel)
        .label_style((FONT, 18))
        .axis_desc_style((FONT, 20))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    Ok(chart)
}

/// A line chart of y against x (a temperature record, a metric against a grid key).
pub fn line(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    points: &[(f64, f64)],
    dots: bool,
    out: &Path,
) -> Result<()> {
    fonts();
    anyhow::ensure!(!points.is_empty(), "nothing to plot for {title}");
    let xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.1).collect();
    let (x0, x1) = bounds(&xs);
    let (y0, y1) = bounds(&ys);
    let tmp = out.with_extension("tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (1100, 620)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = xy_chart(&root, title, xlabel, ylabel, (x0, x1), (y0, y1))?;
        let blue = RGBColor(31, 87, 180);
        chart.draw_series(LineSeries::new(
            points.iter().copied(),
            blue.stroke_width(if dots { 3 } else { 1 }),
        ))?;
        if dots {
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 6, blue.filled())))?;
        }
        root.present()?;
    }
    std::fs::rename(&tmp, out)?;
    Ok(())
}

/// A named curve: (label, points, drawn as a reference).
pub type Curve = (String, Vec<(f64, f64)>, bool);

/// Several named curves on one chart, with a legend; `dashed` curves are
/// drawn thin and grey-toned (references such as published numbers or truth).
pub fn lines(title: &str, xlabel: &str, ylabel: &str, series: &[Curve], out: &Path) -> Result<()> {
    fonts();
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.1.iter().copied()).collect();
    anyhow::ensure!(!all.is_empty(), "nothing to plot for {title}");
    let (x0, x1) = bounds(&all.iter().map(|p| p.0).collect::<Vec<_>>());
    let (y0, y1) = bounds(&all.iter().map(|p| p.1).collect::<Vec<_>>());
    let palette = [
        RGBColor(31, 87, 180),
        RGBColor(214, 96, 27),
        RGBColor(44, 160, 44),
        RGBColor(148, 52, 168),
        RGBColor(190, 30, 45),
        RGBColor(23, 160, 170),
        RGBColor(140, 86, 75),
    ];
    let references = [
        RGBColor(0, 0, 0),
        RGBColor(120, 120, 120),
        RGBColor(170, 170, 170),
    ];
    let tmp = out.with_extension("tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (1100, 680)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = xy_chart(&root, title, xlabel, ylabel, (x0, x1), (y0, y1))?;
        let (mut solid, mut dashed) = (0, 0);
        for (name, points, reference) in series {
            let color = if *reference {
                dashed += 1;
                references[(dashed - 1) % references.len()]
            } else {
                solid += 1;
                palette[(solid - 1) % palette.len()]
            };
            let width = if *reference { 2 } else { 3 };
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(width),
                ))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
            if points.len() <= 12 {
                chart.draw_series(points.iter().map(|p| Circle::new(*p, 5, color.filled())))?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font((FONT, 16))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
        root.present()?;
    }
    std::fs::rename(&tmp, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_captions_shrink_to_fit_the_figure() {
        fonts();
        let mut pixels = vec![0u8; 1000 * 100 * 3];
        let root = BitMapBackend::with_buffer(&mut pixels, (1000, 100)).into_drawing_area();
        assert_eq!(caption_size(&root, "GRU(32) — default: loss"), 24);
        let long = "Stacked GRU(32) + GRU(64, relu), dropout (book §6.3.7, fig. 6.23) — default: \
                    training and validation MAE (°C)";
        let size = caption_size(&root, long);
        assert!(size < 24, "size {size}");
        let (width, _) = root
            .estimate_text_size(long, &(FONT, size).into_font().into())
            .unwrap();
        assert!(width <= 950, "{width} px at {size}");
    }
}
