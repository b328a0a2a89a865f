//! A small Prometheus registry: labelled counters and gauges, rendered in
//! the text exposition format for a `/metrics` endpoint. Every service
//! shell shares it, so metric names and labels look the same everywhere.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
}

#[derive(Default)]
struct Family {
    help: &'static str,
    kind: Option<MetricType>,
    /// Rendered label set (`{a="b"}`) → value.
    series: BTreeMap<String, f64>,
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
                _ => "counter",
            };
            let _ = writeln!(out, "# HELP {name} {}", family.help);
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in &family.series {
                let _ = writeln!(out, "{name}{labels} {value}");
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
}
