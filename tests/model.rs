//! The model stage: parameter counts of every book model against Keras'
//! (written out by hand), allocated weights equal inferred counts, graph
//! wiring and its errors, and a forward pass of each model.
use seqlab::config::{self, Cell};
use seqlab::model::{self, Model};
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn cells(file: &str, sets: &[&str]) -> Vec<Cell> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let loaded = config::load(&path, &sets).unwrap_or_else(|e| panic!("{file}: {e}"));
    config::expand(&loaded).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Holds libtorch's global random generator for one test. Tests run on
/// parallel threads of one process and share that generator: a test that
/// seeds it and trains twice expecting the same draws would otherwise see
/// another test's draws land in between (seen once in 15 runs).
fn generator() -> std::sync::MutexGuard<'static, ()> {
    static GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());
    GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The cell of an experiment on a generated 64-row table of `columns`
/// columns c0, c1, … (target c0, lookback 8) with these `[[layers]]`.
fn table_cell(dir: &Path, columns: usize, layers: &str) -> Cell {
    let header: Vec<String> = (0..columns).map(|i| format!("c{i}")).collect();
    let mut csv = header.join(",") + "\n";
    for r in 0..64 {
        csv += &(0..columns)
            .map(|c| format!("{}", (r * columns + c) % 7))
            .collect::<Vec<_>>()
            .join(",");
        csv += "\n";
    }
    let table = dir.join("table.csv");
    std::fs::write(&table, csv).unwrap();
    let file = dir.join("experiment.toml");
    std::fs::write(
        &file,
        format!(
            r#"[experiment]
name = "layers"
[data]
source = "csv"
path = "{}"
targets = ["c0"]
lookback = 8
splits = {{ train = [0, 32], val = [32, 48], test = [48, 64] }}
{layers}"#,
            table.display()
        ),
    )
    .unwrap();
    let loaded = config::load(&file, &[]).unwrap();
    config::expand(&loaded).unwrap().remove(0)
}

/// Every trainable weight's gradient of Σ forward(x)² in training mode.
fn weight_grads(m: &Model, x: &Tensor) -> Vec<Tensor> {
    for mut v in m.vs.trainable_variables() {
        v.zero_grad();
    }
    m.backward(&m.forward(x, true).square().sum(Kind::Float));
    m.vs.trainable_variables()
        .iter()
        .map(|v| v.grad().copy())
        .collect()
}

/// Turns every recurrent kernel off (plain and Bidirectional layers): the
/// model then runs libtorch's layers.
fn without_recurrent_kernels(m: &mut Model) {
    use seqlab::model::builder::Op;
    for op in m.ops.iter_mut() {
        match op {
            Op::Recurrent(r) => r.allow_kernel = false,
            Op::Bidirectional(b) => {
                b.forward.allow_kernel = false;
                b.backward.allow_kernel = false;
            }
            _ => {}
        }
    }
}

/// Each gradient of `a` within 1e-5 of its counterpart in `b`, relative to
/// 1 + the largest magnitude of that counterpart.
fn assert_same_gradients(a: &[Tensor], b: &[Tensor]) {
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(b) {
        let scale = 1.0 + b.abs().max().double_value(&[]);
        let rel = (a - b).abs().max().double_value(&[]) / scale;
        assert!(rel < 1e-5, "gradients differ by {rel} (relative)");
    }
}

/// Keras' `model.summary()` totals for the book's models.
const BOOK: [(&str, usize); 13] = [
    ("jena_naive", 0),
    ("jena_dense", 107_585), // Flatten(240×14) → Dense(32): 107,552 + Dense(1): 33
    ("jena_gru", 4_641),     // GRU(32) on 14: 3·(14·32 + 32·32 + 2·32) = 4,608 + 33
    ("jena_gru_dropout", 4_641), // dropout adds no weights
    ("jena_stacked_gru", 23_489), // 4,608 + GRU(64) on 32: 18,816 + 65
    ("jena_gru_reversed", 4_641),
    ("jena_bidirectional_gru", 9_281), // 2·4,608 + Dense(1) on 64: 65
    ("jena_conv1d", 12_609),           // 2,272 + 5,152 + 5,152 + 33
    ("jena_conv_gru", 13_793),         // 2,272 + 5,152 + GRU(32) on 32: 6,336 + 33
    ("imdb_conv1d", 1_315_937),        // 1,280,000 + 28,704 + 7,200 + 33
    ("imdb_lstm", 328_353),            // 320,000 + LSTM(32) on 32: 8,320 + 33
    ("imdb_lstm_reversed", 1_300_641), // 1,280,000 + LSTM(32) on 128: 20,608 + 33
    ("imdb_bidirectional_lstm", 336_705), // 320,000 + 2·8,320 + 65
];

