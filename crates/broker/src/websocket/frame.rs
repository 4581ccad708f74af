//! WebSocket frames (RFC 6455 §5), as far as an MQTT server needs them: binary data in
//! and out, ping/pong, close; no extensions, so the reserved bits must be zero.
//!
//! MQTT treats the WebSocket as a byte stream (MQTT 5.0 §6.0: packets may span frames
//! and frames may hold several packets), so data frames are not reassembled into
//! messages: each frame's payload is handed on as it arrives. Text frames are refused,
//! as the MQTT specification requires.

use bytes::{Buf, BytesMut};

/// Opcodes (RFC 6455 §5.2).
const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Close status codes (RFC 6455 §7.4.1).
pub(super) const CLOSE_NORMAL: u16 = 1000;

/// One decoded frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Payload of a binary or continuation frame: MQTT bytes.
    Data(BytesMut),
    /// A ping; the answer is a pong with the same payload.
    Ping(BytesMut),
    /// A pong (unsolicited ones are allowed and ignored).
    Pong,
    /// The peer closes, with its status code if it gave one.
    Close(Option<u16>),
}

/// Why the stream of frames cannot continue; each maps to a close status.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Unmasked client frame, reserved bits, bad opcode, fragmented or long control frame,
    /// continuation out of place.
    #[error("WebSocket protocol error: {0}")]
    Protocol(&'static str),
    /// A text frame: MQTT is binary.
    #[error("WebSocket text frames are not MQTT")]
    Text,
    /// A frame longer than the limit.
    #[error("WebSocket frame of {0} bytes is over the limit")]
    TooBig(u64),
}

impl FrameError {
    /// The close status to send (RFC 6455 §7.4.1).
    pub fn status(&self) -> u16 {
        match self {
            FrameError::Protocol(_) => 1002,
            FrameError::Text => 1003,
            FrameError::TooBig(_) => 1009,
        }
    }
}

/// Decodes client frames; remembers whether a fragmented data message is under way.
#[derive(Debug)]
pub struct Decoder {
    max_payload: u64,
    in_message: bool,
}

impl Decoder {
    /// A decoder that refuses frames over `max_payload` bytes.
    pub fn new(max_payload: u64) -> Decoder {
        Decoder {
            max_payload,
            in_message: false,
        }
    }

    /// The next whole frame at the front of `buf` (consumed), or `None` until more
    /// bytes arrive.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(header) = Header::parse(buf)? else {
            return Ok(None);
        };
        if header.len > self.max_payload {
            return Err(FrameError::TooBig(header.len));
        }
        let total = header.size as u64 + header.len;
        if (buf.len() as u64) < total {
            return Ok(None);
        }
        let len = usize::try_from(header.len).map_err(|_| FrameError::TooBig(header.len))?;
        buf.advance(header.size);
        let mut payload = buf.split_to(len);
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= header.mask[i % 4];
        }
        self.frame(header, payload).map(Some)
    }

    fn frame(&mut self, header: Header, payload: BytesMut) -> Result<Frame, FrameError> {
        match header.opcode {
            BINARY | CONTINUATION => {
                let starts = header.opcode == BINARY;
                if starts == self.in_message {
                    return Err(FrameError::Protocol(if starts {
                        "new message inside a fragmented one"
                    } else {
                        "continuation without a message"
                    }));
                }
                self.in_message = !header.fin;
                Ok(Frame::Data(payload))
            }
            TEXT => Err(FrameError::Text),
            CLOSE => Ok(Frame::Close(close_status(&payload)?)),
            PING => Ok(Frame::Ping(payload)),
            PONG => Ok(Frame::Pong),
            _ => Err(FrameError::Protocol("unknown opcode")),
        }
    }
}

/// A frame header, checked.
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Header bytes.
    size: usize,
    /// Payload bytes.
    len: u64,
}

impl Header {
    fn parse(buf: &[u8]) -> Result<Option<Header>, FrameError> {
        let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
            return Ok(None);
        };
        let (fin, opcode) = (b0 & 0x80 != 0, b0 & 0x0F);
        if b0 & 0x70 != 0 {
            return Err(FrameError::Protocol("reserved bits set"));
        }
        if b1 & 0x80 == 0 {
            return Err(FrameError::Protocol("client frame not masked"));
        }
        let (len, at) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                Some(b) => (u64::from_be_bytes(b), 10),
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        if opcode >= CLOSE && (!fin || len > 125) {
            return Err(FrameError::Protocol("fragmented or long control frame"));
        }
        let Some(mask) = buf
            .get(at..at + 4)
            .and_then(|m| <[u8; 4]>::try_from(m).ok())
        else {
            return Ok(None);
        };
        Ok(Some(Header {
            fin,
            opcode,
            mask,
            size: at + 4,
            len,
        }))
    }
}

fn close_status(payload: &[u8]) -> Result<Option<u16>, FrameError> {
    match payload {
        [] => Ok(None),
        [a, b, ..] => Ok(Some(u16::from_be_bytes([*a, *b]))),
        [_] => Err(FrameError::Protocol("one-byte close payload")),
    }
}

