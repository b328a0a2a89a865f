//! The national deployment's ClickHouse: one shard of two replicas
//! (docs/sizing.md), with `clickhouse.cluster` set.
//!
//! The test starts its own ZooKeeper (Debian's `zookeeper` package) and two
//! ClickHouse servers (the local 18.16) on free ports, with generated
//! configurations: macros shard=01, replica=r1/r2, a cluster of one shard
//! holding both, the ZooKeeper and a distributed DDL queue. It never
//! touches the shared ClickHouse (the shared broker carries the events of
//! the last step). Then:
//! - `callpulse migrate` (the real binary) through replica 1 creates every
//!   table, Replicated, and every view on both replicas;
//! - the sink's insert through replica 1 reaches replica 2, where FINAL
//!   shows the latest version of each window (ReplacingMergeTree), also
//!   for rows inserted in the wrong order, and the rollup views read them;
//! - what the services do at start (the schema on their own server) and a
//!   second `migrate` change nothing;
//! - an ICB's database (`callpulse access`'s function) is created on both
//!   replicas, its feed copies through replica 1 and replica 2 has the rows;
//! - the processor and the sink themselves (the sink on replica 2, with the
//!   cluster set) turn published events into rows that replica 1 has.
//!
//! Every process started here is killed when the test ends, also when it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use callpulse_core::Timestamp;
use callpulse_e2e::outage::wait_for_port;
use callpulse_e2e::own_clickhouse::{
    start_server, wait_until_answers, Ports, TempDir, START_TIMEOUT,
};
use callpulse_e2e::process::{callpulse_binary, free_port, Process};
use callpulse_e2e::{
    assert_same_rows, expected_rows, replayed_rows, simulated_calls, test_env, values_only,
    wait_for_rows, with_clickhouse_url, Pipeline,
};
use callpulse_runtime::{kafka, Config};
use callpulse_simulator::SimulationPlan;
use callpulse_sink::{access, migrate, organisations, WindowMetricsRow};

const CLUSTER: &str = "callpulse_test";
const ORGANISATIONS: &str = include_str!("../../data/organisations.csv");
/// Replication is asynchronous: how long replica 2 may take to have the rows.
const REPLICATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Debian's ZooKeeper jar (its manifest names the jars it needs).
fn zookeeper_jar() -> PathBuf {
    let jar = PathBuf::from("/usr/share/java/zookeeper.jar");
    assert!(
        jar.exists(),
        "ZooKeeper is missing ({} not found): install Debian's package with \
         `apt-get install -y zookeeper` (deploy/local/stack.sh install does)",
        jar.display()
    );
    let java = Command::new("java").arg("-version").output();
    assert!(
        java.is_ok_and(|out| out.status.success()),
        "java is missing: ZooKeeper needs a Java runtime (`apt-get install -y zookeeper` brings one)"
    );
    jar
}

/// What a replica adds to the common configuration: the cluster of one
/// shard holding both replicas, ZooKeeper, its macros and the DDL queue.
fn replica_config(replica: &str, all: &[Ports], zookeeper: u16) -> String {
    let replicas: String = all
        .iter()
        .map(|p| {
            format!(
                "<replica><host>127.0.0.1</host><port>{}</port></replica>",
                p.tcp
            )
        })
        .collect();
    format!(
        r#"    <remote_servers>
        <{CLUSTER}><shard><internal_replication>true</internal_replication>{replicas}</shard></{CLUSTER}>
    </remote_servers>
    <zookeeper><node><host>127.0.0.1</host><port>{zookeeper}</port></node></zookeeper>
    <macros><shard>01</shard><replica>{replica}</replica></macros>
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>"#
    )
}

