//! Fuzzes what a WebSocket client sends before and after the upgrade: the HTTP request
//! head (any bytes get an answer or "need more", never a panic, and a refusal is never
//! an upgrade) and the frame decoder (any bytes decode to frames or an error with a
//! close status; a frame never claims more bytes than were given).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(answer) = broker::websocket::upgrade(data) {
        assert_eq!(answer.upgraded, answer.refusal.is_none());
        assert!(answer.consumed <= data.len());
    }
    let mut decoder = broker::websocket::Decoder::new(1 << 16);
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        match decoder.decode(&mut buf) {
            Ok(Some(_)) => assert!(buf.len() < before, "a frame consumed nothing"),
            Ok(None) => break,
            Err(e) => {
                assert!((1002..=1009).contains(&e.status()));
                break;
            }
        }
    }
});
