//! The LSTM cell for the `rnn` time loop (gates i, f, g, o as libtorch):
//!
//! i, f, o = σ(gᵢ + gₕ), g = act(gᵢ + gₕ), c' = f ⊙ c + i ⊙ g, h' = o ⊙ act(c').
//!
//! Saved per step: i, f, g, o and act(c'). Backward, with dc' = dc +
//! dh ⊙ o ⊙ act'(c'): da_o = dh ⊙ act(c') ⊙ σ'(o), da_i = dc' ⊙ g ⊙ σ'(i),
//! da_g = dc' ⊙ i ⊙ act'(g), da_f = dc' ⊙ c ⊙ σ'(f), and dc = dc' ⊙ f flows to
//! the previous step. dgₕ = dgᵢ; h reaches the previous step only through
//! the recurrent product.
use super::rnn::{impl_cell, BackwardStep, ForwardStep};

pub struct Lstm;

impl_cell!(Lstm {
    GATES: 4,
    SAVED: 5,
    CARRY: true,
    SEPARATE_DGH: false
});

/// Every row of one step, one simple pass per quantity (each vectorises).
#[inline(always)]
fn forward_body(
    act: impl Fn(f32) -> f32,
    ract: impl Fn(f32) -> f32,
    _: impl Fn(f32) -> f32,
    _: impl Fn(f32) -> f32,
    s: ForwardStep<'_>,
) {
    let u = s.units;
    let [i_all, f_all, g_all, o_all, tc_all] =
        <[&mut [f32]; 5]>::try_from(s.saved).expect("i, f, g, o, act(c)");
    let rows = s.prev.len() / u;
    for row in 0..rows {
        let (gi, gh) = (&s.gi[row * 4 * u..][..4 * u], &s.gh[row * 4 * u..][..4 * u]);
        let cells = row * u..(row + 1) * u;
        let (i, f) = (&mut i_all[cells.clone()], &mut f_all[cells.clone()]);
        let (g, o) = (&mut g_all[cells.clone()], &mut o_all[cells.clone()]);
        let tc = &mut tc_all[cells.clone()];
        let (cp, c, h) = (
            &s.prev_c[cells.clone()],
            &mut s.c[cells.clone()],
            &mut s.h[cells],
        );
        for ((x, &a), &b) in i.iter_mut().zip(&gi[..u]).zip(&gh[..u]) {
            *x = ract(a + b);
        }
        for ((x, &a), &b) in f.iter_mut().zip(&gi[u..2 * u]).zip(&gh[u..2 * u]) {
            *x = ract(a + b);
        }
        for ((x, &a), &b) in g.iter_mut().zip(&gi[2 * u..3 * u]).zip(&gh[2 * u..3 * u]) {
            *x = act(a + b);
        }
        for ((x, &a), &b) in o.iter_mut().zip(&gi[3 * u..]).zip(&gh[3 * u..]) {
            *x = ract(a + b);
        }
        for ((((c, &cp), &f), &i), &g) in c
            .iter_mut()
            .zip(cp)
            .zip(f.iter())
            .zip(i.iter())
            .zip(g.iter())
        {
            *c = f * cp + i * g;
        }
        for (t, &c) in tc.iter_mut().zip(c.iter()) {
            *t = act(c);
        }
        for ((h, &o), &t) in h.iter_mut().zip(o.iter()).zip(tc.iter()) {
            *h = o * t;
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
    let [i_all, f_all, g_all, o_all, tc_all] =
        <[&[f32]; 5]>::try_from(s.saved).expect("i, f, g, o, act(c)");
    s.direct.fill(0.0);
    let rows = s.dh.len() / u;
    for row in 0..rows {
        let c = row * u..(row + 1) * u;
        let (i, f, g) = (&i_all[c.clone()], &f_all[c.clone()], &g_all[c.clone()]);
        let (o, tc, cp) = (&o_all[c.clone()], &tc_all[c.clone()], &s.prev_c[c.clone()]);
        let (dh, dc) = (&s.dh[c.clone()], &mut s.dc[c]);
        // every slice exactly u long, so the loop below has no bounds checks
        let (i, f, g, o, tc, cp, dh, dc) = (
            &i[..u],
            &f[..u],
            &g[..u],
            &o[..u],
            &tc[..u],
            &cp[..u],
            &dh[..u],
            &mut dc[..u],
        );
        let da = &mut s.dgi[row * 4 * u..][..4 * u];
        let (da_i, rest) = da.split_at_mut(u);
        let (da_f, rest) = rest.split_at_mut(u);
        let (da_g, da_o) = rest.split_at_mut(u);
        let (da_i, da_f, da_g, da_o) = (
            &mut da_i[..u],
            &mut da_f[..u],
            &mut da_g[..u],
            &mut da_o[..u],
        );
        for j in 0..u {
            let dct = dc[j] + dh[j] * o[j] * dact(tc[j]);
            da_o[j] = dh[j] * tc[j] * dract(o[j]);
            da_i[j] = dct * g[j] * dract(i[j]);
            da_g[j] = dct * i[j] * dact(g[j]);
            da_f[j] = dct * cp[j] * dract(f[j]);
            dc[j] = dct * f[j];
        }
    }
}
