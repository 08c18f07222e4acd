//! The Prometheus HTTP API: one range query per panel target.

use std::time::Duration;

use crate::data::{self, Series};

pub struct Client {
    base: String,
    agent: ureq::Agent,
}

/// Start, end (unix seconds) and step of every query of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeRange {
    pub start: f64,
    pub end: f64,
    pub step: f64,
}

impl TimeRange {
    /// The last `range` seconds up to `now`, the end on a whole step as Grafana aligns it, so
    /// every query of a run sees the same points.
    pub fn ending(now: f64, range: u64, step: u64) -> TimeRange {
        let step = step.max(1) as f64;
        let end = (now / step).floor() * step;
        TimeRange {
            start: end - range as f64,
            end,
            step,
        }
    }
}

impl Client {
    pub fn new(base: &str) -> Client {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            // Prometheus explains a bad query in the body of its 400/422: read it.
            .http_status_as_error(false)
            .build();
        Client {
            base: base.trim_end_matches('/').to_string(),
            agent: config.into(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Fails with a readable message when nothing Prometheus-like answers at the base URL.
    pub fn check(&self) -> Result<(), String> {
        let url = format!("{}/api/v1/status/buildinfo", self.base);
        let mut response = self.agent.get(&url).call().map_err(|e| {
            format!(
                "cannot reach Prometheus at {}: {e}\n  is it running? Point --prometheus or \
                     PROMETHEUS_URL at it",
                self.base
            )
        })?;
        if !response.status().is_success() {
            let body = response.body_mut().read_to_string().unwrap_or_default();
            return Err(format!(
                "{} does not look like Prometheus: {url} answered {}: {}",
                self.base,
                response.status(),
                body.chars().take(200).collect::<String>()
            ));
        }
        Ok(())
    }

    pub fn query_range(&self, expr: &str, range: TimeRange) -> Result<Vec<Series>, String> {
        let url = format!("{}/api/v1/query_range", self.base);
        let mut response = self
            .agent
            .get(&url)
            .query("query", expr)
            .query("start", format!("{:.3}", range.start))
            .query("end", format!("{:.3}", range.end))
            .query("step", format!("{}", range.step))
            .call()
            .map_err(|e| format!("cannot reach Prometheus at {}: {e}", self.base))?;
        let status = response.status();
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("reading Prometheus' answer: {e}"))?;
        match data::parse_range_response(&body) {
            Ok(series) if status.is_success() => Ok(series),
            Ok(_) => Err(format!("HTTP {status}")),
            Err(message) if status.is_success() => Err(message),
            Err(message) => Err(format!("HTTP {status}: {message}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_end_on_a_whole_step() {
        let r = TimeRange::ending(1000.7, 300, 15);
        assert_eq!(
            r,
            TimeRange {
                start: 690.0,
                end: 990.0,
                step: 15.0
            }
        );
    }

    #[test]
    fn an_unreachable_prometheus_is_reported_as_such() {
        // Port 9 (discard) is closed here: the connection is refused at once.
        let err = Client::new("http://127.0.0.1:9/").check().unwrap_err();
        assert!(
            err.starts_with("cannot reach Prometheus at http://127.0.0.1:9:"),
            "{err}"
        );
    }
}
