//! The dropout draw log (`model::draws`): a replay after reseeding leaves
//! libtorch's generator where the logged run left it. Alone in its own
//! process, as it drives the process-wide generator.
use seqlab::model::draws::{dropout, end_step, replay, reset, seed, snapshot, DrawLog};
use tch::{Kind, Tensor};

#[test]
fn a_replay_leaves_the_generator_where_the_logged_run_left_it() {
    // One test touches the process-wide log and generator.
    tch::manual_seed(5);
    reset();
    let x = Tensor::ones([4, 7], (Kind::Float, tch::Device::Cpu));
    for step in 0..6 {
        let _ = dropout(&x, 0.3, true);
        if step % 2 == 0 {
            let _ = dropout(&x.narrow(1, 0, 3), 0.5, true);
        }
        let _ = dropout(&x, 0.3, false); // evaluation: no draw
        if step % 3 == 1 {
            let _ = seed(); // a kernel's own mask generator
        }
        end_step();
    }
    let log = snapshot();
    assert_eq!(log.runs.len(), 6, "alternating steps do not merge");
    let next = dropout(&x, 0.3, true);
    let next_seed = seed();
    tch::manual_seed(5);
    replay(&log, tch::Device::Cpu);
    let again = dropout(&x, 0.3, true);
    assert!(next.equal(&again), "the same mask after the replay");
    assert_eq!(next_seed, seed(), "the same kernel seed after the replay");
    assert_ne!(log, DrawLog::default());
    reset();
}
