//! `callpulse`: one binary, a subcommand per service.
// The doc comments of the commands are their `--help` text (clap), written
// for a terminal: `<database>` there is a placeholder, not an HTML tag.
#![allow(rustdoc::invalid_html_tags)]

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use callpulse_core::replay::{replay_with, ReplayOptions};
use callpulse_core::CoreHours;
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
    /// Receive vendor webhooks and pushes over HTTP and publish canonical events to Kafka.
    ///
    /// Routes: POST /v1/events (canonical JSON), /v1/twilio (signed status and
    /// queue callbacks), /v1/amazon-connect (CTRs or Kinesis Data Firehose),
    /// /v1/teams (Graph callRecords), /v1/asterisk (CDR CSV / queue_log lines);
    /// GET /healthz, /metrics. A 2xx is sent only once Kafka has the events;
    /// bad records are answered 4xx with the field and reason and go to the
    /// dead-letter topic. Listens on adapters.listen (127.0.0.1:8088).
    ///
    /// Example: CALLPULSE__ADAPTERS__PSEUDONYM_KEY=... callpulse adapters --mapping practices.toml
    Adapters {
        /// Practice mapping (TOML); default: adapters.mapping from the configuration.
        #[arg(long, value_name = "FILE")]
        mapping: Option<PathBuf>,
        /// Local demo: the published demo pseudonym key when none is configured,
        /// and Twilio signatures unchecked when no auth token is. Never in production.
        #[arg(long)]
        demo: bool,
    },
    /// Convert a vendor file into canonical events (JSON lines), without Kafka.
    ///
    /// Each record becomes zero or more canonical events; a record that
    /// cannot be mapped goes to the rejects file with its line number and
    /// reason (phone numbers masked). Caller numbers become keyed pseudonyms
    /// (key: CALLPULSE__ADAPTERS__PSEUDONYM_KEY, or --demo). The exit code is
    /// 1 when any record was rejected. The output feeds `callpulse replay`.
    ///
    /// Example: callpulse adapt --vendor amazon-connect --input ctr.jsonl --mapping practices.toml --output events.jsonl --rejects rejects.jsonl
    Adapt {
        /// Vendor format: generic, twilio, amazon-connect, asterisk, teams.
        #[arg(long)]
        vendor: callpulse_adapters::Vendor,
        /// The vendor file: JSON lines, or CSV / queue_log for asterisk; `-` reads standard input.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// Practice mapping (TOML); default: adapters.mapping from the configuration.
        #[arg(long, value_name = "FILE")]
        mapping: Option<PathBuf>,
        /// Where to write the canonical events, one JSON object per line.
        #[arg(long, value_name = "EVENTS.jsonl")]
        output: PathBuf,
        /// Where to write rejected records, one JSON object per line.
        #[arg(long, value_name = "REJECTS.jsonl")]
        rejects: PathBuf,
        /// Use the published demo pseudonym key when none is configured (never in production).
        #[arg(long)]
        demo: bool,
    },
    /// Publish vendor files to Kafka as canonical events; resumable and idempotent.
    ///
    /// Progress is kept in FILE.callpulse-import after each acknowledged
    /// batch: an interrupted import resumes there, a finished one is skipped.
    /// Rejected records go to the dead-letter topic. Importing again is safe:
    /// event ids come from the vendor records, so repeats are dropped as duplicates.
    ///
    /// Example: callpulse import --vendor asterisk --mapping practices.toml Master.csv
    Import {
        /// Vendor format: generic, twilio, amazon-connect, asterisk, teams.
        #[arg(long)]
        vendor: callpulse_adapters::Vendor,
        /// Practice mapping (TOML); default: adapters.mapping from the configuration.
        #[arg(long, value_name = "FILE")]
        mapping: Option<PathBuf>,
        /// Ignore checkpoints and import from the first line.
        #[arg(long)]
        restart: bool,
        /// Use the published demo pseudonym key when none is configured (never in production).
        #[arg(long)]
        demo: bool,
        /// The vendor files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Consume canonical events from Kafka and publish window metrics (rebuilds calls, windows, lateness).
    Processor,
    /// Write window metrics from Kafka into ClickHouse (applies the schema first).
    Sink,
    /// Deliver alerts from Kafka to Teams, Slack, signed webhooks and email.
    ///
    /// Routes each alert by kind to the practice's PCN clinical directors,
    /// its ICB primary care team, or the operators (contacts file; PCN and
    /// ICB from the alert or alerter.organisations). Groups alerts per
    /// recipient, rate limits, retries with backoff, records every attempt in
    /// ClickHouse `alert_deliveries`, publishes what cannot be delivered to
    /// alerter.undeliverable_topic, and commits offsets only then. See docs/alerts.md.
    ///
    /// Example: CALLPULSE__ALERTER__HMAC_SECRET=... callpulse alerter --contacts deploy/alerts/contacts.example.toml
    Alerter {
        /// Contacts file (TOML); default: alerter.contacts from the configuration.
        #[arg(long, value_name = "FILE")]
        contacts: Option<PathBuf>,
    },
    /// Apply the versioned ClickHouse schema (schemas/clickhouse) and exit;
    /// with clickhouse.cluster set, on every replica of that cluster
    /// (ON CLUSTER, Replicated engines).
    Migrate,
    /// Organisations (practice -> PCN -> sub-ICB location -> ICB -> region) in ClickHouse.
    ///
    /// Example: callpulse orgs load data/organisations.csv
    Orgs {
        #[command(subcommand)]
        command: OrgsCommand,
    },
    /// Per-ICB read-only access: a database per ICB and its ClickHouse user.
    ///
    /// Creates (idempotently) the database <database>_icb_<code> for each ICB,
    /// fed live from the main tables, and writes a users.d file with one
    /// read-only user per ICB (icb_<code>) and a generated password, printed
    /// once on standard output. See docs/queries.md.
    ///
    /// Example: callpulse access --icb QHM --icb QYG --users-out .local/clickhouse/users.d/icb.xml
    Access {
        /// ICB codes; default: every ICB in the organisations table.
        #[arg(long = "icb", value_name = "CODE")]
        icbs: Vec<String>,
        /// Where to write the users.d XML (ClickHouse reloads it live).
        #[arg(long, value_name = "FILE")]
        users_out: Option<PathBuf>,
    },
    /// Serve the live web dashboard and its JSON API (docs/dashboard.md).
    ///
    /// England -> region -> ICB -> PCN -> practice: today's calls by 15
    /// minutes beside the same weekday last week, answered and abandoned %
    /// against England, wait percentiles, 111 diversions in core hours,
    /// practices ranked, active alerts, an hour-by-weekday heat map; read from
    /// ClickHouse's rollup views and refreshed every dashboard.refresh_seconds.
    /// Each login token (dashboard.tokens_file, or CALLPULSE__DASHBOARD__TOKENS
    /// as SCOPE=TOKEN pairs) sees England or one ICB; without one, no data.
    /// Listens on dashboard.listen (127.0.0.1:8090).
    ///
    /// Example: callpulse dashboard --tokens services/dashboard/tokens.example.toml
    Dashboard {
        /// Tokens file (TOML); default: dashboard.tokens_file from the configuration.
        #[arg(long, value_name = "FILE")]
        tokens: Option<PathBuf>,
        /// Address to listen on, e.g. 0.0.0.0:8090; default: dashboard.listen.
        #[arg(long, value_name = "ADDRESS")]
        listen: Option<String>,
        /// The London day to show (YYYY-MM-DD) instead of the latest with metrics.
        #[arg(long, value_name = "DAY")]
        day: Option<String>,
    },
    /// Simulate national call traffic, to Kafka, the adapters or a file.
    ///
    /// Simulated national call traffic (docs/simulator.md): practices from
    /// the organisations file, demand by list size, the 8 am surge, Monday
    /// peaks, staffed queues, abandons and redials, callbacks, voicemail,
    /// 111 diversions; deterministic for a seed.
    ///
    /// Example: callpulse simulate --practices 5 --minutes 60 --speed 60x
    ///
    /// Example: callpulse simulate --practices 300 --start 2026-11-23T07:30 --duration 3h --speed 60x --to http
    ///
    /// Example: callpulse simulate --start 2026-11-23T00:00 --duration 1d --to file --out day.jsonl
    Simulate {
        /// Organisations CSV (docs/organisations.md) [default: data/organisations.csv,
        /// else synthetic practices A81001, A81002, ...].
        #[arg(long, value_name = "FILE")]
        organisations: Option<PathBuf>,
        /// How many practices: the first N open practices of the file [default: all].
        #[arg(long)]
        practices: Option<usize>,
        /// With --practices N: N practices spread evenly through the file
        /// (so every ICB has some) instead of the first N.
        #[arg(long, requires = "practices")]
        spread: bool,
        /// Event time of the first call: now, an RFC 3339 instant, or London
        /// local time such as 2026-11-23T07:30.
        #[arg(long, default_value = "now")]
        start: String,
        /// Event time covered: 90m, 8h, 7d, 2w [default: 1h].
        #[arg(long, conflicts_with = "minutes")]
        duration: Option<String>,
        /// Minutes of event time (the older form of --duration).
        #[arg(long)]
        minutes: Option<i64>,
        /// Demand as mean calls per practice per minute in core hours on an
        /// average working day [default: the national calibration, about 0.38].
        #[arg(long)]
        rate: Option<f64>,
        /// Demand as a multiple of the national calibration (instead of --rate).
        #[arg(long, conflicts_with = "rate")]
        demand: Option<f64>,
        /// realtime, a factor such as 60x, or max (0 = max) [default: realtime;
        /// max with --to file].
        #[arg(long)]
        speed: Option<String>,
        /// Seed: the same seed gives the same calls.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// kafka (the call-events topic), http (the adapters' POST /v1/events),
        /// or file (JSON lines for callpulse replay).
        #[arg(long, default_value = "kafka", value_parser = ["kafka", "http", "file"])]
        to: String,
        /// With --to http: the endpoint [default: http://<adapters.listen>/v1/events];
        /// with --format native, each vendor's route under the same base.
        #[arg(long)]
        url: Option<String>,
        /// With --to file: where to write (- for standard output); with
        /// --format native, a directory (one file per vendor, and mapping.toml).
        #[arg(long, value_name = "EVENTS.jsonl")]
        out: Option<PathBuf>,
        /// Faults to inject: duplicates, late (out-of-order and late events),
        /// silence (a practice's feed goes quiet), comma separated.
        #[arg(long, default_value = "")]
        faults: String,
        /// canonical (callpulse's events), or native: each practice's
        /// supplier's own records (Twilio webhooks, Amazon Connect contact
        /// records, Asterisk queue_log and CDRs, Teams call records) for the
        /// adapters (--to http or --to file; docs/simulator.md).
        #[arg(long, value_enum, default_value_t = SimulateFormat::Canonical)]
        format: SimulateFormat,
        /// With --format native: mix (each practice a supplier, by seed), or
        /// every practice on one: generic, twilio, amazon-connect, asterisk.
        #[arg(long, default_value = "mix")]
        vendors: String,
        /// Write the adapters' practice mapping for the simulated practices'
        /// vendor numbers, queues and accounts to FILE, then exit (load it with
        /// callpulse adapters --mapping FILE).
        #[arg(long, value_name = "FILE")]
        write_mapping: Option<PathBuf>,
    },
    /// Compute final window metrics from a file of canonical events (JSON lines).
    ///
    /// Uses the same engine as the streaming processor. The whole input is in
    /// hand, so every window is final. Bad lines are reported on standard
    /// error with their line number; the exit code is 1 if any was rejected.
    ///
    /// Example: callpulse replay --events events.jsonl --metrics metrics.jsonl --calls calls.jsonl --alerts alerts.jsonl
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
        /// Where to write alerts: one JSON line per alert state change (firing,
        /// updated with the count of diverted calls, resolved), ordered by
        /// event time. Rules: a 111 diversion in core hours (metrics.md §5,
        /// docs/core.md "Alerts: 111 diversions"; ids like
        /// div111:A81001:2026-11-23T08:00:00.000Z), and, with their default
        /// settings, the thresholds and feed silence of docs/alerts.md.
        /// Alerts are computed up to the latest event time in the input, so
        /// one still open then stays firing.
        #[arg(long, value_name = "ALERTS.jsonl")]
        alerts: Option<PathBuf>,
        /// A bank-holidays file in the UK government's JSON shape, replacing the shipped one.
        #[arg(long, value_name = "FILE", env = "CALLPULSE_BANK_HOLIDAYS")]
        bank_holidays: Option<PathBuf>,
    },
}

