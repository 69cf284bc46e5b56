//! Jena windows with the exact semantics of the book's `generator`
//! (Deep Learning with Python, listing 6.33).
//!
//! A batch row `r` (a "current time") yields the sample
//! `data[r - lookback .. r : step]` of shape `(lookback / step, features)` and
//! the target `data[r + delay][target]`. Rows are drawn from
//! `[min_index + lookback, max_index)`: uniformly with replacement when
//! shuffled, or in order, wrapping to the start when `i + batch_size >= max_index`.
//!
//! The split is two parts: [`RowSelector`] picks row indices on the host (pure,
//! unit-tested), and [`Windows`] gathers the batch from the matrix that
//! lives on the device once: one `index_select` on a GPU, a copy loop on
//! the CPU.
use anyhow::{bail, Result};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// How one split is cut into windows (all in rows of the record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    pub lookback: usize,
    pub step: usize,
    pub delay: usize,
    pub batch_size: usize,
    /// First row of the split (inclusive).
    pub min_index: usize,
    /// End of the split: rows are `< max_index`, as in the listing.
    pub max_index: usize,
    pub shuffle: bool,
}

impl WindowSpec {
    /// Time steps per sample: `lookback / step`.
    pub fn steps(&self) -> usize {
        self.lookback / self.step
    }

    /// Batches in one full pass: the book's `(max - min - lookback) // batch_size`.
    pub fn full_pass_steps(&self) -> usize {
        (self.max_index - self.min_index - self.lookback) / self.batch_size
    }

    /// Checks that a split `[min, max]` of a record of `rows` rows gives
    /// windows, clamping `max` to `rows - delay - 1` as the listing's
    /// `max_index=None` does. `name` is the config key for errors
    /// (`data.splits.val`).
    pub fn for_split(
        (lookback, step, delay, batch_size): (usize, usize, usize, usize),
        name: &str,
        split: [usize; 2],
        rows: usize,
        shuffle: bool,
    ) -> Result<WindowSpec> {
        if step == 0 || lookback == 0 || lookback % step != 0 {
            bail!("data.lookback ({lookback}) must be a positive multiple of data.step ({step})");
        }
        if batch_size == 0 {
            bail!("data.batch_size must be at least 1");
        }
        let last = (rows as i64) - (delay as i64) - 1;
        let [min_index, max_index] = split;
        let max_index = (max_index as i64).min(last);
        if (min_index + lookback) as i64 >= max_index {
            bail!(
                "data.splits.{name} = [{}, {}]: no window fits: the data has {rows} rows, so with \
                 lookback {lookback} and delay {delay} a split needs min + lookback < min(max, rows - delay - 1) = {max_index}; \
                 change data.splits.{name} (or use the full dataset)",
                split[0],
                split[1]
            );
        }
        Ok(WindowSpec {
            lookback,
            step,
            delay,
            batch_size,
            min_index,
            max_index: max_index as usize,
            shuffle,
        })
    }
}

/// The host side of the generator: which rows make the next batch.
#[derive(Debug, Clone)]
pub struct RowSelector {
    pub spec: WindowSpec,
    /// The listing's `i`: next row of a sequential pass.
    next: usize,
}

impl RowSelector {
    pub fn new(spec: WindowSpec) -> RowSelector {
        RowSelector {
            spec,
            next: spec.min_index + spec.lookback,
        }
    }

    /// Back to the first row (a fresh generator).
    pub fn reset(&mut self) {
        self.next = self.spec.min_index + self.spec.lookback;
    }

    /// The rows of the next batch (the listing's `rows`).
    pub fn next_rows(&mut self, rng: &mut ChaCha8Rng) -> Vec<i64> {
        let s = &self.spec;
        let lo = s.min_index + s.lookback;
        if s.shuffle {
            return (0..s.batch_size)
                .map(|_| rng.gen_range(lo..s.max_index) as i64)
                .collect();
        }
        if self.next + s.batch_size >= s.max_index {
            self.next = lo;
        }
        let end = (self.next + s.batch_size).min(s.max_index);
        let rows = (self.next..end).map(|r| r as i64).collect();
        self.next = end;
        rows
    }
}

