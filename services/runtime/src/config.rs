//! One configuration: embedded defaults, then an optional file, then
//! environment variables `CALLPULSE__SECTION__KEY` (highest wins).

use std::path::Path;

use serde::Deserialize;

const DEFAULTS: &str = include_str!("default.toml");
const ENV_PREFIX: &str = "CALLPULSE__";

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub topics: Topics,
    pub processor: ProcessorConfig,
    pub sink: SinkConfig,
    pub clickhouse: ClickHouseConfig,
    pub adapters: AdaptersConfig,
    pub alerter: AlerterConfig,
    pub alerts: AlertsConfig,
    pub dashboard: DashboardConfig,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KafkaConfig {
    pub brokers: String,
    pub partitions: i32,
    pub retention_ms: i64,
    pub session_timeout_ms: u64,
    pub max_poll_interval_ms: u64,
    /// How long a producer waits to fill a batch (librdkafka `linger.ms`).
    pub linger_ms: u64,
    /// librdkafka debug contexts (`"cgrp,fetch"`, `"all"`); empty: off.
    #[serde(default)]
    pub client_debug: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Topics {
    pub call_events: String,
    pub dead_letters: String,
    pub metrics: String,
    pub calls: String,
    pub alerts: String,
    pub late_events: String,
    pub checkpoints: String,
}

impl Topics {
    /// The topics with one partition per practice shard (all but checkpoints).
    pub fn all(&self) -> [&str; 6] {
        [
            &self.call_events,
            &self.dead_letters,
            &self.metrics,
            &self.calls,
            &self.alerts,
            &self.late_events,
        ]
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProcessorConfig {
    pub group_id: String,
    pub allowed_lateness_ms: i64,
    pub emit_interval_ms: u64,
    pub checkpoint_interval_ms: u64,
    pub idle_timeout_ms: u64,
    pub metrics_listen: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SinkConfig {
    pub group_id: String,
    pub batch_rows: usize,
    pub batch_max_age_ms: u64,
    /// Operations endpoints (`/healthz`, `/readyz`, `/metrics`); empty: off.
    pub metrics_listen: String,
}

#[derive(Clone, Deserialize)]
pub struct ClickHouseConfig {
    pub url: String,
    pub database: String,
    pub user: String,
    pub password: String,
    /// The ClickHouse cluster (`<remote_servers>`) whose replicas hold the
    /// tables; empty: one server, plain (unreplicated) engines.
    pub cluster: String,
}

/// The password stays out of logs and panics.
impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let password = if self.password.is_empty() {
            "<unset>"
        } else {
            "<set>"
        };
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &password)
            .field("cluster", &self.cluster)
            .finish()
    }
}

#[derive(Clone, Deserialize)]
pub struct AdaptersConfig {
    pub listen: String,
    pub mapping: String,
    pub organisations: String,
    pub pseudonym_key: String,
    pub twilio_auth_token: String,
    pub public_url: String,
    pub ingest_token: String,
    pub max_body_bytes: usize,
    /// The whole request body must arrive within this, from its first byte.
    pub body_read_timeout_ms: u64,
    pub kafka_timeout_ms: u64,
    pub max_event_lead_ms: i64,
    pub max_event_age_ms: i64,
    pub sender_records_per_second: u32,
    pub sender_burst_records: u32,
    pub tls_cert_file: String,
    pub tls_key_file: String,
    pub header_read_timeout_ms: u64,
}

/// Secrets stay out of logs and panics.
impl std::fmt::Debug for AdaptersConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &str| if s.is_empty() { "<unset>" } else { "<set>" };
        f.debug_struct("AdaptersConfig")
            .field("listen", &self.listen)
            .field("mapping", &self.mapping)
            .field("organisations", &self.organisations)
            .field("pseudonym_key", &hidden(&self.pseudonym_key))
            .field("twilio_auth_token", &hidden(&self.twilio_auth_token))
            .field("public_url", &self.public_url)
            .field("ingest_token", &hidden(&self.ingest_token))
            .field("max_body_bytes", &self.max_body_bytes)
            .field("body_read_timeout_ms", &self.body_read_timeout_ms)
            .field("kafka_timeout_ms", &self.kafka_timeout_ms)
            .field("max_event_lead_ms", &self.max_event_lead_ms)
            .field("max_event_age_ms", &self.max_event_age_ms)
            .field("sender_records_per_second", &self.sender_records_per_second)
            .field("sender_burst_records", &self.sender_burst_records)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .field("header_read_timeout_ms", &self.header_read_timeout_ms)
            .finish()
    }
}

/// The processor's threshold and feed-silence alert rules (docs/alerts.md,
/// "Thresholds and feed silence").
#[derive(Debug, Clone, Deserialize)]
pub struct AlertsConfig {
    /// A rules file (TOML, e.g. deploy/alerts/thresholds.example.toml);
    /// empty: the built-in defaults.
    pub thresholds: String,
    /// Organisations CSV, for the ICB of each practice (per-ICB rules);
    /// empty: every practice gets the file's defaults.
    pub organisations: String,
}