/// ZooKeeper and two replicas; killed (and their folder removed) when dropped.
struct Cluster {
    urls: [String; 2],
    // Dropped in this order: the servers first, ZooKeeper, then the folder.
    _servers: Vec<Process>,
    _zookeeper: Process,
    _dir: TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let jar = zookeeper_jar();
        let dir = TempDir::new("replicated-clickhouse");
        let zk_port = free_port();
        let zk_data = dir.0.join("zookeeper");
        std::fs::create_dir_all(&zk_data).unwrap();
        let mut zookeeper = Process::start(
            "replicated-zookeeper",
            Path::new("java"),
            &[
                "-Xmx256m",
                "-Dzookeeper.admin.enableServer=false",
                "-cp",
                jar.to_str().unwrap(),
                "org.apache.zookeeper.server.ZooKeeperServerMain",
                &zk_port.to_string(),
                zk_data.to_str().unwrap(),
            ],
            &[],
        );
        wait_for_port(([127, 0, 0, 1], zk_port).into(), START_TIMEOUT).await;
        // ClickHouse 18.16 crashes if ZooKeeper does not answer at its start.
        wait_until_serving(zk_port, &mut zookeeper).await;

        let ports: Vec<Ports> = (0..2).map(|_| Ports::free()).collect();
        let mut servers = Vec::new();
        for (i, own) in ports.iter().enumerate() {
            let replica = format!("r{}", i + 1);
            let home = dir.0.join(&replica);
            servers.push(start_server(
                &format!("replicated-clickhouse-{replica}"),
                &home,
                &home.join("data"),
                own,
                &replica_config(&replica, &ports, zk_port),
            ));
        }
        let urls = [0, 1].map(|i| format!("http://127.0.0.1:{}", ports[i].http));
        for (url, server) in urls.iter().zip(servers.iter_mut()) {
            wait_until_answers(url, server).await;
        }
        Cluster {
            urls,
            _servers: servers,
            _zookeeper: zookeeper,
            _dir: dir,
        }
    }
}

/// Waits until ZooKeeper serves requests (`srvr` names its mode); its port
/// opens before.
async fn wait_until_serving(port: u16, zookeeper: &mut Process) {
    use std::io::{Read, Write};
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        zookeeper.assert_running();
        let mut answer = String::new();
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.write_all(b"srvr");
            let _ = stream.read_to_string(&mut answer);
        }
        if answer.contains("Mode:") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "ZooKeeper on port {port} does not serve: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The test's environment with `url` and the cluster.
fn cluster_env(env: &[(String, String)], url: &str) -> Vec<(String, String)> {
    let mut env = with_clickhouse_url(env, url);
    env.push(("CALLPULSE__CLICKHOUSE__CLUSTER".into(), CLUSTER.into()));
    env
}

#[derive(Debug, PartialEq, Eq, clickhouse::Row, serde::Deserialize)]
struct Object {
    name: String,
    engine: String,
}

/// The tables and views of `database` on the server of `config`, by name.
async fn objects(config: &Config, database: &str) -> Vec<Object> {
    callpulse_sink::clickhouse_server(config)
        .query("SELECT name, engine FROM system.tables WHERE database = ? ORDER BY name")
        .bind(database)
        .fetch_all::<Object>()
        .await
        .unwrap()
}

/// The final windows of a Monday morning of 5 practices (all in ICB QHM in
/// data/organisations.csv), as the sink writes them.
fn monday_windows() -> Vec<WindowMetricsRow> {
    let plan = SimulationPlan {
        practices: 5,
        seed: 8,
        start: Timestamp::parse_rfc3339("2026-11-23T08:00:00Z").unwrap(),
        duration_ms: 2 * 3_600_000,
        calls_per_practice_minute: 0.3,
        speed: None,
    };
    replayed_rows(&simulated_calls(&plan, 300))
}

fn values(rows: &[WindowMetricsRow]) -> Vec<WindowMetricsRow> {
    rows.iter().cloned().map(values_only).collect()
}

/// The one number `sql` answers.
async fn number(client: &clickhouse::Client, sql: &str) -> u64 {
    client.query(sql).fetch_one().await.unwrap()
}

