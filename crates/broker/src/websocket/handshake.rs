//! The opening handshake: an HTTP/1.1 `GET` asking to upgrade to a WebSocket, answered
//! with `101 Switching Protocols` or with an HTTP error and a closed connection.
//!
//! Pure: request bytes in, response bytes out, so every refusal is testable without a
//! socket. Only what MQTT clients send is accepted: version 13, one of [`PATHS`], and the
//! `mqtt` subprotocol when the client offers subprotocols (MQTT 5.0 §6.0 requires it
//! to; clients that send none are served anyway).

use ring::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY};

/// Request paths served: `/mqtt` by MQTT convention, and the path Azure IoT device SDKs
/// use for MQTT over WebSocket, so they work unmodified.
pub const PATHS: [&str; 2] = ["/mqtt", "/$iothub/websocket"];
/// Longest request head read before answering 431.
pub(super) const HEAD_LIMIT: usize = 8 * 1024;
/// RFC 6455 §1.3: appended to the client's key before hashing.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Subprotocols we speak, in order of preference (`mqttv3.1` is what old 3.1 clients
/// offer; the bytes are the same MQTT either way).
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// The handshake's outcome: bytes to send, and whether the WebSocket is open after them.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP response.
    pub response: Vec<u8>,
    /// True for `101`; otherwise the connection is closed after the response.
    pub upgraded: bool,
    /// Why it was refused, for the log.
    pub refusal: Option<&'static str>,
    /// Bytes of the request head (what follows is already WebSocket frames).
    pub consumed: usize,
}

/// Answers a complete request head (through the blank line). `None` while the head is
/// incomplete and under [`HEAD_LIMIT`].
pub fn upgrade(head: &[u8]) -> Option<Answer> {
    let Some(end) = find(head, b"\r\n\r\n") else {
        return (head.len() >= HEAD_LIMIT).then(|| refuse(431, "request head too large"));
    };
    let Ok(text) = std::str::from_utf8(&head[..end]) else {
        return Some(refuse(400, "request head is not UTF-8"));
    };
    let mut answer = match check(text) {
        Ok((key, protocol)) => accept(key, protocol),
        Err((status, reason)) => refuse(status, reason),
    };
    answer.consumed = end + 4;
    Some(answer)
}

/// The key and chosen subprotocol of a valid upgrade request.
fn check(head: &str) -> Result<(&str, Option<&'static str>), (u16, &'static str)> {
    let mut lines = head.split("\r\n");
    let mut request = lines.next().unwrap_or_default().split(' ');
    let (method, target, version) = (request.next(), request.next(), request.next());
    if method != Some("GET") || !version.is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err((400, "not an HTTP GET"));
    }
    let path = target
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default();
    if !PATHS.contains(&path) {
        return Err((404, "not the MQTT path"));
    }
    let (mut key, mut upgrade, mut connection, mut version13) = (None, false, false, false);
    let mut offered: Vec<&str> = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err((400, "malformed header line"));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "upgrade" => upgrade |= has_token(value, "websocket"),
            "connection" => connection |= has_token(value, "upgrade"),
            "sec-websocket-version" => version13 = value == "13",
            "sec-websocket-key" => key = Some(value),
            "sec-websocket-protocol" => offered.extend(value.split(',').map(str::trim)),
            _ => {}
        }
    }
    if !upgrade || !connection {
        return Err((400, "not a WebSocket upgrade"));
    }
    if !version13 {
        return Err((426, "unsupported WebSocket version"));
    }
    // The key is 16 random bytes in base64: 24 characters ending in "==".
    let key = key
        .filter(|k| k.len() == 24 && k.ends_with("=="))
        .ok_or((400, "missing or malformed Sec-WebSocket-Key"))?;
    let protocol = SUBPROTOCOLS.into_iter().find(|p| offered.contains(p));
    if !offered.is_empty() && protocol.is_none() {
        return Err((400, "no MQTT subprotocol offered"));
    }
    Ok((key, protocol))
}