/// Which window ends (rows `t`) the next batch takes.
#[derive(Debug, Clone)]
pub enum Selector {
    /// The book's generator over a row range.
    Book(RowSelector),
    /// An explicit list of window ends (any table: series, gaps, strides).
    List(ListSelector),
}

impl Selector {
    fn next_rows(&mut self, rng: &mut ChaCha8Rng) -> Vec<i64> {
        match self {
            Selector::Book(s) => s.next_rows(rng),
            Selector::List(s) => s.next_rows(rng),
        }
    }

    /// The position between batches, for checkpoints.
    pub fn state(&self) -> super::SamplerState {
        match self {
            Selector::Book(s) => super::SamplerState {
                position: s.next,
                order: vec![],
            },
            Selector::List(s) => super::SamplerState {
                position: s.position,
                order: s.permutation.clone(),
            },
        }
    }

    /// Back to a position [`state`](Self::state) returned (checked first).
    pub fn restore(&mut self, state: &super::SamplerState) -> anyhow::Result<()> {
        match self {
            Selector::Book(s) => {
                let lo = s.spec.min_index + s.spec.lookback;
                if state.position < lo
                    || state.position > s.spec.max_index
                    || !state.order.is_empty()
                {
                    anyhow::bail!(
                        "sampler position {} is outside rows {lo}..={} (or an order was given for a generator without one)",
                        state.position,
                        s.spec.max_index
                    );
                }
                s.next = state.position;
            }
            Selector::List(s) => {
                state.check(s.ends.len(), s.ends.len())?;
                s.position = state.position;
                s.permutation = state.order.clone();
            }
        }
        Ok(())
    }

    /// Batches in one full pass over the split.
    pub fn full_pass_steps(&self) -> usize {
        match self {
            Selector::Book(s) => s.spec.full_pass_steps(),
            Selector::List(s) => s.ends.len().div_ceil(s.batch_size),
        }
    }

    pub fn reset(&mut self) {
        match self {
            Selector::Book(s) => s.reset(),
            Selector::List(s) => s.position = 0,
        }
    }

    /// Rows between a window's end and its first target.
    fn delay(&self) -> usize {
        match self {
            Selector::Book(s) => s.spec.delay,
            Selector::List(s) => s.delay,
        }
    }
}

/// How a [`ListSelector`] walks its windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListOrder {
    /// In order, every window once per pass; the last batch of a pass is short.
    Sequential,
    /// Uniformly at random with replacement (the book's training batches).
    Random,
    /// Every window once per pass, in a new seeded shuffled order each pass.
    Epoch,
}

/// Window ends drawn from an explicit list.
#[derive(Debug, Clone)]
pub struct ListSelector {
    pub ends: Vec<i64>,
    pub batch_size: usize,
    pub delay: usize,
    pub order: ListOrder,
    position: usize,
    permutation: Vec<usize>,
}

impl ListSelector {
    pub fn new(ends: Vec<i64>, batch_size: usize, delay: usize, order: ListOrder) -> ListSelector {
        ListSelector {
            ends,
            batch_size,
            delay,
            order,
            position: 0,
            permutation: vec![],
        }
    }

    fn next_rows(&mut self, rng: &mut ChaCha8Rng) -> Vec<i64> {
        let n = self.ends.len();
        match self.order {
            ListOrder::Random => (0..self.batch_size)
                .map(|_| self.ends[rng.gen_range(0..n)])
                .collect(),
            ListOrder::Sequential => {
                if self.position >= n {
                    self.position = 0;
                }
                let end = (self.position + self.batch_size).min(n);
                let rows = self.ends[self.position..end].to_vec();
                self.position = end;
                rows
            }
            ListOrder::Epoch => {
                if self.position >= n || self.permutation.len() != n {
                    use rand::seq::SliceRandom;
                    self.permutation = (0..n).collect();
                    self.permutation.shuffle(rng);
                    self.position = 0;
                }
                let end = (self.position + self.batch_size).min(n);
                let rows = self.permutation[self.position..end]
                    .iter()
                    .map(|&i| self.ends[i])
                    .collect();
                self.position = end;
                rows
            }
        }
    }
}

