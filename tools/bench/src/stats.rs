//! Latency percentiles and throughput of one measured run.

use serde::{Deserialize, Serialize};

/// What one scenario at one concurrency measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measured {
    pub requests: u64,
    /// Answers that were not the scenario's expected status (or transport errors).
    pub unexpected: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Measured {
    /// From every request's latency in microseconds.
    pub fn from_latencies(mut micros: Vec<u64>, unexpected: u64, seconds: f64) -> Self {
        micros.sort_unstable();
        let at = |q: f64| -> f64 {
            if micros.is_empty() {
                return 0.0;
            }
            // Nearest rank: the smallest value with at least q of all at or below it.
            let rank = ((q * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
            micros[rank - 1] as f64 / 1000.0
        };
        Self {
            requests: micros.len() as u64,
            unexpected,
            seconds,
            per_second: micros.len() as f64 / seconds.max(f64::EPSILON),
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_in_milliseconds() {
        let m = Measured::from_latencies((1..=100).map(|i| i * 1000).collect(), 2, 2.0);
        assert_eq!(
            (m.p50_ms, m.p95_ms, m.p99_ms, m.max_ms),
            (50.0, 95.0, 99.0, 100.0)
        );
        assert_eq!((m.requests, m.unexpected, m.per_second), (100, 2, 50.0));
        let one = Measured::from_latencies(vec![1500], 0, 1.0);
        assert_eq!((one.p50_ms, one.max_ms), (1.5, 1.5));
        assert_eq!(Measured::from_latencies(vec![], 0, 1.0).p99_ms, 0.0);
    }
}
