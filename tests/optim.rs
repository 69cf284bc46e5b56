//! seqlab's own optimizers against libtorch's C++ ones (through tch): the
//! same small model trained a few dozen steps from the same weights on the
//! same batches ends with bitwise-equal weights, for every optimizer, both
//! where seqlab updates a parameter in one loop (`train::update`) and where
//! it asks libtorch for each operation.
use seqlab::config::Optimizer as Spec;
use seqlab::train::optim;
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

fn model(vs: &nn::Path) -> impl Module {
    // Odd sizes: vectorised kernels and their scalar tails both run.
    nn::seq()
        .add(nn::linear(vs / "a", 13, 37, Default::default()))
        .add_fn(|x| x.tanh())
        .add(nn::linear(vs / "b", 37, 9, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(vs / "c", 9, 1, Default::default()))
}

fn weights(vs: &nn::VarStore) -> Vec<(String, Vec<u32>)> {
    let mut v: Vec<(String, Vec<u32>)> = vs
        .variables()
        .into_iter()
        .map(|(k, t)| {
            let f: Vec<f32> = Vec::try_from(t.flatten(0, -1)).unwrap();
            (k, f.iter().map(|x| x.to_bits()).collect())
        })
        .collect();
    v.sort();
    v
}

/// Which optimizer trains.
#[derive(Clone, Copy, PartialEq)]
enum Who {
    Libtorch,
    /// seqlab's, each update one loop per parameter.
    Loops,
    /// seqlab's, each update libtorch operations.
    Operations,
}

/// Trains `steps` steps, with `lr` changing half-way (a schedule), using
/// either libtorch's optimizer or seqlab's.
fn train(spec: &Spec, who: Who, steps: usize) -> Vec<(String, Vec<u32>)> {
    tch::manual_seed(11);
    let vs = nn::VarStore::new(Device::Cpu);
    let m = model(&vs.root());
    let mut theirs: Option<nn::Optimizer> = None;
    let mut mine: Option<optim::Optimizer> = None;
    if who != Who::Libtorch {
        let mut o = optim::build(spec, &vs).unwrap();
        o.fused = who == Who::Loops;
        mine = Some(o);
    } else {
        theirs = Some(match spec.clone() {
            Spec::Rmsprop { lr, rho, epsilon } => nn::RmsProp {
                alpha: rho,
                eps: epsilon,
                wd: 0.0,
                momentum: 0.0,
                centered: false,
            }
            .build(&vs, lr)
            .unwrap(),
            Spec::Adam {
                lr,
                beta_1,
                beta_2,
                epsilon,
            } => nn::Adam {
                beta1: beta_1,
                beta2: beta_2,
                wd: 0.0,
                eps: epsilon,
                amsgrad: false,
            }
            .build(&vs, lr)
            .unwrap(),
            Spec::Sgd {
                lr,
                momentum,
                nesterov,
            } => nn::Sgd {
                momentum,
                dampening: 0.0,
                wd: 0.0,
                nesterov,
            }
            .build(&vs, lr)
            .unwrap(),
        });
    }
    tch::manual_seed(12);
    for step in 0..steps {
        let x = Tensor::randn([32, 13], (Kind::Float, Device::Cpu));
        let y = x.sum_dim_intlist(1, true, Kind::Float).sin();
        let loss = (m.forward(&x) - y).abs().mean(Kind::Float);
        if step == steps / 2 {
            let lr = spec.lr() * 0.5;
            if let Some(o) = theirs.as_mut() {
                o.set_lr(lr)
            }
            if let Some(o) = mine.as_mut() {
                o.set_lr(lr)
            }
        }
        if let Some(o) = theirs.as_mut() {
            o.zero_grad();
            loss.backward();
            o.step();
        }
        if let Some(o) = mine.as_mut() {
            o.zero_grad();
            loss.backward();
            o.step();
        }
    }
    weights(&vs)
}

/// libtorch's generator is global: one check at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn check(spec: Spec) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    let a = train(&spec, Who::Libtorch, 40);
    let start = train(&spec, Who::Loops, 0);
    assert_ne!(a, start, "{spec:?}: training changed nothing");
    for who in [Who::Loops, Who::Operations] {
        let b = train(&spec, who, 40);
        let name = if who == Who::Loops {
            "loops"
        } else {
            "operations"
        };
        for ((na, wa), (nb, wb)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            let diff = wa.iter().zip(wb).filter(|(x, y)| x != y).count();
            assert_eq!(
                diff,
                0,
                "{spec:?} ({name}): {na}: {diff} of {} weights differ",
                wa.len()
            );
        }
    }
}

#[test]
fn rmsprop_matches_libtorch_bit_for_bit() {
    check(Spec::Rmsprop {
        lr: 0.01,
        rho: 0.9,
        epsilon: 1e-7,
    });
}

#[test]
fn adam_matches_libtorch_bit_for_bit() {
    check(Spec::Adam {
        lr: 0.003,
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-7,
    });
}

#[test]
fn sgd_matches_libtorch_bit_for_bit() {
    for (momentum, nesterov) in [(0.0, false), (0.9, false), (0.9, true)] {
        check(Spec::Sgd {
            lr: 0.05,
            momentum,
            nesterov,
        });
    }
}
