//! Just enough DER to read what the broker needs from a certificate, a CRL or a CSR:
//! the serial number, subject common name and issuer/subject Names of a
//! (webpki-verified) client certificate, the issuer and revoked serials of a CRL, and
//! the subject, public key and signed bytes of a PKCS#10 certificate signing request.
//!
//! Verification of certificates stays webpki's job; this module only reads fields out
//! of structures that were verified (certificates) or whose signature it hands to ring
//! (CSRs). It is bounds-checked throughout and never panics on hostile input: every
//! read returns `None` on anything unexpected. Pulling in `x509-parser` (nom, asn1-rs,
//! der-parser and more) for three fields was judged not worth it (docs/dependencies.md).

/// DER tags used here.
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const BIT_STRING: u8 = 0x03;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0]` constructed: a certificate's explicit version.
const CONTEXT_0: u8 = 0xa0;

/// OID 2.5.4.3, id-at-commonName.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// OID 1.2.840.10045.2.1, id-ecPublicKey.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// OID 1.2.840.10045.3.1.7, secp256r1 (P-256).
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// OID 1.2.840.10045.4.3.2, ecdsa-with-SHA256.
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];

/// A bounds-checked cursor over DER bytes.
#[derive(Clone, Copy)]
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// Reads one TLV: its tag, its contents, and the whole encoding (tag and length
    /// included, which is what a signature covers).
    fn any(&mut self) -> Option<(u8, &'a [u8], &'a [u8])> {
        let all = self.0;
        let (&tag, rest) = all.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            // Four length bytes are far more than any certificate needs.
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let mut len = 0usize;
            for &b in &rest[..n] {
                len = (len << 8) | usize::from(b);
            }
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return None;
        }
        let header = all.len() - rest.len();
        let (contents, tail) = rest.split_at(len);
        self.0 = tail;
        Some((tag, contents, &all[..header + len]))
    }

    /// Reads one TLV that must have tag `tag`; its contents.
    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.any()? {
            (t, contents, _) if t == tag => Some(contents),
            _ => None,
        }
    }

    /// Like [`Reader::expect`], with the whole encoding.
    fn expect_whole(&mut self, tag: u8) -> Option<(&'a [u8], &'a [u8])> {
        match self.any()? {
            (t, contents, whole) if t == tag => Some((contents, whole)),
            _ => None,
        }
    }

    /// The next tag, without consuming it.
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the broker reads from a client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertFields<'a> {
    /// The serial number's content bytes (big-endian, as encoded, leading zero kept).
    pub(crate) serial: &'a [u8],
    /// The subject's first common name, if it has one in a string type.
    pub(crate) common_name: Option<&'a str>,
    /// `notAfter`, in seconds since the Unix epoch (`None` if it does not parse).
    pub(crate) not_after: Option<i64>,
    /// The issuer Name as encoded (tag and length included): compared byte for byte
    /// with a CA's subject, as webpki does when it builds the chain.
    pub(crate) issuer: &'a [u8],
    /// The subject Name as encoded.
    pub(crate) subject: &'a [u8],
}

/// Reads the serial and subject CN of an X.509 certificate.
pub(crate) fn certificate_fields(der: &[u8]) -> Option<CertFields<'_>> {
    let mut outer = Reader(der);
    let cert = outer.expect(SEQUENCE)?;
    let mut cert = Reader(cert);
    let tbs = cert.expect(SEQUENCE)?;
    let mut tbs = Reader(tbs);
    if tbs.peek() == Some(CONTEXT_0) {
        tbs.any()?;
    }
    let serial = tbs.expect(INTEGER)?;
    tbs.expect(SEQUENCE)?; // signature algorithm
    let (_, issuer) = tbs.expect_whole(SEQUENCE)?;
    let mut validity = Reader(tbs.expect(SEQUENCE)?);
    let (subject_contents, subject) = tbs.expect_whole(SEQUENCE)?;
    validity.any()?; // notBefore
    let not_after = validity.any().and_then(|(tag, value, _)| time(tag, value));
    Some(CertFields {
        serial,
        common_name: common_name(subject_contents),
        not_after,
        issuer,
        subject,
    })
}

/// What the broker reads from a certificate revocation list (RFC 5280 §5.1): whose it
/// is and which serials it lists. The signature is webpki's to check (at handshakes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CrlEntries<'a> {
    /// The issuer Name as encoded: the CA whose certificates the serials are.
    pub(crate) issuer: &'a [u8],
    /// The revoked serial numbers' content bytes.
    pub(crate) serials: Vec<&'a [u8]>,
}

/// Reads the issuer and the revoked serials of a DER `CertificateList`.
pub(crate) fn crl_entries(der: &[u8]) -> Option<CrlEntries<'_>> {
    let mut outer = Reader(der);
    let mut list = Reader(outer.expect(SEQUENCE)?);
    let mut tbs = Reader(list.expect(SEQUENCE)?);
    if tbs.peek() == Some(INTEGER) {
        tbs.any()?; // version
    }
    tbs.expect(SEQUENCE)?; // signature algorithm
    let (_, issuer) = tbs.expect_whole(SEQUENCE)?;
    tbs.any()?; // thisUpdate
    if matches!(tbs.peek(), Some(UTC_TIME | GENERALIZED_TIME)) {
        tbs.any()?; // nextUpdate
    }
    let mut serials = Vec::new();
    if tbs.peek() == Some(SEQUENCE) {
        let mut revoked = Reader(tbs.expect(SEQUENCE)?);
        while !revoked.is_empty() {
            let mut entry = Reader(revoked.expect(SEQUENCE)?);
            serials.push(entry.expect(INTEGER)?);
        }
    }
    Some(CrlEntries { issuer, serials })
}

/// A UTCTime (`YYMMDDHHMMSSZ`, RFC 5280: years 1950–2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`) as seconds since the Unix epoch.
fn time(tag: u8, value: &[u8]) -> Option<i64> {
    let digits = |b: &[u8]| -> Option<i64> {
        b.iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let (year, rest) = match (tag, value.len()) {
        (0x17, 13) => {
            let yy = digits(&value[..2])?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &value[2..])
        }
        (0x18, 15) => (digits(&value[..4])?, &value[4..]),
        _ => return None,
    };
    if rest.last() != Some(&b'Z') {
        return None;
    }
    let field = |i: usize| digits(&rest[i..i + 2]);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// The first common name in a Name's contents (a sequence of RDN sets).
fn common_name(name: &[u8]) -> Option<&str> {
    let mut rdns = Reader(name);
    while !rdns.is_empty() {
        let mut set = Reader(rdns.expect(SET)?);
        while !set.is_empty() {
            let mut attr = Reader(set.expect(SEQUENCE)?);
            let oid = attr.expect(OID)?;
            let (tag, value, _) = attr.any()?;
            // UTF8String, PrintableString, IA5String: the string types a CN is sent in.
            if oid == OID_COMMON_NAME && matches!(tag, 0x0c | 0x13 | 0x16) {
                return std::str::from_utf8(value).ok();
            }
        }
    }
    None
}

/// A parsed PKCS#10 certificate signing request for a P-256 key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Csr<'a> {
    /// The subject's common name.
    pub(crate) common_name: Option<&'a str>,
    /// The uncompressed EC point (the subjectPublicKey bits).
    pub(crate) public_key: &'a [u8],
    /// The CertificationRequestInfo as encoded: what the signature covers.
    pub(crate) signed: &'a [u8],
    /// The ECDSA signature (ASN.1 DER, as in the BIT STRING).
    pub(crate) signature: &'a [u8],
}

