//! Azure IoT Hub shared access signatures (SAS tokens): parsing, verification, signing.
//!
//! A device proves it holds its symmetric key by sending, as its MQTT password,
//!
//! ```text
//! SharedAccessSignature sr={resource}&sig={signature}&se={expiry}[&skn={key name}]
//! ```
//!
//! - `sr`: the URL-encoded resource URI, `{hub host}/devices/{device id}`;
//! - `se`: the expiry, seconds since the Unix epoch;
//! - `sig`: URL-encoded base64 of HMAC-SHA256(key = the base64-decoded device key,
//!   message = `"{sr}\n{se}"`), where `sr` and `se` are exactly the text in the token
//!   (so `sr` still URL-encoded), which is how the Azure SDKs sign.
//!
//! Fields may come in any order. The parser is strict everywhere else (no duplicate or
//! unknown fields, digits only in `se`, a 32-byte signature, a bounded length) and never
//! panics: it reads untrusted bytes from the network before anything is authenticated
//! (property-tested here and fuzzed by `fuzz/fuzz_targets/sas.rs`). Signatures are
//! compared in constant time by `ring::hmac::verify`.

use ring::hmac;

/// The scheme word a SAS token starts with, followed by one space.
const PREFIX: &str = "SharedAccessSignature ";
/// Longest token accepted: Azure's are a few hundred bytes; anything far longer is
/// refused before any decoding work.
pub const MAX_TOKEN_LEN: usize = 4096;
/// Bytes of an HMAC-SHA256 signature.
const SIGNATURE_LEN: usize = 32;

/// Why a password is not a usable SAS token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SasError {
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("token longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    /// Does not start with `SharedAccessSignature `.
    #[error("not a SharedAccessSignature token")]
    NotSas,
    /// A field without `=`, an unknown field, or one given twice.
    #[error("malformed field")]
    BadField,
    /// `sr`, `sig` or `se` is absent.
    #[error("missing field")]
    MissingField,
    /// A `%` escape that is not two hex digits, or text that is not UTF-8 after decoding.
    #[error("bad URL encoding")]
    BadEncoding,
    /// `sig` is not the base64 of 32 bytes.
    #[error("bad signature encoding")]
    BadSignature,
    /// `se` is not a number of seconds.
    #[error("bad expiry")]
    BadExpiry,
    /// `sr` is not `{host}/devices/{device id}`.
    #[error("resource is not a device")]
    BadResource,
}

/// A parsed token, borrowing from the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SasToken<'a> {
    /// `sr` exactly as sent (URL-encoded): the signed message is built from it.
    resource: &'a str,
    /// `se` exactly as sent.
    expiry_text: &'a str,
    /// `se` as a number.
    expiry: u64,
    /// `sig`, decoded.
    signature: [u8; SIGNATURE_LEN],
    /// `skn`, the shared access policy name, if any.
    key_name: Option<&'a str>,
}

impl std::fmt::Debug for SasToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The signature is a bearer secret until it expires.
        f.debug_struct("SasToken")
            .field("resource", &self.resource)
            .field("expiry", &self.expiry)
            .field("key_name", &self.key_name)
            .finish_non_exhaustive()
    }
}

impl<'a> SasToken<'a> {
    /// Parses a password as a SAS token.
    pub fn parse(password: &'a str) -> Result<SasToken<'a>, SasError> {
        if password.len() > MAX_TOKEN_LEN {
            return Err(SasError::TooLong);
        }
        let fields = password.strip_prefix(PREFIX).ok_or(SasError::NotSas)?;
        let (mut sr, mut sig, mut se, mut skn) = (None, None, None, None);
        for field in fields.split('&') {
            let (name, value) = field.split_once('=').ok_or(SasError::BadField)?;
            let slot = match name {
                "sr" => &mut sr,
                "sig" => &mut sig,
                "se" => &mut se,
                "skn" => &mut skn,
                _ => return Err(SasError::BadField),
            };
            if slot.replace(value).is_some() {
                return Err(SasError::BadField);
            }
        }
        let (Some(resource), Some(sig), Some(expiry_text)) = (sr, sig, se) else {
            return Err(SasError::MissingField);
        };
        if resource.is_empty() {
            return Err(SasError::MissingField);
        }
        // Digits only: `u64::from_str` would also take a leading `+`.
        if expiry_text.is_empty() || !expiry_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SasError::BadExpiry);
        }
        let expiry = expiry_text.parse().map_err(|_| SasError::BadExpiry)?;
        let decoded =
            crate::base64::decode(&percent_decode(sig)?).map_err(|_| SasError::BadSignature)?;
        let signature = decoded.try_into().map_err(|_| SasError::BadSignature)?;
        Ok(SasToken {
            resource,
            expiry_text,
            expiry,
            signature,
            key_name: skn,
        })
    }

    /// The expiry, in seconds since the Unix epoch.
    pub fn expiry(&self) -> u64 {
        self.expiry
    }

    /// The shared access policy name (`skn`), which device tokens do not carry.
    pub fn key_name(&self) -> Option<&'a str> {
        self.key_name
    }

    /// The resource URI, URL-decoded.
    pub fn resource(&self) -> Result<String, SasError> {
        percent_decode(self.resource)
    }

    /// The device the token is for: the `{device id}` of `{host}/devices/{device id}`
    /// (the host may be any non-empty name without `/`, compared by nobody: one hub
    /// is reached under several names).
    pub fn device_id(&self) -> Result<String, SasError> {
        let resource = self.resource()?;
        let (host, path) = resource.split_once('/').ok_or(SasError::BadResource)?;
        match path.strip_prefix("devices/") {
            Some(id) if !host.is_empty() && !id.is_empty() && !id.contains('/') => {
                Ok(id.to_string())
            }
            _ => Err(SasError::BadResource),
        }
    }

    /// Whether the token was signed with `key` (the device key, base64-decoded).
    /// Constant time in the signature.
    pub fn verify(&self, key: &[u8]) -> bool {
        let key = hmac::Key::new(hmac::HMAC_SHA256, key);
        let message = signed_message(self.resource, self.expiry_text);
        hmac::verify(&key, message.as_bytes(), &self.signature).is_ok()
    }
}

