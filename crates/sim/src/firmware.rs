//! Firmware updates in the simulator: every simulated agent can install OTA updates
//! (its own A/B slot files next to its offline buffer), and the report counts what
//! the fleet runs at the end, from the devices' twins.
//!
//! The agents are the real ones (`agent::ota`): they download over HTTPS from the hub
//! with their presigned URLs, verify against the pinned key, switch slots, "reboot"
//! (a new session) and confirm or roll back. Slot writes are not fsynced
//! (`OtaOptions::sync = false`), as the simulator's offline buffers are not: thousands
//! of fsyncs per second would measure the disk, not the hub.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use agent::ota::OtaOptions;
use serde_json::{json, Value};

use crate::hub::HubApi;
use crate::Error;

/// Directory of a device's slots, inside its buffer directory.
pub const SLOT_DIR: &str = "firmware";
/// Hardware id of simulated devices unless `--hw` says otherwise.
pub const DEFAULT_HARDWARE: &str = "sim";
/// The version simulated devices run from the factory (slot A), unless set.
pub const DEFAULT_FACTORY: &str = "1.0.0";

/// How every simulated device installs updates: a template of the agent's options.
#[derive(Clone, Debug)]
pub struct FirmwareConfig {
    /// The pinned key, hardware id, image server and health deadline; the slot
    /// directory is set per device.
    template: OtaOptions,
    /// The factory version (slot A): SemVer, as the agent's updater requires.
    factory: String,
}

impl FirmwareConfig {
    /// Devices trusting the publisher key in `key_file` (PEM), of hardware `hardware`,
    /// downloading from `server` (`host:port` of the hub's HTTPS listener; `None`: the
    /// agent's default, the host of the hub on 8443).
    pub fn new(
        key_file: &Path,
        hardware: &str,
        server: Option<String>,
        health_deadline: Duration,
    ) -> Result<FirmwareConfig, Error> {
        let key = OtaOptions::read_key(key_file).map_err(|source| Error::Agent {
            device: "(every device)".into(),
            source,
        })?;
        let mut template = OtaOptions::new(key, SLOT_DIR.into(), hardware);
        template.server = server;
        template.health_deadline = health_deadline;
        template.sync = false;
        Ok(FirmwareConfig {
            template,
            factory: DEFAULT_FACTORY.into(),
        })
    }

    /// The same with factory version `version` (checked when each agent boots).
    pub fn with_factory(mut self, version: &str) -> FirmwareConfig {
        self.factory = version.to_owned();
        self
    }

    /// The version every device runs from the factory.
    pub fn factory(&self) -> &str {
        &self.factory
    }

    /// The agent's OTA options for the device whose buffer is `buffer_dir`.
    pub fn for_device(&self, buffer_dir: &Path) -> OtaOptions {
        let mut options = self.template.clone();
        options.slot_dir = buffer_dir.join(SLOT_DIR);
        options
    }

    /// The image server the devices use, if set.
    pub fn server(&self) -> Option<&str> {
        self.template.server.as_deref()
    }
}

/// What the fleet's twins say about firmware at the end of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FirmwareCounts {
    /// Devices per reported running version (`unknown` when not reported).
    pub versions: BTreeMap<String, usize>,
    /// Devices whose last update succeeded.
    pub succeeded: usize,
    /// Devices whose last update failed (a refusal, or a rollback after a failed
    /// health check).
    pub failed: usize,
    /// Devices rolled back on the hub's request.
    pub rolled_back: usize,
    /// Devices still downloading, verifying, installing or rebooting.
    pub in_progress: usize,
}

/// Largest query page the API hands out.
const PAGE: usize = 1000;

impl FirmwareCounts {
    /// Counts the reported `firmware` of the devices in `ids` (a twin query, paged).
    pub fn collect(api: &dyn HubApi, ids: &HashSet<&str>) -> Result<FirmwareCounts, Error> {
        let mut counts = FirmwareCounts::default();
        let mut continuation: Option<String> = None;
        loop {
            let mut body = json!({ "query": "SELECT * FROM devices", "limit": PAGE });
            if let Some(c) = &continuation {
                body["continuation"] = json!(c);
            }
            let page = api.post("/api/query", &body).map_err(|detail| Error::Api {
                target: "/api/query".into(),
                detail,
            })?;
            for twin in page["items"].as_array().into_iter().flatten() {
                if twin["deviceId"].as_str().is_some_and(|id| ids.contains(id)) {
                    counts.add(&twin["properties"]["reported"]["firmware"]);
                }
            }
            match page["continuation"].as_str() {
                Some(next) if !next.is_empty() => continuation = Some(next.to_owned()),
                _ => return Ok(counts),
            }
        }
    }

