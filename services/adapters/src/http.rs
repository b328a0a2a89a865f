//! HTTP ingest: vendors push records, callpulse answers only once Kafka
//! has them.
//!
//! | route | body |
//! |---|---|
//! | `POST /v1/events` | canonical events (`generic`): one JSON object, an array, or JSON lines |
//! | `POST /v1/twilio` | a Twilio status or queue callback (form-encoded), signed |
//! | `POST /v1/amazon-connect` | contact trace records (object, array, JSON lines) or a Kinesis Data Firehose delivery |
//! | `POST /v1/teams` | Microsoft Graph callRecords (object, array, JSON lines) |
//! | `POST /v1/asterisk` | CDR CSV or queue_log lines |
//! | `GET /healthz`, `GET /readyz`, `GET /metrics` | liveness, readiness (Kafka answers; JSON, 503 when not), Prometheus metrics (docs/operations.md) |
//!
//! Answers: `200` every record accepted; `422` some or all records
//! rejected (the body lists each by its 1-based position, with the field
//! and reason; the accepted ones are in Kafka); `400` a body that is not
//! JSON / form / UTF-8 at all; `413` too large; `401`/`403` bad
//! credentials; `503` with `Retry-After` when Kafka did not acknowledge:
//! nothing of that request counts as accepted, and sending it again is safe
//! because event ids are deterministic.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use callpulse_core::{CallEvent, Timestamp};
use callpulse_runtime::metrics::Registry;
use callpulse_runtime::ops::Readiness;
use serde_json::{json, value::RawValue};

use crate::bounds::TimeBounds;
use crate::file::Rejection;
use crate::publish::{PublishError, Publisher};
use crate::throttle::Throttle;
use crate::{AdaptContext, AdaptError, PracticeMapping, Pseudonymiser, Vendor};
use callpulse_runtime::wall_clock as now;

/// Seconds a sender should wait before retrying after a 503.
const RETRY_AFTER_SECS: u64 = 5;

pub struct IngestState {
    pub mapping: PracticeMapping,
    pub pseudonymiser: Pseudonymiser,
    pub publisher: Publisher,
    pub metrics: Arc<Registry>,
    pub max_body_bytes: usize,
    /// How long a request's body may take to arrive, once its headers are in.
    pub body_read_timeout: Duration,
    /// Bearer token for every route but Twilio's (which is signed); `None`: open.
    pub ingest_token: Option<String>,
    pub twilio: TwilioAuth,
    /// How far from arrival event times may be ([`crate::bounds`]).
    pub time_bounds: TimeBounds,
    /// Records per second per sender ([`crate::throttle`]).
    pub throttle: Throttle,
}

#[derive(Clone)]
pub enum TwilioAuth {
    /// Check `X-Twilio-Signature` with the account's auth token, over the
    /// URL Twilio called (`public_url` + path and query).
    Signed {
        auth_token: String,
        public_url: String,
    },
    /// Demo mode: signatures are not checked.
    Unchecked,
    /// No auth token configured: the route refuses everything.
    Disabled,
}

/// The routes, with a `/readyz` that is always ready (no checks): for
/// callers that run no broker probe (tests, embedding).
pub fn router(state: Arc<IngestState>) -> Router {
    router_with_readiness(state, Readiness::new(&[]))
}

