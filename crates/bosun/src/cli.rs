//! The command line: every subcommand, flag and `--help` example lives here.
//!
//! This module only describes the command line (clap derive); it does not act on it.
//! The operator commands that call the REST API (`device`, `twin`, `group`, `method`,
//! `c2d`, `events`) keep their flags and examples beside their code in `ops/`; they are
//! named here. `main.rs` dispatches, `config.rs` layers the flags over file and environment, and
//! `serve.rs` runs the server. Flags that also exist as configuration keys are `Option`s
//! so that "not given" can be told apart from "given with the default value".

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::LogFormat;
use crate::ops;

/// Top-level help epilogue: the commands a newcomer reaches for first.
const MAIN_EXAMPLES: &str = "\
Examples:
  bosun serve --dev                      # broker + metrics on 127.0.0.1, data in ./bosun-data
  bosun serve --config bosun.toml        # settings from a file (see docs/configuration.md)
  bosun config show --output json        # the effective configuration
  bosun device list                      # the device registry, through the REST API
  bosun twin patch pump-7 --desired '{\"mode\":\"alarm\"}'

Exit codes: 0 ok, 1 failure, 2 usage error.";

/// `bosun serve --help` epilogue.
const SERVE_EXAMPLES: &str = "\
Examples:
  bosun serve --dev
  bosun serve --data-dir /var/lib/bosun --mqtt 0.0.0.0:1883 --http 127.0.0.1:9100
  bosun serve --mqtt 127.0.0.1:0 --mqtts 127.0.0.1:0 --http 127.0.0.1:0   # port 0: pick free ports
  bosun serve --mqtts off                                # no TLS listener
  BOSUN_MQTT__MAX_INFLIGHT=32 bosun serve --config bosun.toml --log-format json

Once the listeners are bound, these lines go to stdout (no mqtts or https line with
--mqtts off; no https line with --https off):
  listening mqtt 127.0.0.1:1883
  listening mqtts 127.0.0.1:8883
  listening https 127.0.0.1:8443
  listening http 127.0.0.1:8080
MQTT over TLS uses a certificate from a local CA made in DATA_DIR/tls/ unless
tls.cert_file/tls.key_file are set; clients trust DATA_DIR/tls/ca.pem.
Logs go to stderr. SIGTERM or Ctrl-C shuts down gracefully; a second one exits at once.";

/// `bosun config --help` epilogue.
const CONFIG_EXAMPLES: &str = "\
Examples:
  bosun config show
  bosun config show --config bosun.toml --output json";

/// `bosun config show --help` epilogue.
const CONFIG_SHOW_EXAMPLES: &str = "\
Examples:
  bosun config show > bosun.toml                       # a complete file to edit
  BOSUN_MQTT__MAX_INFLIGHT=7 bosun config show         # check an override took effect
  bosun config show --config bosun.toml --output json

Layering: built-in defaults < --config file < BOSUN_SECTION__KEY environment variables.";

