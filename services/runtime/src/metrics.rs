//! A small Prometheus registry: labelled counters, gauges and histograms, rendered in
//! the text exposition format for a `/metrics` endpoint. Every service
//! shell shares it, so metric names and labels look the same everywhere.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

/// Bucket bounds (seconds) for latencies from a millisecond to a minute.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Clone)]
struct Histogram {
    bounds: &'static [f64],
    /// Observations `<=` each bound (not cumulative; rendering sums them).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Family {
    help: &'static str,
    kind: Option<MetricType>,
    /// Rendered label set (`{a="b"}`) → value.
    series: BTreeMap<String, f64>,
    /// Rendered label set → histogram (histogram families only).
    histograms: BTreeMap<String, Histogram>,
}

#[derive(Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `by` to a counter.
    pub fn add(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)], by: u64) {
        self.update(name, help, MetricType::Counter, labels, |value| {
            *value += by as f64
        });
    }

    pub fn inc(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)]) {
        self.add(name, help, labels, 1);
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)], value: f64) {
        self.update(name, help, MetricType::Gauge, labels, |v| *v = value);
    }

    /// Records one observation (e.g. seconds) in a histogram with `bounds`.
    pub fn observe(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        bounds: &'static [f64],
        value: f64,
    ) {
        let mut families = self.families.lock().expect("metrics lock");
        let family = families.entry(name).or_default();
        family.help = help;
        debug_assert!(
            family.kind.is_none_or(|k| k == MetricType::Histogram),
            "{name} changed type"
        );
        family.kind = Some(MetricType::Histogram);
        let histogram = family
            .histograms
            .entry(render_labels(labels))
            .or_insert_with(|| Histogram {
                bounds,
                counts: vec![0; bounds.len()],
                sum: 0.0,
                count: 0,
            });
        if let Some(i) = histogram.bounds.iter().position(|bound| value <= *bound) {
            histogram.counts[i] += 1;
        }
        histogram.sum += value;
        histogram.count += 1;
    }

    /// The number of observations of one histogram series.
    pub fn observations(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let families = self.families.lock().expect("metrics lock");
        families
            .get(name)
            .and_then(|family| family.histograms.get(&render_labels(labels)))
            .map_or(0, |h| h.count)
    }

    /// The current value of one series (for tests and logs).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let families = self.families.lock().expect("metrics lock");
        families
            .get(name)
            .and_then(|family| family.series.get(&render_labels(labels)))
            .copied()
            .unwrap_or(0.0)
    }

    /// The sum of every series of one metric.
    pub fn total(&self, name: &str) -> f64 {
        let families = self.families.lock().expect("metrics lock");
        families
            .get(name)
            .map(|family| family.series.values().sum())
            .unwrap_or(0.0)
    }

    fn update(
        &self,
        name: &'static str,
        help: &'static str,
        kind: MetricType,
        labels: &[(&str, &str)],
        apply: impl FnOnce(&mut f64),
    ) {
        let mut families = self.families.lock().expect("metrics lock");
        let family = families.entry(name).or_default();
        family.help = help;
        debug_assert!(family.kind.is_none_or(|k| k == kind), "{name} changed type");
        family.kind = Some(kind);
        apply(family.series.entry(render_labels(labels)).or_insert(0.0));
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let families = self.families.lock().expect("metrics lock");
        let mut out = String::new();
        for (name, family) in families.iter() {
            let kind = match family.kind {
                Some(MetricType::Gauge) => "gauge",
                Some(MetricType::Histogram) => "histogram",
                _ => "counter",
            };
            let _ = writeln!(out, "# HELP {name} {}", family.help);
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in &family.series {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
            for (labels, histogram) in &family.histograms {
                let mut cumulative = 0;
                let with_le = |le: &str| match labels.strip_suffix('}') {
                    Some(open) => format!("{open},le=\"{le}\"}}"),
                    None => format!("{{le=\"{le}\"}}"),
                };
                for (bound, count) in histogram.bounds.iter().zip(&histogram.counts) {
                    cumulative += count;
                    let _ = writeln!(
                        out,
                        "{name}_bucket{} {cumulative}",
                        with_le(&bound.to_string())
                    );
                }
                let _ = writeln!(out, "{name}_bucket{} {}", with_le("+Inf"), histogram.count);
                let _ = writeln!(out, "{name}_sum{labels} {}", histogram.sum);
                let _ = writeln!(out, "{name}_count{labels} {}", histogram.count);
            }
        }
        out
    }
}

fn render_labels(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let mut out = String::from("{");
    for (i, (key, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(key);
        out.push_str("=\"");
        for ch in value.chars() {
            match ch {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// The content type of [`Registry::render`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges_with_escaped_labels() {
        let registry = Registry::new();
        registry.inc(
            "callpulse_records_total",
            "Records.",
            &[("vendor", "twilio")],
        );
        registry.add(
            "callpulse_records_total",
            "Records.",
            &[("vendor", "twilio")],
            2,
        );
        registry.set(
            "callpulse_lag",
            "Lag.",
            &[("partition", "0"), ("note", "a\"b")],
            7.0,
        );
        let text = registry.render();
        assert!(
            text.contains("# TYPE callpulse_records_total counter"),
            "{text}"
        );
        assert!(
            text.contains("callpulse_records_total{vendor=\"twilio\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("callpulse_lag{partition=\"0\",note=\"a\\\"b\"} 7"),
            "{text}"
        );
        assert_eq!(
            registry.get("callpulse_records_total", &[("vendor", "twilio")]),
            3.0
        );
    }

    #[test]
    fn renders_histograms_with_cumulative_buckets() {
        let registry = Registry::new();
        let bounds: &[f64] = &[0.1, 1.0];
        for value in [0.05, 0.5, 0.7, 3.0] {
            registry.observe(
                "callpulse_insert_seconds",
                "Insert latency.",
                &[("table", "calls")],
                bounds,
                value,
            );
        }
        registry.observe("callpulse_plain_seconds", "Plain.", &[], bounds, 0.2);
        let text = registry.render();
        for line in [
            "# TYPE callpulse_insert_seconds histogram",
            "callpulse_insert_seconds_bucket{table=\"calls\",le=\"0.1\"} 1",
            "callpulse_insert_seconds_bucket{table=\"calls\",le=\"1\"} 3",
            "callpulse_insert_seconds_bucket{table=\"calls\",le=\"+Inf\"} 4",
            "callpulse_insert_seconds_sum{table=\"calls\"} 4.25",
            "callpulse_insert_seconds_count{table=\"calls\"} 4",
            "callpulse_plain_seconds_bucket{le=\"0.1\"} 0",
            "callpulse_plain_seconds_count 1",
        ] {
            assert!(text.contains(line), "no `{line}` in\n{text}");
        }
        assert_eq!(
            registry.observations("callpulse_insert_seconds", &[("table", "calls")]),
            4
        );
    }
}
