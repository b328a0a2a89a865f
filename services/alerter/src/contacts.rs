//! The contacts file: who receives alerts, and through which channel.
//! Pure: parsing and validation, no I/O (docs/alerts.md has the format).
//!
//! ```toml
//! [recipients.penbury-cd]
//! name = "Dr A. Example, clinical director, Penbury PCN"
//! channel = "teams"            # teams | slack | webhook | email
//! url = "https://example.webhook.office.com/..."
//!
//! [recipients.qhm-primary-care]
//! channel = "email"
//! to = ["qhm.primarycare@example.nhs.uk"]
//!
//! [pcn]                        # PCN code -> clinical director recipients
//! U10030 = ["penbury-cd"]
//!
//! [icb]                        # ICB code -> primary care team recipients
//! QHM = ["qhm-primary-care"]
//!
//! operators = ["ops-slack"]    # feed problems; fallback when nobody else is found
//!
//! [audiences]                  # optional: alert kind -> audiences
//! diversion_111 = ["pcn", "icb"]
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use thiserror::Error;

/// How a recipient is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Microsoft Teams: an incoming webhook or a Workflows "post to a
    /// channel when a webhook request is received" URL (Adaptive Card).
    Teams,
    /// A Slack-compatible incoming webhook (`{"text": ...}`).
    Slack,
    /// A generic JSON webhook, signed with HMAC-SHA256.
    Webhook,
    /// Email over SMTP.
    Email,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Teams => "teams",
            ChannelKind::Slack => "slack",
            ChannelKind::Webhook => "webhook",
            ChannelKind::Email => "email",
        }
    }

    /// Channels read by people get several alerts in one message; machines
    /// get one request per alert state, with its own idempotency key.
    pub fn groups(self) -> bool {
        !matches!(self, ChannelKind::Webhook)
    }
}

/// One recipient: a person, a team or a system, on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The key in `[recipients]`: stable, used in the deliveries table and
    /// for the rate limit.
    pub id: String,
    pub name: String,
    pub channel: ChannelKind,
    /// Teams, Slack, webhook.
    pub url: String,
    /// Email addresses.
    pub to: Vec<String>,
    /// Webhook: the environment variable holding this recipient's HMAC
    /// secret; `None`: the configured `alerter.hmac_secret`.
    pub secret_env: Option<String>,
}

/// Who is told about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The clinical directors of the practice's PCN.
    Pcn,
    /// The primary care team of the practice's ICB.
    Icb,
    /// The people who run callpulse.
    Operators,
}