/// bosun: one binary for a device-to-cloud IoT platform.
#[derive(Debug, Parser)]
#[command(name = "bosun", version, about, after_help = MAIN_EXAMPLES)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the hub: the MQTT broker plus the HTTP endpoint for metrics and health.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Inspect the configuration.
    #[command(after_help = CONFIG_EXAMPLES, subcommand_required = true)]
    Config {
        /// What to do with the configuration.
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage devices in the registry (through the hub's REST API).
    #[command(after_help = ops::device::EXAMPLES, subcommand_required = true)]
    Device(ops::device::DeviceArgs),
    /// Read and patch device twins, run twin queries.
    #[command(after_help = ops::twin::EXAMPLES, subcommand_required = true)]
    Twin(ops::twin::TwinArgs),
    /// Define device groups by twin-query conditions and list their devices.
    #[command(after_help = ops::group::EXAMPLES, subcommand_required = true)]
    Group(ops::group::GroupArgs),
    /// Manage provisioning enrollments (zero-touch device registration).
    #[command(after_help = ops::enrollment::EXAMPLES, subcommand_required = true)]
    Enrollment(ops::enrollment::EnrollmentArgs),
    /// Call direct methods on devices.
    #[command(after_help = ops::method::EXAMPLES, subcommand_required = true)]
    Method(ops::method::MethodArgs),
    /// Send cloud-to-device messages, inspect queues and feedback.
    #[command(after_help = ops::c2d::EXAMPLES, subcommand_required = true)]
    C2d(ops::c2d::C2dArgs),
    /// Follow device events as they happen.
    #[command(after_help = ops::events::EXAMPLES, subcommand_required = true)]
    Events(ops::events::EventsArgs),
    /// Query the time series the data pipeline stores, and its anomaly events.
    #[command(after_help = ops::series::EXAMPLES, subcommand_required = true)]
    Series(ops::series::SeriesArgs),
    /// List and download raw captures devices streamed after an anomaly.
    #[command(after_help = ops::capture::EXAMPLES, subcommand_required = true)]
    Capture(ops::capture::CaptureArgs),
    /// Register Protobuf schemas (.proto files or descriptor sets) the pipeline decodes
    /// device messages with, and assign content types to devices.
    #[command(after_help = ops::schema::EXAMPLES, subcommand_required = true)]
    Schema(ops::schema::SchemaArgs),
    /// Device certificates: the built-in CA, registered CAs, revocation (on the data
    /// directory, no server needed).
    #[command(after_help = ops::ca::EXAMPLES, subcommand_required = true)]
    Ca(ops::ca::CaArgs),
    /// Offline vibration analytics on raw recordings: anomaly scores against a healthy
    /// baseline and bearing-defect diagnosis (no server needed).
    #[command(after_help = ops::dsp::EXAMPLES, subcommand_required = true)]
    Dsp(ops::dsp::DspArgs),
    /// Signed firmware for OTA updates: keys and signing (offline), upload and list.
    #[command(after_help = ops::firmware::EXAMPLES, subcommand_required = true)]
    Firmware(ops::firmware::FirmwareArgs),
    /// Roll firmware out to a device group in phases, behind health gates.
    #[command(after_help = ops::rollout::EXAMPLES, subcommand_required = true)]
    Rollout(ops::rollout::RolloutArgs),
    /// Simulate a fleet of devices against a hub and report what the hub saw.
    #[command(after_help = ops::sim::EXAMPLES)]
    Sim(ops::sim::SimArgs),
    /// The closed loop in one command: a hub, 100 simulated motors, three bearing
    /// faults, the anomaly, the capture command and the stored capture.
    #[command(after_help = ops::demo::EXAMPLES)]
    Demo(ops::demo::DemoArgs),
}

/// Flags of `bosun serve`; each one overrides the configuration key named in its help.
#[derive(Debug, Args, Default)]
pub(crate) struct ServeArgs {
    /// Directory for the durable log and other state; created if missing
    /// [serve.data_dir, default: ./bosun-data].
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// MQTT listener address; port 0 picks a free port [serve.mqtt, default: 127.0.0.1:1883].
    #[arg(long, value_name = "ADDR")]
    pub(crate) mqtt: Option<SocketAddr>,
    /// MQTT-over-TLS listener address, or `off` [tls.addr and tls.enabled,
    /// default: 127.0.0.1:8883].
    #[arg(long, value_name = "ADDR|off")]
    pub(crate) mqtts: Option<ListenFlag>,
    /// HTTP listener for /metrics and /healthz [serve.http, default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub(crate) http: Option<SocketAddr>,
    /// HTTPS API listener (firmware downloads; needs the TLS listener), or `off`
    /// [tls.https_addr and tls.https, default: 127.0.0.1:8443].
    #[arg(long, value_name = "ADDR|off")]
    pub(crate) https: Option<ListenFlag>,
    /// Configuration file (TOML), layered over the built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Admit anonymous MQTT clients from loopback, for local experiments [serve.dev].
    #[arg(long)]
    pub(crate) dev: bool,
    /// Log line format on stderr [serve.log_format, default: text].
    #[arg(long, value_name = "FORMAT")]
    pub(crate) log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `info,broker=debug`; beats RUST_LOG
    /// [serve.log_level, default: info].
    #[arg(long, value_name = "FILTER")]
    pub(crate) log_level: Option<String>,
}

/// A listener flag's value: an address, or `off` to not listen at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListenFlag {
    /// Do not start this listener.
    Off,
    /// Listen here.
    Addr(SocketAddr),
}

impl std::str::FromStr for ListenFlag {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.eq_ignore_ascii_case("off") {
            return Ok(ListenFlag::Off);
        }
        text.parse()
            .map(ListenFlag::Addr)
            .map_err(|e| format!("{e}; expected an address such as 127.0.0.1:8883, or off"))
    }
}

/// Subcommands of `bosun config`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the effective configuration after layering defaults, file and environment.
    #[command(after_help = CONFIG_SHOW_EXAMPLES)]
    Show(ConfigShowArgs),
}

/// Flags of `bosun config show`.
#[derive(Debug, Args)]
pub(crate) struct ConfigShowArgs {
    /// Configuration file (TOML), layered over the built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_name = "FORMAT", default_value = "toml")]
    pub(crate) output: OutputFormat,
}

/// How commands that print data print it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// TOML, loadable again with `--config`.
    Toml,
    /// JSON, for scripts.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn unset_flags_stay_unset() {
        let cli = Cli::try_parse_from(["bosun", "serve"]).expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert!(args.mqtt.is_none() && args.http.is_none() && !args.dev);
        assert!(args.mqtts.is_none());
    }

    #[test]
    fn mqtts_takes_an_address_or_off() {
        let parse = |value: &str| {
            let cli = Cli::try_parse_from(["bosun", "serve", "--mqtts", value])?;
            let Command::Serve(args) = cli.command else {
                panic!("not serve")
            };
            Ok::<_, clap::Error>(args.mqtts)
        };
        assert_eq!(parse("off").expect("off"), Some(ListenFlag::Off));
        assert_eq!(
            parse("127.0.0.1:0").expect("address"),
            Some(ListenFlag::Addr(SocketAddr::from(([127, 0, 0, 1], 0))))
        );
        assert!(parse("localhost").is_err());
    }

    #[test]
    fn every_subcommand_has_examples() {
        let mut cmd = Cli::command();
        cmd.build();
        fn check(cmd: &clap::Command) {
            let help = cmd
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                help.contains("Examples:"),
                "`{}` has no examples",
                cmd.get_name()
            );
            cmd.get_subcommands()
                .filter(|c| c.get_name() != "help")
                .for_each(check);
        }
        check(&cmd);
    }
}