/// The routes, with `/readyz` answering from `readiness`.
pub fn router_with_readiness(state: Arc<IngestState>, readiness: Arc<Readiness>) -> Router {
    Router::new()
        .route(
            "/readyz",
            get(move || async move { callpulse_runtime::ops::readyz(&readiness) }),
        )
        .route("/v1/events", post(generic))
        .route("/v1/twilio", post(twilio))
        .route("/v1/amazon-connect", post(amazon_connect))
        .route("/v1/teams", post(teams))
        .route("/v1/asterisk", post(asterisk))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// `callpulse adapters`: builds the ingest from the configuration and
/// serves on `adapters.listen` until `shutdown` resolves.
pub async fn run(
    config: callpulse_runtime::Config,
    mapping_path: Option<&std::path::Path>,
    demo: bool,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = Arc::new(IngestState::from_config(&config, mapping_path, demo)?);
    callpulse_runtime::kafka::ensure_topics(&config.kafka, &config.topics.all()).await?;
    let listen = &config.adapters.listen;
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("adapters.listen `{listen}` is not host:port"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let tls = crate::serve::tls_acceptor(
        &config.adapters.tls_cert_file,
        &config.adapters.tls_key_file,
    )?;
    tracing::info!(%addr, demo, tls = tls.is_some(), "adapters listening");
    // Ready while the broker answers (checked every 10 seconds).
    let readiness = Readiness::new(&[KAFKA]);
    let _watch = {
        let readiness = readiness.clone();
        callpulse_runtime::kafka::watch_offsets(
            &config.kafka,
            None,
            vec![config.topics.call_events.clone()],
            Duration::from_secs(10),
            move |offsets| match offsets {
                Ok(_) => readiness.pass(KAFKA),
                Err(reason) => readiness.fail(KAFKA, reason),
            },
        )?
    };
    serve_with(
        state,
        listener,
        readiness,
        tls,
        Duration::from_millis(config.adapters.header_read_timeout_ms.max(1)),
        shutdown,
    )
    .await
}

/// Readiness check: the broker answers (metadata and offsets of the call-events topic).
const KAFKA: &str = "kafka";

impl IngestState {
    pub fn from_config(
        config: &callpulse_runtime::Config,
        mapping_path: Option<&std::path::Path>,
        demo: bool,
    ) -> anyhow::Result<Self> {
        let adapters = &config.adapters;
        let twilio = match (adapters.twilio_auth_token.is_empty(), demo) {
            (false, _) => TwilioAuth::Signed {
                auth_token: adapters.twilio_auth_token.clone(),
                public_url: adapters.public_url.clone(),
            },
            (true, true) => TwilioAuth::Unchecked,
            (true, false) => TwilioAuth::Disabled,
        };
        Ok(IngestState {
            mapping: crate::settings::mapping(adapters, mapping_path)?,
            pseudonymiser: crate::settings::pseudonymiser(adapters, demo)?,
            publisher: Publisher::new(config)?,
            metrics: Arc::new(Registry::new()),
            max_body_bytes: adapters.max_body_bytes,
            body_read_timeout: Duration::from_millis(adapters.body_read_timeout_ms.max(1)),
            ingest_token: (!adapters.ingest_token.is_empty())
                .then(|| adapters.ingest_token.clone()),
            twilio,
            // The demo replays a past day, accelerated: its times are not bounded.
            time_bounds: if demo {
                TimeBounds {
                    max_age_ms: 0,
                    max_lead_ms: 0,
                }
            } else {
                TimeBounds {
                    max_age_ms: adapters.max_event_age_ms,
                    max_lead_ms: adapters.max_event_lead_ms,
                }
            },
            throttle: Throttle::new(
                adapters.sender_records_per_second,
                adapters.sender_burst_records,
            ),
        })
    }
}

/// Serves on `listener` until `shutdown` resolves, then finishes the
/// requests in flight and flushes the producer.
pub async fn serve(
    state: Arc<IngestState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with_readiness(state, listener, Readiness::new(&[]), shutdown).await
}

/// As [`serve`], with `/readyz` answering from `readiness`.
pub async fn serve_with_readiness(
    state: Arc<IngestState>,
    listener: tokio::net::TcpListener,
    readiness: Arc<Readiness>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with(
        state,
        listener,
        readiness,
        None,
        Duration::from_secs(10),
        shutdown,
    )
    .await
}

/// As [`serve_with_readiness`], over TLS when `tls` is given, closing
/// connections that take longer than `header_read_timeout` to send a
/// request's headers or finish the TLS handshake (crate::serve).
pub async fn serve_with(
    state: Arc<IngestState>,
    listener: tokio::net::TcpListener,
    readiness: Arc<Readiness>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    header_read_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let publisher = state.publisher.clone();
    crate::serve::serve(
        listener,
        router_with_readiness(state, readiness),
        tls,
        header_read_timeout,
        shutdown,
    )
    .await;
    publisher.flush(Duration::from_secs(10));
    Ok(())
}

async fn metrics(State(state): State<Arc<IngestState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            callpulse_runtime::metrics::CONTENT_TYPE,
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn generic(State(state): State<Arc<IngestState>>, request: Request) -> Response {
    json_records(&state, Vendor::Generic, request).await
}

async fn teams(State(state): State<Arc<IngestState>>, request: Request) -> Response {
    json_records(&state, Vendor::Teams, request).await
}

async fn amazon_connect(State(state): State<Arc<IngestState>>, request: Request) -> Response {
    json_records(&state, Vendor::AmazonConnect, request).await
}

async fn asterisk(State(state): State<Arc<IngestState>>, request: Request) -> Response {
    let vendor = Vendor::Asterisk;
    let (headers, body) = match authorised_body(&state, vendor, request).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    drop(headers);
    let records = body
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_string)
        .collect();
    ingest(&state, vendor, records).await
}

async fn twilio(State(state): State<Arc<IngestState>>, request: Request) -> Response {
    let vendor = Vendor::Twilio;
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_default();
    let signature = request
        .headers()
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match read_body(&state, vendor, request.into_body()).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    match &state.twilio {
        TwilioAuth::Disabled => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_configured",
                "the Twilio endpoint needs adapters.twilio_auth_token (or --demo)",
            )
        }
        TwilioAuth::Unchecked => {}
        TwilioAuth::Signed {
            auth_token,
            public_url,
        } => {
            let params: Vec<(String, String)> =
                serde_urlencoded::from_str(&body).unwrap_or_default();
            let url = format!("{}{}", public_url.trim_end_matches('/'), path_and_query);
            let valid = signature.as_deref().is_some_and(|signature| {
                crate::vendors::twilio::verify_signature(auth_token, &url, &params, signature)
            });
            if !valid {
                state.metrics.inc(
                    "callpulse_adapter_unauthorised_total",
                    "Requests refused for a missing or wrong credential or signature.",
                    &[("vendor", vendor.name())],
                );
                return error(
                    StatusCode::FORBIDDEN,
                    "bad_signature",
                    "X-Twilio-Signature does not match this request",
                );
            }
        }
    }
    let received_at = now();
    let ctx = AdaptContext {
        mapping: &state.mapping,
        pseudonymiser: &state.pseudonymiser,
        received_at: Some(received_at),
    };
    // Parameters from the query string (a flow's own, e.g. CallpulseOutcome)
    // count as much as those in the body: Twilio signs both.
    let query = path_and_query.split_once('?').map(|(_, q)| q).unwrap_or("");
    let result = match (
        serde_urlencoded::from_str::<Vec<(String, String)>>(query),
        serde_urlencoded::from_str::<Vec<(String, String)>>(&body),
    ) {
        (Ok(mut params), Ok(body_params)) => {
            params.extend(body_params);
            crate::vendors::twilio::adapt_params(&params, &ctx)
        }
        _ => Err(AdaptError::malformed(
            "form data",
            "not application/x-www-form-urlencoded",
        )),
    };
    publish_results(&state, vendor, vec![(body, result)], received_at).await
}

