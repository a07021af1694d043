//! Benchmark support: timing, medians and side-by-side reports.

use std::time::{Duration, Instant};

/// Runs `f` and returns how long it took.
pub fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let v = f();
    (start.elapsed(), v)
}

/// The median of a sample (0 for an empty one).
pub fn median(samples: &[Duration]) -> Duration {
    let mut s = samples.to_vec();
    s.sort_unstable();
    s.get(s.len() / 2).copied().unwrap_or_default()
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Iterations from `BENCH_ITERS` (default `default`).
pub fn iterations(default: usize) -> usize {
    std::env::var("BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        let d = |n| Duration::from_millis(n);
        assert_eq!(median(&[d(3), d(1), d(2)]), d(2));
        assert_eq!(median(&[d(4), d(1), d(3), d(2)]), d(3));
        assert_eq!(median(&[]), Duration::ZERO);
    }
}