/// Batches of windows gathered on the device from the normalised matrix.
#[derive(Debug)]
pub struct Windows {
    pub rows: Selector,
    /// `(rows, features)` f32 on the device, shared by the three splits.
    data: Tensor,
    /// The target columns, `(rows, targets)` f32 on the device.
    target: Tensor,
    targets: usize,
    /// Consecutive target rows per sample; 1: `y` is `(B, targets)`, else `(B, horizon, targets)`.
    horizon: usize,
    /// `(steps,)` i64 offsets from a batch row: `-lookback, -lookback + step, …`
    /// (reversed when samples are flipped in time), on the device for the
    /// indexed gather and on the host for the CPU copy loop.
    offsets: Tensor,
    host_offsets: Vec<i64>,
    features: i64,
}

impl Windows {
    /// The book's windows: one target column, one step ahead. `data` is the
    /// `(rows, features)` matrix already on the device; the returned batches
    /// live on the same device.
    pub fn new(data: &Tensor, target_column: usize, spec: WindowSpec, reverse: bool) -> Windows {
        let offsets: Vec<i64> = (0..spec.steps())
            .map(|k| (k * spec.step) as i64 - spec.lookback as i64)
            .collect();
        let target = data
            .select(1, target_column as i64)
            .contiguous()
            .view([-1, 1]);
        Windows::assemble(
            data,
            target,
            1,
            Selector::Book(RowSelector::new(spec)),
            offsets,
            reverse,
        )
    }

    /// Windows of any table: `targets` are the target matrix `(rows, T)`;
    /// inputs `t - lookback, …, t - 1` every `step` rows.
    pub fn from_list(
        data: &Tensor,
        targets: &Tensor,
        horizon: usize,
        lookback: usize,
        step: usize,
        selector: ListSelector,
        reverse: bool,
    ) -> Windows {
        let offsets: Vec<i64> = (0..lookback / step)
            .map(|k| (k * step) as i64 - lookback as i64)
            .collect();
        Windows::assemble(
            data,
            targets.shallow_clone(),
            horizon,
            Selector::List(selector),
            offsets,
            reverse,
        )
    }

    fn assemble(
        data: &Tensor,
        target: Tensor,
        horizon: usize,
        rows: Selector,
        mut offsets: Vec<i64>,
        reverse: bool,
    ) -> Windows {
        let device = data.device();
        if reverse {
            offsets.reverse();
        }
        Windows {
            rows,
            data: data.shallow_clone(),
            targets: target.size()[1] as usize,
            target,
            horizon,
            offsets: Tensor::from_slice(&offsets).to_device(device),
            host_offsets: offsets,
            features: data.size()[1],
        }
    }

    pub fn device(&self) -> Device {
        self.data.device()
    }

    fn y_shape(&self, b: i64) -> Vec<i64> {
        if self.horizon == 1 {
            vec![b, self.targets as i64]
        } else {
            vec![b, self.horizon as i64, self.targets as i64]
        }
    }

    /// Gathers the batch of the given rows: `x (B, steps, features)`, `y (B, targets)` or `(B, horizon, targets)`.
    pub fn gather(&self, rows: &[i64]) -> (Tensor, Tensor) {
        if self.device() == Device::Cpu {
            self.gather_cpu(rows)
        } else {
            self.gather_indexed(rows)
        }
    }

    /// One `index_select` for the windows, one for the targets.
    fn gather_indexed(&self, rows: &[i64]) -> (Tensor, Tensor) {
        let b = rows.len() as i64;
        let rows = Tensor::from_slice(rows).to_device(self.device());
        let index = rows.unsqueeze(1) + self.offsets.unsqueeze(0);
        let steps = self.offsets.size()[0];
        let x = self
            .data
            .index_select(0, &index.view([-1]))
            .view([b, steps, self.features]);
        let ahead = Tensor::arange(self.horizon as i64, (Kind::Int64, self.device()));
        let target_rows = (rows + self.rows.delay() as i64).unsqueeze(1) + ahead.unsqueeze(0);
        let y = self
            .target
            .index_select(0, &target_rows.view([-1]))
            .view(self.y_shape(b).as_slice());
        (x, y)
    }

