//! The statistics behind replicates: Welch's t-test against SciPy, and the
//! diff's verdicts for every combination of significance and tolerance.
use seqlab::report::diff::{judge, Tolerance, Verdict};
use seqlab::report::stats::{spread, t_quantile, welch};

/// The samples of tests/fixtures/welch.py, which computed the reference
/// values below with `scipy.stats.ttest_ind(a, b, equal_var=False)`.
const SAMPLES: [(&[f64], &[f64]); 4] = [
    (
        &[1.977222, 2.012007, 1.995310, 2.031245, 1.988871],
        &[2.104512, 2.087730, 2.120011, 2.075623, 2.098004],
    ),
    (
        &[0.2638, 0.2685, 0.2701, 0.2599, 0.2664],
        &[0.2652, 0.2619, 0.2711, 0.2677, 0.2640],
    ),
    (
        &[0.861, 0.865, 0.858, 0.870],
        &[0.840, 0.882, 0.851, 0.899, 0.829, 0.871, 0.845],
    ),
    (&[1.0, 2.0], &[3.0, 5.0]),
];

/// (t, df, p) printed by `python tests/fixtures/welch.py` (SciPy 1.17.1).
const WELCH: [(f64, f64, f64); 4] = [
    (-7.978321943576747, 7.618743375253067, 5.848125433698062e-05),
    (-0.09996529585181686, 7.873979940667699, 0.9228701433943977),
    (0.3988265612761383, 6.854128056648367, 0.702153574130475),
    (-2.23606797749979, 1.4705882352941178, 0.19872738893452602),
];

fn close(what: &str, got: f64, want: f64, rel: f64) {
    assert!(
        (got - want).abs() <= rel * want.abs().max(1e-300),
        "{what}: {got} vs SciPy's {want}"
    );
}

#[test]
fn welch_agrees_with_scipy() {
    for (i, ((a, b), (t, df, p))) in SAMPLES.iter().zip(WELCH).enumerate() {
        let w = welch(a, b).expect("two or more values a side");
        close(&format!("sample {i}: t"), w.t, t, 1e-10);
        close(&format!("sample {i}: df"), w.df, df, 1e-10);
        close(&format!("sample {i}: p"), w.p, p, 1e-7);
    }
}

/// Quantiles from a printed table of Student's t (two-sided 95 %).
#[test]
fn t_quantiles_match_the_tables() {
    for (df, t) in [
        (1.0, 12.706),
        (2.0, 4.303),
        (4.0, 2.776),
        (9.0, 2.262),
        (29.0, 2.045),
    ] {
        close(&format!("t(0.975; {df})"), t_quantile(0.975, df), t, 2e-4);
    }
}

/// Three replicates 1, 2, 6: x̄ = 3, Σ(x − x̄)² = 4 + 1 + 9 = 14, s² = 7,
/// s = 2.6457513; t(0.975; 2) = 4.3026527; h = 4.3026527 · 2.6457513 / √3 = 6.5723.
#[test]
fn interval_of_three_replicates_by_hand() {
    let s = spread(&[1.0, 2.0, 6.0]).unwrap();
    assert_eq!(s.mean, 3.0);
    close("std", s.std.unwrap(), 7f64.sqrt(), 1e-12);
    let h = 4.302652729911275 * 7f64.sqrt() / 3f64.sqrt();
    close("h", s.half_width().unwrap(), h, 1e-9);
    close("h by hand", h, 6.5723, 1e-4);
}

#[test]
fn verdicts_need_both_significance_and_size() {
    let (a, b) = SAMPLES[0]; // b is worse by 0.096 (4.8 %), p = 6e-5
    let mae = "best.val_mae_degc";
    let none = Tolerance::Absolute(0.0);
    assert_eq!(judge(mae, a, b, none, 0.05), Verdict::Regressed);
    assert_eq!(
        judge(mae, a, b, Tolerance::Relative(0.10), 0.05),
        Verdict::WithinTolerance,
        "significant but inside a 10 % tolerance"
    );
    assert_eq!(
        judge(mae, a, b, none, 1e-5),
        Verdict::NotSignificant,
        "p = 6e-5 is not below alpha = 1e-5"
    );
    assert_eq!(judge(mae, b, a, none, 0.05), Verdict::Improved);
    // Accuracy improves upwards: the same numbers read the other way.
    assert_eq!(
        judge("test.test_accuracy", a, b, none, 0.05),
        Verdict::Improved
    );
    assert_eq!(
        judge("test.test_accuracy", b, a, none, 0.05),
        Verdict::Regressed
    );
    // Noise: a difference, but not a significant one, whatever the tolerance.
    let (na, nb) = SAMPLES[1];
    assert_eq!(judge(mae, na, nb, none, 0.05), Verdict::NotSignificant);
    assert_eq!(judge(mae, nb, na, none, 0.05), Verdict::NotSignificant);
}

#[test]
fn one_replicate_on_a_side_falls_back_to_the_tolerance_rule() {
    let mae = "best.val_mae_degc";
    let five = SAMPLES[1].0; // mean 0.26574
    assert_eq!(
        judge(mae, five, &[0.27], Tolerance::Absolute(0.0), 0.05),
        Verdict::Regressed,
        "worse, and no test can say it is noise"
    );
    assert_eq!(
        judge(mae, five, &[0.27], Tolerance::Relative(0.05), 0.05),
        Verdict::NoRegression
    );
    assert_eq!(
        judge(mae, &[0.27], five, Tolerance::Absolute(0.0), 0.05),
        Verdict::NoRegression,
        "an improvement is not flagged without a test"
    );
}
