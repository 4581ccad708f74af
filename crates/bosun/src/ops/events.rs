//! `bosun events tail`: follow device events (connects, disconnects, twin changes,
//! creations, deletions) as they happen, from the API's server-sent event stream.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::api::{query, Api, ApiArgs, Output};
use super::sse::Message;
use super::table::{cell, sanitize, text};

/// `bosun events --help` epilogue.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bosun events tail
  bosun events tail --device pump-7
  bosun events tail --output json | jq -c 'select(.kind == \"deviceDisconnected\")'";

const TAIL_EXAMPLES: &str = "\
Examples:
  bosun events tail
  bosun events tail --device pump-7
  bosun events tail --output json          # one JSON event per line

Runs until interrupted (Ctrl-C) or the hub shuts down. If this terminal reads too slowly
the hub skips events rather than queue them; a warning on stderr says how many.";

/// Silence after which the stream is taken as dead: the API sends a keep-alive every
/// 15 s, so four missed ones mean the hub or the network is gone.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// `bosun events …`.
#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// Where the API is and how to print.
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: EventsCommand,
}

/// The event verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// Print events as they happen.
    #[command(after_help = TAIL_EXAMPLES)]
    Tail {
        /// Only this device's events.
        #[arg(long, value_name = "ID")]
        device: Option<String>,
    },
}

/// Runs `bosun events …`.
pub(crate) fn run(args: &EventsArgs) -> Result<()> {
    let EventsCommand::Tail { device } = &args.command;
    let api = Api::from_args(&args.api)?;
    let target = format!("/api/events{}", query(&[("deviceId", device.clone())]));
    let mut events = api.events(&target, IDLE_LIMIT)?;
    let stdout = std::io::stdout();
    while let Some(message) = events
        .next_message()
        .context("the event stream broke off")?
    {
        let Some(line) = render(&message, args.api.output) else {
            continue;
        };
        let mut out = stdout.lock();
        // A closed stdout (`| head`) ends the command quietly.
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// The line to print for `message`; `None` for what goes to stderr or nowhere.
fn render(message: &Message, output: Output) -> Option<String> {
    let data: Value = serde_json::from_str(&message.data).unwrap_or(Value::Null);
    if message.event == "lagged" {
        eprintln!(
            "warning: {} event(s) skipped: this reader fell behind",
            cell(&data["skipped"])
        );
        return None;
    }
    match output {
        Output::Json => Some(message.data.clone()),
        Output::Table => Some(
            sanitize(&format!(
                "{}  {:<18}  {}  {}",
                text(&data, "time"),
                text(&data, "kind"),
                text(&data, "deviceId"),
                match &data["detail"] {
                    Value::Object(map) if map.is_empty() => String::new(),
                    Value::Null => String::new(),
                    detail => detail.to_string(),
                }
            ))
            .trim_end()
            .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines() {
        let message = Message {
            event: "deviceDisconnected".into(),
            data: r#"{"kind":"deviceDisconnected","deviceId":"pump-7","time":"2025-01-01T00:00:00.000Z","detail":{"reason":"keep-alive timeout"}}"#.into(),
        };
        assert_eq!(
            render(&message, Output::Table).as_deref(),
            Some("2025-01-01T00:00:00.000Z  deviceDisconnected  pump-7  {\"reason\":\"keep-alive timeout\"}")
        );
        assert_eq!(render(&message, Output::Json), Some(message.data.clone()));
        let lagged = Message {
            event: "lagged".into(),
            data: r#"{"skipped":3}"#.into(),
        };
        assert_eq!(render(&lagged, Output::Table), None);
        let garbage = Message {
            event: "x".into(),
            data: "not json".into(),
        };
        assert_eq!(
            render(&garbage, Output::Table).as_deref(),
            Some("-  -                   -")
        );
    }
}