/// Vendors whose records are JSON: an object, an array of objects, JSON
/// lines, or (Amazon Connect) a Kinesis Data Firehose delivery.
async fn json_records(state: &IngestState, vendor: Vendor, request: Request) -> Response {
    let (headers, body) = match authorised_body(state, vendor, request).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    if vendor == Vendor::AmazonConnect {
        if let Some(request_id) = headers
            .get("x-amz-firehose-request-id")
            .and_then(|v| v.to_str().ok())
        {
            return firehose(state, request_id.to_string(), &body).await;
        }
    }
    match split_json_records(&body) {
        Ok(records) => ingest(state, vendor, records).await,
        Err(err) => reject_body(state, vendor, &body, err).await,
    }
}

/// Amazon Kinesis Data Firehose's HTTP endpoint delivery: the answer is
/// Firehose's own JSON shape, and any failure makes Firehose retry the
/// whole delivery (rejections are dead-lettered, not retried).
async fn firehose(state: &IngestState, request_id: String, body: &str) -> Response {
    use crate::vendors::amazon_connect::{firehose_response, records_from_firehose};
    let vendor = Vendor::AmazonConnect;
    let received_at = now();
    let records = match records_from_firehose(body) {
        Ok(records) => records,
        Err(err) => {
            let response = reject_body(state, vendor, body, err).await;
            if response.status() == StatusCode::SERVICE_UNAVAILABLE {
                return response;
            }
            let text = firehose_response(&request_id, received_at.millis(), None);
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                text,
            )
                .into_response();
        }
    };
    let response = ingest(state, vendor, records).await;
    let status = response.status();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let text = firehose_response(
            &request_id,
            received_at.millis(),
            Some("Kafka did not acknowledge; retry"),
        );
        return (status, [(header::CONTENT_TYPE, "application/json")], text).into_response();
    }
    // Accepted, or rejected into the dead-letter topic: either way Firehose must not resend.
    let text = firehose_response(&request_id, received_at.millis(), None);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response()
}

