//! The `bosun` binary: parse the command line, run the subcommand, map the outcome to
//! an exit code (0 ok, 1 failure, 2 usage — clap exits with 2 on its own).
//!
//! Layout:
//! - `cli`: the clap definitions, with examples in every `--help`.
//! - `config`: settings layered from defaults, TOML file, `BOSUN_*` env and flags.
//! - `serve`: `bosun serve` lifecycle: start, announce, signals, ordered shutdown.
//! - `control`: opens the control-plane store and starts the hub and its REST API.
//! - `http`: `/metrics`, `/healthz` and the REST API.
//! - `logging`: the stderr `tracing` subscriber.
//! - `ops`: operator commands (`device`, `twin`, `group`, `method`, `c2d`, `events`) over
//!   the REST API.
//! - `trim`: returns freed heap to the OS when the broker goes quiet.

mod cli;
mod config;
mod control;
mod http;
mod logging;
mod ops;
mod serve;
mod trim;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, ConfigCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the chosen subcommand.
fn dispatch(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Config {
            command: ConfigCommand::Show(args),
        } => config::show(args),
        Command::Device(args) => ops::device::run(args),
        Command::Twin(args) => ops::twin::run(args),
        Command::Group(args) => ops::group::run(args),
        Command::Enrollment(args) => ops::enrollment::run(args),
        Command::Method(args) => ops::method::run(args),
        Command::C2d(args) => ops::c2d::run(args),
        Command::Events(args) => ops::events::run(args),
        Command::Series(args) => ops::series::run(args),
        Command::Capture(args) => ops::capture::run(args),
        Command::Schema(args) => ops::schema::run(args),
        Command::Ca(args) => ops::ca::run(args),
        Command::Dsp(args) => ops::dsp::run(args),
        Command::Firmware(args) => ops::firmware::run(args),
        Command::Rollout(args) => ops::rollout::run(args),
        Command::Sim(args) => ops::sim::run(args),
        Command::Demo(args) => ops::demo::run(args),
    }
}
