//! `bosun c2d send|list|purge|feedback`: cloud-to-device messages, through the REST API.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::api::{print_json, query, segment, Api, ApiArgs, Output};
use super::table::{shorten, text, Table, MAX_FREE_CELL};

/// `bosun c2d --help` epilogue.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bosun c2d send pump-7 '{\"capture\":{\"rateHz\":10000}}' --property kind=capture --ttl 600
  bosun c2d list pump-7
  bosun c2d purge pump-7
  bosun c2d feedback --device pump-7";

const SEND_EXAMPLES: &str = "\
Examples:
  bosun c2d send pump-7 'hello'
  bosun c2d send pump-7 '{\"capture\":{\"seconds\":30}}' --property kind=capture --ttl 600
  bosun c2d send pump-7 AAECAw== --base64          # binary payload

The message waits in the device's queue until it is delivered (the device acknowledges
it) or its time to live passes; `bosun c2d feedback` tells which.";

const LIST_EXAMPLES: &str = "\
Examples:
  bosun c2d list pump-7
  bosun c2d list pump-7 --output json";

const PURGE_EXAMPLES: &str = "\
Examples:
  bosun c2d purge pump-7            # each dropped message gets 'purged' feedback";

const FEEDBACK_EXAMPLES: &str = "\
Examples:
  bosun c2d feedback
  bosun c2d feedback --device pump-7 --all
  bosun c2d feedback --after 120 --output json     # records after sequence number 120";

/// `bosun c2d …`.
#[derive(Debug, Args)]
pub(crate) struct C2dArgs {
    /// Where the API is and how to print.
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: C2dCommand,
}

/// The cloud-to-device verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum C2dCommand {
    /// Queue a message for a device.
    #[command(after_help = SEND_EXAMPLES)]
    Send(SendArgs),
    /// Show the messages still queued for a device.
    #[command(after_help = LIST_EXAMPLES)]
    List {
        /// Device id.
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Drop every message queued for a device.
    #[command(after_help = PURGE_EXAMPLES)]
    Purge {
        /// Device id.
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Show what became of sent messages.
    #[command(after_help = FEEDBACK_EXAMPLES)]
    Feedback(FeedbackArgs),
}

/// `c2d send`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// Device id.
    #[arg(value_name = "ID")]
    pub(crate) id: String,
    /// Payload text (or base64 with --base64).
    #[arg(value_name = "PAYLOAD")]
    pub(crate) payload: String,
    /// PAYLOAD is base64-encoded binary.
    #[arg(long)]
    pub(crate) base64: bool,
    /// An application property; repeat for more.
    #[arg(long = "property", value_name = "KEY=VALUE", value_parser = super::parse_key_value)]
    pub(crate) properties: Vec<(String, String)>,
    /// Time to live in seconds [default: the hub's].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) ttl: Option<u64>,
}

/// `c2d feedback`.
#[derive(Debug, Args)]
pub(crate) struct FeedbackArgs {
    /// Only this device's messages.
    #[arg(long, value_name = "ID")]
    pub(crate) device: Option<String>,
    /// Only records after this sequence number.
    #[arg(long, value_name = "SEQ")]
    pub(crate) after: Option<u64>,
    /// Records per page (1–1000).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub(crate) limit: Option<u16>,
    /// Fetch every page, not just the first.
    #[arg(long)]
    pub(crate) all: bool,
}