async fn ingest(state: &IngestState, vendor: Vendor, records: Vec<String>) -> Response {
    let received_at = now();
    let ctx = AdaptContext {
        mapping: &state.mapping,
        pseudonymiser: &state.pseudonymiser,
        received_at: Some(received_at),
    };
    let results = records
        .into_iter()
        .map(|record| {
            let result = vendor.adapt_record(&record, &ctx);
            (record, result)
        })
        .collect();
    publish_results(state, vendor, results, received_at).await
}

/// Who sent a request, for its record budget: the vendor's route (one
/// credential each), and for Twilio the account, which signs its own.
fn sender(vendor: Vendor, results: &[(String, crate::Adapted)]) -> String {
    if vendor == Vendor::Twilio {
        let account = results.first().and_then(|(body, _)| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(body)
                .ok()?
                .into_iter()
                .find_map(|(name, value)| (name == "AccountSid").then_some(value))
        });
        if let Some(account) = account {
            return format!("twilio:{account}");
        }
    }
    vendor.name().to_string()
}

/// Publishes what the records gave and answers for the whole request.
async fn publish_results(
    state: &IngestState,
    vendor: Vendor,
    results: Vec<(String, Result<Vec<CallEvent>, AdaptError>)>,
    received_at: Timestamp,
) -> Response {
    let records = results.len();
    if let Err(wait_s) = state
        .throttle
        .take(&sender(vendor, &results), records, received_at.0)
    {
        state.metrics.inc(
            "callpulse_adapter_throttled_total",
            "Requests refused (429) because their sender exceeded its records per second.",
            &[("vendor", vendor.name())],
        );
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_records",
            &format!(
                "this sender is over adapters.sender_records_per_second; nothing was accepted, retry in {wait_s} s"
            ),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait_s));
        return response;
    }
    let mut events = Vec::new();
    let mut rejections = Vec::new();
    let mut rejected_json = Vec::new();
    for (position, (record, result)) in results.into_iter().enumerate() {
        let result = result.and_then(|adapted| {
            state.time_bounds.check(&adapted, received_at)?;
            Ok(adapted)
        });
        match result {
            Ok(mut adapted) => events.append(&mut adapted),
            Err(err) => {
                let position = position as u64 + 1;
                rejected_json.push(json!({
                    "index": position,
                    "code": err.code(),
                    "field": err.field_name(),
                    "error": err.to_string(),
                }));
                rejections.push(Rejection::new(
                    vendor,
                    "http",
                    Some(position),
                    &err,
                    &record,
                    received_at,
                ));
            }
        }
    }
    if let Err(err) = state.publisher.publish(&events, &rejections).await {
        return unavailable(state, vendor, err);
    }
    let accepted = records - rejections.len();
    count(state, vendor, accepted, events.len(), &rejections);
    let status = if rejections.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut body = json!({ "accepted": accepted, "events": events.len() });
    if !rejected_json.is_empty() {
        body["rejected"] = serde_json::Value::Array(rejected_json);
    }
    (status, Json(body)).into_response()
}