    /// The same gather as plain copies of feature rows: on the CPU a
    /// libtorch `index_select` copies each 14-float row with its own call,
    /// several times slower than this loop.
    fn gather_cpu(&self, rows: &[i64]) -> (Tensor, Tensor) {
        use crate::model::kernel::{floats, floats_mut};
        let offsets = &self.host_offsets;
        let (b, steps, f) = (rows.len() as i64, offsets.len() as i64, self.features);
        let x = Tensor::empty([b, steps, f], (Kind::Float, Device::Cpu));
        let y = Tensor::empty(self.y_shape(b).as_slice(), (Kind::Float, Device::Cpu));
        let (data, target) = (floats(&self.data), floats(&self.target));
        let f = f as usize;
        let delay = self.rows.delay() as i64;
        for (sample, &row) in floats_mut(&x).chunks_exact_mut(offsets.len() * f).zip(rows) {
            for (out, &o) in sample.chunks_exact_mut(f).zip(offsets) {
                let at = (row + o) as usize * f;
                out.copy_from_slice(&data[at..at + f]);
            }
        }
        let per = self.horizon * self.targets;
        for (out, &row) in floats_mut(&y).chunks_exact_mut(per).zip(rows) {
            let at = (row + delay) as usize * self.targets;
            out.copy_from_slice(&target[at..at + per]);
        }
        (x, y)
    }

    /// The window ends of an explicit list (tables), in order.
    pub fn list_ends(&self) -> Option<&[i64]> {
        match &self.rows {
            Selector::List(l) => Some(&l.ends),
            Selector::Book(_) => None,
        }
    }

    /// The next batch, on the device.
    pub fn next_batch(&mut self, rng: &mut ChaCha8Rng) -> (Tensor, Tensor) {
        let rows = self.rows.next_rows(rng);
        self.gather(&rows)
    }
}

