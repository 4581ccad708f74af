//! Writing PEM files, and writing secrets so only the owner can read them.
//!
//! Reading PEM is `rustls::pki_types::pem`'s job (constant-time base64 decoding); writing
//! is a few lines of base64, which spares rcgen's `pem` feature (two more crates) for
//! what is only ever done when the local CA issues a certificate.

use std::io::Write;
use std::path::Path;

use rcgen::KeyPair;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;

use super::TlsError;

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// RFC 7468 puts 64 base64 characters on each line.
const LINE: usize = 64;

/// `der` as one PEM section labelled `label` (`CERTIFICATE`, `PRIVATE KEY`).
pub(super) fn encode(label: &str, der: &[u8]) -> String {
    let mut text = String::with_capacity(der.len() * 4 / 3 + 100);
    let mut encoded = Vec::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                encoded.push(BASE64[(n >> (18 - 6 * i)) as usize & 63]);
            } else {
                encoded.push(b'=');
            }
        }
    }
    text.push_str(&format!("-----BEGIN {label}-----\n"));
    for line in encoded.chunks(LINE) {
        // The alphabet is ASCII, so every chunk is valid UTF-8.
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// Writes `contents` to `path` atomically (a temporary file renamed over it), so a
/// crash or a concurrent reader never sees half a key. `secret` files get mode 0600
/// from the moment they exist, not after.
pub(super) fn write_file(path: &Path, contents: &str, secret: bool) -> Result<(), TlsError> {
    let error = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    // A leftover from a crash may carry other permissions; `mode` applies only on create.
    let _ = std::fs::remove_file(&tmp);
    let mut file = options.open(&tmp).map_err(error)?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(error)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(error)
}

/// Creates `dir` readable by the owner only (it holds private keys).
pub(super) fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| TlsError::Write {
        path: dir.to_owned(),
        source,
    })
}

/// Reads a PEM private key (PKCS#8, PKCS#1 or SEC1) as a key pair that can sign.
pub(super) fn read_key_pair(path: &Path) -> Result<KeyPair, TlsError> {
    let der = PrivateKeyDer::from_pem_file(path)
        .map_err(|source| super::key_read_error(path.to_owned(), source))?;
    KeyPair::try_from(&der).map_err(|source| TlsError::Generate {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    use super::encode;

    #[test]
    fn encoding_round_trips_through_the_pem_reader() {
        for len in [0usize, 1, 2, 3, 47, 48, 49, 100, 1000] {
            let der: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let text = encode("CERTIFICATE", &der);
            assert!(text.lines().all(|l| l.len() <= 64), "{text}");
            if len == 0 {
                continue; // the reader skips empty sections
            }
            let back = CertificateDer::from_pem_slice(text.as_bytes()).unwrap();
            assert_eq!(back.as_ref(), &der[..], "length {len}");
        }
    }

    #[test]
    fn known_vector() {
        // RFC 4648 section 10.
        let text = encode("X", b"foobar");
        assert_eq!(text, "-----BEGIN X-----\nZm9vYmFy\n-----END X-----\n");
        let text = encode("X", b"fooba");
        assert!(text.contains("\nZm9vYmE=\n"), "{text}");
        let text = encode("X", b"foob");
        assert!(text.contains("\nZm9vYg==\n"), "{text}");
    }
}