/// Why a CSR is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CsrError {
    /// Not DER of a CertificationRequest.
    Malformed,
    /// A key other than ECDSA P-256, or a signature other than ECDSA with SHA-256.
    UnsupportedKey,
    /// The signature does not verify with the request's own key (no proof of possession).
    BadSignature,
}

/// Parses a CSR and checks its self-signature (proof that the requester holds the key).
pub(crate) fn parse_csr(der: &[u8]) -> Result<Csr<'_>, CsrError> {
    let csr = parse_csr_fields(der).ok_or(CsrError::Malformed)??;
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        csr.public_key,
    );
    key.verify(csr.signed, csr.signature)
        .map_err(|_| CsrError::BadSignature)?;
    Ok(csr)
}

/// `None` when malformed; the inner error when well-formed but unsupported.
fn parse_csr_fields(der: &[u8]) -> Option<Result<Csr<'_>, CsrError>> {
    let mut outer = Reader(der);
    let mut req = Reader(outer.expect(SEQUENCE)?);
    let (info, signed) = req.expect_whole(SEQUENCE)?;
    let mut alg = Reader(req.expect(SEQUENCE)?);
    let sig_alg = alg.expect(OID)?;
    let signature = bit_string(req.expect(BIT_STRING)?)?;
    let mut info = Reader(info);
    info.expect(INTEGER)?; // version
    let subject = info.expect(SEQUENCE)?;
    let mut spki = Reader(info.expect(SEQUENCE)?);
    let mut key_alg = Reader(spki.expect(SEQUENCE)?);
    let key_type = key_alg.expect(OID)?;
    let curve = if key_alg.peek() == Some(OID) {
        key_alg.expect(OID)?
    } else {
        &[]
    };
    let public_key = bit_string(spki.expect(BIT_STRING)?)?;
    if key_type != OID_EC_PUBLIC_KEY || curve != OID_P256 || sig_alg != OID_ECDSA_SHA256 {
        return Some(Err(CsrError::UnsupportedKey));
    }
    Some(Ok(Csr {
        common_name: common_name(subject),
        public_key,
        signed,
        signature,
    }))
}

