//! The Prometheus recorder behind `GET /metrics`.
//!
//! Code records through the `metrics` facade (`metrics::counter!`, …); the
//! recorder is installed once per process (tests start several servers in one
//! process and share it) and rendered in the text exposition format by the
//! API's own route. Histograms get buckets suited to their unit: seconds for
//! `*_seconds`, with finer buckets for the per-turn stages.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets (seconds) for request and provider durations.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets (seconds) for the stages of a turn, down to a tenth of a
/// millisecond (the server's own overhead is a millisecond or two).
const TURN_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// The process's recorder, installed on first use.
///
/// # Errors
/// When another metrics recorder was installed first (the message says so).
pub fn recorder() -> Result<PrometheusHandle, String> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Prefix("iace_turn_".to_owned()), TURN_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Suffix("_seconds".to_owned()),
                        DURATION_BUCKETS,
                    )
                })
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|err| err.to_string())
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_series_are_rendered() {
        let handle = recorder().expect("recorder");
        metrics::counter!("iace_test_events_total", "kind" => "a").increment(2);
        metrics::histogram!("iace_turn_test_seconds").record(0.0003);
        let text = handle.render();
        assert!(
            text.contains("iace_test_events_total{kind=\"a\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("iace_turn_test_seconds_bucket{le=\"0.0005\"} 1"),
            "turn buckets: {text}"
        );
        // Installing again hands back the same recorder.
        assert!(recorder().is_ok());
    }
}
