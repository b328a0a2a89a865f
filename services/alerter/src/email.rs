//! Email: composing the message (pure) and a minimal SMTP client (RFC 5321:
//! EHLO, MAIL FROM, RCPT TO, DATA, QUIT) over a plain TCP connection.
//!
//! No TLS and no authentication: point `alerter.smtp_server` at a relay on
//! the same host or a trusted network (e.g. Postfix on 127.0.0.1:25, or an
//! NHSmail/Exchange connector through a local relay) that forwards with
//! STARTTLS. See docs/alerts.md.

use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::policy::{classify_smtp, Verdict};

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// host:port
    pub server: String,
    pub from: String,
    pub helo: String,
    pub timeout: Duration,
}

/// A failed SMTP session: what went wrong and whether to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpFailure {
    pub verdict: Verdict,
    /// The server's last reply, e.g. `451 4.3.0 try later`; empty if none.
    pub reply: String,
    pub error: String,
}

/// Encodes a header value (RFC 2047) when it is not plain ASCII.
fn header_value(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.is_ascii() {
        clean
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(clean.as_bytes())
        )
    }
}

/// The whole message (headers and body, CRLF line ends, not dot-stuffed).
/// The Message-ID derives from the idempotency key and the recipient, so a
/// retried or re-sent message is recognisably the same one.
pub fn compose(
    from: &str,
    to: &[String],
    subject: &str,
    text: &str,
    key: &str,
    recipient: &str,
    date: chrono::DateTime<chrono::Utc>,
) -> String {
    let digest = hex::encode(Sha256::digest(format!("{key}\n{recipient}").as_bytes()));
    let domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or("callpulse");
    let body = base64::engine::general_purpose::STANDARD.encode(text.replace('\n', "\r\n"));
    let mut out = String::new();
    out.push_str(&format!("From: callpulse <{from}>\r\n"));
    out.push_str(&format!("To: {}\r\n", to.join(", ")));
    out.push_str(&format!("Subject: {}\r\n", header_value(subject)));
    out.push_str(&format!("Date: {}\r\n", date.to_rfc2822()));
    out.push_str(&format!("Message-ID: <{}@{domain}>\r\n", &digest[..32]));
    out.push_str(&format!(
        "X-Callpulse-Idempotency-Key: {}\r\n",
        header_value(key)
    ));
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    out.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
    for chunk in body.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push_str("\r\n");
    }
    out
}

/// Sends `message` to `to`; returns the server's reply to the message (e.g.
/// `250 2.0.0 Ok: queued as ...`).
pub async fn send(
    settings: &SmtpSettings,
    to: &[String],
    message: &str,
) -> Result<String, SmtpFailure> {
    match tokio::time::timeout(settings.timeout, session(settings, to, message)).await {
        Ok(result) => result,
        Err(_) => Err(SmtpFailure {
            verdict: Verdict::Retry,
            reply: String::new(),
            error: format!("SMTP session with {} timed out", settings.server),
        }),
    }
}

async fn session(
    settings: &SmtpSettings,
    to: &[String],
    message: &str,
) -> Result<String, SmtpFailure> {
    let io = |err: std::io::Error| SmtpFailure {
        verdict: Verdict::Retry,
        reply: String::new(),
        error: format!("SMTP {}: {err}", settings.server),
    };
    let stream = TcpStream::connect(&settings.server).await.map_err(io)?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    expect(&mut read, "greeting").await?;
    command(
        &mut write,
        &mut read,
        &format!("EHLO {}", settings.helo),
        "EHLO",
    )
    .await?;
    command(
        &mut write,
        &mut read,
        &format!("MAIL FROM:<{}>", settings.from),
        "MAIL FROM",
    )
    .await?;
    for address in to {
        command(
            &mut write,
            &mut read,
            &format!("RCPT TO:<{address}>"),
            "RCPT TO",
        )
        .await?;
    }
    command(&mut write, &mut read, "DATA", "DATA").await?;
    let mut data = String::with_capacity(message.len() + 16);
    for line in message.split("\r\n") {
        if line.starts_with('.') {
            data.push('.');
        }
        data.push_str(line);
        data.push_str("\r\n");
    }
    // `message` ends with CRLF, so the split left an empty last line.
    if data.ends_with("\r\n\r\n") {
        data.truncate(data.len() - 2);
    }
    data.push_str(".\r\n");
    write.write_all(data.as_bytes()).await.map_err(io)?;
    let reply = expect(&mut read, "message").await?;
    // The message is accepted; a failing QUIT changes nothing.
    let _ = write.write_all(b"QUIT\r\n").await;
    let _ = read_reply(&mut read).await;
    Ok(reply)
}

async fn command(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &str,
    step: &str,
) -> Result<String, SmtpFailure> {
    write
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .map_err(|err| SmtpFailure {
            verdict: Verdict::Retry,
            reply: String::new(),
            error: format!("SMTP {step}: {err}"),
        })?;
    expect(read, step).await
}

/// Reads one reply and fails unless it is 2xx or 3xx.
async fn expect(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    step: &str,
) -> Result<String, SmtpFailure> {
    let (code, reply) = read_reply(read).await.map_err(|err| SmtpFailure {
        verdict: Verdict::Retry,
        reply: String::new(),
        error: format!("SMTP {step}: {err}"),
    })?;
    match classify_smtp(code) {
        Verdict::Delivered => Ok(reply),
        verdict => Err(SmtpFailure {
            verdict,
            error: format!("SMTP {step} refused"),
            reply,
        }),
    }
}

/// One reply, possibly of several lines (`250-...`, then `250 ...`).
async fn read_reply(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<(u16, String)> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let line = line.trim_end().to_string();
        let code = line
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("not an SMTP reply: {line}"),
                )
            })?;
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line);
        if last {
            return Ok((code, lines.join(" / ")));
        }
        if lines.len() > 100 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "reply too long",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composed_messages_are_ascii_with_a_stable_id() {
        let date = chrono::DateTime::from_timestamp(1_795_420_800, 0).unwrap();
        let to = vec!["cd@example.nhs.uk".to_string()];
        let text = "A81001 diverted 3 calls – since 08:00\n.leading dot";
        let one = compose(
            "callpulse@example.nhs.uk",
            &to,
            "111 diversion – A81001",
            text,
            "k:1",
            "cd",
            date,
        );
        assert!(one.is_ascii());
        assert!(one.contains("Subject: =?UTF-8?B?"));
        assert!(one.contains("Date: Mon, 23 Nov 2026 08:00:00 +0000\r\n"));
        assert!(one.ends_with("\r\n"));
        let again = compose("callpulse@example.nhs.uk", &to, "x", "y", "k:1", "cd", date);
        let id = |m: &str| {
            m.lines()
                .find(|l| l.starts_with("Message-ID:"))
                .unwrap()
                .to_string()
        };
        assert_eq!(id(&one), id(&again));
        assert_ne!(
            id(&one),
            id(&compose(
                "callpulse@example.nhs.uk",
                &to,
                "x",
                "y",
                "k:2",
                "cd",
                date
            ))
        );
        let body: String = one
            .split("\r\n\r\n")
            .nth(1)
            .unwrap()
            .split("\r\n")
            .collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            text.replace('\n', "\r\n")
        );
    }
}
