//! IMDB from a tiny archive in the real layout (40 short reviews): order and
//! labels, Keras' index conventions, padding and truncation, reverse, the
//! validation split, the disk cache, batches, and archive safety.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seqlab::config::{ImdbData, Side};
use seqlab::data::imdb::{encode, load};
use seqlab::data::imdb_cache::{cache_path, ImdbArrays};
use seqlab::data::reviews::read_reviews;
use seqlab::data::{prepare_imdb, Batcher};
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imdb_tiny.tar.gz")
}

fn spec(extra: &str) -> ImdbData {
    toml::from_str(extra).unwrap()
}

fn rows(x: &[i32], maxlen: usize) -> Vec<Vec<i32>> {
    x.chunks(maxlen).map(<[i32]>::to_vec).collect()
}

#[test]
fn reviews_in_documented_order_with_labels() {
    let r = read_reviews(&fixture()).unwrap();
    assert_eq!(
        (r.train.len(), r.test.len()),
        (20, 20),
        "unsup and README are ignored"
    );
    let labels: Vec<u8> = r.test.iter().map(|r| r.label).collect();
    assert_eq!(labels, [[1u8; 10], [0u8; 10]].concat());
    assert!(r.train.iter().all(|r| !r.text.contains("must be ignored")));
}

#[test]
fn keras_conventions_split_and_padding() {
    let a = encode(&spec("maxlen = 400"), &fixture()).unwrap();
    assert_eq!((a.train.len(), a.val.len(), a.test.len()), (16, 4, 20));
    assert_eq!(a.train.x.len(), 16 * 400);
    // pre padding: zeros, then 1, then word ids ≥ 2, all below max_features
    for row in rows(&a.test.x, 400) {
        let start = row.iter().position(|&v| v != 0).unwrap();
        assert_eq!(row[start], 1);
        assert!(row[start + 1..].iter().all(|&v| (2..10_000).contains(&v)));
    }
    // the test set is shuffled (as Keras' load_data does), both classes mixed, nothing lost
    assert_ne!(a.test.y, [[1u8; 10], [0u8; 10]].concat());
    assert_eq!(a.test.y.iter().filter(|&&y| y == 1).count(), 10);
    assert_ne!(
        a.test.y[..5],
        [1u8; 5],
        "the first test batch is not all one class"
    );
    // the validation split is the end of the shuffled training set, and all reviews appear once
    let mut all: Vec<Vec<i32>> = rows(&a.train.x, 400)
        .into_iter()
        .chain(rows(&a.val.x, 400))
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 20);
    let b = encode(&spec("maxlen = 400\nshuffle_seed = 1"), &fixture()).unwrap();
    assert_ne!(a.val.x, b.val.x, "the shuffle seed decides the split");
}

#[test]
fn max_features_keeps_only_the_most_frequent_words() {
    let a = encode(&spec("maxlen = 400\nmax_features = 4"), &fixture()).unwrap();
    // only index 3 (the most frequent training word) survives
    assert!(a.test.x.iter().all(|&v| (0..4).contains(&v)));
    let r = read_reviews(&fixture()).unwrap();
    let the_count: usize = r.test[0]
        .text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| *w == "the")
        .count();
    let threes = rows(&a.test.x, 400)[0].iter().filter(|&&v| v == 3).count();
    assert_eq!(
        threes, the_count,
        "\"the\" is the most frequent word of the training reviews"
    );
}

#[test]
fn reverse_truncation_and_post_padding() {
    let base = encode(&spec("maxlen = 400"), &fixture()).unwrap();
    let rev = encode(
        &spec("maxlen = 400\nreverse = true\npadding = \"post\""),
        &fixture(),
    )
    .unwrap();
    for (f, r) in rows(&base.test.x, 400).iter().zip(rows(&rev.test.x, 400)) {
        let mut s: Vec<i32> = f.iter().copied().skip_while(|&v| v == 0).collect();
        s.reverse();
        let kept: Vec<i32> = r.iter().copied().take_while(|&v| v != 0).collect();
        assert_eq!(kept, s);
    }
    let pre = encode(&spec("maxlen = 5"), &fixture()).unwrap();
    let post = encode(&spec("maxlen = 5\ntruncating = \"post\""), &fixture()).unwrap();
    for ((f, p), q) in rows(&base.test.x, 400)
        .iter()
        .zip(rows(&pre.test.x, 5))
        .zip(rows(&post.test.x, 5))
    {
        let s: Vec<i32> = f.iter().copied().skip_while(|&v| v == 0).collect();
        assert_eq!(p, s[s.len() - 5..].to_vec(), "pre: keep the end");
        assert_eq!(q, s[..5].to_vec(), "post: keep the start");
    }
    let _ = Side::Pre;
}

#[test]
fn folder_and_archive_give_the_same_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(fixture()).unwrap());
    tar::Archive::new(gz).unpack(dir.path()).unwrap();
    let s = spec("maxlen = 50");
    let from_folder = encode(&s, &dir.path().join("aclImdb")).unwrap();
    assert_eq!(from_folder, encode(&s, &fixture()).unwrap());
}