    /// Counts one device's reported `firmware` (any JSON: what is missing is unknown).
    pub fn add(&mut self, reported: &Value) {
        let version = reported["version"].as_str().unwrap_or("unknown");
        *self.versions.entry(version.to_owned()).or_default() += 1;
        match reported["state"].as_str() {
            Some("succeeded") => self.succeeded += 1,
            Some("failed") => self.failed += 1,
            Some("rolledBack") => self.rolled_back += 1,
            Some("downloading" | "verifying" | "installing" | "rebooting") => self.in_progress += 1,
            _ => {}
        }
    }

    /// The counts as Markdown table rows (`| name | value |`).
    pub fn rows(&self) -> String {
        let mut out = String::new();
        for (version, n) in &self.versions {
            let _ = writeln!(out, "| devices on firmware {version} | {n} |");
        }
        let _ = writeln!(out, "| firmware updates succeeded | {} |", self.succeeded);
        let _ = writeln!(out, "| firmware updates failed | {} |", self.failed);
        let _ = writeln!(out, "| firmware rolled back | {} |", self.rolled_back);
        let _ = writeln!(
            out,
            "| firmware updates in progress | {} |",
            self.in_progress
        );
        out
    }

    /// The counts as a Markdown table of their own.
    pub fn markdown(&self) -> String {
        format!("\n| firmware | |\n|---|---|\n{}", self.rows())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Canned(Vec<Value>);

    impl HubApi for Canned {
        fn get(&self, target: &str) -> Result<Value, String> {
            Err(format!("unexpected GET {target}"))
        }

        fn post(&self, target: &str, body: &Value) -> Result<Value, String> {
            assert_eq!(target, "/api/query");
            let page = match body["continuation"].as_str() {
                None => 0,
                Some(c) => c.parse::<usize>().map_err(|e| e.to_string())?,
            };
            let next = (page + 1 < self.0.len()).then(|| (page + 1).to_string());
            let items = self.0.get(page).cloned().unwrap_or(Value::Null);
            Ok(json!({ "items": items, "continuation": next }))
        }
    }

    fn twin(id: &str, firmware: Value) -> Value {
        json!({ "deviceId": id, "properties": { "reported": { "firmware": firmware } } })
    }

    #[test]
    fn counts_versions_and_outcomes_over_pages() {
        let api = Canned(vec![
            json!([
                twin("a", json!({"version": "2.0.0", "state": "succeeded"})),
                twin(
                    "b",
                    json!({"version": "1.0.0", "state": "failed", "reason": "x"})
                ),
                twin("other", json!({"version": "9.9.9", "state": "succeeded"})),
            ]),
            json!([
                twin("c", json!({"version": "1.0.0", "state": "rolledBack"})),
                twin("d", json!({"version": "1.0.0", "state": "downloading"})),
                twin("e", Value::Null),
                json!("not a twin"),
            ]),
        ]);
        let ids: HashSet<&str> = ["a", "b", "c", "d", "e"].into();
        let counts = FirmwareCounts::collect(&api, &ids).expect("counts");
        let versions: Vec<(&str, usize)> = counts
            .versions
            .iter()
            .map(|(v, n)| (v.as_str(), *n))
            .collect();
        assert_eq!(versions, [("1.0.0", 3), ("2.0.0", 1), ("unknown", 1)]);
        assert_eq!(
            (
                counts.succeeded,
                counts.failed,
                counts.rolled_back,
                counts.in_progress
            ),
            (1, 1, 1, 1)
        );
        let table = counts.markdown();
        assert!(
            table.contains("| devices on firmware 1.0.0 | 3 |"),
            "{table}"
        );
        assert!(table.contains("| firmware rolled back | 1 |"), "{table}");
    }

    #[test]
    fn every_device_gets_its_own_slots() {
        let dir = tempfile::tempdir().expect("dir");
        let key = ota_key(dir.path());
        let config = FirmwareConfig::new(&key, "sim-hw", Some("127.0.0.1:9".into()), {
            Duration::from_secs(5)
        })
        .expect("config");
        let a = config.for_device(&dir.path().join("dev-1"));
        assert_eq!(a.slot_dir, dir.path().join("dev-1").join(SLOT_DIR));
        assert_eq!(a.hardware, "sim-hw");
        assert!(!a.sync);
        assert_eq!(config.server(), Some("127.0.0.1:9"));
        assert_eq!(config.factory(), DEFAULT_FACTORY);
        assert_eq!(config.with_factory("2.1.0").factory(), "2.1.0");
        let missing = FirmwareConfig::new(&dir.path().join("nope.pem"), "x", None, {
            Duration::from_secs(1)
        });
        assert!(missing.is_err());
    }

    /// A public key PEM file (any valid key will do).
    fn ota_key(dir: &Path) -> std::path::PathBuf {
        // An Ed25519 SubjectPublicKeyInfo (RFC 8410 example key).
        let pem = "-----BEGIN PUBLIC KEY-----\n\
                   MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
                   -----END PUBLIC KEY-----\n";
        let path = dir.join("release.pub");
        std::fs::write(&path, pem).expect("write key");
        path
    }
}