/// A body that is not records at all: dead-lettered whole (numbers masked), 400.
async fn reject_body(state: &IngestState, vendor: Vendor, body: &str, err: AdaptError) -> Response {
    let rejection = Rejection::new(vendor, "http", None, &err, body, now());
    if let Err(publish_err) = state
        .publisher
        .publish(&[], std::slice::from_ref(&rejection))
        .await
    {
        return unavailable(state, vendor, publish_err);
    }
    count(state, vendor, 0, 0, std::slice::from_ref(&rejection));
    error(StatusCode::BAD_REQUEST, err.code(), &err.to_string())
}

fn count(
    state: &IngestState,
    vendor: Vendor,
    accepted: usize,
    events: usize,
    rejections: &[Rejection],
) {
    let metrics = &state.metrics;
    let v = vendor.name();
    metrics.add(
        "callpulse_adapter_records_total",
        "Vendor records received, by result.",
        &[("vendor", v), ("result", "accepted")],
        accepted as u64,
    );
    metrics.add(
        "callpulse_adapter_events_total",
        "Canonical events published to Kafka.",
        &[("vendor", v)],
        events as u64,
    );
    for rejection in rejections {
        metrics.inc(
            "callpulse_adapter_records_total",
            "Vendor records received, by result.",
            &[("vendor", v), ("result", "rejected")],
        );
        metrics.inc(
            "callpulse_adapter_rejected_total",
            "Records rejected and dead-lettered, by reason.",
            &[("vendor", v), ("code", &rejection.code)],
        );
    }
}

fn unavailable(state: &IngestState, vendor: Vendor, err: PublishError) -> Response {
    tracing::warn!(vendor = vendor.name(), error = %err, "answering 503: Kafka did not acknowledge");
    state.metrics.inc(
        "callpulse_adapter_unavailable_total",
        "Requests answered 503 because Kafka did not acknowledge.",
        &[("vendor", vendor.name())],
    );
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        &format!("{err}; nothing from this request was accepted, send it again"),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}

async fn authorised_body(
    state: &IngestState,
    vendor: Vendor,
    request: Request,
) -> Result<(HeaderMap, String), Response> {
    let (parts, body) = request.into_parts();
    if let Some(token) = &state.ingest_token {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let firehose_key = parts
            .headers
            .get("x-amz-firehose-access-key")
            .and_then(|v| v.to_str().ok());
        let presented = bearer.or(firehose_key);
        if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes())) {
            state.metrics.inc(
                "callpulse_adapter_unauthorised_total",
                "Requests refused for a missing or wrong credential or signature.",
                &[("vendor", vendor.name())],
            );
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "unauthorised",
                "missing or wrong bearer token",
            ));
        }
    }
    let body = read_body(state, vendor, body).await?;
    Ok((parts.headers, body))
}