/// A parsed, validated contacts file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contacts {
    pub recipients: BTreeMap<String, Recipient>,
    pub pcn: BTreeMap<String, Vec<String>>,
    pub icb: BTreeMap<String, Vec<String>>,
    pub operators: Vec<String>,
    /// Alert kind (as in the alert's `kind` field) -> audiences; kinds not
    /// listed use [`default_audiences`].
    pub audiences: BTreeMap<String, Vec<Audience>>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ContactsError {
    #[error("contacts file: {0}")]
    Toml(String),
    #[error("contacts file: recipient `{id}`: {problem}")]
    Recipient { id: String, problem: String },
    #[error(
        "contacts file: {table} `{code}` names recipient `{id}`, which is not in [recipients]"
    )]
    UnknownRecipient {
        table: &'static str,
        code: String,
        id: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContacts {
    #[serde(default)]
    recipients: BTreeMap<String, RawRecipient>,
    #[serde(default)]
    pcn: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    icb: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    operators: Vec<String>,
    #[serde(default)]
    audiences: BTreeMap<String, Vec<Audience>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipient {
    name: Option<String>,
    channel: ChannelKind,
    url: Option<String>,
    #[serde(default)]
    to: Vec<String>,
    secret_env: Option<String>,
}

/// The audiences of an alert kind not listed in `[audiences]`: data
/// problems (`feed_silence`, and any kind whose name starts with `feed_`)
/// go to the operators only; everything else is clinical and goes to the
/// practice's PCN and ICB.
pub fn default_audiences(kind: &str) -> Vec<Audience> {
    if kind.starts_with("feed_") {
        vec![Audience::Operators]
    } else {
        vec![Audience::Pcn, Audience::Icb]
    }
}

impl Contacts {
    /// Parses and checks a contacts file: every recipient has what its
    /// channel needs, and every routing entry names a known recipient.
    pub fn parse(text: &str) -> Result<Contacts, ContactsError> {
        let raw: RawContacts = toml::from_str(text).map_err(|err| {
            // Webhook URLs carry their own token: no excerpt of the file.
            ContactsError::Toml(callpulse_runtime::config::toml_problem(text, &err))
        })?;
        let mut recipients = BTreeMap::new();
        for (id, r) in raw.recipients {
            let problem = |problem: &str| ContactsError::Recipient {
                id: id.clone(),
                problem: problem.to_string(),
            };
            let url = r.url.unwrap_or_default();
            match r.channel {
                ChannelKind::Email => {
                    if r.to.is_empty() {
                        return Err(problem(
                            "an email recipient needs `to` (a list of addresses)",
                        ));
                    }
                    if let Some(bad) = r.to.iter().find(|a| !is_plausible_address(a)) {
                        return Err(problem(&format!("`{bad}` is not an email address")));
                    }
                    if !url.is_empty() {
                        return Err(problem("an email recipient has no `url`"));
                    }
                }
                _ => {
                    if !(url.starts_with("https://") || url.starts_with("http://")) {
                        return Err(problem("needs `url`, an http(s) URL"));
                    }
                    if !r.to.is_empty() {
                        return Err(problem("`to` is for email recipients only"));
                    }
                }
            }
            if r.secret_env.is_some() && r.channel != ChannelKind::Webhook {
                return Err(problem("`secret_env` is for webhook recipients only"));
            }
            recipients.insert(
                id.clone(),
                Recipient {
                    name: r.name.unwrap_or_else(|| id.clone()),
                    id,
                    channel: r.channel,
                    url,
                    to: r.to,
                    secret_env: r.secret_env,
                },
            );
        }
        let check = |table: &'static str, code: &str, ids: &[String]| {
            for id in ids {
                if !recipients.contains_key(id) {
                    return Err(ContactsError::UnknownRecipient {
                        table,
                        code: code.to_string(),
                        id: id.clone(),
                    });
                }
            }
            Ok(())
        };
        let upper = |table: BTreeMap<String, Vec<String>>| -> BTreeMap<String, Vec<String>> {
            table
                .into_iter()
                .map(|(code, ids)| (code.to_ascii_uppercase(), ids))
                .collect()
        };
        let pcn = upper(raw.pcn);
        let icb = upper(raw.icb);
        for (code, ids) in &pcn {
            check("pcn", code, ids)?;
        }
        for (code, ids) in &icb {
            check("icb", code, ids)?;
        }
        check("operators", "", &raw.operators)?;
        Ok(Contacts {
            recipients,
            pcn,
            icb,
            operators: raw.operators,
            audiences: raw.audiences,
        })
    }

    /// The audiences of an alert kind.
    pub fn audiences_of(&self, kind: &str) -> Vec<Audience> {
        self.audiences
            .get(kind)
            .cloned()
            .unwrap_or_else(|| default_audiences(kind))
    }
}

fn is_plausible_address(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !address
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b == b'<' || b == b'>' || b.is_ascii_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../../deploy/alerts/contacts.example.toml");

    /// Found by tests/fuzz_parsers.rs: with a line break lost, a webhook
    /// URL (and its token) became the channel, and toml's error quoted it
    /// twice, in its excerpt of the file and in the message.
    #[test]
    fn errors_never_quote_a_webhook_url() {
        let text = "[recipients.a]\nchannel = \"https://hooks.slack.com/services/T0/B0/sEcReT\"\n";
        let err = Contacts::parse(text).unwrap_err().to_string();
        assert!(
            err.starts_with("contacts file: line 2, column 11: unknown variant"),
            "{err}"
        );
        assert!(!err.contains("sEcReT"), "{err}");
    }

    #[test]
    fn the_example_file_parses() {
        let contacts = Contacts::parse(SAMPLE).unwrap();
        assert!(contacts.pcn.contains_key("U10030"));
        assert!(!contacts.operators.is_empty());
        for recipient in contacts.recipients.values() {
            assert!(!recipient.name.is_empty());
        }
    }

    #[test]
    fn recipients_need_what_their_channel_needs() {
        let bad = [
            "[recipients.a]\nchannel = \"email\"\n",
            "[recipients.a]\nchannel = \"email\"\nto = [\"not an address\"]\n",
            "[recipients.a]\nchannel = \"teams\"\n",
            "[recipients.a]\nchannel = \"slack\"\nurl = \"ftp://x\"\n",
            "[recipients.a]\nchannel = \"slack\"\nurl = \"https://x\"\nsecret_env = \"S\"\n",
            "[recipients.a]\nchannel = \"pager\"\nurl = \"https://x\"\n",
            "[recipients.a]\nchannel = \"slack\"\nurl = \"https://x\"\ncolour = \"red\"\n",
            "[pcn]\nU1 = [\"nobody\"]\n",
            "operators = [\"nobody\"]\n",
        ];
        for text in bad {
            assert!(Contacts::parse(text).is_err(), "{text}");
        }
        let good = Contacts::parse(
            "[recipients.a]\nchannel = \"webhook\"\nurl = \"https://x\"\nsecret_env = \"S\"\n[pcn]\nu1 = [\"a\"]\n",
        )
        .unwrap();
        assert_eq!(good.pcn["U1"], ["a"], "codes are upper-cased");
        assert_eq!(
            good.recipients["a"].name, "a",
            "the id names an unnamed recipient"
        );
    }

    #[test]
    fn audiences_by_kind() {
        let contacts = Contacts::parse("[audiences]\ndiversion_111 = [\"icb\"]\n").unwrap();
        assert_eq!(contacts.audiences_of("diversion_111"), [Audience::Icb]);
        assert_eq!(
            contacts.audiences_of("threshold_abandoned"),
            [Audience::Pcn, Audience::Icb]
        );
        assert_eq!(contacts.audiences_of("feed_silence"), [Audience::Operators]);
    }
}