/// Runs `bosun c2d …`.
pub(crate) fn run(args: &C2dArgs) -> Result<()> {
    let api = Api::from_args(&args.api)?;
    let output = args.api.output;
    match &args.command {
        C2dCommand::Send(send) => {
            let reply = api.call(
                "POST",
                &messages_path(&send.id),
                Some(&send_body(send)),
                &[],
            )?;
            match output {
                Output::Json => print_json(&reply.json),
                Output::Table => super::emit(&format!(
                    "queued message {}\n",
                    text(&reply.json, "messageId")
                )),
            }
        }
        C2dCommand::List { id } => {
            let queue = api.get(&messages_path(id))?;
            match output {
                Output::Json => print_json(&queue),
                Output::Table => {
                    let items = queue["items"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    super::emit(&queue_table(items).render())
                }
            }
        }
        C2dCommand::Purge { id } => {
            let reply = api.call("DELETE", &messages_path(id), None, &[])?;
            match output {
                Output::Json => print_json(&reply.json),
                Output::Table => super::emit(&format!(
                    "purged {} message(s)\n",
                    text(&reply.json, "purged")
                )),
            }
        }
        C2dCommand::Feedback(feedback) => run_feedback(&api, feedback, output),
    }
}

fn messages_path(id: &str) -> String {
    format!("/api/devices/{}/messages", segment(id))
}

/// The API's message for the flags.
fn send_body(send: &SendArgs) -> Value {
    let mut body = if send.base64 {
        json!({ "payloadBase64": send.payload })
    } else {
        json!({ "payload": send.payload })
    };
    if !send.properties.is_empty() {
        let properties: Map<String, Value> = send
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        body["properties"] = Value::Object(properties);
    }
    if let Some(ttl) = send.ttl {
        body["ttlSeconds"] = json!(ttl);
    }
    body
}

/// `c2d feedback`: pages until done with `--all`.
fn run_feedback(api: &Api, args: &FeedbackArgs, output: Output) -> Result<()> {
    let pages = super::collect_pages(args.all, |continuation| {
        api.get(&format!(
            "/api/feedback{}",
            query(&[
                ("deviceId", args.device.clone()),
                // The first page starts at --after; later pages at the continuation.
                (
                    "after",
                    args.after
                        .filter(|_| continuation.is_none())
                        .map(|a| a.to_string())
                ),
                ("limit", args.limit.map(|l| l.to_string())),
                ("continuation", continuation.map(str::to_owned)),
            ])
        ))
    })?;
    super::print_pages(&pages, output, feedback_table, "more records: add --all")
}

/// The feedback table.
fn feedback_table(items: &[Value]) -> Table {
    let mut table = Table::new(&["SEQ", "TIME", "DEVICE", "MESSAGE", "OUTCOME"]);
    for f in items {
        table.push(vec![
            text(f, "seq"),
            text(f, "time"),
            text(f, "deviceId"),
            text(f, "messageId"),
            text(f, "outcome"),
        ]);
    }
    table
}

/// The queued-messages table.
fn queue_table(items: &[Value]) -> Table {
    let mut table = Table::new(&["MESSAGE", "ENQUEUED", "EXPIRES", "PROPERTIES", "PAYLOAD"]);
    for m in items {
        let properties = match m["properties"].as_object() {
            Some(map) if !map.is_empty() => map
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(","),
            _ => "-".to_owned(),
        };
        let payload = match m["payload"].as_str() {
            Some(text) => text.to_owned(),
            None => format!("base64:{}", text(m, "payloadBase64")),
        };
        table.push(vec![
            text(m, "messageId"),
            text(m, "enqueuedTime"),
            text(m, "expiryTime"),
            shorten(&properties, MAX_FREE_CELL),
            shorten(&payload, MAX_FREE_CELL),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_bodies() {
        let send = SendArgs {
            id: "d".into(),
            payload: "AAE=".into(),
            base64: true,
            properties: vec![("k".into(), "v=w".into())],
            ttl: Some(60),
        };
        assert_eq!(
            send_body(&send),
            json!({"payloadBase64": "AAE=", "properties": {"k": "v=w"}, "ttlSeconds": 60})
        );
    }

    #[test]
    fn queue_rows() {
        let items = [
            json!({"messageId": "m1", "enqueuedTime": "t0", "expiryTime": "t1",
                   "properties": {"kind": "capture"}, "payload": "hello\nworld"}),
            json!({"messageId": "m2", "enqueuedTime": "t0", "expiryTime": "t1",
                   "properties": {}, "payloadBase64": "/wA="}),
        ];
        assert_eq!(
            queue_table(&items).render(),
            "MESSAGE  ENQUEUED  EXPIRES  PROPERTIES    PAYLOAD\n\
             m1       t0        t1       kind=capture  hello\u{fffd}world\n\
             m2       t0        t1       -             base64:/wA=\n"
        );
    }
}
