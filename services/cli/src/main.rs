//! `callpulse`: one binary, a subcommand per service.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use callpulse_core::replay::replay;
use callpulse_core::{CoreHours, EngineConfig};
use clap::{Parser, Subcommand};

/// callpulse: how patients get through on the phone to their GP practice.
///
/// Turns telephony suppliers' call events into the NHS England call metrics
/// (offered, answered, abandoned, missed, waits, callbacks, 111 diversions)
/// per practice, in 1-minute, 15-minute, 1-hour and London-day windows.
#[derive(Parser)]
#[command(name = "callpulse", version, propagate_version = true)]
struct Cli {
    /// Configuration file (TOML). Defaults work against the local stack;
    /// any key can also be set as CALLPULSE__SECTION__KEY, e.g. CALLPULSE__KAFKA__BROKERS.
    #[arg(long, global = true, value_name = "FILE", env = "CALLPULSE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Consume canonical events from Kafka and publish window metrics (rebuilds calls, windows, lateness).
    Processor,
    /// Write window metrics from Kafka into ClickHouse (applies the schema first).
    Sink,
    /// Apply the versioned ClickHouse schema (schemas/clickhouse) and exit.
    Migrate,
    /// Publish simulated calls for a few practices to Kafka.
    ///
    /// Example: callpulse simulate --practices 5 --minutes 60 --speed 60
    Simulate {
        /// How many practices (A81001, A81002, ...).
        #[arg(long, default_value_t = 5)]
        practices: usize,
        /// Minutes of event time to simulate, starting now.
        #[arg(long, default_value_t = 60)]
        minutes: i64,
        /// Mean calls per practice per minute.
        #[arg(long, default_value_t = 2.0)]
        rate: f64,
        /// Event-time speed-up over the wall clock; 0 publishes as fast as possible.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Seed: the same seed gives the same calls.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Compute final window metrics from a file of canonical events (JSON lines).
    ///
    /// Uses the same engine as the streaming processor. The whole input is in
    /// hand, so every window is final. Bad lines are reported on standard
    /// error with their line number; the exit code is 1 if any was rejected.
    ///
    /// Example: callpulse replay --events events.jsonl --metrics metrics.jsonl --calls calls.jsonl
    Replay {
        /// Canonical events, one JSON object per line; `-` reads standard input.
        #[arg(long, value_name = "EVENTS.jsonl")]
        events: PathBuf,
        /// Where to write one JSON line per final window (metrics.md §4).
        #[arg(long, value_name = "METRICS.jsonl")]
        metrics: PathBuf,
        /// Where to write one JSON line per call summary.
        #[arg(long, value_name = "CALLS.jsonl")]
        calls: Option<PathBuf>,
        /// Where to write alerts (111 diversions in core hours, thresholds).
        /// Alert rules arrive with issue #7; until then the file is created empty.
        #[arg(long, value_name = "ALERTS.jsonl")]
        alerts: Option<PathBuf>,
        /// A bank-holidays file in the UK government's JSON shape, replacing the shipped one.
        #[arg(long, value_name = "FILE", env = "CALLPULSE_BANK_HOLIDAYS")]
        bank_holidays: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("callpulse: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn load_config(path: Option<&Path>) -> Result<callpulse_runtime::Config> {
    callpulse_runtime::Config::load(path).context("loading configuration")
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run(cli: Cli) -> Result<ExitCode> {
    let shutdown = callpulse_runtime::shutdown_signal;
    match cli.command {
        Command::Processor => {
            let config = load_config(cli.config.as_deref())?;
            runtime()?.block_on(callpulse_processor::run(config, shutdown()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sink => {
            let config = load_config(cli.config.as_deref())?;
            runtime()?.block_on(callpulse_sink::run(config, shutdown()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let config = load_config(cli.config.as_deref())?;
            runtime()?.block_on(callpulse_sink::migrate::apply(&config))?;
            eprintln!(
                "schema applied to {} at {}",
                config.clickhouse.database, config.clickhouse.url
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Simulate {
            practices,
            minutes,
            rate,
            speed,
            seed,
        } => {
            let config = load_config(cli.config.as_deref())?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("reading the clock")?;
            let plan = callpulse_simulator::SimulationPlan {
                practices,
                seed,
                start: callpulse_core::Timestamp(now.as_millis() as i64),
                duration_ms: minutes * 60_000,
                calls_per_practice_minute: rate,
                speed: (speed > 0.0).then_some(speed),
            };
            runtime()?.block_on(callpulse_simulator::run(config, plan, shutdown()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            events,
            metrics,
            calls,
            alerts,
            bank_holidays,
        } => {
            let core_hours = load_core_hours(bank_holidays.as_deref())?;
            let input: Box<dyn BufRead> = if events == Path::new("-") {
                Box::new(BufReader::with_capacity(1 << 20, io::stdin().lock()))
            } else {
                let file =
                    File::open(&events).with_context(|| format!("opening {}", events.display()))?;
                Box::new(BufReader::with_capacity(1 << 20, file))
            };
            let output =
                replay(input, EngineConfig::replay(core_hours)).context("reading events")?;
            write_lines(&metrics, &output.windows)?;
            if let Some(path) = calls {
                write_lines(&path, &output.calls)?;
            }
            if let Some(path) = alerts {
                write_lines::<serde_json::Value>(&path, &[])?;
            }
            for rejected in &output.rejected {
                eprintln!("line {}: {}", rejected.line, rejected.reason);
            }
            eprintln!(
                "replayed {} events ({} duplicates): {} windows, {} calls, {} lines rejected",
                output.events,
                output.duplicates,
                output.windows.len(),
                output.calls.len(),
                output.rejected.len()
            );
            Ok(if output.rejected.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn load_core_hours(path: Option<&Path>) -> Result<CoreHours> {
    match path {
        None => Ok(CoreHours::shipped()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            CoreHours::from_gov_json(&text).with_context(|| format!("parsing {}", path.display()))
        }
    }
}

fn write_lines<T: serde::Serialize>(path: &Path, records: &[T]) -> Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    for record in records {
        serde_json::to_writer(&mut out, record)?;
        out.write_all(b"\n")?;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))
}
