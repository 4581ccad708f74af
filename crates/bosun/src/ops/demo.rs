//! `bosun demo`: the whole closed loop in one command. Starts a hub (this executable's
//! `serve --dev`) on free ports in a temporary directory, creates the device CA and an
//! enrollment group, runs a simulated fleet of motors that provision themselves through
//! DPS over TLS with the group's derived keys, of which three (one of them motor-17)
//! develop a bearing fault, and prints the timeline as the hub's API shows each phase:
//! provisioned → first features → anomaly on motor-17 → capture command delivered →
//! capture stored. Ends with the report and where to look; exit status 0 only when
//! every phase happened before the deadline.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use sim::server::{HubProcess, HubSettings, Listening};
use sim::{hub, Fleet, FleetConfig, Plan, Scenario, SourceAddresses};

use super::api::{Api, ApiArgs, Output};
use super::sim::{own_exe, parse_duration, simulate, Buffers, Run};

/// `bosun demo --help` epilogue.
pub(crate) const EXAMPLES: &str = "\
Examples:
  cargo run --release -- demo
  bosun demo --speed 10 --keep        # faster device clocks; keep the data directory
The hub's anomaly model learns from 30 messages per device before it scores; a
capture is 30 s at 10 kHz (paced at the device clock, so --speed shortens it).";

/// The faulty motors (besides those the count adds): the one the timeline follows first.
const WATCHED: &str = "motor-17";
/// Every faulty motor.
const FAULTY: [&str; 3] = [WATCHED, "motor-42", "motor-73"];
/// Samples of the default capture (30 s × 10 kHz).
const CAPTURE_SAMPLES: u64 = 300_000;

/// Flags of `bosun demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Motors to simulate (at least 73: motor-17, motor-42 and motor-73 fail).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub(crate) devices: usize,
    /// Time acceleration of the motors' clocks (1 feature message per device second).
    #[arg(long, value_name = "X", default_value_t = 5.0)]
    pub(crate) speed: f64,
    /// Messages the hub's anomaly model learns from before scoring [default: the
    /// hub's, 30]; fewer make the demo shorter.
    #[arg(long, value_name = "N")]
    pub(crate) warmup: Option<u64>,
    /// Axes each motor analyses (1 is cheaper on a small machine).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub(crate) axes: usize,
    /// Give up when the loop has not closed by then.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub(crate) deadline: Duration,
    /// Keep the data directory (to look at it later with `bosun serve --data-dir`).
    #[arg(long)]
    pub(crate) keep: bool,
    /// Skip the CA, the enrollment group and DPS: anonymous devices over plain MQTT.
    #[arg(long)]
    pub(crate) anonymous: bool,
}

/// `bosun demo`.
pub(crate) fn run(args: &DemoArgs) -> Result<()> {
    if args.devices < 73 {
        bail!("--devices must be at least 73 (motor-17, motor-42 and motor-73 fail)");
    }
    let dir = Buffers::new(None, "bosun-demo")?;
    let data = dir.root.join("hub");
    let mut hub = start_hub(&data, args.warmup)?;
    let result = demo(args, hub.listening(), &data);
    hub.stop();
    if args.keep {
        let kept = std::env::temp_dir().join(format!("bosun-demo-{}", sim::fleet::epoch_ms()));
        std::fs::rename(&data, &kept).or_else(|_| copy_dir(&data, &kept))?;
        println!(
            "data kept in {} (bosun serve --dev --data-dir {0})",
            kept.display()
        );
    }
    result
}

/// Starts `serve --dev` (this executable, MQTT and MQTT/TLS) on free loopback ports,
/// with a 2 s capture idle timeout and the warm-up asked for.
fn start_hub(data: &Path, warmup: Option<u64>) -> Result<HubProcess> {
    let mut envs = vec![(
        "BOSUN_PIPELINE__CAPTURE_IDLE_SECS".to_owned(),
        "2".to_owned(),
    )];
    if let Some(w) = warmup {
        envs.push(("BOSUN_PIPELINE__ANOMALY_WARMUP".to_owned(), w.to_string()));
    }
    let settings = HubSettings {
        exe: own_exe()?,
        data_dir: data.to_owned(),
        tls: true,
        envs,
        args: Vec::new(),
    };
    Ok(HubProcess::start(settings)?)
}

