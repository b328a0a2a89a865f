//! What every callpulse service shell shares: configuration, Kafka clients,
//! topics and shutdown.

pub mod avro;
pub mod config;
pub mod kafka;
pub mod metrics;
pub mod ops;

pub use config::Config;

/// The wall clock as a timestamp: when a record arrived or was rejected.
/// (The core never reads the clock; services pass it in.)
pub fn wall_clock() -> callpulse_core::Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    callpulse_core::Timestamp::from_millis(since_epoch.as_millis() as i64)
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
