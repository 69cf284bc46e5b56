//! Memory shared by cells running side by side: a cell starts only when its
//! estimate fits beside the estimates of the cells already running (a cell
//! larger than the whole limit — allowed with `--force` — runs alone).
use std::sync::{Condvar, Mutex};

pub struct MemoryBudget {
    limit: usize,
    used: Mutex<(usize, usize)>, // (bytes in use, cells running)
    freed: Condvar,
}

/// A cell's share of the budget, given back when dropped.
pub struct Share<'a> {
    budget: &'a MemoryBudget,
    bytes: usize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Self {
        MemoryBudget {
            limit,
            used: Mutex::new((0, 0)),
            freed: Condvar::new(),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Waits until `bytes` fit beside what runs (or nothing else runs);
    /// `waiting` is called once if the cell has to wait.
    pub fn take(&self, bytes: usize, waiting: impl FnOnce()) -> Share<'_> {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let mut told = Some(waiting);
        while used.1 > 0 && used.0 + bytes > self.limit {
            if let Some(tell) = told.take() {
                tell();
            }
            used = self.freed.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        used.0 += bytes;
        used.1 += 1;
        Share {
            budget: self,
            bytes,
        }
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        let mut used = self.budget.used.lock().unwrap_or_else(|p| p.into_inner());
        used.0 -= self.bytes;
        used.1 -= 1;
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn cells_that_do_not_fit_together_run_one_after_the_other() {
        let budget = MemoryBudget::new(100);
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let _share = budget.take(60, || {});
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(
            most.load(Ordering::SeqCst),
            1,
            "two cells of 60 never share a limit of 100"
        );
        let small = MemoryBudget::new(100);
        let a = small.take(40, || {});
        let b = small.take(40, || panic!("40 + 40 fits in 100"));
        drop((a, b));
        let huge = small.take(500, || panic!("alone, even a cell over the limit runs"));
        drop(huge);
    }
}