#[test]
fn book_models_have_keras_parameter_counts() {
    let _generator = generator();
    for (name, expected) in BOOK {
        let cell = &cells(&format!("experiments/{name}.toml"), &[])[0];
        let inferred = model::infer(&cell.config).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(
            inferred.total_params, expected,
            "{name}: inferred parameters"
        );
        let built = Model::build(&cell.config, Device::Cpu, &[1]).unwrap();
        assert_eq!(
            built.trainable_params(),
            expected,
            "{name}: allocated parameters"
        );
    }
}

#[test]
fn single_layer_counts_quoted_in_the_book() {
    let gru = &cells("experiments/jena_gru.toml", &[])[0];
    assert_eq!(model::infer(&gru.config).unwrap().layers[0].params, 4_608);
    let dense = &cells("experiments/jena_dense.toml", &[])[0];
    assert_eq!(
        model::infer(&dense.config).unwrap().layers[1].params,
        107_552
    );
    let conv = &cells("experiments/imdb_conv1d.toml", &[])[0];
    let layers = model::infer(&conv.config).unwrap().layers;
    assert_eq!((layers[0].params, layers[1].params), (1_280_000, 28_704));
}

#[test]
fn describe_prints_a_keras_style_table() {
    let cell = &cells("experiments/jena_conv1d.toml", &[])[0];
    let t = model::describe(&cell.config).unwrap();
    assert!(t.contains("(batch, 236, 32)"), "{t}");
    assert!(t.contains("(batch, 78, 32)"), "{t}");
    assert!(t.contains("Total params: 12,609"), "{t}");
}

#[test]
fn every_book_model_runs_forward_with_the_right_output_shape() {
    let _generator = generator();
    for (name, _) in BOOK {
        let sets: &[&str] = if name.starts_with("imdb") {
            &["data.maxlen=100"]
        } else {
            &["data.lookback=600"]
        };
        let cell = &cells(&format!("experiments/{name}.toml"), sets)[0];
        let m = Model::build(&cell.config, Device::Cpu, &[1]).unwrap();
        let x = if name.starts_with("imdb") {
            Tensor::randint(10_000, [3, 100], (Kind::Int64, Device::Cpu))
        } else {
            let t = 600 / if name == "jena_conv_gru" { 3 } else { 6 };
            Tensor::randn([3, t, 14], (Kind::Float, Device::Cpu))
        };
        assert_eq!(m.forward(&x, true).size(), vec![3, 1], "{name}");
        assert_eq!(m.forward(&x, false).size(), vec![3, 1], "{name}");
    }
}

