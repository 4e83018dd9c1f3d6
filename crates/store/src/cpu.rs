//! CPU time of the calling thread, for the import's `--timings`: which stage of a stream spends
//! what. Read from `/proc/thread-self/schedstat` (Linux; its first field is the thread's time on
//! a CPU in nanoseconds) rather than through `clock_gettime`, which this workspace's
//! `forbid(unsafe_code)` rules out; `None` where there is no such file.

use std::time::Duration;

/// Time the calling thread has spent running so far.
pub fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(ns))
}

/// CPU time the calling thread spends in `f`, with `f`'s result.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Option<Duration>) {
    let before = thread_cpu();
    let out = f();
    let spent = before.zip(thread_cpu()).map(|(b, a)| a.saturating_sub(b));
    (out, spent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_works_is_charged_for_it_and_an_idle_one_is_not() {
        let Some(_) = thread_cpu() else {
            // Not Linux: nothing to measure, and the import prints no figures.
            return;
        };
        let (sum, busy) = timed(|| (0..5_000_000u64).fold(0u64, |a, x| a ^ x.wrapping_mul(x)));
        std::hint::black_box(sum);
        let (_, idle) = timed(|| std::thread::sleep(Duration::from_millis(60)));
        let (busy, idle) = (busy.unwrap(), idle.unwrap());
        assert!(busy >= Duration::from_millis(1), "busy: {busy:?}");
        // Sleeping costs next to nothing on a CPU, whatever else the machine is doing.
        assert!(idle < Duration::from_millis(30), "idle: {idle:?}");
    }
}