/// The string a token's signature covers.
fn signed_message(resource: &str, expiry: &str) -> String {
    format!("{resource}\n{expiry}")
}

/// Makes a device token for `resource` (`{host}/devices/{id}`, not yet URL-encoded),
/// valid until `expiry` (Unix seconds), signed with `key` (decoded): what a device SDK
/// does, for tests, tools and the CLI.
pub fn sign(resource: &str, expiry: u64, key: &[u8]) -> String {
    let sr = percent_encode(resource);
    let message = signed_message(&sr, &expiry.to_string());
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message.as_bytes());
    let sig = percent_encode(&crate::base64::encode(tag.as_ref()));
    format!("{PREFIX}sr={sr}&sig={sig}&se={expiry}")
}

/// Decodes `%XX` escapes (anything else is taken literally, `+` included: base64 uses
/// it); the result must be UTF-8.
pub fn percent_decode(text: &str) -> Result<String, SasError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).and_then(|&h| char::from(h).to_digit(16));
            let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                return Err(SasError::BadEncoding);
            };
            // Two hex digits are at most 255.
            out.push(u8::try_from(hi * 16 + lo).map_err(|_| SasError::BadEncoding)?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| SasError::BadEncoding)
}

/// Encodes every byte except `A–Z a–z 0–9 - _ . ~` as `%XX`, as Python's
/// `urllib.parse.quote(s, safe="")` does (the Azure SDKs' encoding).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    /// A token as the Python SDK makes it, computed independently (Python's hmac and
    /// urllib) for host `hub.local`, device `dev-1`, expiry 2000000000 and `KEY`.
    const SDK_TOKEN: &str = "SharedAccessSignature sr=hub.local%2Fdevices%2Fdev-1&sig=GctFu%2B6NZB23H6j7QSq3Ka8HAbmv1xFcsGKGEE2NfCs%3D&se=2000000000";

    #[test]
    fn an_sdk_token_parses_and_verifies() {
        let token = SasToken::parse(SDK_TOKEN).unwrap();
        assert_eq!(token.expiry(), 2_000_000_000);
        assert_eq!(token.device_id().unwrap(), "dev-1");
        assert_eq!(token.resource().unwrap(), "hub.local/devices/dev-1");
        assert!(token.verify(KEY));
        assert!(!token.verify(b"another key entirely, 32 bytes!!"));
        assert_eq!(
            sign("hub.local/devices/dev-1", 2_000_000_000, KEY),
            SDK_TOKEN
        );
    }

    #[test]
    fn fields_may_come_in_any_order_with_a_key_name() {
        let token = "SharedAccessSignature se=2000000000&skn=device&sig=GctFu%2B6NZB23H6j7QSq3Ka8HAbmv1xFcsGKGEE2NfCs%3D&sr=hub.local%2Fdevices%2Fdev-1";
        let token = SasToken::parse(token).unwrap();
        assert_eq!(token.key_name(), Some("device"));
        assert!(token.verify(KEY));
    }

    #[test]
    fn malformed_tokens_are_refused_with_a_reason() {
        let sig = "GctFu%2B6NZB23H6j7QSq3Ka8HAbmv1xFcsGKGEE2NfCs%3D";
        let cases = [
            ("", SasError::NotSas),
            ("sharedaccesssignature sr=a", SasError::NotSas),
            ("SharedAccessSignature", SasError::NotSas),
            ("SharedAccessSignature sr", SasError::BadField),
            ("SharedAccessSignature sr=a&sr=a", SasError::BadField),
            ("SharedAccessSignature sr=a&x=1", SasError::BadField),
            ("SharedAccessSignature sr=a&se=1", SasError::MissingField),
            ("SharedAccessSignature sig=a&se=1", SasError::MissingField),
            (
                "SharedAccessSignature sr=&sig=a&se=1",
                SasError::MissingField,
            ),
            (
                "SharedAccessSignature sr=a&sig=a&se=+1",
                SasError::BadExpiry,
            ),
            ("SharedAccessSignature sr=a&sig=a&se=", SasError::BadExpiry),
            (
                "SharedAccessSignature sr=a&sig=a&se=99999999999999999999",
                SasError::BadExpiry,
            ),
            (
                "SharedAccessSignature sr=a&sig=%zz&se=1",
                SasError::BadEncoding,
            ),
            (
                "SharedAccessSignature sr=a&sig=%4&se=1",
                SasError::BadEncoding,
            ),
            (
                "SharedAccessSignature sr=a&sig=YWJj&se=1",
                SasError::BadSignature,
            ),
        ];
        for (text, error) in cases {
            assert_eq!(SasToken::parse(text).err(), Some(error), "{text}");
        }
        let long = format!(
            "SharedAccessSignature sr={}&sig={sig}&se=1",
            "a".repeat(5000)
        );
        assert_eq!(SasToken::parse(&long).err(), Some(SasError::TooLong));
    }

    #[test]
    fn the_resource_must_name_one_device() {
        for (sr, id) in [
            ("h%2Fdevices%2Fd", Some("d")),
            ("H.EXAMPLE%2Fdevices%2Fa%2541", Some("a%41")),
            ("h/devices/d", Some("d")),
            ("h%2Fdevices%2Fd%2Fmodules%2Fm", None),
            ("%2Fdevices%2Fd", None),
            ("h%2Fdevices%2F", None),
            ("h%2Fdevice%2Fd", None),
            ("h", None),
            ("h%2Fx%2Fdevices%2Fd", None),
            ("h%ff", None),
        ] {
            let token = sign("x/devices/y", 1, KEY).replace("x%2Fdevices%2Fy", sr);
            let token = SasToken::parse(&token).unwrap();
            assert_eq!(token.device_id().ok().as_deref(), id, "{sr}");
        }
    }

    #[test]
    fn percent_coding_round_trips() {
        for text in ["", "a b/c%d+e=f&g", "é€", "h/devices/a%41"] {
            assert_eq!(percent_decode(&percent_encode(text)).unwrap(), text);
        }
        assert_eq!(percent_decode("a+b").unwrap(), "a+b");
        assert!(percent_decode("%C3").is_err(), "not UTF-8");
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,300}") {
            if let Ok(token) = SasToken::parse(&text) {
                let _ = token.device_id();
                let _ = token.verify(KEY);
            }
            let prefixed = format!("{PREFIX}{text}");
            if let Ok(token) = SasToken::parse(&prefixed) {
                let _ = token.device_id();
                let _ = token.verify(KEY);
            }
        }

        #[test]
        fn structured_garbage_never_panics(
            fields in proptest::collection::vec(
                ("(sr|sig|se|skn|x)", "[A-Za-z0-9%+/=&._-]{0,40}"),
                0..6,
            )
        ) {
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let text = format!("{PREFIX}{}", body.join("&"));
            if let Ok(token) = SasToken::parse(&text) {
                let _ = token.device_id();
                let _ = token.verify(KEY);
            }
        }

        #[test]
        fn a_valid_token_verifies_and_any_single_byte_change_fails(
            host in "[a-z0-9.-]{1,20}",
            device in "[A-Za-z0-9.%_*?!(),:=@$'-]{1,40}",
            expiry in 0u64..10_000_000_000,
            key in proptest::collection::vec(any::<u8>(), 16..64),
            position in any::<prop::sample::Index>(),
            replacement in any::<u8>(),
        ) {
            let token = sign(&format!("{host}/devices/{device}"), expiry, &key);
            let parsed = SasToken::parse(&token).unwrap();
            prop_assert!(parsed.verify(&key));
            prop_assert_eq!(parsed.device_id().unwrap(), device);
            prop_assert_eq!(parsed.expiry(), expiry);

            // Change one byte inside the value of sr, sig or se.
            let values: Vec<(usize, usize)> = ["sr=", "sig=", "se="]
                .iter()
                .map(|name| {
                    let start = token.find(name).unwrap() + name.len();
                    let end = token[start..].find('&').map_or(token.len(), |e| start + e);
                    (start, end)
                })
                .collect();
            let spots: Vec<usize> = values.iter().flat_map(|&(s, e)| s..e).collect();
            let at = spots[position.index(spots.len())];
            let mut bytes = token.clone().into_bytes();
            prop_assume!(bytes[at] != replacement);
            bytes[at] = replacement;
            if let Ok(changed) = String::from_utf8(bytes) {
                if let Ok(changed) = SasToken::parse(&changed) {
                    // A change can decode to the same signature bytes only through
                    // different spellings of one value (`%2F` vs `%2f`), which the
                    // signature does not cover for `sig` itself.
                    let same_sig = changed.signature == parsed.signature
                        && changed.resource == parsed.resource
                        && changed.expiry_text == parsed.expiry_text;
                    prop_assert!(same_sig || !changed.verify(&key), "{}", changed.resource);
                }
            }
        }
    }
}
