//! Jena windows against hand-checked expectations on a tiny matrix: the
//! book's generator semantics (step, delay, targets, wrap-around, reverse),
//! the gather on the device, normalisation and the naive baseline.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seqlab::config::JenaData;
use seqlab::data::window::matrix_on;
use seqlab::data::{prepare_jena, Batcher, JenaTable, WindowSpec, Windows};
use tch::{Device, Tensor};

/// `rows × 3`: column 0 = r, column 1 = r², column 2 = 1000 + r.
fn tiny(rows: usize) -> Vec<f32> {
    (0..rows)
        .flat_map(|r| [r as f32, (r * r) as f32, 1000.0 + r as f32])
        .collect()
}

fn spec(shuffle: bool) -> WindowSpec {
    WindowSpec {
        lookback: 6,
        step: 2,
        delay: 3,
        batch_size: 4,
        min_index: 0,
        max_index: 20,
        shuffle,
    }
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
}

#[test]
fn sequential_batches_are_the_listings_samples_and_targets() {
    let data = matrix_on(&tiny(30), 3, Device::Cpu);
    let mut w = Windows::new(&data, 1, spec(false), false);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (x, y) = w.next_batch(&mut rng);
    assert_eq!(x.size(), [4, 3, 3]);
    assert_eq!(y.size(), [4, 1]);
    // row 6: data[0], data[2], data[4]; target data[6 + 3][1] = 81
    let xv = to_vec(&x);
    assert_eq!(&xv[..9], &[0., 0., 1000., 2., 4., 1002., 4., 16., 1004.]);
    // row 9 (last in the batch): data[3], data[5], data[7]
    assert_eq!(&xv[27..], &[3., 9., 1003., 5., 25., 1005., 7., 49., 1007.]);
    assert_eq!(to_vec(&y), vec![81., 100., 121., 144.]);
    // rows 10..13, 14..17, then 18 + 4 >= 20 → back to 6
    let (_, y) = w.next_batch(&mut rng);
    assert_eq!(to_vec(&y), vec![169., 196., 225., 256.]);
    let (_, y) = w.next_batch(&mut rng);
    assert_eq!(to_vec(&y), vec![289., 324., 361., 400.]);
    let (_, y) = w.next_batch(&mut rng);
    assert_eq!(to_vec(&y), vec![81., 100., 121., 144.]);
}

#[test]
fn reverse_flips_each_sample_in_time() {
    let data = matrix_on(&tiny(30), 3, Device::Cpu);
    let mut fwd = Windows::new(&data, 1, spec(false), false);
    let mut rev = Windows::new(&data, 1, spec(false), true);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (xf, yf) = fwd.next_batch(&mut rng);
    let (xr, yr) = rev.next_batch(&mut rng);
    assert_eq!(to_vec(&xr), to_vec(&xf.flip([1])));
    assert_ne!(to_vec(&xr), to_vec(&xf));
    assert_eq!(to_vec(&yr), to_vec(&yf));
    assert_eq!(&to_vec(&xr)[..3], &[4., 16., 1004.]);
}

#[test]
fn shuffled_batches_gather_the_rows_they_drew() {
    let data = matrix_on(&tiny(30), 3, Device::Cpu);
    let mut w = Windows::new(&data, 2, spec(true), false);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..20 {
        let (x, y) = w.next_batch(&mut rng);
        let xv = to_vec(&x);
        for (b, target) in to_vec(&y).into_iter().enumerate() {
            let row = target as i64 - 1000 - 3;
            assert!(
                (6..20).contains(&row),
                "row {row} outside [min + lookback, max)"
            );
            let first = xv[b * 9] as i64;
            assert_eq!(first, row - 6, "sample starts lookback rows back");
        }
    }
}

#[test]
fn naive_baseline_on_a_known_series() {
    // last observed target x[:, -1, 1] = (r - 2)², target (r + 3)²: |Δ| = 10r + 5;
    // rows 6..9 → mean 10 · 7.5 + 5 = 80.
    let data = matrix_on(&tiny(30), 3, Device::Cpu);
    let mut w = Windows::new(&data, 1, spec(false), false);
    let (x, y) = w.next_batch(&mut ChaCha8Rng::seed_from_u64(0));
    let last = x.select(1, -1).select(1, 1).view([-1, 1]);
    let mae = (last - y).abs().mean(tch::Kind::Float).double_value(&[]);
    assert!((mae - 80.0).abs() < 1e-9, "{mae}");
}

fn table(rows: usize) -> JenaTable {
    JenaTable {
        columns: vec!["a".into(), "T (degC)".into(), "c".into()],
        timestamps: vec!["01.01.2009 00:10:00".into(); rows],
        values: tiny(rows),
        rows,
    }
}

fn cfg(extra: &str) -> JenaData {
    toml::from_str(&format!(
        "lookback = 6\nstep = 2\ndelay = 3\nbatch_size = 4\n\
         splits = {{ train = [0, 9], val = [10, 30], test = [25, 100] }}\n{extra}"
    ))
    .unwrap()
}

#[test]
fn prepare_normalises_on_training_rows_and_clamps_the_test_split() {
    let p = prepare_jena(&cfg(""), &table(40), Device::Cpu).unwrap();
    // training rows 0..9 (the book's float_data[:train_max]) of r²: mean 204/9, population std
    let sq: Vec<f64> = (0..9).map(|r| (r * r) as f64).collect();
    let mean = 204.0 / 9.0;
    let var = sq.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 9.0;
    assert!((p.target_std.unwrap() - var.sqrt()).abs() < 1e-9);
    assert_eq!(p.target_column, Some(1));
    assert_eq!((p.input_time, p.input_features), (3, Some(3)));
    // test: [25, min(100, 40 - 3 - 1 = 36)] → (36 - 25 - 6) / 4 = 1
    assert_eq!(p.test.full_pass_steps(), 1);
    assert_eq!(p.val.full_pass_steps(), (30 - 10 - 6) / 4);
    let Batcher::Series(mut val) = p.val else {
        panic!("jena batcher")
    };
    let (_, y) = val.next_batch(&mut ChaCha8Rng::seed_from_u64(0));
    // first val row 16, target row 19: (361 - mean) / std
    let y0 = to_vec(&y)[0] as f64;
    assert!((y0 * var.sqrt() + mean - 361.0).abs() < 1e-3, "{y0}");
}

#[test]
fn reset_restarts_the_sequential_pass() {
    let mut p = prepare_jena(&cfg(""), &table(40), Device::Cpu).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (_, first) = p.val.next_batch(&mut rng);
    let (_, second) = p.val.next_batch(&mut rng);
    assert_ne!(to_vec(&first), to_vec(&second));
    p.val.reset();
    let (_, again) = p.val.next_batch(&mut rng);
    assert_eq!(to_vec(&first), to_vec(&again));
    let (x, y) = p.train.next_batch(&mut rng);
    assert_eq!((x.size(), y.size()), (vec![4, 3, 3], vec![4, 1]));
}

#[test]
fn splits_outside_the_data_name_the_key_and_row_count() {
    let c = cfg("");
    let e = prepare_jena(&c, &table(20), Device::Cpu).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("data.splits.val") && msg.contains("20 rows"),
        "{msg}"
    );
    let e = prepare_jena(&cfg("target = \"nope\""), &table(40), Device::Cpu).unwrap_err();
    assert!(format!("{e:#}").contains("T (degC)"), "{e:#}");
}
