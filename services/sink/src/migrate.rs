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

/// Applies the schema on the server `clickhouse.url` names: what the
/// services do at start. With `clickhouse.cluster` set, the tables get the
/// Replicated engines (see [`replicated`]) but the DDL stays on this server,
/// so a service starts while another replica is down; `callpulse migrate`
/// ([`apply_to_cluster`]) is what creates the schema on every replica.
pub async fn apply(config: &Config) -> Result<()> {
    apply_files(
        config,
        &config.clickhouse.database,
        &migrations(),
        Scope::Server,
    )
    .await
}

/// `callpulse migrate`: as [`apply`], and with `clickhouse.cluster` set,
/// every CREATE runs `ON CLUSTER`: one run creates the schema on every
/// replica (and waits for them all).
pub async fn apply_to_cluster(config: &Config) -> Result<()> {
    apply_files(
        config,
        &config.clickhouse.database,
        &migrations(),
        Scope::Cluster,
    )
    .await
}

/// Where DDL runs when `clickhouse.cluster` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The server connected to only.
    Server,
    /// `ON CLUSTER`: every replica of the cluster.
    Cluster,
}

fn migrations() -> Vec<(&'static str, String)> {
    MIGRATIONS
        .iter()
        .map(|(name, sql)| (*name, sql.to_string()))
        .collect()
}

