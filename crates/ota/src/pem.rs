//! PEM (RFC 7468) framing for key files: `-----BEGIN LABEL-----`, base64 lines of 64
//! characters, `-----END LABEL-----`.
//!
//! Only the framing; what is inside (PKCS#8, SubjectPublicKeyInfo) is `key.rs`'s.

/// Why a text is not the PEM block expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    /// No `-----BEGIN {label}-----` … `-----END {label}-----` block.
    #[error("no PEM block labelled {0:?}")]
    Missing(&'static str),
    /// The block's body is not base64.
    #[error("PEM body: {0}")]
    Body(#[from] base64::Base64Error),
}

/// Wraps DER bytes in a PEM block.
pub fn encode(label: &str, der: &[u8]) -> String {
    let body = base64::encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // Base64 is ASCII, so 64-byte chunks are valid UTF-8 on their own.
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The DER bytes of the first block labelled `label`; text around it is ignored.
pub fn decode(text: &str, label: &'static str) -> Result<Vec<u8>, PemError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).ok_or(PemError::Missing(label))? + begin.len();
    let stop = text[start..].find(&end).ok_or(PemError::Missing(label))? + start;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    Ok(base64::decode(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_with_long_bodies() {
        let der: Vec<u8> = (0..=255).collect();
        let text = encode("PUBLIC KEY", &der);
        assert!(text.lines().all(|l| l.len() <= 64));
        assert_eq!(decode(&format!("junk\n{text}more"), "PUBLIC KEY"), Ok(der));
        assert_eq!(
            decode(&text, "PRIVATE KEY"),
            Err(PemError::Missing("PRIVATE KEY"))
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = decode(&s, "PUBLIC KEY");
            let _ = decode(&format!("-----BEGIN PUBLIC KEY-----{s}-----END PUBLIC KEY-----"), "PUBLIC KEY");
        }
    }
}