/// The IMDB convnet's Embedding → Conv1D runs as table lookups when a batch
/// has at least twice as many windows as the vocabulary (48 × 494 here) and
/// as the two layers otherwise (one review): outputs and gradients agree.
#[test]
fn embedding_conv_lookups_equal_the_layers() {
    let _generator = generator();
    let cell = &cells("experiments/imdb_conv1d.toml", &[])[0];
    let m = Model::build(&cell.config, Device::Cpu, &[0]).unwrap();
    // Weights and tokens from a generator of the test's own: libtorch's global
    // one is shared with the tests running beside this one, so its draws here
    // would change with their timing.
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    tch::no_grad(|| {
        for mut v in m.vs.trainable_variables() {
            let values: Vec<f32> = (0..v.numel()).map(|_| rng.gen_range(-0.1..0.1)).collect();
            v.copy_(&Tensor::from_slice(&values).view(v.size().as_slice()));
        }
    });
    let tokens: Vec<i64> = (0..48 * 500).map(|_| rng.gen_range(0..10_000)).collect();
    let x = Tensor::from_slice(&tokens).view([48, 500]);
    let reviews = || (0..48).map(|i| x.narrow(0, i, 1));
    let batch = m.forward(&x, false);
    let one_by_one = Tensor::cat(
        &reviews().map(|r| m.forward(&r, false)).collect::<Vec<_>>(),
        0,
    );
    let diff = (&batch - &one_by_one).abs().max().double_value(&[]);
    assert!(diff < 1e-5, "outputs differ by {diff}");
    let grads = |inputs: Vec<Tensor>| {
        for mut v in m.vs.trainable_variables() {
            v.zero_grad();
        }
        for input in inputs {
            m.backward(&m.forward(&input, true).sum(Kind::Float));
        }
        m.vs.trainable_variables()
            .iter()
            .map(|v| v.grad().copy())
            .collect::<Vec<_>>()
    };
    let together = grads(vec![x.shallow_clone()]);
    let apart = grads(reviews().collect());
    assert_same_gradients(&together, &apart);
}

/// The Jena convnet: its three Conv1D layers run the `conv` kernel with the
/// max pool behind each taken in the same pass (in training, with the tape);
/// the output and every gradient equal libtorch's convolution and pools
/// (evaluation mode with gradients recorded, where the kernel stays out).
#[test]
fn conv_kernel_with_fused_pools_equals_the_layers() {
    let _generator = generator();
    let cell = &cells("experiments/jena_conv1d.toml", &[])[0];
    let m = Model::build(&cell.config, Device::Cpu, &[1]).unwrap();
    assert_eq!(
        m.kernel_convs(),
        vec![
            "conv1d_0 + max_pool1d_1",
            "conv1d_2 + max_pool1d_3",
            "conv1d_4 + global_max_pool1d_5"
        ]
    );
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    tch::no_grad(|| {
        for mut v in m.vs.trainable_variables() {
            let values: Vec<f32> = (0..v.numel()).map(|_| rng.gen_range(-0.3..0.3)).collect();
            v.copy_(&Tensor::from_slice(&values).view(v.size().as_slice()));
        }
    });
    let values: Vec<f32> = (0..16 * 240 * 14)
        .map(|_| rng.gen_range(-2.0..2.0))
        .collect();
    let x = Tensor::from_slice(&values).view([16, 240, 14]);
    let run = |train: bool| {
        for mut v in m.vs.trainable_variables() {
            v.zero_grad();
        }
        let y = m.forward(&x, train);
        let loss = y.square().sum(Kind::Float);
        if train {
            m.backward(&loss);
        } else {
            loss.backward();
        }
        let mut out = vec![y.detach()];
        out.extend(m.vs.trainable_variables().iter().map(|v| v.grad().copy()));
        out
    };
    let kernel = run(true);
    let layers = run(false);
    assert_eq!(kernel[0].size(), vec![16, 1]);
    assert!(kernel[1..]
        .iter()
        .all(|g| g.abs().max().double_value(&[]) > 0.0));
    for (a, b) in kernel.iter().zip(&layers) {
        let scale = 1.0 + b.abs().max().double_value(&[]);
        let rel = (a - b).abs().max().double_value(&[]) / scale;
        assert!(rel < 1e-5, "differs by {rel} (relative)");
    }
}

/// The IMDB bidirectional LSTM: both directions run the CPU kernel on the
/// same embedding output, so both backward passes go through one graph;
/// gradients equal libtorch's fused LSTM's.
#[test]
fn bidirectional_kernels_share_their_input_graph() {
    let _generator = generator();
    use seqlab::model::recurrent::Path;
    let cell = &cells(
        "experiments/imdb_bidirectional_lstm.toml",
        &["data.maxlen=30"],
    )[0];
    let mut m = Model::build(&cell.config, Device::Cpu, &[0]).unwrap();
    let x = Tensor::randint(10_000, [40, 30], (Kind::Int64, Device::Cpu));
    assert_eq!(m.recurrent_paths(true), vec![Path::Kernel, Path::Kernel]);
    let kernel = weight_grads(&m, &x);
    without_recurrent_kernels(&mut m);
    assert_eq!(m.recurrent_paths(true), vec![Path::Fused, Path::Fused]);
    let fused = weight_grads(&m, &x);
    assert!(kernel.iter().any(|g| g.abs().max().double_value(&[]) > 0.0));
    assert_same_gradients(&kernel, &fused);
}