/// The body as UTF-8 within the size and time limits; otherwise an
/// answer, a count and a dead letter (of the reason only: a partial body is
/// not kept).
async fn read_body(state: &IngestState, vendor: Vendor, body: Body) -> Result<String, Response> {
    let limit = state.max_body_bytes;
    let read = tokio::time::timeout(state.body_read_timeout, axum::body::to_bytes(body, limit));
    let (err, status, message) = match read.await {
        Ok(Ok(bytes)) => return utf8_body(state, vendor, bytes).await,
        Ok(Err(_)) => (
            AdaptError::TooLarge {
                size: limit + 1,
                limit,
            },
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {limit} bytes"),
        ),
        Err(_) => {
            let limit_ms = state.body_read_timeout.as_millis() as u64;
            (
                AdaptError::BodyTimeout { limit_ms },
                StatusCode::REQUEST_TIMEOUT,
                format!("the body did not arrive within {limit_ms} ms"),
            )
        }
    };
    let rejection = Rejection::new(vendor, "http", None, &err, "", now());
    if let Err(publish_err) = state
        .publisher
        .publish(&[], std::slice::from_ref(&rejection))
        .await
    {
        return Err(unavailable(state, vendor, publish_err));
    }
    count(state, vendor, 0, 0, std::slice::from_ref(&rejection));
    Err(error(status, err.code(), &message))
}

async fn utf8_body(state: &IngestState, vendor: Vendor, bytes: Bytes) -> Result<String, Response> {
    match String::from_utf8(bytes.to_vec()) {
        Ok(text) => Ok(text),
        Err(utf8) => {
            let err = AdaptError::malformed(
                "UTF-8",
                format!("invalid byte at {}", utf8.utf8_error().valid_up_to()),
            );
            let lossy = String::from_utf8_lossy(utf8.as_bytes()).into_owned();
            Err(reject_body(state, vendor, &lossy, err).await)
        }
    }
}

/// One JSON object, an array of objects, or objects one after another
/// (JSON lines): each as its own record text.
pub fn split_json_records(body: &str) -> Result<Vec<String>, AdaptError> {
    let trimmed = body.trim_start();
    if trimmed.starts_with('[') {
        let items: Vec<&RawValue> =
            serde_json::from_str(trimmed).map_err(|err| AdaptError::malformed("JSON", err))?;
        return Ok(items.into_iter().map(|raw| raw.get().to_string()).collect());
    }
    let mut records = Vec::new();
    for item in serde_json::Deserializer::from_str(trimmed).into_iter::<&RawValue>() {
        match item {
            Ok(raw) => records.push(raw.get().to_string()),
            // JSON lines with a bad line: each line is its own record, so
            // one bad line is rejected on its own and the rest go through.
            Err(_) if trimmed.trim_end().contains('\n') => {
                return Ok(trimmed
                    .lines()
                    .filter(|line| !line.trim().is_empty())
                    .map(str::to_string)
                    .collect());
            }
            Err(err) => return Err(AdaptError::malformed("JSON", err)),
        }
    }
    if records.is_empty() {
        return Err(AdaptError::malformed("JSON", "the body holds no records"));
    }
    Ok(records)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": message, "code": code }))).into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_split_into_records() {
        assert_eq!(
            split_json_records(r#"{"a":1}"#).unwrap(),
            vec![r#"{"a":1}"#]
        );
        assert_eq!(
            split_json_records(r#" [{"a":1}, {"b":[2]}]"#).unwrap(),
            vec![r#"{"a":1}"#, r#"{"b":[2]}"#]
        );
        assert_eq!(
            split_json_records("{\"a\":1}\n{\"b\":2}\n").unwrap().len(),
            2
        );
        // A bad line among JSON lines is one bad record, not a bad body.
        assert_eq!(
            split_json_records("{\"a\":1}\n{oops\n{\"b\":2}").unwrap(),
            vec!["{\"a\":1}", "{oops", "{\"b\":2}"]
        );
        for bad in ["", "   ", "{", "[1,", "{\"a\":1} nope", "{\n"] {
            assert!(
                matches!(split_json_records(bad), Err(AdaptError::Malformed { .. })),
                "{bad:?}"
            );
        }
    }
}
