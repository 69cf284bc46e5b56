//! A synthetic record in the Jena CSV format, for full-size runs and tests
//! where the real file is not at hand: same header, 10-minute timestamps from
//! 01.01.2009 00:10:00, two decimals, deterministic for a seed.
//!
//! Temperature = seasonal cycle + daily cycle + AR(1) weather anomaly; pressure
//! is a mean-reverting random walk; relative humidity runs opposite to the
//! daily cycle. The humidity columns follow from T, rh and p as in the real
//! data: VPmax = 6.1094·exp(17.625·T / (T + 243.04)) (Magnus), VPact = rh·VPmax,
//! VPdef = VPmax − VPact, Tdew from the inverse Magnus formula,
//! sh = 622·VPact / (p − 0.378·VPact), H2OC = 1000·VPact / p,
//! rho = 100·p / (287.05·(T + 273.15))·1000, Tpot = (T + 273.15)·(1000 / p)^0.286.
use crate::calendar::{civil_from_days, days_from_civil};
use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::path::Path;

/// Writes `rows` synthetic rows to `out` (temporary file, then rename).
pub fn write_synthetic_jena(rows: usize, seed: u64, out: &Path) -> Result<()> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = crate::data::download::TempPath::new(
        dir,
        &out.file_name().unwrap_or_default().to_string_lossy(),
    );
    let file = std::fs::File::create(tmp.path())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let header: Vec<String> = crate::data::jena::HEADER
        .iter()
        .map(|h| format!("\"{h}\""))
        .collect();
    writeln!(w, "{}", header.join(","))?;
    let mut weather = Weather::new(seed);
    let mut line = String::with_capacity(160);
    for r in 0..rows {
        line.clear();
        timestamp(&mut line, (r as u64 + 1) * 10);
        for v in weather.next_row(r) {
            line.push(',');
            push_2dp(&mut line, v);
        }
        line.push('\n');
        w.write_all(line.as_bytes())?;
    }
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    tmp.persist(out)
}

/// State of the synthetic weather.
struct Weather {
    rng: ChaCha8Rng,
    t_anom: f64,
    p_anom: f64,
    rh_anom: f64,
    wind: f64,
    wd: f64,
}

const TWO_PI: f64 = std::f64::consts::TAU;

impl Weather {
    fn new(seed: u64) -> Weather {
        Weather {
            rng: ChaCha8Rng::seed_from_u64(seed),
            t_anom: 0.0,
            p_anom: 0.0,
            rh_anom: 0.0,
            wind: 0.5,
            wd: 180.0,
        }
    }

    fn normal(&mut self) -> f64 {
        // Box–Muller
        let u1: f64 = self.rng.gen_range(f64::EPSILON..1.0);
        let u2: f64 = self.rng.gen();
        (-2.0 * u1.ln()).sqrt() * (TWO_PI * u2).cos()
    }

    /// The 14 values of row `r` (10-minute steps from 00:10 on 1 January).
    fn next_row(&mut self, r: usize) -> [f64; 14] {
        let minutes = (r as f64 + 1.0) * 10.0;
        let day = minutes / 1440.0;
        let year_phase = TWO_PI * (day - 15.0) / 365.25;
        let day_phase = TWO_PI * (day.fract() - 14.0 / 24.0);
        // AR(1) anomalies per 10-minute step, stationary sd 3.5 °C, 7 hPa, 10 %
        self.t_anom = 0.9985 * self.t_anom + 3.5 * (1.0 - 0.9985f64.powi(2)).sqrt() * self.normal();
        self.p_anom = 0.9995 * self.p_anom + 7.0 * (1.0 - 0.9995f64.powi(2)).sqrt() * self.normal();
        self.rh_anom =
            0.995 * self.rh_anom + 10.0 * (1.0 - 0.995f64.powi(2)).sqrt() * self.normal();
        self.wind = 0.99 * self.wind + 0.1 * self.normal();
        self.wd = (self.wd + 8.0 * self.normal()).rem_euclid(360.0);

        let daily_amp = 3.0 - 1.5 * year_phase.cos();
        let t = round2(9.4 - 9.5 * year_phase.cos() + daily_amp * day_phase.cos() + self.t_anom);
        let p = round2(989.2 + self.p_anom);
        let rh = round2(
            (76.0 + 8.0 * year_phase.cos() - 12.0 * day_phase.cos() + self.rh_anom)
                .clamp(15.0, 100.0),
        );
        let vpmax = round2(6.1094 * (17.625 * t / (t + 243.04)).exp());
        let vpact = round2(rh / 100.0 * vpmax);
        let vpdef = round2(vpmax - vpact);
        let gamma = (vpact.max(0.01) / 6.1094).ln();
        let tdew = 243.04 * gamma / (17.625 - gamma);
        let sh = 622.0 * vpact / (p - 0.378 * vpact);
        let h2oc = 1000.0 * vpact / p;
        let rho = 100.0 * p / (287.05 * (t + 273.15)) * 1000.0;
        let tpot = (t + 273.15) * (1000.0 / p).powf(0.286);
        let wv = (2.2 * (self.wind).exp()).min(25.0);
        let max_wv = wv * (1.4 + 0.3 * self.rng.gen::<f64>());
        // header order: p, T, Tpot, Tdew, rh, VPmax, VPact, VPdef, sh, H2OC, rho, wv, max. wv, wd
        [
            p, t, tpot, tdew, rh, vpmax, vpact, vpdef, sh, h2oc, rho, wv, max_wv, self.wd,
        ]
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Appends `v` with two decimals (fast path of `{:.2}`).
fn push_2dp(out: &mut String, v: f64) {
    let cents = (v * 100.0).round() as i64;
    if cents < 0 {
        out.push('-');
    }
    let c = cents.unsigned_abs();
    use std::fmt::Write as _;
    let _ = write!(out, "{}", c / 100);
    out.push('.');
    out.push((b'0' + (c % 100 / 10) as u8) as char);
    out.push((b'0' + (c % 10) as u8) as char);
}

/// Appends `dd.mm.yyyy HH:MM:SS` for `minutes` after 01.01.2009 00:00:00.
fn timestamp(out: &mut String, minutes: u64) {
    let days = minutes / 1440;
    let (y, m, d) = civil_from_days(days as i64 + days_from_civil(2009, 1, 1));
    let hm = minutes % 1440;
    use std::fmt::Write as _;
    let _ = write!(out, "{d:02}.{m:02}.{y:04} {:02}:{:02}:00", hm / 60, hm % 60);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_cross_months_and_leap_years() {
        let mut s = String::new();
        timestamp(&mut s, 10);
        assert_eq!(s, "01.01.2009 00:10:00");
        s.clear();
        timestamp(&mut s, 1440 * 31 + 70);
        assert_eq!(s, "01.02.2009 01:10:00");
        s.clear();
        // 2012 is a leap year: 2009..2011 = 1095 days, + 59 → 29 Feb 2012
        timestamp(&mut s, 1440 * (1095 + 59));
        assert_eq!(s, "29.02.2012 00:00:00");
        let mut v = String::new();
        push_2dp(&mut v, -0.056);
        push_2dp(&mut v, 1307.754);
        assert_eq!(v, "-0.061307.75");
    }
}