#[test]
fn sigmoid_head_gives_logits_for_the_loss() {
    let _generator = generator();
    let cell = &cells("experiments/imdb_lstm.toml", &["data.maxlen=20"])[0];
    let m = Model::build(&cell.config, Device::Cpu, &[0]).unwrap();
    assert!(m.ends_with_sigmoid());
    let x = Tensor::randint(10_000, [4, 20], (Kind::Int64, Device::Cpu));
    let p = m.forward(&x, false);
    let z = m.forward_logits(&x, false);
    assert!(p.allclose(&z.sigmoid(), 1e-6, 1e-6, false));
}

#[test]
fn naive_model_predicts_the_last_observed_target() {
    let _generator = generator();
    let cell = &cells(
        "experiments/jena_naive.toml",
        &["data.lookback=12", "data.step=6"],
    )[0];
    let m = Model::build(&cell.config, Device::Cpu, &[1]).unwrap();
    let x = Tensor::arange(2 * 2 * 14, (Kind::Float, Device::Cpu)).view([2, 2, 14]);
    let y: Vec<f32> = Vec::try_from(m.forward(&x, false).flatten(0, -1)).unwrap();
    assert_eq!(y, vec![15.0, 43.0]);
}

#[test]
fn two_branch_example_is_a_real_graph() {
    let _generator = generator();
    let cell = &cells(
        "experiments/examples/jena_two_branch.toml",
        &["data.lookback=60"],
    )[0];
    let inferred = model::infer(&cell.config).unwrap();
    assert_eq!(
        inferred.layers[3].output.dims,
        vec![32],
        "concatenate joins 16 + 16 features"
    );
    let m = Model::build(&cell.config, Device::Cpu, &[1]).unwrap();
    let x = Tensor::randn([5, 10, 14], (Kind::Float, Device::Cpu));
    assert_eq!(m.forward(&x, false).size(), vec![5, 1]);
}

fn graph_error(layers: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("g.toml");
    std::fs::write(
        &f,
        format!("[experiment]\nname = \"g\"\n[data]\nsource = \"jena\"\nlookback = 60\n{layers}"),
    )
    .unwrap();
    let cell = &config::expand(&config::load(&f, &[]).unwrap()).unwrap()[0];
    model::infer(&cell.config).unwrap_err().join("\n")
}

#[test]
fn graph_errors_say_what_to_fix() {
    let cycle = graph_error("[[layers]]\nname = \"a\"\ntype = \"dense\"\nunits = 1\ninputs = [\"b\"]\n[[layers]]\nname = \"b\"\ntype = \"dense\"\nunits = 1\ninputs = [\"a\"]\n");
    assert!(cycle.contains("cycle"), "{cycle}");
    let unused = graph_error("[[layers]]\nname = \"side\"\ntype = \"dense\"\nunits = 3\ninputs = [\"input\"]\n[[layers]]\ntype = \"flatten\"\ninputs = [\"input\"]\n[[layers]]\ntype = \"dense\"\nunits = 1\n");
    assert!(
        unused.contains("layers[0] (dense): its output is never used"),
        "{unused}"
    );
    let merge = graph_error("[[layers]]\nname = \"a\"\ntype = \"gru\"\nunits = 4\ninputs = [\"input\"]\n[[layers]]\nname = \"b\"\ntype = \"gru\"\nunits = 5\ninputs = [\"input\"]\n[[layers]]\ntype = \"add\"\ninputs = [\"a\", \"b\"]\n[[layers]]\ntype = \"dense\"\nunits = 1\n");
    assert!(
        merge.contains("inputs must have the same shape")
            && merge.contains("(batch, 4)")
            && merge.contains("(batch, 5)"),
        "{merge}"
    );
    let tokens = graph_error("[[layers]]\ntype = \"embedding\"\ninput_dim = 10\noutput_dim = 2\n[[layers]]\ntype = \"dense\"\nunits = 1\n");
    assert!(
        tokens.contains("embedding must come first, on IMDB data"),
        "{tokens}"
    );
}