/// A BIT STRING's bits, which must be whole bytes.
fn bit_string(contents: &[u8]) -> Option<&[u8]> {
    match contents.split_first() {
        Some((0, bits)) => Some(bits),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_serial_and_common_name_of_a_generated_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "acme");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pump-7");
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x01, 0xab, 0xcd]));
        params.not_after = rcgen::date_time_ymd(2031, 3, 4);
        let cert = params.self_signed(&key).unwrap();
        let fields = certificate_fields(cert.der()).unwrap();
        assert_eq!(fields.common_name, Some("pump-7"));
        assert_eq!(fields.serial, &[0x01, 0xab, 0xcd]);
        assert_eq!(fields.not_after, Some(1_930_348_800)); // 2031-03-04T00:00:00Z
                                                           // Self-signed: the issuer is the subject, both whole Names.
        assert_eq!(fields.issuer, fields.subject);
        assert_eq!(fields.issuer.first(), Some(&SEQUENCE));
    }

    #[test]
    fn reads_issuer_and_serials_of_a_generated_crl() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "line CA");
        let ca = params.self_signed(&key).unwrap();
        let revoked = |serial: &[u8]| rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from_slice(serial),
            revocation_time: rcgen::date_time_ymd(2025, 1, 1),
            reason_code: None,
            invalidity_date: None,
        };
        let crl = rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2025, 1, 1),
            next_update: rcgen::date_time_ymd(2035, 1, 1),
            crl_number: rcgen::SerialNumber::from_slice(&[1]),
            issuing_distribution_point: None,
            revoked_certs: vec![revoked(&[0x0a]), revoked(&[0x40, 0x01])],
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&ca, &key)
        .unwrap();
        let entries = crl_entries(crl.der()).unwrap();
        let ca_fields = certificate_fields(ca.der()).unwrap();
        assert_eq!(entries.issuer, ca_fields.subject);
        assert_eq!(entries.serials, vec![&[0x0a][..], &[0x40, 0x01][..]]);
        for len in 0..crl.der().len() {
            let _ = crl_entries(&crl.der()[..len]);
        }
    }

    #[test]
    fn certificate_times_convert_to_unix_seconds() {
        assert_eq!(time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(time(0x17, b"000229120000Z"), Some(951_825_600));
        assert_eq!(time(0x18, b"20491231235959Z"), Some(2_524_607_999));
        assert_eq!(time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(time(0x17, b"7001010000Z"), None);
        assert_eq!(time(0x17, b"701301000000Z"), None);
        assert_eq!(time(0x18, b"2049123123595+"), None);
    }

    #[test]
    fn a_generated_csr_parses_and_verifies() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "dev-c");
        let csr = params.serialize_request(&key).unwrap();
        let parsed = parse_csr(csr.der()).unwrap();
        assert_eq!(parsed.common_name, Some("dev-c"));
        assert_eq!(parsed.public_key, key.public_key_raw());
        // A flipped bit in the signed part breaks the proof of possession.
        let mut bad = csr.der().to_vec();
        let at = bad.len() / 3;
        bad[at] ^= 1;
        assert!(parse_csr(&bad).is_err());
    }

    #[test]
    fn truncated_and_garbage_input_is_refused_without_panicking() {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["x".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der = cert.der().to_vec();
        for len in 0..der.len() {
            let _ = certificate_fields(&der[..len]);
            let _ = parse_csr(&der[..len]);
        }
        assert_eq!(parse_csr(&der), Err(CsrError::Malformed));
        assert!(certificate_fields(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
    }
}