/// Appends a server frame (unmasked, FIN set) carrying `payload` with `opcode`.
fn encode(opcode: u8, payload: &[u8], out: &mut BytesMut) {
    out.reserve(payload.len() + 10);
    out.extend_from_slice(&[0x80 | opcode]);
    match payload.len() {
        n if n < 126 => out.extend_from_slice(&[n as u8]),
        n if n <= usize::from(u16::MAX) => {
            out.extend_from_slice(&[126]);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.extend_from_slice(&[127]);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// Appends a binary frame.
pub(super) fn encode_binary(payload: &[u8], out: &mut BytesMut) {
    encode(BINARY, payload, out);
}

/// Appends the pong answering a ping with `payload`.
pub(super) fn encode_pong(payload: &[u8], out: &mut BytesMut) {
    encode(PONG, payload, out);
}

/// Appends a close frame with `status`.
pub(super) fn encode_close(status: u16, out: &mut BytesMut) {
    encode(CLOSE, &status.to_be_bytes(), out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A client frame: masked with `mask`.
    fn client(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut server = BytesMut::new();
        encode(opcode, payload, &mut server);
        let mut out = vec![if fin { server[0] } else { server[0] & 0x7F }];
        let header_len = server.len() - payload.len();
        out.push(server[1] | 0x80);
        out.extend_from_slice(&server[2..header_len]);
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn decode_all(bytes: &[u8]) -> Result<Vec<Frame>, FrameError> {
        let (mut decoder, mut buf, mut frames) =
            (Decoder::new(1 << 20), BytesMut::from(bytes), Vec::new());
        while let Some(frame) = decoder.decode(&mut buf)? {
            frames.push(frame);
        }
        Ok(frames)
    }

    #[test]
    fn fragments_and_control_frames_decode_in_order() {
        let mut bytes = client(false, BINARY, b"\x10\x0c", [1, 2, 3, 4]);
        bytes.extend(client(true, PING, b"hi", [9, 9, 9, 9]));
        bytes.extend(client(true, CONTINUATION, &[7u8; 300], [5, 6, 7, 8]));
        bytes.extend(client(true, CLOSE, &1000u16.to_be_bytes(), [0, 1, 0, 1]));
        let frames = decode_all(&bytes).expect("valid");
        assert_eq!(frames[0], Frame::Data(BytesMut::from(&b"\x10\x0c"[..])));
        assert_eq!(frames[1], Frame::Ping(BytesMut::from(&b"hi"[..])));
        assert_eq!(frames[2], Frame::Data(BytesMut::from(&[7u8; 300][..])));
        assert_eq!(frames[3], Frame::Close(Some(1000)));
    }

    #[test]
    fn violations_map_to_their_close_status() {
        let unmasked = {
            let mut out = BytesMut::new();
            encode_binary(b"x", &mut out);
            out.to_vec()
        };
        let cases: [(Vec<u8>, u16); 6] = [
            (unmasked, 1002),
            (client(true, TEXT, b"{}", [1; 4]), 1003),
            (client(false, PING, b"", [1; 4]), 1002),
            (client(true, CONTINUATION, b"x", [1; 4]), 1002),
            (client(true, 0x3, b"", [1; 4]), 1002),
            (client(true, BINARY, &vec![0; 2 << 20], [1; 4]), 1009),
        ];
        for (bytes, status) in cases {
            let err = decode_all(&bytes).expect_err("invalid");
            assert_eq!(err.status(), status, "{err}");
        }
        let mut reserved = client(true, BINARY, b"x", [1; 4]);
        reserved[0] |= 0x40;
        assert_eq!(decode_all(&reserved).map_err(|e| e.status()), Err(1002));
    }

    #[test]
    fn server_frames_use_the_shortest_length_form() {
        for (len, header) in [(125, 2), (126, 4), (65_535, 4), (65_536, 10)] {
            let mut out = BytesMut::new();
            encode_binary(&vec![0; len], &mut out);
            assert_eq!(out.len() - len, header, "{len}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_all(&bytes);
        }

        #[test]
        fn data_split_anywhere_decodes_to_the_same_bytes(
            payload in proptest::collection::vec(any::<u8>(), 0..70_000),
            mask in any::<[u8; 4]>(),
            split in any::<prop::sample::Index>(),
        ) {
            let bytes = client(true, BINARY, &payload, mask);
            let at = split.index(bytes.len() + 1);
            let mut decoder = Decoder::new(1 << 20);
            let mut buf = BytesMut::from(&bytes[..at]);
            let mut got = Vec::new();
            if let Some(Frame::Data(d)) = decoder.decode(&mut buf).expect("valid") {
                got.extend_from_slice(&d);
            }
            buf.extend_from_slice(&bytes[at..]);
            if let Some(Frame::Data(d)) = decoder.decode(&mut buf).expect("valid") {
                got.extend_from_slice(&d);
            }
            prop_assert_eq!(got, payload);
        }
    }
}
