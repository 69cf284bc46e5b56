//! Runs a handful of independent work items on libtorch's own OpenMP team.
//!
//! libtorch (and MKL inside it) keeps its worker threads spinning for a while
//! after each parallel operation. Threads of our own would compete with those
//! spinning workers for the same cores, so the kernels hand their row chunks
//! to the same team through libgomp's `GOMP_parallel`, looked up at run time
//! in the already-loaded library. Where there is no libgomp (another OpenMP
//! runtime, a static build), scoped threads do the work instead. Each thread
//! claims items from a shared counter until none are left, so every item
//! runs exactly once whatever team size the runtime grants. Items run with
//! denormals flushed to zero (gradients fading through hundreds of steps
//! reach the denormal range, where x86 arithmetic slows down many times).
use std::ffi::{c_void, CStr};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

type Body = unsafe extern "C" fn(*mut c_void);
type GompParallel = unsafe extern "C" fn(Body, *mut c_void, u32, u32);

fn gomp_parallel() -> Option<GompParallel> {
    static FOUND: OnceLock<Option<GompParallel>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let name: &CStr = c"GOMP_parallel";
        // SAFETY: dlsym with RTLD_DEFAULT only searches the loaded objects;
        // a non-null result for this name is libgomp's entry point with the
        // documented signature `void (void (*)(void *), void *, unsigned, unsigned)`.
        let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        (!symbol.is_null())
            .then(|| unsafe { std::mem::transmute::<*mut c_void, GompParallel>(symbol) })
    })
}

/// Splits `0..len` into one contiguous range per libtorch intra-op thread,
/// none shorter than `min_len` (so small jobs stay on one thread).
pub fn split(len: usize, min_len: usize) -> Vec<Range<usize>> {
    let workers = (tch::get_num_threads().max(1) as usize)
        .min(len / min_len.max(1))
        .max(1);
    (0..workers)
        .map(|i| len * i / workers..len * (i + 1) / workers)
        .collect()
}

/// `items` dealt into one contiguous group per thread (`split`: none
/// shorter than `min_len`), for `run`.
pub fn deal<T>(items: Vec<T>, min_len: usize) -> Vec<Vec<T>> {
    let ranges = split(items.len(), min_len);
    let mut items = items.into_iter();
    ranges
        .iter()
        .map(|r| items.by_ref().take(r.len()).collect())
        .collect()
}

/// Splits `0..len` into one contiguous range per libtorch intra-op thread
/// (at most one per group), every boundary on a multiple of `group`: each
/// group of rows lies within one range, whatever the thread count.
pub fn split_groups(len: usize, group: usize) -> Vec<Range<usize>> {
    let group = group.max(1);
    let groups = len.div_ceil(group);
    let workers = (tch::get_num_threads().max(1) as usize).min(groups).max(1);
    (0..workers)
        .map(|i| {
            (groups * i / workers * group).min(len)..(groups * (i + 1) / workers * group).min(len)
        })
        .collect()
}

/// Flush-to-zero and denormals-are-zero on this thread while alive; the
/// previous mode comes back on drop.
struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl FlushDenormals {
    #[allow(deprecated)] // _mm_getcsr/_mm_setcsr: the only stable way to set FTZ/DAZ
    fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: reading and writing MXCSR only changes this thread's
            // floating-point mode; the old value is restored on drop.
            let saved = unsafe { std::arch::x86_64::_mm_getcsr() };
            unsafe { std::arch::x86_64::_mm_setcsr(saved | 0x8040) };
            Self { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self {}
    }
}

impl Drop for FlushDenormals {
    #[allow(deprecated)]
    fn drop(&mut self) {
        // SAFETY: restores the mode saved in `new`.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            std::arch::x86_64::_mm_setcsr(self.saved)
        };
    }
}

struct Shared<'a, P> {
    items: Vec<Mutex<Option<P>>>,
    next: AtomicUsize,
    work: &'a (dyn Fn(P) + Sync),
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

impl<P> Shared<'_, P> {
    fn drain(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = self.items.get(i) else {
                return;
            };
            let item = slot.lock().expect("item lock").take();
            if let Some(item) = item {
                let _mode = FlushDenormals::new();
                let run = std::panic::AssertUnwindSafe(|| (self.work)(item));
                if let Err(panic) = std::panic::catch_unwind(run) {
                    self.panic.lock().expect("panic slot").get_or_insert(panic);
                }
            }
        }
    }
}

unsafe extern "C" fn body<P>(data: *mut c_void) {
    // SAFETY: `data` is the `Shared` that `run` keeps alive until
    // GOMP_parallel returns (after every team member has left `body`).
    let shared = unsafe { &*(data as *const Shared<P>) };
    shared.drain();
}

/// Runs `work` once on every item, on up to `items.len()` threads (at most
/// libtorch's intra-op thread count); returns after all have finished (a
/// panic in one is raised again here).
pub fn run<P: Send>(items: Vec<P>, work: &(dyn Fn(P) + Sync)) {
    let threads = items.len().min(tch::get_num_threads().max(1) as usize);
    let shared = Shared {
        items: items.into_iter().map(|p| Mutex::new(Some(p))).collect(),
        next: AtomicUsize::new(0),
        work,
        panic: Mutex::new(None),
    };
    match gomp_parallel() {
        _ if threads <= 1 => shared.drain(),
        Some(parallel) => {
            let data = &shared as *const Shared<P> as *mut c_void;
            // SAFETY: see `body`; GOMP_parallel runs `body` on the team
            // (this thread included) and returns after the closing barrier.
            unsafe { parallel(body::<P>, data, threads as u32, 0) };
        }
        None => std::thread::scope(|scope| {
            for _ in 1..threads {
                scope.spawn(|| shared.drain());
            }
            shared.drain();
        }),
    }
    if let Some(panic) = shared.panic.into_inner().expect("panic slot") {
        std::panic::resume_unwind(panic);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_item_runs_exactly_once() {
        for n in [0, 1, 2, 3, 7] {
            let seen: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            super::run((0..n).collect(), &|i: usize| {
                seen[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                seen.iter().all(|s| s.load(Ordering::Relaxed) == 1),
                "n = {n}"
            );
        }
    }

    #[test]
    fn groups_never_straddle_two_ranges() {
        let threads = tch::get_num_threads();
        for n in [1, 2, 3, 5] {
            tch::set_num_threads(n);
            for (len, group) in [(128, 16), (70, 16), (10, 16), (0, 16), (33, 8)] {
                let ranges = super::split_groups(len, group);
                assert_eq!(ranges.first().map_or(0, |r| r.start), 0);
                assert_eq!(ranges.last().map_or(0, |r| r.end), len);
                assert!(ranges.len() <= n.max(1) as usize);
                for pair in ranges.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start);
                    assert!(pair[0].end % group == 0, "{len}/{group} on {n}: {ranges:?}");
                    assert!(!pair[0].is_empty());
                }
            }
        }
        tch::set_num_threads(threads);
    }

    #[test]
    fn a_panic_in_an_item_reaches_the_caller() {
        let result = std::panic::catch_unwind(|| {
            super::run(vec![1, 2], &|i: i32| assert_ne!(i, 2, "item two fails"));
        });
        assert!(result.is_err());
    }
}
