//! An `influxd` (InfluxDB 1.x) process of the benchmark's own: a generated configuration
//! in a temporary directory (meta, data and WAL there; HTTP and RPC on free loopback
//! ports; reporting, monitoring, continuous queries and every other listener off), not
//! the system service.
//!
//! Two settings differ from InfluxDB's defaults, both only to make its size measurable
//! within the run: the cache is snapshotted to TSM files after 2 s without writes
//! (default 10 min) and a full compaction runs after 5 s without writes (default 4 h).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::http;

/// How to get `influxd` when it is missing.
pub(crate) const INSTALL_HINT: &str = "influxd not found. Install InfluxDB 1.6 (Debian bookworm: `sudo apt-get install -y influxdb`) or pass --influxd PATH. The benchmark starts its own process; the system service need not run.";

/// A running `influxd`.
pub(crate) struct Influx {
    /// HTTP API address.
    pub(crate) addr: SocketAddr,
    /// Its temporary directory.
    pub(crate) dir: PathBuf,
    child: Child,
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind a probe socket")?;
    Ok(l.local_addr()
        .context("probe socket has no address")?
        .port())
}

fn config(dir: &Path, http_port: u16, rpc_port: u16) -> String {
    let d = dir.display();
    format!(
        r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{d}/meta"

[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "2s"
  compact-full-write-cold-duration = "5s"

[coordinator]
  log-queries-after = "0s"

[retention]
  enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
  flux-enabled = false

[logging]
  level = "warn"

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false
"#
    )
}

impl Influx {
    /// Starts `influxd` and waits until `/ping` answers.
    pub(crate) fn start(exe: &Path, tag: &str) -> Result<Influx> {
        let dir =
            std::env::temp_dir().join(format!("bosun-bench-influx-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let (http_port, rpc_port) = (free_port()?, free_port()?);
        let conf = dir.join("influxdb.conf");
        std::fs::write(&conf, config(&dir, http_port, rpc_port))
            .context("cannot write influxdb.conf")?;
        let log =
            std::fs::File::create(dir.join("influxd.log")).context("cannot create the log")?;
        let child = Command::new(exe)
            .arg("-config")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("cannot run {}", exe.display()))?;
        let mut influx = Influx {
            addr: SocketAddr::from(([127, 0, 0, 1], http_port)),
            dir,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = influx.child.try_wait().context("cannot query influxd")? {
                bail!("influxd exited ({status}); log in {}", influx.dir.display());
            }
            if matches!(
                http::request(influx.addr, "GET", "/ping", b""),
                Ok((204, _))
            ) {
                return Ok(influx);
            }
            if Instant::now() > deadline {
                bail!("influxd did not answer /ping within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs an InfluxQL statement, failing on a non-2xx status or an `error` in the body.
    pub(crate) fn query(&self, db: &str, q: &str) -> Result<String> {
        let target = format!("/query?db={}&q={}", http::encode(db), http::encode(q));
        let (status, body) = http::request(self.addr, "POST", &target, b"")?;
        if !(200..300).contains(&status) || body.contains("\"error\"") {
            bail!("InfluxQL {q:?} failed ({status}): {body}");
        }
        Ok(body)
    }

    /// Writes one line-protocol batch with millisecond timestamps.
    pub(crate) fn write(&self, db: &str, lines: &str) -> Result<()> {
        let target = format!("/write?db={}&precision=ms", http::encode(db));
        let (status, body) = http::request(self.addr, "POST", &target, lines.as_bytes())?;
        if status != 204 {
            bail!("write failed ({status}): {body}");
        }
        Ok(())
    }

    /// Stops the process and removes its directory.
    pub(crate) fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Apparent size (sum of file lengths, like `du -b`) and allocated size (blocks, like
/// `du`) of everything under `path`.
pub(crate) fn usage(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(path) else {
        return (0, 0);
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => usage(&e.path()),
            Ok(m) => (m.len(), m.blocks() * 512),
            Err(_) => (0, 0),
        })
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}