/// `callpulse alerter` (docs/alerts.md).
#[derive(Clone, Deserialize)]
pub struct AlerterConfig {
    pub group_id: String,
    pub contacts: String,
    pub organisations: String,
    pub undeliverable_topic: String,
    pub group_window_ms: u64,
    pub rate_limit_per_minute: u32,
    pub rate_limit_burst: u32,
    pub max_attempts: u32,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    pub request_timeout_ms: u64,
    pub max_in_flight: usize,
    pub hmac_secret: String,
    pub smtp_server: String,
    pub smtp_from: String,
    pub smtp_helo: String,
    /// Operations endpoints (`/healthz`, `/readyz`, `/metrics`); empty: off.
    pub metrics_listen: String,
}

/// The HMAC secret stays out of logs and panics.
impl std::fmt::Debug for AlerterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = if self.hmac_secret.is_empty() {
            "<unset>"
        } else {
            "<set>"
        };
        f.debug_struct("AlerterConfig")
            .field("group_id", &self.group_id)
            .field("contacts", &self.contacts)
            .field("organisations", &self.organisations)
            .field("undeliverable_topic", &self.undeliverable_topic)
            .field("group_window_ms", &self.group_window_ms)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("rate_limit_burst", &self.rate_limit_burst)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_initial_ms", &self.backoff_initial_ms)
            .field("backoff_max_ms", &self.backoff_max_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("max_in_flight", &self.max_in_flight)
            .field("hmac_secret", &secret)
            .field("smtp_server", &self.smtp_server)
            .field("smtp_from", &self.smtp_from)
            .field("smtp_helo", &self.smtp_helo)
            .field("metrics_listen", &self.metrics_listen)
            .finish()
    }
}

/// `callpulse dashboard` (docs/dashboard.md).
#[derive(Clone, Deserialize)]
pub struct DashboardConfig {
    pub listen: String,
    pub tokens_file: String,
    pub tokens: String,
    pub refresh_seconds: u64,
    pub cache_ms: u64,
    pub day: String,
}

/// Login tokens stay out of logs and panics.
impl std::fmt::Debug for DashboardConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tokens = if self.tokens.is_empty() {
            "<unset>"
        } else {
            "<set>"
        };
        f.debug_struct("DashboardConfig")
            .field("listen", &self.listen)
            .field("tokens_file", &self.tokens_file)
            .field("tokens", &tokens)
            .field("refresh_seconds", &self.refresh_seconds)
            .field("cache_ms", &self.cache_ms)
            .field("day", &self.day)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// Says where and what, never quoting the file: it holds secrets.
    #[error("{origin}: {problem}")]
    Parse { origin: String, problem: String },
    #[error("environment variable {name}: {reason}")]
    Env { name: String, reason: String },
}

impl Config {
    /// Defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_from(file, std::env::vars())
    }

    /// As [`Config::load`], with the environment passed in (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut tree = parse(DEFAULTS, "built-in defaults")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            merge(&mut tree, parse(&text, &path.display().to_string())?);
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            set_path(&mut tree, &path, &value).map_err(|reason| ConfigError::Env {
                name: name.clone(),
                reason,
            })?;
        }
        tree.try_into()
            .map_err(|err: toml::de::Error| ConfigError::Parse {
                origin: "configuration".into(),
                problem: err.message().to_string(),
            })
    }
}

fn parse(text: &str, origin: &str) -> Result<toml::Value, ConfigError> {
    text.parse::<toml::Table>()
        .map(toml::Value::Table)
        .map_err(|err| ConfigError::Parse {
            origin: origin.to_string(),
            problem: toml_problem(text, &err),
        })
}

/// A TOML error as its line, column and message, without the excerpt of
/// the file that toml's own message shows: configuration, tokens and
/// contacts files hold secrets (passwords, keys, webhook URLs), and a
/// start-up error goes to logs that more people read than the file.
///
/// serde's messages quote the value they could not use (`unknown variant
/// `…``, `invalid type: string "…"`), which may be a secret typed in the
/// wrong place: such a quote, when long, is replaced by its length. What
/// follows `expected` is ours (the names allowed) and is kept.
pub fn toml_problem(text: &str, err: &toml::de::Error) -> String {
    let message = without_long_quotes(err.message());
    let Some(before) = err.span().and_then(|span| text.get(..span.start)) else {
        return message;
    };
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!("line {line}, column {column}: {message}")
}

/// Longer quoted values than this are shown by their length only: long
/// enough for a mistyped key or an enum value, short of any secret
/// worth the name (dashboard tokens have at least 16 characters).
const MAX_QUOTED_CHARS: usize = 12;