/// The `(rows, features)` f32 matrix as a tensor on `device` (one copy).
pub fn matrix_on(values: &[f32], features: usize, device: Device) -> Tensor {
    let rows = (values.len() / features) as i64;
    Tensor::from_slice(values)
        .view([rows, features as i64])
        .to_kind(Kind::Float)
        .to_device(device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn spec(min: usize, max: usize, batch: usize, shuffle: bool) -> WindowSpec {
        WindowSpec {
            lookback: 4,
            step: 2,
            delay: 1,
            batch_size: batch,
            min_index: min,
            max_index: max,
            shuffle,
        }
    }

    #[test]
    fn sequential_rows_wrap_as_the_listing() {
        // i starts at 2 + 4 = 6; max 14: 6,7,8 | 9,10,11 | 12 + 3 >= 14 → wrap to 6.
        let mut sel = RowSelector::new(spec(2, 14, 3, false));
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert_eq!(sel.next_rows(&mut rng), vec![6, 7, 8]);
        assert_eq!(sel.next_rows(&mut rng), vec![9, 10, 11]);
        assert_eq!(sel.next_rows(&mut rng), vec![6, 7, 8]);
        sel.next_rows(&mut rng);
        sel.reset();
        assert_eq!(sel.next_rows(&mut rng), vec![6, 7, 8]);
    }

    #[test]
    fn short_batch_when_the_split_is_smaller_than_a_batch() {
        let mut sel = RowSelector::new(spec(0, 7, 5, false));
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert_eq!(sel.next_rows(&mut rng), vec![4, 5, 6]);
        assert_eq!(sel.next_rows(&mut rng), vec![4, 5, 6]);
    }

    #[test]
    fn shuffled_rows_stay_in_bounds_and_cover_them() {
        let mut sel = RowSelector::new(spec(10, 20, 64, true));
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut seen = [false; 30];
        for _ in 0..10 {
            let rows = sel.next_rows(&mut rng);
            assert_eq!(rows.len(), 64);
            for r in rows {
                assert!((14..20).contains(&r), "row {r}");
                seen[r as usize] = true;
            }
        }
        assert!((14..20).all(|r| seen[r]));
    }

    fn window(c: &crate::config::JenaData) -> (usize, usize, usize, usize) {
        (c.lookback, c.step, c.delay, c.batch_size)
    }

    #[test]
    fn split_is_clamped_and_checked() {
        let cfg: crate::config::JenaData =
            toml::from_str("lookback = 4\nstep = 2\ndelay = 5\nbatch_size = 8").unwrap();
        let s = WindowSpec::for_split(window(&cfg), "test", [10, 1000], 100, false).unwrap();
        assert_eq!(s.max_index, 94);
        assert_eq!(s.full_pass_steps(), (94 - 10 - 4) / 8);
        let e = WindowSpec::for_split(window(&cfg), "val", [95, 1000], 100, false).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("data.splits.val") && msg.contains("100 rows"),
            "{msg}"
        );
    }

    #[test]
    fn copy_loop_gathers_what_index_select_does() {
        let values: Vec<f32> = (0..600 * 3).map(|v| v as f32 * 0.5).collect();
        let data = matrix_on(&values, 3, Device::Cpu);
        let spec = WindowSpec {
            min_index: 0,
            max_index: 500,
            lookback: 48,
            step: 6,
            delay: 24,
            batch_size: 5,
            shuffle: true,
        };
        for reverse in [false, true] {
            let w = Windows::new(&data, 1, spec, reverse);
            let rows = [48i64, 49, 300, 475, 100];
            let (x1, y1) = w.gather_cpu(&rows);
            let (x2, y2) = w.gather_indexed(&rows);
            assert!(x1.equal(&x2) && y1.equal(&y2), "reverse = {reverse}");
            assert_eq!(x1.size(), vec![5, 8, 3]);
            assert_eq!(y1.size(), vec![5, 1]);
        }
    }

    #[test]
    fn horizons_of_several_targets_gather_alike_on_both_paths() {
        let values: Vec<f32> = (0..100 * 3).map(|v| v as f32).collect();
        let data = matrix_on(&values, 3, Device::Cpu);
        let targets = data
            .index_select(1, &Tensor::from_slice(&[2i64, 0]))
            .contiguous();
        let list = ListSelector::new(vec![10, 11, 50], 8, 1, ListOrder::Sequential);
        let w = Windows::from_list(&data, &targets, 4, 6, 2, list, false);
        let (x1, y1) = w.gather_cpu(&[10, 50]);
        let (x2, y2) = w.gather_indexed(&[10, 50]);
        assert!(x1.equal(&x2) && y1.equal(&y2));
        assert_eq!(x1.size(), vec![2, 3, 3]);
        assert_eq!(y1.size(), vec![2, 4, 2]);
        // Window end 10: inputs rows 4, 6, 8; targets rows 11..15, columns 2 then 0.
        assert_eq!(x1.double_value(&[0, 0, 0]), 12.0);
        assert_eq!(y1.double_value(&[0, 0, 0]), 35.0);
        assert_eq!(y1.double_value(&[0, 0, 1]), 33.0);
        assert_eq!(y1.double_value(&[0, 3, 0]), 44.0);
    }

    #[test]
    fn list_orders_cover_every_window() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut seq = Selector::List(ListSelector::new(
            (0..10).collect(),
            4,
            0,
            ListOrder::Sequential,
        ));
        assert_eq!(seq.full_pass_steps(), 3);
        let pass: Vec<i64> = (0..3).flat_map(|_| seq.next_rows(&mut rng)).collect();
        assert_eq!(pass, (0..10).collect::<Vec<_>>());
        assert_eq!(seq.next_rows(&mut rng), vec![0, 1, 2, 3]);
        let mut epoch =
            Selector::List(ListSelector::new((0..10).collect(), 4, 0, ListOrder::Epoch));
        for _ in 0..2 {
            let mut seen: Vec<i64> = (0..3).flat_map(|_| epoch.next_rows(&mut rng)).collect();
            assert_ne!(seen, (0..10).collect::<Vec<_>>(), "shuffled");
            seen.sort();
            assert_eq!(seen, (0..10).collect::<Vec<_>>());
        }
    }
}