/// The demo against a started hub.
fn demo(args: &DemoArgs, hub: &Listening, data: &Path) -> Result<()> {
    let api_url = format!("http://{}", hub.http);
    let api = Api::from_args(&ApiArgs {
        api: Some(api_url.clone()),
        token: None,
        data_dir: Some(data.to_owned()),
        output: Output::Table,
    })?;
    let plan = Plan::new(scenario(args))?;
    println!(
        "hub: mqtt {} · mqtts {} · api {api_url} · data {}",
        hub.mqtt,
        hub.mqtts.as_deref().unwrap_or("off"),
        data.display()
    );
    println!(
        "fleet: {} motors, faulty {}, onset after {:.0} s, device clock ×{}",
        args.devices,
        FAULTY.join(", "),
        plan.scenario.faults.onset.as_secs_f64(),
        args.speed
    );
    let buffers = data.join("agents");
    let config = if args.anonymous {
        FleetConfig {
            hub: hub.mqtt.clone(),
            ca: None,
            host_name: None,
            identity: agent::Identity::Anonymous,
            buffer_root: buffers,
            source_addresses: SourceAddresses::automatic(&hub.mqtt, args.devices),
            firmware: None,
        }
    } else {
        let mqtts = hub
            .mqtts
            .clone()
            .ok_or_else(|| anyhow!("the hub announced no TLS listener"))?;
        FleetConfig {
            source_addresses: SourceAddresses::automatic(&mqtts, args.devices),
            hub: mqtts,
            ca: Some(data.join("tls").join("ca.pem")),
            host_name: None,
            identity: provisioning(&api, data)?,
            buffer_root: buffers,
            firmware: None,
        }
    };
    let mut timeline = Timeline::new(args.devices);
    let run = Run {
        api: &api,
        hub: None,
        threads: 2,
        firmware_key: None,
    };
    let report = simulate(plan, config, run, &mut |fleet, api| {
        timeline.poll(fleet, api)
    })?;
    println!("\n## Summary\n");
    timeline.summary();
    println!();
    print!("{}", report.table());
    if !report.false_alarms.is_empty() {
        println!(
            "\nhealthy motors the model flagged too: {} (the model learned from few messages)",
            report.false_alarms.join(", ")
        );
    }
    where_to_look(&api_url, data);
    let missing = timeline.missing();
    if !missing.is_empty() {
        bail!(
            "the demo did not close the loop: no {}",
            missing.join(", no ")
        );
    }
    Ok(())
}

/// Creates the device CA (`bosun ca init`) and the enrollment group `demo-motors`, and
/// returns the identity its members provision with.
fn provisioning(api: &Api, data: &Path) -> Result<agent::Identity> {
    let exe = own_exe()?;
    let made = Command::new(exe)
        .args(["ca", "init", "--data-dir"])
        .arg(data)
        .stdin(Stdio::null())
        .output()
        .context("cannot run bosun ca init")?;
    if !made.status.success() {
        bail!(
            "bosun ca init failed: {}",
            String::from_utf8_lossy(&made.stderr).trim()
        );
    }
    println!("device CA created in {}", data.join("ca").display());
    let body = serde_json::json!({
        "initialTwin": { "tags": { "site": "demo" } },
    });
    let reply = api.call(
        "PUT",
        "/api/enrollments/groups/demo-motors",
        Some(&body),
        &[],
    )?;
    let key = reply.json["key"]
        .as_str()
        .ok_or_else(|| anyhow!("the enrollment group came back without a key"))?;
    let id_scope = ::hub::auth::DEFAULT_ID_SCOPE;
    println!("enrollment group demo-motors created (symmetric key, id scope {id_scope}); motors provision through DPS over TLS");
    Ok(agent::Identity::GroupKey {
        group_key: key.to_owned(),
        id_scope: id_scope.to_owned(),
    })
}

/// The demo's scenario: motors with one feature message per device second, faults
/// after the model's warm-up (plus a margin), growing over 20 device seconds.
fn scenario(args: &DemoArgs) -> Scenario {
    let mut s = Scenario {
        devices: args.devices,
        prefix: "motor-".into(),
        width: 2,
        speed: args.speed,
        duration: args.deadline,
        stagger: Duration::from_secs(2),
        axes: args.axes,
        ..Scenario::default()
    };
    let warmup = args.warmup.unwrap_or(30) as f64;
    s.faults.ids = FAULTY.iter().map(|id| id.to_string()).collect();
    s.faults.onset = Duration::from_secs_f64(2.0 + (warmup + 5.0) / args.speed.max(0.01));
    s.faults.growth = Duration::from_secs(20);
    s
}

/// The phases, and when each was seen (seconds since the fleet started).
struct Timeline {
    devices: usize,
    provisioned: Option<f64>,
    features: Option<f64>,
    anomaly: Option<f64>,
    command: Option<f64>,
    capture: Option<f64>,
    /// Other faulty motors already announced.
    announced: Vec<String>,
}

impl Timeline {
    fn new(devices: usize) -> Timeline {
        Timeline {
            devices,
            provisioned: None,
            features: None,
            anomaly: None,
            command: None,
            capture: None,
            announced: Vec::new(),
        }
    }