/// Inserts the window's next final revision, changed by `change`, with the
/// sink's insert; returns it.
async fn insert_next_revision(
    client: &clickhouse::Client,
    window: &WindowMetricsRow,
    change: impl FnOnce(&mut WindowMetricsRow),
) -> WindowMetricsRow {
    let mut next = window.clone();
    next.revision += 1;
    next.version = next.revision * 2 + 1;
    change(&mut next);
    callpulse_sink::insert(client, std::slice::from_ref(&next))
        .await
        .unwrap();
    next
}

fn run_migrate(env: &[(String, String)]) -> String {
    let out = Command::new(callpulse_binary())
        .arg("migrate")
        .envs(env.iter().cloned())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "callpulse migrate failed:\n{stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_on_a_cluster_replicates_tables_views_and_the_latest_version_of_each_window() {
    let started = Instant::now();
    let cluster = Cluster::start().await;
    let env = test_env("replicated");
    let env1 = cluster_env(&env, &cluster.urls[0]);
    let env2 = cluster_env(&env, &cluster.urls[1]);
    let replica1 = Config::load_from(None, env1.clone()).unwrap();
    let replica2 = Config::load_from(None, env2).unwrap();
    let database = replica1.clickhouse.database.clone();
    eprintln!("cluster started in {:?}", started.elapsed());

    // One `callpulse migrate` through replica 1: the schema on both.
    let said = run_migrate(&env1);
    assert!(
        said.contains(&format!("on every replica of cluster {CLUSTER}")),
        "{said}"
    );
    let on_1 = objects(&replica1, &database).await;
    let on_2 = objects(&replica2, &database).await;
    assert_eq!(on_1, on_2);
    let engines: Vec<(&str, &str)> = on_2
        .iter()
        .filter(|o| o.engine != "View")
        .map(|o| (o.name.as_str(), o.engine.as_str()))
        .collect();
    assert_eq!(
        engines,
        [
            ("alert_deliveries", "ReplicatedMergeTree"),
            ("alerts", "ReplicatedReplacingMergeTree"),
            ("calls", "ReplicatedReplacingMergeTree"),
            ("organisations", "ReplicatedReplacingMergeTree"),
            ("window_metrics", "ReplicatedReplacingMergeTree"),
        ]
    );
    let views = on_2.iter().filter(|o| o.engine == "View").count();
    assert_eq!(views, 11, "{on_2:?}");
    eprintln!("migrated in {:?}", started.elapsed());

    // The services' own schema step, on each replica, and `migrate` again:
    // nothing changes.
    migrate::apply(&replica1).await.unwrap();
    migrate::apply(&replica2).await.unwrap();
    run_migrate(&env1);
    assert_eq!(objects(&replica2, &database).await, on_2);

    // Organisations (loaded the way `callpulse orgs load` does) and the
    // final windows, each through replica 1 with the sink's insert; then,
    // in their own inserts, an older provisional version of every window
    // (arriving last: it must lose) and a newer revision of one (it must win).
    let parsed = organisations::parse(ORGANISATIONS.as_bytes()).unwrap();
    organisations::load(&replica1, &parsed.practices)
        .await
        .unwrap();
    let windows = monday_windows();
    let client1 = callpulse_sink::clickhouse_client(&replica1);
    callpulse_sink::insert(&client1, &windows).await.unwrap();
    let older: Vec<WindowMetricsRow> = windows
        .iter()
        .map(|w| WindowMetricsRow {
            offered: w.offered + 100,
            is_final: 0,
            version: w.version - 1,
            ..w.clone()
        })
        .collect();
    callpulse_sink::insert(&client1, &older).await.unwrap();
    let newer = insert_next_revision(&client1, &windows[0], |w| w.answered += 1).await;
    let mut expected = windows.clone();
    expected[0] = newer;
    let expected = values(&expected);

    let on_replica2 = wait_for_rows(&replica2, &expected, REPLICATION_TIMEOUT).await;
    assert_same_rows(&on_replica2, &expected);
    let client2 = callpulse_sink::clickhouse_client(&replica2);
    let parts_rows = number(&client2, "SELECT count() FROM window_metrics").await;
    assert_eq!(
        parts_rows as usize,
        2 * windows.len() + 1,
        "every insert replicated"
    );
    // The views on replica 2 read its tables: England's hours add up.
    let offered_1h: u64 = expected
        .iter()
        .filter(|w| w.window == "1h")
        .map(|w| w.offered)
        .sum();
    let england = "SELECT sum(offered) FROM rollup_england WHERE window = '1h'";
    assert_eq!(number(&client2, england).await, offered_1h);
    let qhm = "SELECT sum(offered) FROM rollup_icb WHERE window = '1h' AND code = 'QHM'";
    assert_eq!(
        number(&client2, qhm).await,
        offered_1h,
        "all 5 practices are in QHM"
    );
    eprintln!("replicated and read in {:?}", started.elapsed());

    // An ICB's database, through replica 1: on both replicas, replicated;
    // its copy of the rows, and a row fed by its materialized view on
    // replica 1, are on replica 2.
    let icb = access::create_icb_database(&replica1, "QHM").await.unwrap();
    let icb_on_2 = objects(&replica2, &icb).await;
    assert_eq!(objects(&replica1, &icb).await, icb_on_2);
    assert!(icb_on_2
        .iter()
        .any(|o| o.name == "window_metrics" && o.engine == "ReplicatedReplacingMergeTree"));
    assert!(icb_on_2
        .iter()
        .any(|o| o.name == "window_metrics_feed" && o.engine == "MaterializedView"));
    let fed = insert_next_revision(&client1, &windows[1], |w| w.missed += 1).await;
    let mut icb_expected = expected.clone();
    icb_expected[1] = values_only(fed);
    let mut icb_replica2 = replica2.clone();
    icb_replica2.clickhouse.database = icb.clone();
    let icb_rows = wait_for_rows(&icb_replica2, &icb_expected, REPLICATION_TIMEOUT).await;
    assert_same_rows(&icb_rows, &icb_expected);
    access::drop_icb_database(&replica1, "QHM").await.unwrap();
    assert!(
        objects(&replica2, &icb).await.is_empty(),
        "dropped on replica 2 too"
    );
    eprintln!("ICB database on the cluster in {:?}", started.elapsed());

    // The sink itself on replica 2 (its start applies the schema there),
    // fed by the processor from the shared broker: replica 1 gets its rows.
    let plan = SimulationPlan {
        practices: 3,
        seed: 9,
        start: Timestamp::parse_rfc3339("2026-11-24T08:00:00Z").unwrap(),
        duration_ms: 30 * 60_000,
        calls_per_practice_minute: 1.0,
        speed: None,
    };
    let tuesday = simulated_calls(&plan, 50);
    // The main table holds what the ICB's does (all 5 practices are in QHM).
    let mut all = icb_expected;
    all.extend(expected_rows(&tuesday));
    all.sort_by(|a, b| (&a.window, &a.practice, a.start).cmp(&(&b.window, &b.practice, b.start)));
    kafka::ensure_topics(&replica2.kafka, &replica2.topics.all())
        .await
        .unwrap();
    let pipeline = Pipeline::start(&replica2);
    let producer = kafka::producer(&replica2.kafka).unwrap();
    callpulse_simulator::publish(&producer, &replica2.topics.call_events, &tuesday)
        .await
        .unwrap();
    let on_replica1 = wait_for_rows(&replica1, &all, Duration::from_secs(60)).await;
    pipeline.stop().await;
    assert_same_rows(&on_replica1, &all);
    eprintln!("sink on replica 2 in {:?}", started.elapsed());

    eprintln!("replicated_clickhouse: {:?} in all", started.elapsed());
}