fn accept(key: &str, protocol: Option<&'static str>) -> Answer {
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    );
    if let Some(p) = protocol {
        response.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    response.push_str("\r\n");
    Answer {
        response: response.into_bytes(),
        upgraded: true,
        refusal: None,
        consumed: 0,
    }
}

fn refuse(status: u16, reason: &'static str) -> Answer {
    let phrase = match status {
        404 => "Not Found",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        _ => "Bad Request",
    };
    let extra = if status == 426 {
        "Sec-WebSocket-Version: 13\r\n"
    } else {
        ""
    };
    let response = format!(
        "HTTP/1.1 {status} {phrase}\r\n{extra}Content-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{reason}",
        reason.len()
    );
    Answer {
        response: response.into_bytes(),
        upgraded: false,
        refusal: Some(reason),
        consumed: 0,
    }
}

/// `Sec-WebSocket-Accept`: base64 of SHA-1 over key + GUID (RFC 6455 §4.2.2).
fn accept_key(key: &str) -> String {
    let hash = digest(
        &SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}{ACCEPT_GUID}").as_bytes(),
    );
    base64::encode(hash.as_ref())
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request(extra: &str) -> String {
        format!(
            "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    }

    #[test]
    fn the_rfc_example_key_gets_the_rfc_accept_value() {
        // RFC 6455 §1.3's worked example.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn an_mqtt_client_is_upgraded_with_the_mqtt_subprotocol() {
        let req = request("Sec-WebSocket-Protocol: mqtt\r\n");
        let mut bytes = req.clone().into_bytes();
        bytes.extend_from_slice(&[0x82, 0x80]);
        let answer = upgrade(&bytes).expect("whole");
        assert!(answer.upgraded);
        assert_eq!(answer.consumed, req.len());
        let text = String::from_utf8(answer.response).expect("utf-8");
        assert!(text.starts_with("HTTP/1.1 101 "));
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.contains("Sec-WebSocket-Protocol: mqtt\r\n"));
        let azure = request("").replace("/mqtt", "/$iothub/websocket?iothub-no-client-cert=true");
        assert!(upgrade(azure.as_bytes()).expect("whole").upgraded);
        let none = upgrade(request("").as_bytes()).expect("whole");
        assert!(none.upgraded);
        assert!(!String::from_utf8_lossy(&none.response).contains("Sec-WebSocket-Protocol"));
    }

    #[test]
    fn bad_requests_get_the_right_status() {
        let cases = [
            (request("Sec-WebSocket-Protocol: chat\r\n"), "400"),
            (request("").replace("/mqtt", "/other"), "404"),
            (request("").replace("Version: 13", "Version: 8"), "426"),
            (
                request("").replace("Upgrade: websocket", "Upgrade: h2c"),
                "400",
            ),
            (
                request("").replace("dGhlIHNhbXBsZSBub25jZQ==", "short"),
                "400",
            ),
            (request("").replace("GET", "POST"), "400"),
            (request("Broken header\r\n"), "400"),
        ];
        for (req, status) in cases {
            let answer = upgrade(req.as_bytes()).expect("whole");
            assert!(!answer.upgraded, "{req}");
            let text = String::from_utf8(answer.response).expect("utf-8");
            assert!(
                text.starts_with(&format!("HTTP/1.1 {status} ")),
                "{req} → {text}"
            );
        }
    }

    #[test]
    fn incomplete_heads_wait_until_the_limit() {
        assert_eq!(upgrade(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n"), None);
        let long = vec![b'a'; HEAD_LIMIT];
        let answer = upgrade(&long).expect("over the limit");
        assert!(String::from_utf8_lossy(&answer.response).starts_with("HTTP/1.1 431 "));
    }

    proptest! {
        #[test]
        fn arbitrary_heads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut head = bytes.clone();
            let _ = upgrade(&head);
            head.extend_from_slice(b"\r\n\r\n");
            let _ = upgrade(&head);
        }
    }
}