    /// Checks the next phases; `Ok(true)` when the loop has closed.
    fn poll(&mut self, fleet: &Fleet, api: &Api) -> Result<bool> {
        let t = fleet.elapsed().as_secs_f64();
        let ids: std::collections::HashSet<&str> =
            fleet.plan().devices.iter().map(|d| d.id.as_str()).collect();
        if self.provisioned.is_none() {
            let n = hub::count_devices(api, &ids, false)?;
            if n == self.devices {
                self.provisioned = Some(t);
                line(
                    t,
                    &format!("provisioned: {n}/{} motors in the registry", self.devices),
                );
            }
        }
        if self.features.is_none() {
            let stored = hub::stored_counts(api, fleet.started_ms() - 60_000)?;
            let total: u64 = stored.values().sum();
            if total > 0 {
                self.features = Some(t);
                line(
                    t,
                    &format!(
                        "first features: {total} feature messages stored from {} motors",
                        stored.len()
                    ),
                );
            }
        }
        self.anomalies(fleet, api, t)?;
        if self.anomaly.is_some() && self.command.is_none() && delivered(api)? {
            self.command = Some(t);
            line(t, &format!("capture command delivered to {WATCHED}: {{\"cmd\":\"capture\",\"rate_hz\":10000,\"seconds\":30}}; desired mode = alarm"));
        }
        if self.command.is_some() && self.capture.is_none() {
            let stored = hub::captures(api, Some(WATCHED))?;
            if let Some(c) = stored
                .iter()
                .find(|c| c.complete && c.samples >= CAPTURE_SAMPLES)
            {
                self.capture = Some(t);
                line(
                    t,
                    &format!(
                    "capture stored: {WATCHED}, {} samples at {} Hz ({:.0} s), no chunk missing",
                    c.samples, c.rate_hz, c.samples as f64 / c.rate_hz.max(1.0)
                ),
                );
            }
        }
        Ok(self.missing().is_empty())
    }

    /// Announces anomaly events: motor-17's with its score and top features.
    fn anomalies(&mut self, fleet: &Fleet, api: &Api, t: f64) -> Result<()> {
        for a in hub::anomalies(api, fleet.started_ms())? {
            if self.announced.contains(&a.device_id) {
                continue;
            }
            self.announced.push(a.device_id.clone());
            let top: Vec<&str> = a.top.iter().take(3).map(String::as_str).collect();
            let what = format!(
                "anomaly on {}: score {:.1}, top features {}",
                a.device_id,
                a.score,
                top.join(", ")
            );
            if a.device_id == WATCHED {
                self.anomaly = Some(t);
            }
            line(t, &what);
        }
        Ok(())
    }

    /// The phases that did not happen.
    fn missing(&self) -> Vec<&'static str> {
        [
            ("provisioning", self.provisioned),
            ("features", self.features),
            ("anomaly on motor-17", self.anomaly),
            ("capture command", self.command),
            ("stored capture", self.capture),
        ]
        .into_iter()
        .filter(|(_, t)| t.is_none())
        .map(|(name, _)| name)
        .collect()
    }

    fn summary(&self) {
        let phases = [
            ("provisioned", self.provisioned),
            ("first features", self.features),
            ("anomaly on motor-17", self.anomaly),
            ("capture command delivered", self.command),
            ("30 s capture stored", self.capture),
        ];
        for (name, t) in phases {
            match t {
                Some(t) => println!("- {name}: after {t:.1} s"),
                None => println!("- {name}: DID NOT HAPPEN"),
            }
        }
    }
}

/// A timeline line on stdout.
fn line(t: f64, text: &str) {
    println!("[{t:>6.1}s] {text}");
}

/// Whether the hub recorded delivery of a C2D message to the watched motor.
fn delivered(api: &Api) -> Result<bool> {
    let answer = api.get(&format!("/api/feedback?deviceId={WATCHED}"))?;
    Ok(answer["items"]
        .as_array()
        .is_some_and(|items| items.iter().any(|f| f["outcome"] == "delivered")))
}

/// The API URLs and CLI commands to look at the result with.
fn where_to_look(api: &str, data: &Path) {
    let d = data.display();
    println!(
        "\n## Where to look\n\n\
         While the hub runs (or after `bosun serve --dev --data-dir DIR`, with --keep):\n\
         - {api}/api/anomalies?deviceId={WATCHED}\n\
         - {api}/api/captures?deviceId={WATCHED}\n\
         - {api}/api/series?field=x.envelope.bpfo.0&deviceId={WATCHED}&from=-15m&step=5s&agg=max\n\
         - {api}/metrics\n\
         - bosun series anomalies --device {WATCHED} --api {api} --data-dir {d}\n\
         - bosun series query --field x.resonance --device {WATCHED} --from -15m --step 5s --api {api} --data-dir {d}\n\
         - bosun capture list --device {WATCHED} --api {api} --data-dir {d}\n\
         - bosun twin get {WATCHED} --api {api} --data-dir {d}"
    );
}

/// Copies a directory tree (when a rename across file systems fails).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target: PathBuf = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