/// Creates `database` and applies the statements of `files` in it, in
/// order: as written without a cluster, rewritten by [`replicated`] with one.
pub(crate) async fn apply_files(
    config: &Config,
    database: &str,
    files: &[(&str, String)],
    scope: Scope,
) -> Result<()> {
    anyhow::ensure!(
        is_identifier(database),
        "database name `{database}` must be letters, digits and underscores"
    );
    let cluster = config.clickhouse.cluster.as_str();
    anyhow::ensure!(
        cluster.is_empty() || is_identifier(cluster),
        "cluster name `{cluster}` must be letters, digits and underscores"
    );
    let on_cluster = (scope == Scope::Cluster && !cluster.is_empty()).then_some(cluster);
    let server = crate::clickhouse_server(config);
    let create = match on_cluster {
        Some(cluster) => format!("CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster}"),
        None => format!("CREATE DATABASE IF NOT EXISTS {database}"),
    };
    server
        .query(&create)
        .execute()
        .await
        .with_context(|| format!("creating database {database} at {}", config.clickhouse.url))?;
    let target = (!cluster.is_empty()).then_some(Replicated {
        database,
        on_cluster,
    });
    let client = server.with_database(database);
    for (name, statement) in plan(files, target) {
        client
            .query(&statement)
            .execute()
            .await
            .with_context(|| format!("applying {name} in {database}"))?;
    }
    Ok(())
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The statements of `files`, in order, each with its file's name: as
/// written, or rewritten by [`replicated`] for a cluster.
pub fn plan<'a>(
    files: &[(&'a str, String)],
    cluster: Option<Replicated>,
) -> Vec<(&'a str, String)> {
    let statements: Vec<(&str, String)> = files
        .iter()
        .flat_map(|(name, sql)| statements(sql).into_iter().map(move |s| (*name, s)))
        .collect();
    let Some(target) = cluster else {
        return statements;
    };
    let objects: Vec<String> = statements
        .iter()
        .filter_map(|(_, statement)| created_object(statement))
        .collect();
    statements
        .into_iter()
        .map(|(name, statement)| (name, replicated(&statement, target, &objects)))
        .collect()
}

/// How [`replicated`] rewrites DDL for a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replicated<'a> {
    /// The database the statements are applied in.
    pub database: &'a str,
    /// `ON CLUSTER` this cluster; `None`: the server connected to only.
    pub on_cluster: Option<&'a str>,
}

/// One schema statement for a cluster of replicas. A CREATE of a table,
/// view or materialized view gets its name qualified with the database and,
/// with `on_cluster`, `ON CLUSTER`; an engine of the MergeTree family
/// becomes its Replicated form, `X(args)` ->
/// `ReplicatedX('/clickhouse/tables/{shard}/<database>/<table>', '{replica}', args)`
/// (`{shard}` and `{replica}` are the servers' macros); in the SELECT of a
/// view, a table after FROM or JOIN that is one of `objects` (those the
/// migrations create) is qualified with the database too, as a replica runs
/// ON CLUSTER DDL in its default database. Other statements (the ICB
/// feed's INSERTs) are left as they are: they run once, on one replica,
/// and replication copies their rows.
pub fn replicated(statement: &str, target: Replicated, objects: &[String]) -> String {
    let tokens = tokenize(statement);
    let mut code: Vec<usize> = (0..tokens.len())
        .filter(|&i| !tokens[i].trim().is_empty())
        .collect();
    code.push(tokens.len());
    let word = |k: usize| tokens.get(code[k]).map(String::as_str).unwrap_or("");
    let is = |k: usize, keyword: &str| word(k).eq_ignore_ascii_case(keyword);
    if !is(0, "CREATE") {
        return statement.to_string();
    }
    // Insertions before (or replacements of) tokens, by token index.
    let mut before: Vec<(usize, String)> = Vec::new();
    let mut replace: Vec<(usize, String)> = Vec::new();
    let database = target.database;
    let qualify = |k: usize, before: &mut Vec<(usize, String)>| {
        if word(k + 1) != "." {
            before.push((code[k], format!("{database}.")));
        }
    };
    let mut k = 1;
    let materialized = is(k, "MATERIALIZED");
    if materialized {
        k += 1;
    }
    if !(is(k, "TABLE") || is(k, "VIEW")) {
        return statement.to_string();
    }
    k += 1;
    if is(k, "IF") && is(k + 1, "NOT") && is(k + 2, "EXISTS") {
        k += 3;
    }
    let name_at = k;
    qualify(name_at, &mut before);
    let mut name = word(name_at).trim_matches('`').to_string();
    if word(k + 1) == "." {
        name = word(k + 2).trim_matches('`').to_string();
        k += 2;
    }
    if let Some(cluster) = target.on_cluster {
        before.push((code[k] + 1, format!(" ON CLUSTER {cluster}")));
    }
    k += 1;
    if materialized && is(k, "TO") {
        qualify(k + 1, &mut before);
    }
    let path = format!("'/clickhouse/tables/{{shard}}/{database}/{name}', '{{replica}}'");
    while k + 1 < code.len() {
        if (is(k, "FROM") || is(k, "JOIN")) && objects.iter().any(|o| o == word(k + 1)) {
            qualify(k + 1, &mut before);
        }
        if is(k, "ENGINE") && word(k + 1) == "=" {
            let engine = word(k + 2);
            if engine.ends_with("MergeTree") && !engine.starts_with("Replicated") {
                replace.push((code[k + 2], format!("Replicated{engine}")));
                if word(k + 3) == "(" {
                    let args = if word(k + 4) == ")" { "" } else { ", " };
                    before.push((code[k + 3] + 1, format!("{path}{args}")));
                } else {
                    before.push((code[k + 2] + 1, format!("({path})")));
                }
            }
        }
        k += 1;
    }
    let mut out = String::with_capacity(statement.len() + 128);
    for (i, token) in tokens.iter().enumerate() {
        for (_, text) in before.iter().filter(|(at, _)| *at == i) {
            out.push_str(text);
        }
        match replace.iter().find(|(at, _)| *at == i) {
            Some((_, text)) => out.push_str(text),
            None => out.push_str(token),
        }
    }
    out
}

/// The name a CREATE TABLE or VIEW statement creates, if it is one.
fn created_object(statement: &str) -> Option<String> {
    let tokens = tokenize(statement);
    let mut words = tokens
        .iter()
        .filter(|t| !t.trim().is_empty())
        .map(String::as_str);
    if !words.next()?.eq_ignore_ascii_case("CREATE") {
        return None;
    }
    let mut word = words.next()?;
    if word.eq_ignore_ascii_case("MATERIALIZED") {
        word = words.next()?;
    }
    if !(word.eq_ignore_ascii_case("TABLE") || word.eq_ignore_ascii_case("VIEW")) {
        return None;
    }
    let mut name = words.next()?;
    if name.eq_ignore_ascii_case("IF") {
        name = words.nth(2)?;
    }
    let mut rest = words.peekable();
    if rest.peek() == Some(&".") {
        // database.name: the name.
        name = rest.nth(1)?;
    }
    Some(name.trim_matches('`').to_string())
}

/// SQL as tokens whose concatenation is the input: words (letters, digits,
/// `_`), quoted names and strings, runs of white space, and single other
/// characters.
fn tokenize(sql: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        let mut token = String::from(c);
        let same_kind: fn(char) -> bool = if c.is_alphanumeric() || c == '_' {
            |c| c.is_alphanumeric() || c == '_'
        } else if c.is_whitespace() {
            char::is_whitespace
        } else {
            |_| false
        };
        if c == '`' || c == '\'' || c == '"' {
            // Up to the closing quote; a backslash escapes the next character.
            while let Some(next) = chars.next() {
                token.push(next);
                if next == '\\' {
                    token.extend(chars.next());
                } else if next == c {
                    break;
                }
            }
        } else {
            while let Some(&next) = chars.peek() {
                if !same_kind(next) {
                    break;
                }
                token.push(next);
                chars.next();
            }
        }
        tokens.push(token);
    }
    tokens
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

#[cfg(test)]
mod replicated_tests {
    use super::*;

    const ON_CLUSTER: Replicated = Replicated {
        database: "cp",
        on_cluster: Some("national"),
    };

    fn objects() -> Vec<String> {
        ["t", "u", "v"].map(String::from).to_vec()
    }

    #[test]
    fn a_replacing_table_gets_the_replicated_engine_a_database_and_on_cluster() {
        let sql = "CREATE TABLE IF NOT EXISTS t\n(\n    k String,\n    v UInt64\n)\n\
                   ENGINE = ReplacingMergeTree(v)\nORDER BY k";
        assert_eq!(
            replicated(sql, ON_CLUSTER, &objects()),
            "CREATE TABLE IF NOT EXISTS cp.t ON CLUSTER national\n(\n    k String,\n    v UInt64\n)\n\
             ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/cp/t', '{replica}', v)\n\
             ORDER BY k"
        );
    }

    #[test]
    fn engines_without_arguments_get_the_path_and_replica_only() {
        let objects = objects();
        let server = Replicated {
            database: "cp",
            on_cluster: None,
        };
        assert_eq!(
            replicated("CREATE TABLE u (k String) ENGINE = MergeTree ORDER BY k", server, &objects),
            "CREATE TABLE cp.u (k String) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/cp/u', '{replica}') ORDER BY k"
        );
        assert_eq!(
            replicated("CREATE TABLE u (k String) ENGINE = ReplacingMergeTree() ORDER BY k", server, &objects),
            "CREATE TABLE cp.u (k String) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/cp/u', '{replica}') ORDER BY k"
        );
        // Already replicated: only the name is qualified.
        let sql = "CREATE TABLE u (k String) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY k";
        assert_eq!(
            replicated(sql, server, &objects),
            sql.replacen(" u ", " cp.u ", 1)
        );
    }

    #[test]
    fn views_read_the_objects_of_their_database() {
        let sql = "CREATE VIEW IF NOT EXISTS v AS\nSELECT * FROM t FINAL\nANY LEFT JOIN (SELECT k FROM u FINAL) AS x USING (k)\n\
                   ARRAY JOIN if(k = 'FROM t', [1], [2]) AS n";
        assert_eq!(
            replicated(sql, ON_CLUSTER, &objects()),
            "CREATE VIEW IF NOT EXISTS cp.v ON CLUSTER national AS\nSELECT * FROM cp.t FINAL\n\
             ANY LEFT JOIN (SELECT k FROM cp.u FINAL) AS x USING (k)\n\
             ARRAY JOIN if(k = 'FROM t', [1], [2]) AS n"
        );
        // Names the migrations do not create, and qualified names, stay.
        let sql = "CREATE VIEW w AS SELECT * FROM system.one, other JOIN main.t USING (k)";
        assert_eq!(
            replicated(sql, ON_CLUSTER, &objects()),
            "CREATE VIEW cp.w ON CLUSTER national AS SELECT * FROM system.one, other JOIN main.t USING (k)"
        );
    }

    #[test]
    fn a_materialized_view_writes_to_its_database_and_inserts_stay_as_they_are() {
        let sql =
            "CREATE MATERIALIZED VIEW IF NOT EXISTS f TO t AS\nSELECT * FROM main.t WHERE k = 'x'";
        assert_eq!(
            replicated(sql, ON_CLUSTER, &objects()),
            "CREATE MATERIALIZED VIEW IF NOT EXISTS cp.f ON CLUSTER national TO cp.t AS\nSELECT * FROM main.t WHERE k = 'x'"
        );
        let insert = "INSERT INTO t SELECT * FROM main.t WHERE k = 'x'";
        assert_eq!(replicated(insert, ON_CLUSTER, &objects()), insert);
    }

    #[test]
    fn without_a_cluster_the_plan_is_the_files_as_written() {
        let files = migrations();
        let plan = plan(&files, None);
        let written: Vec<(&str, String)> = files
            .iter()
            .flat_map(|(name, sql)| statements(sql).into_iter().map(move |s| (*name, s)))
            .collect();
        assert_eq!(plan, written);
    }

    /// Every table of the shipped schema is replicated, in its database, on
    /// the cluster; every view reads the database's objects.
    #[test]
    fn the_shipped_schema_for_a_cluster() {
        let files = migrations();
        let plan = plan(&files, Some(ON_CLUSTER));
        let tables: Vec<&String> = plan
            .iter()
            .map(|(_, s)| s)
            .filter(|s| s.starts_with("CREATE TABLE"))
            .collect();
        assert_eq!(tables.len(), 5);
        for table in &tables {
            let name = created_object(table).unwrap();
            assert!(table.contains(&format!(" cp.{name} ")), "{table}");
            let path = format!("('/clickhouse/tables/{{shard}}/cp/{name}', '{{replica}}'");
            assert!(table.contains(&path), "{table}");
            assert!(table.contains("ENGINE = Replicated"), "{table}");
            assert!(table.contains(" ON CLUSTER national\n"), "{table}");
        }
        for (_, statement) in &plan {
            assert!(statement.contains(" ON CLUSTER national"), "{statement}");
            assert!(!statement.contains("FROM window_metrics"), "{statement}");
            assert!(!statement.contains("FROM organisations"), "{statement}");
            assert!(!statement.contains("FROM rollup"), "{statement}");
            assert!(!statement.contains("FROM alert"), "{statement}");
        }
        assert!(plan
            .iter()
            .any(|(_, s)| s.contains("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/cp/window_metrics', '{replica}', version)")));
    }

    #[test]
    fn created_objects_are_named() {
        assert_eq!(
            created_object("CREATE TABLE IF NOT EXISTS `t` (k String)"),
            Some("t".into())
        );
        assert_eq!(
            created_object("CREATE MATERIALIZED VIEW f TO t AS SELECT 1"),
            Some("f".into())
        );
        assert_eq!(
            created_object("CREATE VIEW cp.v AS SELECT 1"),
            Some("v".into())
        );
        assert_eq!(created_object("INSERT INTO t SELECT 1"), None);
        assert_eq!(tokenize("a 'b\\'c' `d`").concat(), "a 'b\\'c' `d`");
    }
}
