//! Cloud-to-device commands: the JSON the hub's pipeline sends on
//! `devices/{id}/messages/devicebound/…`, parsed into a typed [`Command`].
//!
//! Pure parsing of untrusted bytes: any payload gives a value or a [`CommandError`],
//! never a panic (property-tested). Limits keep a capture within what the hub's capture
//! assembler accepts (600,000 samples by default), so a typo cannot make a device stream
//! for an hour.

use serde_json::Value;

/// Highest capture rate accepted, Hz.
pub const MAX_RATE_HZ: u32 = 50_000;
/// Longest capture accepted, seconds.
pub const MAX_SECONDS: u32 = 60;
/// Most samples one capture may have (`rate_hz × seconds`): the hub assembler's default
/// limit.
pub const MAX_SAMPLES: u64 = 600_000;

/// A command the agent understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `{"cmd":"capture","rate_hz":R,"seconds":S}`: stream raw samples.
    Capture(CaptureRequest),
}

/// What a capture command asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureRequest {
    /// Sample rate of the streamed samples, Hz.
    pub rate_hz: u32,
    /// Duration, seconds.
    pub seconds: u32,
}

impl CaptureRequest {
    /// Samples the capture will have.
    pub fn samples(&self) -> u64 {
        u64::from(self.rate_hz) * u64::from(self.seconds)
    }
}

/// Why a C2D payload is not a command the agent runs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Not a JSON object.
    #[error("payload is not a JSON object")]
    NotJson,
    /// `cmd` is missing or not a string.
    #[error("no \"cmd\" string")]
    NoCommand,
    /// `cmd` names something this agent does not do.
    #[error("unknown command {0:?}")]
    Unknown(String),
    /// A parameter is missing, not a positive integer, or out of range.
    #[error("{0} missing or out of range")]
    BadParameter(&'static str),
}

/// Parses a C2D payload.
pub fn parse_command(payload: &[u8]) -> Result<Command, CommandError> {
    let value: Value = serde_json::from_slice(payload).map_err(|_| CommandError::NotJson)?;
    let object = value.as_object().ok_or(CommandError::NotJson)?;
    let cmd = object
        .get("cmd")
        .and_then(Value::as_str)
        .ok_or(CommandError::NoCommand)?;
    match cmd {
        "capture" => parse_capture(object).map(Command::Capture),
        other => Err(CommandError::Unknown(truncate(other, 64))),
    }
}

/// The parameters of a capture command.
fn parse_capture(object: &serde_json::Map<String, Value>) -> Result<CaptureRequest, CommandError> {
    let rate_hz = positive(object, "rate_hz", MAX_RATE_HZ)?;
    let seconds = positive(object, "seconds", MAX_SECONDS)?;
    let request = CaptureRequest { rate_hz, seconds };
    if request.samples() > MAX_SAMPLES {
        return Err(CommandError::BadParameter("rate_hz × seconds"));
    }
    Ok(request)
}

/// An integer field in `1..=max` (a float with no fraction counts, as JSON writers
/// differ).
fn positive(
    object: &serde_json::Map<String, Value>,
    name: &'static str,
    max: u32,
) -> Result<u32, CommandError> {
    let value = object.get(name).ok_or(CommandError::BadParameter(name))?;
    let number = match value.as_u64() {
        Some(n) => n,
        None => match value.as_f64() {
            Some(f) if f.fract() == 0.0 && (1.0..=f64::from(max)).contains(&f) => f as u64,
            _ => return Err(CommandError::BadParameter(name)),
        },
    };
    u32::try_from(number)
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or(CommandError::BadParameter(name))
}

/// At most `max` characters of `text`, for error messages about untrusted input.
fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_pipeline_command() {
        let cmd = parse_command(br#"{"cmd":"capture","rate_hz":10000,"seconds":30}"#);
        assert_eq!(
            cmd,
            Ok(Command::Capture(CaptureRequest {
                rate_hz: 10_000,
                seconds: 30
            }))
        );
        let float = parse_command(br#"{"cmd":"capture","rate_hz":1e4,"seconds":2.0}"#);
        assert!(matches!(float, Ok(Command::Capture(r)) if r.rate_hz == 10_000 && r.seconds == 2));
    }

    #[test]
    fn refuses_bad_commands() {
        let cases: [(&[u8], CommandError); 7] = [
            (b"", CommandError::NotJson),
            (b"[1]", CommandError::NotJson),
            (br#"{"rate_hz":1}"#, CommandError::NoCommand),
            (
                br#"{"cmd":"reboot"}"#,
                CommandError::Unknown("reboot".into()),
            ),
            (
                br#"{"cmd":"capture","rate_hz":0,"seconds":1}"#,
                CommandError::BadParameter("rate_hz"),
            ),
            (
                br#"{"cmd":"capture","rate_hz":1000,"seconds":-1}"#,
                CommandError::BadParameter("seconds"),
            ),
            (
                br#"{"cmd":"capture","rate_hz":50000,"seconds":60}"#,
                CommandError::BadParameter("rate_hz × seconds"),
            ),
        ];
        for (payload, error) in cases {
            assert_eq!(parse_command(payload), Err(error), "{payload:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_command(&bytes);
        }

        #[test]
        fn accepted_captures_are_within_limits(rate in any::<i64>(), seconds in any::<i64>()) {
            let payload = format!(r#"{{"cmd":"capture","rate_hz":{rate},"seconds":{seconds}}}"#);
            match parse_command(payload.as_bytes()) {
                Ok(Command::Capture(r)) => {
                    prop_assert!(r.rate_hz >= 1 && r.rate_hz <= MAX_RATE_HZ);
                    prop_assert!(r.seconds >= 1 && r.seconds <= MAX_SECONDS);
                    prop_assert!(r.samples() <= MAX_SAMPLES);
                    prop_assert_eq!(i64::from(r.rate_hz), rate);
                }
                Err(CommandError::BadParameter(_)) => {}
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }
}