fn without_long_quotes(message: &str) -> String {
    let (head, tail) = message
        .find("expected")
        .map_or((message, ""), |at| message.split_at(at));
    let mut out = String::with_capacity(message.len());
    let mut rest = head;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = &rest[open..open + 1];
        let Some(length) = rest[open + 1..].find(quote) else {
            break;
        };
        let quoted = &rest[open + 1..open + 1 + length];
        out.push_str(&rest[..=open]);
        if quoted.chars().count() > MAX_QUOTED_CHARS {
            out.push_str(&format!("({} characters)", quoted.chars().count()));
        } else {
            out.push_str(quoted);
        }
        out.push_str(quote);
        rest = &rest[open + 2 + length..];
    }
    out.push_str(rest);
    out.push_str(tail);
    out
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(base), toml::Value::Table(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// Sets an existing key, keeping its type: an unknown key is a typo, not a new setting.
fn set_path(tree: &mut toml::Value, path: &[String], raw: &str) -> Result<(), String> {
    let mut node = tree;
    for key in path {
        node = node
            .get_mut(key.as_str())
            .ok_or_else(|| format!("no setting `{}`", path.join(".")))?;
    }
    *node = match node {
        toml::Value::Integer(_) => toml::Value::Integer(
            raw.parse()
                .map_err(|_| format!("`{raw}` is not a whole number"))?,
        ),
        toml::Value::Boolean(_) => toml::Value::Boolean(
            raw.parse()
                .map_err(|_| format!("`{raw}` is not true/false"))?,
        ),
        toml::Value::Table(_) => return Err("names a section, not a setting".into()),
        _ => toml::Value::String(raw.to_string()),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_errors_say_where_without_quoting_the_file() {
        let text = "[clickhouse]\npassword = [\"ch-secret-pw\"\nuser = \"x\"\n";
        let err = parse(text, "callpulse.toml").unwrap_err().to_string();
        assert!(
            err.starts_with("callpulse.toml: line 3, column 1: "),
            "{err}"
        );
        assert!(!err.contains("ch-secret-pw"), "{err}");
    }

    #[test]
    fn long_quoted_values_in_errors_are_shown_by_their_length() {
        assert_eq!(
            without_long_quotes("unknown variant `https://hooks.example/T0/B0/secret`, expected one of `teams`, `slack`"),
            "unknown variant `(34 characters)`, expected one of `teams`, `slack`"
        );
        assert_eq!(
            without_long_quotes("unknown field `scpoe`, expected `name`"),
            "unknown field `scpoe`, expected `name`"
        );
        assert_eq!(
            without_long_quotes("invalid type: string \"a-long-secret-value\", expected u64"),
            "invalid type: string \"(19 characters)\", expected u64"
        );
        assert_eq!(without_long_quotes("odd ` quote"), "odd ` quote");
    }

    #[test]
    fn defaults_point_at_the_local_stack() {
        let config = Config::load_from(None, []).unwrap();
        assert_eq!(config.kafka.brokers, "127.0.0.1:9092");
        assert_eq!(config.topics.call_events, "callpulse.call-events.v1");
        assert_eq!(config.processor.emit_interval_ms, 1000);
        assert_eq!(config.alerts.thresholds, "");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let env = [
            ("CALLPULSE__CLICKHOUSE__PASSWORD", "ch-secret-pw"),
            ("CALLPULSE__ALERTER__HMAC_SECRET", "hmac-secret-value"),
            ("CALLPULSE__ADAPTERS__PSEUDONYM_KEY", "pseudonym-key-value"),
            ("CALLPULSE__ADAPTERS__INGEST_TOKEN", "ingest-token-value"),
            (
                "CALLPULSE__DASHBOARD__TOKENS",
                "england=dashboard-token-value",
            ),
        ];
        let config = Config::load_from(
            None,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .unwrap();
        let text = format!("{config:?}");
        for (_, secret) in env {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("<set>"));
    }

    #[test]
    fn environment_overrides_with_types_checked() {
        let env = [
            (
                "CALLPULSE__KAFKA__BROKERS".to_string(),
                "kafka:9092".to_string(),
            ),
            ("CALLPULSE__KAFKA__PARTITIONS".to_string(), "12".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let config = Config::load_from(None, env).unwrap();
        assert_eq!(config.kafka.brokers, "kafka:9092");
        assert_eq!(config.kafka.partitions, 12);
        let bad = [(
            "CALLPULSE__KAFKA__PARTITIONS".to_string(),
            "many".to_string(),
        )];
        assert!(Config::load_from(None, bad).is_err());
        let typo = [("CALLPULSE__KAFKA__BROKER".to_string(), "x".to_string())];
        assert!(matches!(
            Config::load_from(None, typo),
            Err(ConfigError::Env { .. })
        ));
    }
}
