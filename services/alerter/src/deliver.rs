//! Sending one message to one recipient, with retries: the I/O of the
//! channels (HTTP for Teams, Slack and webhooks; SMTP for email).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use callpulse_runtime::config::AlerterConfig;

use crate::contacts::{ChannelKind, Contacts, Recipient};
use crate::email::{self, SmtpSettings};
use crate::policy::{classify_http, seed_of, RetryPolicy, Verdict};
use crate::render::Rendered;
use crate::signature;

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    pub verdict: Verdict,
    /// The HTTP status; 0 for email or when no response came.
    pub http_status: u16,
    /// The start of the HTTP response body, or the SMTP server's reply.
    pub reply: String,
    /// What went wrong; empty when delivered.
    pub error: String,
    /// Wall-clock time of the attempt's start, milliseconds since the epoch.
    pub at_ms: i64,
    pub duration_ms: u32,
}

/// The channels' clients and secrets.
#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    smtp: SmtpSettings,
    /// Webhook recipient id -> HMAC secret.
    secrets: HashMap<String, Vec<u8>>,
}

/// How long the start of a response body kept in the deliveries table may be.
const REPLY_CHARS: usize = 300;

impl Sender {
    /// Builds the clients and resolves every webhook recipient's secret:
    /// a webhook without one is an error at start-up, not an unsigned request.
    pub fn new(config: &AlerterConfig, contacts: &Contacts) -> Result<Sender> {
        Sender::with_env(config, contacts, |name| std::env::var(name).ok())
    }

    pub fn with_env(
        config: &AlerterConfig,
        contacts: &Contacts,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Sender> {
        let timeout = Duration::from_millis(config.request_timeout_ms);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("callpulse-alerter/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("creating the HTTP client")?;
        let mut secrets = HashMap::new();
        for recipient in contacts.recipients.values() {
            if recipient.channel != ChannelKind::Webhook {
                continue;
            }
            let secret = match &recipient.secret_env {
                Some(name) => env(name).unwrap_or_default(),
                None => config.hmac_secret.clone(),
            };
            if secret.len() < 16 {
                bail!(
                    "webhook recipient `{}`: no HMAC secret of at least 16 bytes; set {}",
                    recipient.id,
                    recipient
                        .secret_env
                        .as_deref()
                        .unwrap_or("CALLPULSE__ALERTER__HMAC_SECRET")
                );
            }
            secrets.insert(recipient.id.clone(), secret.into_bytes());
        }
        Ok(Sender {
            http,
            smtp: SmtpSettings {
                server: config.smtp_server.clone(),
                from: config.smtp_from.clone(),
                helo: config.smtp_helo.clone(),
                timeout,
            },
            secrets,
        })
    }

    /// One attempt to deliver `message` to `recipient`.
    pub async fn attempt(&self, recipient: &Recipient, message: &Rendered, number: u32) -> Attempt {
        let at_ms = chrono::Utc::now().timestamp_millis();
        let started = Instant::now();
        let (verdict, http_status, reply, error) = match recipient.channel {
            ChannelKind::Email => {
                let text = email::compose(
                    &self.smtp.from,
                    &recipient.to,
                    &message.title,
                    &message.text,
                    &message.key,
                    &recipient.id,
                    chrono::Utc::now(),
                );
                match email::send(&self.smtp, &recipient.to, &text).await {
                    Ok(reply) => (Verdict::Delivered, 0, reply, String::new()),
                    Err(failure) => (failure.verdict, 0, failure.reply, failure.error),
                }
            }
            _ => self.post(recipient, message).await,
        };
        Attempt {
            number,
            verdict,
            http_status,
            reply,
            error,
            at_ms,
            duration_ms: started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32,
        }
    }

    async fn post(
        &self,
        recipient: &Recipient,
        message: &Rendered,
    ) -> (Verdict, u16, String, String) {
        let body = serde_json::to_vec(&message.json).expect("JSON values serialise");
        let mut request = self
            .http
            .post(&recipient.url)
            .header("content-type", "application/json")
            .header("idempotency-key", &message.key);
        if let Some(secret) = self.secrets.get(&recipient.id) {
            request = request.header(signature::HEADER, signature::sign(secret, &body));
        }
        match request.body(body).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                let reply: String = text.chars().take(REPLY_CHARS).collect();
                let verdict = classify_http(status);
                let error = match verdict {
                    Verdict::Delivered => String::new(),
                    _ => format!("HTTP {status}"),
                };
                (verdict, status, reply, error)
            }
            // The URL is a secret of sorts (Teams and Slack URLs carry their
            // token): keep it out of the error.
            Err(err) => (
                Verdict::Retry,
                0,
                String::new(),
                format!("{:#}", anyhow::Error::from(err.without_url())),
            ),
        }
    }
}

/// Attempts until delivered, refused for good, or `policy.max_attempts`
/// are spent, waiting the policy's backoff in between. `on_attempt` sees
/// every attempt as it ends (to record it). Returns the last attempt.
pub async fn deliver(
    sender: &Sender,
    recipient: &Recipient,
    message: &Rendered,
    policy: RetryPolicy,
    mut on_attempt: impl FnMut(&Attempt, bool),
) -> Attempt {
    let seed = seed_of(&message.key) ^ seed_of(&recipient.id);
    let mut number = 1;
    loop {
        let attempt = sender.attempt(recipient, message, number).await;
        let last = attempt.verdict != Verdict::Retry || number >= policy.max_attempts.max(1);
        on_attempt(&attempt, last);
        if last {
            return attempt;
        }
        tokio::time::sleep(Duration::from_millis(policy.delay_ms(number, seed))).await;
        number += 1;
    }
}
