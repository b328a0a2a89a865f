//! Versioned ClickHouse DDL (`schemas/clickhouse/*.sql`), applied in order.
//! Every statement is idempotent (`IF NOT EXISTS`), so applying twice is harmless.

use anyhow::{Context, Result};
use callpulse_runtime::Config;

/// The migrations, in order, compiled in.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "001_window_metrics.sql",
        include_str!("../../../schemas/clickhouse/001_window_metrics.sql"),
    ),
    (
        "002_organisations.sql",
        include_str!("../../../schemas/clickhouse/002_organisations.sql"),
    ),
    (
        "003_rollups.sql",
        include_str!("../../../schemas/clickhouse/003_rollups.sql"),
    ),
    (
        "004_alert_deliveries.sql",
        include_str!("../../../schemas/clickhouse/004_alert_deliveries.sql"),
    ),
    (
        "005_calls_alerts.sql",
        include_str!("../../../schemas/clickhouse/005_calls_alerts.sql"),
    ),
];

pub async fn apply(config: &Config) -> Result<()> {
    let server = crate::clickhouse_server(config);
    let database = &config.clickhouse.database;
    anyhow::ensure!(
        database
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "database name `{database}` must be letters, digits and underscores"
    );
    server
        .query(&format!("CREATE DATABASE IF NOT EXISTS {database}"))
        .execute()
        .await
        .with_context(|| format!("creating database {database} at {}", config.clickhouse.url))?;
    let client = crate::clickhouse_client(config);
    for (name, sql) in MIGRATIONS {
        for statement in statements(sql) {
            client
                .query(&statement)
                .execute()
                .await
                .with_context(|| format!("applying {name}"))?;
        }
    }
    Ok(())
}

/// Splits a file into statements, dropping `--` comments.
pub fn statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|statement| !statement.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_file_is_a_migration_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/clickhouse");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            // Subfolders (e.g. icb/) hold templates applied elsewhere.
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|(name, _)| name.to_string())
            .collect();
        assert_eq!(listed, files);
    }
}
