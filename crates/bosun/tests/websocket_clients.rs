//! MQTT over WebSocket as real clients use it: paho-mqtt with `transport="websockets"`
//! on the plain listener (`ws://…/mqtt`) and on the TLS listener (`wss://…/mqtt`),
//! both protocol versions, messages crossing between WebSocket and TCP clients; and a
//! raw socket for the refusals (wrong path, text frames, unmasked frames) that must
//! cost other clients nothing.
#![allow(clippy::unwrap_used)]

mod common;
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::Bosun;
use support::{python, Client, Version, STEP};

/// `sub.py` over a WebSocket (with `extra` such as `--cafile`), ready once subscribed.
fn ws_sub(addr: SocketAddr, version: Version, topic: &str, extra: &[&str]) -> Client {
    let mut args = vec![
        "--protocol",
        version.paho(),
        "--timeout",
        "45",
        "--websocket",
    ];
    args.extend_from_slice(&["--topic", topic, "--qos", "1", "--until-payload", "END"]);
    args.extend_from_slice(extra);
    let sub = python("sub.py", addr, &args);
    sub.wait_event("ready", STEP);
    sub
}

/// `pub.py` to completion: `count` messages then END.
fn publish(addr: SocketAddr, version: Version, topic: &str, extra: &[&str]) {
    for payload in ["msg-{i}", "END"] {
        let count = if payload == "END" { "1" } else { "20" };
        let mut args = vec!["--protocol", version.paho(), "--timeout", "25"];
        args.extend_from_slice(&["--topic", topic, "--qos", "1", "--count", count]);
        args.extend_from_slice(&["--payload", payload]);
        args.extend_from_slice(extra);
        python("pub.py", addr, &args).wait_success(STEP * 2);
    }
}

fn received(sub: &Client) -> Vec<String> {
    sub.events("message")
        .iter()
        .map(|m| m["payload"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn expected() -> Vec<String> {
    let mut all: Vec<String> = (0..20).map(|i| format!("msg-{i}")).collect();
    all.push("END".into());
    all
}

fn plain_websocket_carries_messages(version: Version) {
    let broker = Bosun::start(&[]);
    let topic = format!("ws/plain/{}", version.paho());
    let sub = ws_sub(broker.mqtt_addr(), version, &topic, &[]);
    // The publisher speaks plain MQTT over TCP: both kinds meet in one broker.
    publish(broker.mqtt_addr(), version, &topic, &[]);
    sub.wait_event("done", STEP);
    assert_eq!(received(&sub), expected(), "{}", sub.dump());
}

#[test]
fn plain_websocket_carries_messages_v5() {
    plain_websocket_carries_messages(Version::V5);
}

#[test]
fn plain_websocket_carries_messages_v311() {
    plain_websocket_carries_messages(Version::V311);
}

#[test]
fn secure_websocket_carries_messages_both_ways() {
    let broker = Bosun::start(&[]);
    let ca = broker.data_dir().join("tls/ca.pem");
    let ca = ca.to_str().unwrap();
    let sub = ws_sub(
        broker.mqtts_addr(),
        Version::V5,
        "ws/tls",
        &["--cafile", ca],
    );
    publish(
        broker.mqtts_addr(),
        Version::V311,
        "ws/tls",
        &["--websocket", "--cafile", ca],
    );
    sub.wait_event("done", STEP);
    assert_eq!(received(&sub), expected(), "{}", sub.dump());
}

/// Sends `request` on a fresh connection and returns what the broker answered before
/// closing (or within the deadline).
fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    answer
}

const UPGRADE: &str =
    "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
     Sec-WebSocket-Protocol: mqtt\r\n\r\n";

/// A masked client frame (mask 1,2,3,4) with `first` as its first byte.
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut out = vec![first, 0x80 | payload.len() as u8];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

#[test]
fn bad_upgrades_and_bad_frames_are_refused_and_others_never_notice() {
    let broker = Bosun::start(&[]);
    let addr = broker.mqtt_addr();
    let sub = ws_sub(addr, Version::V5, "ws/bystander", &[]);

    let wrong_path = exchange(addr, UPGRADE.replace("/mqtt", "/chat").as_bytes());
    assert!(String::from_utf8_lossy(&wrong_path).starts_with("HTTP/1.1 404 "));
    let no_key = exchange(
        addr,
        UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "x").as_bytes(),
    );
    assert!(String::from_utf8_lossy(&no_key).starts_with("HTTP/1.1 400 "));

    // A text frame after a good upgrade: 101, then a close frame with status 1003.
    let mut request = UPGRADE.as_bytes().to_vec();
    request.extend(client_frame(0x81, b"{\"hello\":1}"));
    let answer = exchange(addr, &request);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
    assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    let head_end = text.find("\r\n\r\n").unwrap() + 4;
    assert_eq!(&answer[head_end..], [0x88, 0x02, 0x03, 0xEB], "close 1003");

    // An unmasked frame: close 1002.
    let mut request = UPGRADE.as_bytes().to_vec();
    request.extend([0x82, 0x02, 0x10, 0x00]);
    let answer = exchange(addr, &request);
    assert!(
        answer.ends_with(&[0x88, 0x02, 0x03, 0xEA]),
        "close 1002: {answer:?}"
    );

    publish(addr, Version::V5, "ws/bystander", &[]);
    sub.wait_event("done", STEP);
    assert_eq!(received(&sub), expected(), "{}", sub.dump());
}
