//! Serving the ingest: plain HTTP or HTTPS (rustls), with a limit on slow
//! clients. A connection must finish its TLS handshake and send each
//! request's headers within `header_read_timeout`, or it is closed: a
//! flood of idle or trickling connections then costs a socket for seconds,
//! not for ever. (Body size is limited by `max_body_bytes` in `http.rs`.)

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("adapters.tls_cert_file `{path}`: {reason}")]
    Certificate { path: String, reason: String },
    #[error("adapters.tls_key_file `{path}`: {reason}")]
    Key { path: String, reason: String },
    #[error("adapters.tls_cert_file and adapters.tls_key_file must be set together")]
    Half,
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The TLS acceptor of `cert` and `key` (PEM files); `None` when neither is
/// set (plain HTTP).
pub fn tls_acceptor(cert: &str, key: &str) -> Result<Option<TlsAcceptor>, TlsError> {
    match (cert.trim(), key.trim()) {
        ("", "") => Ok(None),
        ("", _) | (_, "") => Err(TlsError::Half),
        (cert, key) => {
            let chain = CertificateDer::pem_file_iter(Path::new(cert))
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|err| TlsError::Certificate {
                    path: cert.to_string(),
                    reason: err.to_string(),
                })?;
            if chain.is_empty() {
                return Err(TlsError::Certificate {
                    path: cert.to_string(),
                    reason: "no certificate in the file".into(),
                });
            }
            // The key's own error text is safe: it never quotes key material.
            let private_key =
                PrivateKeyDer::from_pem_file(Path::new(key)).map_err(|err| TlsError::Key {
                    path: key.to_string(),
                    reason: err.to_string(),
                })?;
            let config = ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, private_key)?;
            Ok(Some(TlsAcceptor::from(Arc::new(config))))
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops
/// accepting and lets open connections finish their requests (at most
/// 10 s).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    header_read_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(header_read_timeout));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(%err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => {
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    let _ = watcher.watch(connection.into_owned()).await;
                }
                Some(acceptor) => {
                    match tokio::time::timeout(header_read_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let connection = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service);
                            let _ = watcher.watch(connection.into_owned()).await;
                        }
                        Ok(Err(err)) => tracing::debug!(%err, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake too slow: connection closed"),
                    }
                }
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("connections still open 10 s after shutdown began: closing them");
        }
    }
}
