//! A ClickHouse server (the local 18.16) started by one test on free
//! ports, with a generated configuration, in a folder of its own: for the
//! tests that must do to a server what the shared one cannot suffer
//! (replicas, a full disk). Killed when dropped, also when the test fails.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::process::{free_port, Process};

/// How long a server may take to answer its first query on a busy machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A folder for one run, deleted at the end (kept, and named, on failure).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("callpulse-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("state kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The server binary deploy/local/stack.sh installs (Debian puts it in /usr/sbin).
pub fn clickhouse_server() -> PathBuf {
    let sbin = PathBuf::from("/usr/sbin/clickhouse-server");
    if sbin.exists() {
        return sbin;
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("clickhouse-server"))
                .find(|exe| exe.exists())
        })
        .expect("clickhouse-server is missing: install it with `deploy/local/stack.sh install`")
}

/// The ports of one server.
pub struct Ports {
    pub http: u16,
    pub tcp: u16,
    pub interserver: u16,
}

impl Ports {
    pub fn free() -> Ports {
        Ports {
            http: free_port(),
            tcp: free_port(),
            interserver: free_port(),
        }
    }
}

/// The configuration of a server whose logs, temporary files and
/// `users.xml` are in `home` and whose data is in `data`; `extra` (XML
/// elements: a cluster, ZooKeeper, macros) goes inside `<yandex>`.
pub fn server_config(home: &Path, data: &Path, ports: &Ports, extra: &str) -> String {
    let home = home.display();
    let data = data.display();
    format!(
        r#"<?xml version="1.0"?>
<yandex>
    <logger><level>information</level><log>{home}/server.log</log><errorlog>{home}/error.log</errorlog></logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http}</http_port>
    <tcp_port>{tcp}</tcp_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <interserver_http_port>{interserver}</interserver_http_port>
    <path>{data}/</path>
    <tmp_path>{home}/tmp/</tmp_path>
    <user_files_path>{home}/user_files/</user_files_path>
    <format_schema_path>{home}/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <mark_cache_size>67108864</mark_cache_size>
{extra}
</yandex>
"#,
        http = ports.http,
        tcp = ports.tcp,
        interserver = ports.interserver,
    )
}

/// The default user, without a password, from 127.0.0.1 only.
pub const USERS: &str = r#"<?xml version="1.0"?>
<yandex>
    <profiles><default></default></profiles>
    <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
        <profile>default</profile><quota>default</quota></default></users>
    <quotas><default></default></quotas>
</yandex>
"#;

/// Writes the configuration of [`server_config`] (and `users.xml`) into
/// `home` and starts the server as a process named `name`; its HTTP URL
/// is `http://127.0.0.1:{ports.http}`. Call [`wait_until_answers`] before using it.
pub fn start_server(name: &str, home: &Path, data: &Path, ports: &Ports, extra: &str) -> Process {
    std::fs::create_dir_all(home).unwrap();
    let config = home.join("config.xml");
    std::fs::write(&config, server_config(home, data, ports, extra)).unwrap();
    std::fs::write(home.join("users.xml"), USERS).unwrap();
    let arg = format!("--config-file={}", config.display());
    Process::start(name, &clickhouse_server(), &[&arg], &[])
}

/// Waits until the server answers a query (it opens its port before it is ready).
pub async fn wait_until_answers(url: &str, server: &mut Process) {
    let client = clickhouse::Client::default()
        .with_url(url)
        .with_validation(false);
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        server.assert_running();
        match client.query("SELECT 1").fetch_one::<u8>().await {
            Ok(_) => return,
            Err(err) if Instant::now() > deadline => panic!("{url} does not answer: {err}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