#[test]
fn second_load_uses_the_cache_and_settings_or_archive_change_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("aclImdb_v1.tar.gz");
    let cache_dir = dir.path().join(".cache");
    std::fs::copy(fixture(), &src).unwrap();
    let s = spec("maxlen = 60");
    let first = load(&s, &src, &cache_dir).unwrap();
    assert!(!first.from_cache);
    let cache = cache_path(&s, &src, &cache_dir).unwrap();
    assert!(cache.starts_with(&cache_dir) && cache.is_file());
    let second = load(&s, &src, &cache_dir).unwrap();
    assert!(second.from_cache);
    assert_eq!(first.arrays, second.arrays);

    let other = spec("maxlen = 61");
    assert_ne!(cache_path(&other, &src, &cache_dir).unwrap(), cache);
    assert!(!load(&other, &src, &cache_dir).unwrap().from_cache);

    // a corrupt cache is ignored and rebuilt
    std::fs::write(&cache, b"SEQLABIMDB garbage").unwrap();
    let rebuilt = load(&s, &src, &cache_dir).unwrap();
    assert!(!rebuilt.from_cache);
    assert_eq!(rebuilt.arrays, first.arrays);
    assert!(load(&s, &src, &cache_dir).unwrap().from_cache);

    // a different archive (same reviews, recompressed) changes the key
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(fixture()).unwrap()),
        &mut bytes,
    )
    .unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &bytes).unwrap();
    std::fs::write(&src, enc.finish().unwrap()).unwrap();
    assert_ne!(cache_path(&s, &src, &cache_dir).unwrap(), cache);
    assert!(!load(&s, &src, &cache_dir).unwrap().from_cache);
}

#[test]
fn batches_walk_a_fresh_permutation_and_sequential_splits_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("aclImdb_v1.tar.gz");
    std::fs::copy(fixture(), &src).unwrap();
    let s = spec("maxlen = 30\nbatch_size = 5");
    let mut p = prepare_imdb(&s, &src, tch::Device::Cpu).unwrap();
    assert_eq!(
        (p.input_time, p.input_features, p.target_std),
        (30, None, None)
    );
    assert_eq!(p.train.full_pass_steps(), 4); // ceil(16 / 5)
    assert_eq!(p.test.full_pass_steps(), 4);
    let arrays: ImdbArrays = load(&s, &src, &dir.path().join(".cache")).unwrap().arrays;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut epochs = Vec::new();
    for _ in 0..2 {
        let mut seen = Vec::new();
        for expect in [5, 5, 5, 1] {
            let (x, y) = p.train.next_batch(&mut rng);
            assert_eq!((x.size(), y.size()), (vec![expect, 30], vec![expect, 1]));
            assert_eq!(x.kind(), tch::Kind::Int64);
            seen.extend(Vec::<i64>::try_from(x.flatten(0, -1)).unwrap());
        }
        let mut rows: Vec<Vec<i64>> = seen.chunks(30).map(<[i64]>::to_vec).collect();
        epochs.push(rows.clone());
        rows.sort();
        let mut want: Vec<Vec<i64>> = arrays
            .train
            .x
            .chunks(30)
            .map(|c| c.iter().map(|&v| v as i64).collect())
            .collect();
        want.sort();
        assert_eq!(rows, want, "each training review once per epoch");
    }
    assert_ne!(epochs[0], epochs[1], "a fresh permutation each epoch");
    let (_, y) = p.test.next_batch(&mut rng);
    let first: Vec<f32> = arrays.test.y[..5].iter().map(|&v| v as f32).collect();
    assert_eq!(
        Vec::<f32>::try_from(y.flatten(0, -1)).unwrap(),
        first,
        "test batches in stored order"
    );
    p.test.reset();
    let Batcher::Imdb(t) = &mut p.test else {
        panic!()
    };
    assert_eq!(t.next_indices(&mut rng), vec![0, 1, 2, 3, 4]);
}

fn tar_gz_with_raw_entry(name: &[u8], kind: tar::EntryType) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let data = b"great movie";
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
    h.set_size(data.len() as u64);
    h.set_entry_type(kind);
    if kind == tar::EntryType::Symlink {
        h.set_link_name("/etc/passwd").unwrap();
    }
    h.set_cksum();
    b.append(&h, &data[..]).unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn unsafe_archive_entries_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("evil.tar.gz");
    std::fs::write(
        &p,
        tar_gz_with_raw_entry(
            b"aclImdb/train/pos/../../../evil_1.txt",
            tar::EntryType::Regular,
        ),
    )
    .unwrap();
    let e = format!("{:#}", read_reviews(&p).unwrap_err());
    assert!(e.contains("unsafe entry name") && e.contains(".."), "{e}");
    std::fs::write(
        &p,
        tar_gz_with_raw_entry(b"/aclImdb/train/pos/1_1.txt", tar::EntryType::Regular),
    )
    .unwrap();
    assert!(format!("{:#}", read_reviews(&p).unwrap_err()).contains("unsafe entry name"));
    std::fs::write(
        &p,
        tar_gz_with_raw_entry(b"aclImdb/train/pos/1_1.txt", tar::EntryType::Symlink),
    )
    .unwrap();
    assert!(format!("{:#}", read_reviews(&p).unwrap_err()).contains("link"));
}
