//! The GRU cell for the `rnn` time loop (Keras' reset_after, as libtorch):
//!
//! r = σ(gᵢᵣ + gₕᵣ), z = σ(gᵢ𝓏 + gₕ𝓏), n = act(gᵢₙ + r ⊙ gₕₙ), h' = n + z ⊙ (h − n).
//!
//! Saved per step: r, z, n and gₕₙ. Backward: da_n = dh ⊙ (1 − z) ⊙ act'(n),
//! da_z = dh ⊙ (h − n) ⊙ σ'(z), da_r = da_n ⊙ gₕₙ ⊙ σ'(r); dgᵢ = [da_r, da_z,
//! da_n], dgₕ = [da_r, da_z, da_n ⊙ r], and dh ⊙ z flows to h directly.
use super::rnn::{impl_cell, BackwardStep, ForwardStep};

pub struct Gru;

impl_cell!(Gru {
    GATES: 3,
    SAVED: 4,
    CARRY: false,
    SEPARATE_DGH: true
});

/// Every row of one step; gate blocks as their own slices (no index
/// arithmetic, so no bounds checks) and one simple pass per quantity, each
/// of which vectorises.
#[inline(always)]
fn forward_body(
    act: impl Fn(f32) -> f32,
    ract: impl Fn(f32) -> f32,
    _: impl Fn(f32) -> f32,
    _: impl Fn(f32) -> f32,
    s: ForwardStep<'_>,
) {
    let u = s.units;
    let [r_all, z_all, n_all, g_all] = <[&mut [f32]; 4]>::try_from(s.saved).expect("r, z, n, gₕₙ");
    let rows = s.prev.len() / u;
    for row in 0..rows {
        let (gi, gh) = (&s.gi[row * 3 * u..][..3 * u], &s.gh[row * 3 * u..][..3 * u]);
        let cells = row * u..(row + 1) * u;
        let (hp, h) = (&s.prev[cells.clone()], &mut s.h[cells.clone()]);
        let (r, z) = (&mut r_all[cells.clone()], &mut z_all[cells.clone()]);
        let (n, g) = (&mut n_all[cells.clone()], &mut g_all[cells]);
        let (gir, giz, gin) = (&gi[..u], &gi[u..2 * u], &gi[2 * u..]);
        let (ghr, ghz) = (&gh[..u], &gh[u..2 * u]);
        for ((r, &a), &b) in r.iter_mut().zip(gir).zip(ghr) {
            *r = ract(a + b);
        }
        for ((z, &a), &b) in z.iter_mut().zip(giz).zip(ghz) {
            *z = ract(a + b);
        }
        g.copy_from_slice(&gh[2 * u..]);
        for (((n, &a), &r), &g) in n.iter_mut().zip(gin).zip(r.iter()).zip(g.iter()) {
            *n = act(a + r * g);
        }
        for (((h, &n), &z), &hp) in h.iter_mut().zip(n.iter()).zip(z.iter()).zip(hp) {
            *h = n + z * (hp - n);
        }
    }
}

#[inline(always)]
fn backward_body(
    _: impl Fn(f32) -> f32,
    _: impl Fn(f32) -> f32,
    dact: impl Fn(f32) -> f32,
    dract: impl Fn(f32) -> f32,
    s: BackwardStep<'_>,
) {
    let u = s.units;
    let [r_all, z_all, n_all, g_all] = <[&[f32]; 4]>::try_from(s.saved).expect("r, z, n, gₕₙ");
    let dgh = s.dgh.expect("a GRU has its own dgₕ");
    let rows = s.dh.len() / u;
    for row in 0..rows {
        let c = row * u..(row + 1) * u;
        let (r, z, n, g) = (
            &r_all[c.clone()],
            &z_all[c.clone()],
            &n_all[c.clone()],
            &g_all[c.clone()],
        );
        let (hp, d) = (&s.prev[c.clone()], &s.dh[c.clone()]);
        let direct = &mut s.direct[c];
        let gi = &mut s.dgi[row * 3 * u..][..3 * u];
        let gh = &mut dgh[row * 3 * u..][..3 * u];
        let (gir, rest) = gi.split_at_mut(u);
        let (giz, gin) = rest.split_at_mut(u);
        for ((o, &d), &z) in direct.iter_mut().zip(d).zip(z) {
            *o = d * z;
        }
        for (((o, &d), &z), &n) in gin.iter_mut().zip(d).zip(z).zip(n) {
            *o = d * (1.0 - z) * dact(n); // da_n
        }
        for ((((o, &d), &hp), &n), &z) in giz.iter_mut().zip(d).zip(hp).zip(n).zip(z) {
            *o = d * (hp - n) * dract(z); // da_z
        }
        for (((o, &an), &g), &r) in gir.iter_mut().zip(gin.iter()).zip(g).zip(r) {
            *o = an * g * dract(r); // da_r
        }
        let (ghrz, ghn) = gh.split_at_mut(2 * u);
        ghrz[..u].copy_from_slice(gir);
        ghrz[u..].copy_from_slice(giz);
        for ((o, &an), &r) in ghn.iter_mut().zip(gin.iter()).zip(r) {
            *o = an * r;
        }
    }
}