/// The forecasting layers against Keras' documented formulas, on a table of
/// 16 features (parameters inferred and allocated), and the ETT models.
#[test]
fn forecasting_layers_have_keras_parameter_counts() {
    let _generator = generator();
    let dir = tempfile::tempdir().unwrap();
    let cell = &table_cell(
        dir.path(),
        16,
        r#"[[layers]]
type = "multi_head_attention"
num_heads = 2
key_dim = 8
[[layers]]
type = "layer_normalization"
[[layers]]
type = "positional_embedding"
[[layers]]
type = "moving_average"
kernel_size = 3
[[layers]]
type = "permute"
dims = [2, 1]
[[layers]]
type = "reshape"
target_shape = [-1]
[[layers]]
type = "dense"
units = 1
"#,
    );
    let inferred = model::infer(&cell.config).unwrap();
    let params: Vec<usize> = inferred.layers.iter().map(|l| l.params).collect();
    // MHA(2 heads, key 8) on 16: q, k, v, o each 16·16 + 16 = 272 → 1,088;
    // LayerNormalization: γ and β of 16; positional table 8 × 16; Dense(1) on 128.
    assert_eq!(params, [1_088, 32, 128, 0, 0, 0, 129]);
    let built = Model::build(&cell.config, Device::Cpu, &[0]).unwrap();
    assert_eq!(built.trainable_params(), 1_088 + 32 + 128 + 129);
    let y = built.forward(&Tensor::randn([3, 8, 16], (Kind::Float, Device::Cpu)), true);
    assert_eq!(y.size(), vec![3, 1]);
    // The ETT files: channel-independent models see (96, 1) and return the horizon.
    for (name, expected) in [
        ("ett_nlinear", 96 * 96 + 96),
        ("ett_dlinear", 2 * (96 * 96 + 96)),
        (
            "ett_segrnn",
            (24 * 64 + 64) + 3 * (64 * 64 + 64 * 64 + 2 * 64) + (64 * 96 + 96),
        ),
    ] {
        let c = &cells(
            &format!("experiments/ett/{name}.toml"),
            &["data.path=\"tests/fixtures/etth1_head.csv\""],
        )[0];
        let inferred = model::infer(&c.config).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(inferred.total_params, expected, "{name}");
        assert_eq!(inferred.input.dims, [96, 1], "{name}");
    }
}