/// What `callpulse simulate` delivers.
#[derive(Clone, Copy, clap::ValueEnum)]
enum SimulateFormat {
    /// callpulse's canonical events.
    Canonical,
    /// Each practice's supplier's own records, for the adapters.
    Native,
}

#[derive(Subcommand)]
enum OrgsCommand {
    /// Load an organisations CSV into the `organisations` table (applies the schema first).
    ///
    /// Reads NHS Digital's gp-reg-pat-prac-map header, or callpulse's (the
    /// same plus OPEN_DATE and CLOSE_DATE); see docs/organisations.md. Every
    /// bad row is reported with its line number and then nothing is loaded
    /// (exit code 1). Loading again replaces each practice's row (read with FINAL).
    ///
    /// Example: callpulse orgs load data/organisations.csv
    Load {
        /// The CSV file; `-` reads standard input.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Write the synthetic organisations file (the shipped data/organisations.csv); deterministic.
    ///
    /// Example: callpulse orgs generate --out data/organisations.csv
    Generate {
        /// Where to write the CSV; `-` writes standard output.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // CALLPULSE_LOG_FORMAT=json: one JSON object per line, for log
    // collectors (docs/operations.md, "Logs").
    if std::env::var("CALLPULSE_LOG_FORMAT").is_ok_and(|format| format == "json") {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(io::stderr)
            // Colour codes only for a person at a terminal, not in log files.
            .with_ansi(
                io::IsTerminal::is_terminal(&io::stderr())
                    && std::env::var_os("NO_COLOR").is_none(),
            )
            .init();
    }
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("callpulse: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// The practices `callpulse simulate` runs: from `path`, else from the
/// shipped organisations file when it is at hand, else synthetic codes.
fn simulated_practices(
    path: Option<&Path>,
    limit: Option<usize>,
    spread: bool,
) -> Result<Vec<callpulse_simulator::Practice>> {
    let default = Path::new("data/organisations.csv");
    let path = match path {
        Some(path) => path,
        None if default.exists() => default,
        None => {
            let n = limit.unwrap_or(5);
            eprintln!("simulate: no data/organisations.csv here; simulating {n} synthetic practices (A81001, ...)");
            return Ok(callpulse_simulator::synthetic_practices(n));
        }
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let first = if spread { None } else { limit };
    let practices = callpulse_simulator::parse_organisations(&text, first)
        .with_context(|| format!("reading practices from {}", path.display()))?;
    Ok(match limit {
        Some(n) if spread => callpulse_simulator::spread(practices, n),
        _ => practices,
    })
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

/// `callpulse orgs load` and `callpulse orgs generate`.
fn orgs(command: OrgsCommand, config: Option<&Path>) -> Result<ExitCode> {
    use callpulse_sink::organisations::{self, synthetic, LevelCounts};
    match command {
        OrgsCommand::Load { file } => {
            let parsed = organisations::parse(open_input(&file)?)
                .with_context(|| format!("reading {}", file.display()))?;
            for error in &parsed.errors {
                eprintln!("{}: {error}", file.display());
            }
            if !parsed.errors.is_empty() {
                eprintln!(
                    "{}: {} bad rows, nothing loaded",
                    file.display(),
                    parsed.errors.len()
                );
                return Ok(ExitCode::from(1));
            }
            let config = load_config(config)?;
            runtime()?.block_on(organisations::load(&config, &parsed.practices))?;
            eprintln!(
                "{} ({}): loaded {} into {}.organisations at {}",
                file.display(),
                parsed.format,
                LevelCounts::of(&parsed.practices),
                config.clickhouse.database,
                config.clickhouse.url
            );
            Ok(ExitCode::SUCCESS)
        }
        OrgsCommand::Generate { out } => {
            let practices = synthetic::generate();
            if out == Path::new("-") {
                synthetic::write_csv(io::stdout().lock(), &practices)?;
            } else {
                let file =
                    File::create(&out).with_context(|| format!("creating {}", out.display()))?;
                synthetic::write_csv(BufWriter::new(file), &practices)
                    .with_context(|| format!("writing {}", out.display()))?;
            }
            let counts: Vec<_> = practices.into_iter().map(|s| s.practice).collect();
            eprintln!("{}: {}", out.display(), LevelCounts::of(&counts));
            Ok(ExitCode::SUCCESS)
        }
    }
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
        Command::Alerter { contacts } => {
            let mut config = load_config(cli.config.as_deref())?;
            if let Some(contacts) = contacts {
                config.alerter.contacts = contacts.display().to_string();
            }
            runtime()?.block_on(callpulse_alerter::run(config, shutdown()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Dashboard {
            tokens,
            listen,
            day,
        } => {
            let mut config = load_config(cli.config.as_deref())?;
            if let Some(tokens) = tokens {
                config.dashboard.tokens_file = tokens.display().to_string();
            }
            if let Some(listen) = listen {
                config.dashboard.listen = listen;
            }
            if let Some(day) = day {
                config.dashboard.day = day;
            }
            runtime()?.block_on(callpulse_dashboard::run(config, shutdown()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let config = load_config(cli.config.as_deref())?;
            runtime()?.block_on(callpulse_sink::migrate::apply_to_cluster(&config))?;
            match config.clickhouse.cluster.as_str() {
                "" => eprintln!(
                    "schema applied to {} at {}",
                    config.clickhouse.database, config.clickhouse.url
                ),
                cluster => eprintln!(
                    "schema applied to {} on every replica of cluster {cluster} (through {})",
                    config.clickhouse.database, config.clickhouse.url
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Orgs { command } => orgs(command, cli.config.as_deref()),
        Command::Access { icbs, users_out } => {
            let config = load_config(cli.config.as_deref())?;
            runtime()?.block_on(icb_access(&config, icbs, users_out.as_deref()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Simulate {
            organisations,
            practices,
            spread,
            start,
            duration,
            minutes,
            rate,
            demand,
            speed,
            seed,
            to,
            url,
            out,
            faults,
            format,
            vendors,
            write_mapping,
        } => {
            let config = load_config(cli.config.as_deref())?;
            let format = match format {
                SimulateFormat::Canonical => callpulse_simulator::Format::Canonical,
                SimulateFormat::Native => callpulse_simulator::Format::Native(
                    callpulse_simulator::VendorMix::parse(&vendors)?,
                ),
            };
            if let Some(path) = write_mapping {
                let practices = simulated_practices(organisations.as_deref(), practices, spread)?;
                std::fs::write(
                    &path,
                    callpulse_simulator::vendors::mapping_toml(&practices),
                )
                .with_context(|| format!("writing {}", path.display()))?;
                eprintln!(
                    "simulate: wrote the practice mapping of {} practices to {}",
                    practices.len(),
                    path.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let native = matches!(format, callpulse_simulator::Format::Native(_));
            let now = callpulse_runtime::wall_clock();
            let duration_ms = match (duration, minutes) {
                (Some(text), _) => callpulse_simulator::parse_duration(&text)?,
                (None, Some(minutes)) if minutes > 0 => minutes * 60_000,
                (None, Some(_)) => anyhow::bail!("--minutes must be positive"),
                (None, None) => 3_600_000,
            };
            let demand = match (rate, demand) {
                (Some(rate), _) => rate / callpulse_simulator::national_core_rate(),
                (None, Some(demand)) => demand,
                (None, None) => 1.0,
            };
            anyhow::ensure!(
                demand.is_finite() && demand > 0.0,
                "--rate / --demand must be positive"
            );
            let target = match to.as_str() {
                // Native records go to each vendor's route under the same base.
                "http" => callpulse_simulator::Target::Http {
                    url: url
                        .unwrap_or_else(|| format!("http://{}/v1/events", config.adapters.listen)),
                    token: (!config.adapters.ingest_token.is_empty())
                        .then(|| config.adapters.ingest_token.clone()),
                },
                "file" => callpulse_simulator::Target::File {
                    path: out.context(if native {
                        "--to file --format native needs --out DIRECTORY"
                    } else {
                        "--to file needs --out FILE (- for standard output)"
                    })?,
                },
                _ => callpulse_simulator::Target::Kafka,
            };
            let speed = match speed {
                Some(text) => callpulse_simulator::parse_speed(&text)?,
                None if to == "file" => None,
                None => Some(1.0),
            };
            let scenario = callpulse_simulator::Scenario {
                practices: simulated_practices(organisations.as_deref(), practices, spread)?,
                seed,
                start: callpulse_simulator::parse_start(&start, now)?,
                duration_ms,
                demand,
                faults: callpulse_simulator::Faults::parse(&faults)?,
                calendar: CoreHours::shipped(),
            };
            runtime()?.block_on(callpulse_simulator::run_scenario_as(
                &config,
                scenario,
                speed,
                target,
                format,
                shutdown(),
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Adapters { mapping, demo } => {
            let config = load_config(cli.config.as_deref())?;
            runtime()?.block_on(callpulse_adapters::http::run(
                config,
                mapping.as_deref(),
                demo,
                shutdown(),
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Adapt {
            vendor,
            input,
            mapping,
            output,
            rejects,
            demo,
        } => {
            let config = load_config(cli.config.as_deref())?;
            let mapping =
                callpulse_adapters::settings::mapping(&config.adapters, mapping.as_deref())?;
            let pseudonymiser =
                callpulse_adapters::settings::pseudonymiser(&config.adapters, demo)?;
            let ctx = callpulse_adapters::AdaptContext {
                mapping: &mapping,
                pseudonymiser: &pseudonymiser,
                received_at: None,
            };
            let reader = open_input(&input)?;
            let source = callpulse_adapters::file::source_of(&input);
            let mut events_out = BufWriter::new(
                File::create(&output).with_context(|| format!("creating {}", output.display()))?,
            );
            let mut rejects_out = BufWriter::new(
                File::create(&rejects)
                    .with_context(|| format!("creating {}", rejects.display()))?,
            );
            let summary = callpulse_adapters::file::adapt_file(
                vendor,
                &source,
                reader,
                &ctx,
                callpulse_runtime::wall_clock(),
                |event| writeln!(events_out, "{}", event.to_json()),
                |rejection| {
                    eprintln!("line {}: {}", rejection.line.unwrap_or(0), rejection.error);
                    writeln!(rejects_out, "{}", rejection.to_json())
                },
            )
            .with_context(|| format!("converting {}", input.display()))?;
            events_out.flush()?;
            rejects_out.flush()?;
            eprintln!(
                "{}: {} records, {} events, {} rejected",
                input.display(),
                summary.records,
                summary.events,
                summary.rejected
            );
            Ok(if summary.rejected == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Import {
            vendor,
            mapping,
            restart,
            demo,
            files,
        } => {
            let config = load_config(cli.config.as_deref())?;
            let mapping =
                callpulse_adapters::settings::mapping(&config.adapters, mapping.as_deref())?;
            let pseudonymiser =
                callpulse_adapters::settings::pseudonymiser(&config.adapters, demo)?;
            let ctx = callpulse_adapters::AdaptContext {
                mapping: &mapping,
                pseudonymiser: &pseudonymiser,
                received_at: None,
            };
            let rejected = runtime()?.block_on(async {
                callpulse_runtime::kafka::ensure_topics(&config.kafka, &config.topics.all())
                    .await?;
                let publisher = callpulse_adapters::publish::Publisher::new(&config)?;
                let mut rejected = 0;
                for file in &files {
                    use callpulse_adapters::import::{import_file, FileOutcome};
                    match import_file(
                        vendor,
                        file,
                        &ctx,
                        &publisher,
                        restart,
                        callpulse_runtime::wall_clock(),
                    )
                    .await?
                    {
                        FileOutcome::Imported(summary) => {
                            rejected += summary.rejected;
                            eprintln!(
                                "{}: {} records, {} events published, {} rejected (dead-lettered)",
                                file.display(),
                                summary.records,
                                summary.events,
                                summary.rejected
                            );
                        }
                        FileOutcome::AlreadyDone(summary) => eprintln!(
                            "{}: already imported ({} records); --restart imports it again",
                            file.display(),
                            summary.records
                        ),
                    }
                }
                anyhow::Ok(rejected)
            })?;
            Ok(if rejected == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Replay {
            events,
            metrics,
            calls,
            alerts,
            bank_holidays,
        } => {
            let core_hours = load_core_hours(bank_holidays.as_deref())?;
            let input = open_input(&events)?;
            let options = ReplayOptions {
                core_hours,
                call_summaries: calls.is_some(),
                alerts: alerts.is_some(),
            };
            let output = replay_with(input, options).context("reading events")?;
            write_lines(&metrics, &output.windows)?;
            if let Some(path) = calls {
                write_lines(&path, &output.calls)?;
            }
            if let Some(path) = alerts {
                write_lines(&path, &output.alerts)?;
            }
            for rejected in &output.rejected {
                eprintln!("line {}: {}", rejected.line, rejected.reason);
            }
            eprintln!(
                "replayed {} events ({} duplicates): {} windows, {} calls, {} alert states, {} lines rejected",
                output.events,
                output.duplicates,
                output.windows.len(),
                output.calls.len(),
                output.alerts.len(),
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

/// `callpulse access`: ICB databases and, if asked, their users.
async fn icb_access(
    config: &callpulse_runtime::Config,
    icbs: Vec<String>,
    users_out: Option<&Path>,
) -> Result<()> {
    use callpulse_sink::access;
    use rand::distr::{Alphanumeric, SampleString};
    callpulse_sink::migrate::apply_to_cluster(config).await?;
    let icbs = if icbs.is_empty() {
        access::icbs_present(config).await?
    } else {
        icbs
    };
    anyhow::ensure!(
        !icbs.is_empty(),
        "no ICBs: load the organisations first (callpulse orgs load)"
    );
    let mut users = Vec::new();
    for icb in &icbs {
        let database = access::create_icb_database(config, icb).await?;
        eprintln!("{icb}: database {database}");
        users.push(access::DatabaseUser {
            name: format!("icb_{}", icb.to_ascii_lowercase()),
            password: Alphanumeric.sample_string(&mut rand::rng(), 24),
            database,
        });
    }
    if let Some(path) = users_out {
        std::fs::write(path, access::users_xml(&users)?)
            .with_context(|| format!("writing {}", path.display()))?;
        for user in &users {
            // Shown once: only the hash is in the file.
            println!("{}\t{}\t{}", user.name, user.password, user.database);
        }
        eprintln!(
            "users written to {} (passwords above; only their hashes are stored)",
            path.display()
        );
    }
    Ok(())
}

/// Opens `path` for reading, or standard input for `-`.
fn open_input(path: &Path) -> Result<Box<dyn BufRead>> {
    if path == Path::new("-") {
        return Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            io::stdin().lock(),
        )));
    }
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(Box::new(BufReader::with_capacity(1 << 20, file)))
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
