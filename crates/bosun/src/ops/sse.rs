//! Server-sent events (the `text/event-stream` format of the HTML standard), read from a
//! response body for `bosun events tail`.
//!
//! Owns only the line format: `event:` and `data:` fields, comments (`:` lines, which
//! the API sends as keep-alives), and the blank line that ends an event. The transport
//! (chunked body) is `client.rs`'s.

use std::io::{self, BufRead, Read};

/// Longest line accepted: events are small JSON documents.
const MAX_LINE: u64 = 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// `event:` (empty when absent; the standard calls that `message`).
    pub(crate) event: String,
    /// `data:` lines joined with `\n`.
    pub(crate) data: String,
}

/// Reads events one at a time.
pub(crate) struct EventReader<R> {
    /// The body.
    input: R,
}

impl<R: BufRead> EventReader<R> {
    /// Reads events from `input`.
    pub(crate) fn new(input: R) -> EventReader<R> {
        EventReader { input }
    }

    /// The next event; `None` when the stream ends.
    pub(crate) fn next_message(&mut self) -> io::Result<Option<Message>> {
        let mut event = String::new();
        let mut data: Option<String> = None;
        loop {
            let mut line = Vec::new();
            let n = Read::take(&mut self.input, MAX_LINE).read_until(b'\n', &mut line)?;
            if n == 0 {
                // A half-built event at the end of the stream is dropped, as the
                // standard says.
                return Ok(None);
            }
            if line.last() != Some(&b'\n') {
                return Err(if n as u64 >= MAX_LINE {
                    io::Error::new(io::ErrorKind::InvalidData, "event line too long")
                } else {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "event stream ended inside a line",
                    )
                });
            }
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line);
            if line.is_empty() {
                if let Some(data) = data.take() {
                    return Ok(Some(Message {
                        event: std::mem::take(&mut event),
                        data,
                    }));
                }
                event.clear();
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event = value.to_owned(),
                "data" => {
                    let data = data.get_or_insert_with(String::new);
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(raw: &str) -> Vec<Message> {
        let mut reader = EventReader::new(raw.as_bytes());
        let mut out = Vec::new();
        while let Some(m) = reader.next_message().expect("parses") {
            out.push(m);
        }
        out
    }

    #[test]
    fn events_comments_and_multiline_data() {
        let raw = ": keep-alive\n\nevent: deviceConnected\ndata: {\"a\":1}\n\n\
                   event: lagged\r\ndata:{\"skipped\":2}\r\n\r\ndata: one\ndata: two\nid: 7\n\n\
                   event: only-name\n\nevent: cut\ndata: x\n";
        let messages = all(raw);
        assert_eq!(
            messages,
            [
                Message {
                    event: "deviceConnected".into(),
                    data: "{\"a\":1}".into()
                },
                Message {
                    event: "lagged".into(),
                    data: "{\"skipped\":2}".into()
                },
                Message {
                    event: String::new(),
                    data: "one\ntwo".into()
                },
            ]
        );
    }

    #[test]
    fn bad_bytes_do_not_panic() {
        let raw = b"event: \xff\xfe\ndata: \xc3\n\n";
        let mut reader = EventReader::new(&raw[..]);
        let m = reader.next_message().expect("lossy").expect("event");
        assert!(m.event.contains('\u{fffd}'));
        let mut cut = EventReader::new(&b"data: x"[..]);
        assert!(cut.next_message().is_err());
    }
}