/// The kernels' weight gradients held back from the graph for the optimizer
/// (`Model::backward_step`) train the same weights, bit for bit, as the
/// same gradients passed through the graph (`Model::backward`, then the
/// optimizer reading `.grad`): convolutions handing dL/dx on, a GRU whose
/// input gradient still flows back into a Dense layer, attention with a
/// residual, and a Bidirectional pair. Held back, a kernel weight's `.grad`
/// stays empty: nothing reached it through the graph.
#[test]
fn held_kernel_gradients_train_the_same_weights() {
    let _generator = generator();
    use seqlab::train::optim;
    let ett = ["data.path=\"tests/fixtures/etth1_head.csv\""];
    // (file, settings, target columns among the inputs, input shape)
    type Case<'a> = (&'a str, &'a [&'a str], Vec<usize>, [i64; 3]);
    let cases: [Case; 4] = [
        ("experiments/jena_conv1d.toml", &[], vec![1], [6, 240, 14]),
        (
            "experiments/jena_bidirectional_gru.toml",
            &[],
            vec![1],
            [6, 240, 14],
        ),
        (
            "experiments/ett/ett_segrnn.toml",
            &ett,
            (0..7).collect(),
            [5, 96, 7],
        ),
        (
            "experiments/ett/ett_patch_transformer.toml",
            &ett,
            (0..7).collect(),
            [5, 96, 7],
        ),
    ];
    for (file, sets, targets, shape) in cases {
        let cell = &cells(file, sets)[0];
        let train = |held: bool| {
            tch::manual_seed(5);
            let m = Model::build(&cell.config, Device::Cpu, &targets).unwrap();
            let mut opt = optim::build(&cell.config.train.optimizer, &m.vs).unwrap();
            let before: Vec<Tensor> =
                m.vs.trainable_variables()
                    .iter()
                    .map(|v| v.copy())
                    .collect();
            let mut empty = 0;
            for step in 0..3 {
                tch::manual_seed(100 + step);
                let x = Tensor::randn(shape, (Kind::Float, Device::Cpu));
                let loss = m.forward(&x, true).square().mean(Kind::Float);
                if held {
                    m.backward_step(&mut opt, &loss);
                } else {
                    opt.zero_grad();
                    m.backward(&loss);
                    opt.step();
                }
                empty =
                    m.vs.trainable_variables()
                        .iter()
                        .filter(|v| !v.grad().defined())
                        .count();
            }
            let after = m.vs.trainable_variables();
            assert!(
                before.iter().zip(&after).all(|(b, a)| !b.equal(a)),
                "{file}: every weight trains"
            );
            let bits: Vec<Vec<u32>> = after
                .iter()
                .map(|t| {
                    let f: Vec<f32> = Vec::try_from(t.flatten(0, -1)).unwrap();
                    f.iter().map(|x| x.to_bits()).collect()
                })
                .collect();
            (bits, empty)
        };
        let (held, empty) = train(true);
        let (graph, none) = train(false);
        assert_eq!(
            none, 0,
            "{file}: through the graph every weight has a gradient"
        );
        assert!(empty > 0, "{file}: the kernels' weights were held back");
        assert!(
            held == graph,
            "{file}: held gradients trained other weights"
        );
    }
}

/// The SegRNN-like forecaster: its Dense + ReLU runs on the tape and the
/// GRU kernel hands it dL/dy directly; every gradient equals the one
/// through libtorch's layers (fused GRU, the graph's Dense).
#[test]
fn dense_before_a_recurrent_kernel_equals_the_layers() {
    let _generator = generator();
    use seqlab::model::recurrent::Path;
    let cell = &cells(
        "experiments/ett/ett_segrnn.toml",
        &["data.path=\"tests/fixtures/etth1_head.csv\""],
    )[0];
    let targets: Vec<usize> = (0..7).collect();
    let mut m = Model::build(&cell.config, Device::Cpu, &targets).unwrap();
    let x = Tensor::randn([6, 96, 7], (Kind::Float, Device::Cpu));
    assert_eq!(m.taped_denses(), vec!["dense_1 → gru_2"]);
    let kernel = weight_grads(&m, &x);
    without_recurrent_kernels(&mut m);
    assert_eq!(m.recurrent_paths(true), vec![Path::Fused]);
    assert!(m.taped_denses().is_empty());
    let layers = weight_grads(&m, &x);
    assert_eq!(kernel.len(), 8);
    for a in &kernel {
        assert!(a.abs().max().double_value(&[]) > 0.0);
    }
    assert_same_gradients(&kernel, &layers);
}

/// A GRU kernel reading another run's output leaf (here a moving average's)
/// hands it dL/dx directly; the run that owns the leaf still receives it,
/// so the Dense layer before both gets the gradient libtorch's layers give.
#[test]
fn handed_gradients_reach_every_kind_of_run() {
    let _generator = generator();
    let dir = tempfile::tempdir().unwrap();
    let cell = &table_cell(
        dir.path(),
        3,
        r#"[[layers]]
type = "dense"
units = 4
activation = "tanh"
[[layers]]
type = "moving_average"
kernel_size = 3
[[layers]]
type = "gru"
units = 5
[[layers]]
type = "dense"
units = 1
"#,
    );
    let mut m = Model::build(&cell.config, Device::Cpu, &[0]).unwrap();
    let x = Tensor::randn([6, 8, 3], (Kind::Float, Device::Cpu));
    let kernel = weight_grads(&m, &x);
    without_recurrent_kernels(&mut m);
    let layers = weight_grads(&m, &x);
    assert_eq!(kernel.len(), 8);
    for b in &layers {
        assert!(b.abs().max().double_value(&[]) > 0.0);
    }
    assert_same_gradients(&kernel, &layers);
}
