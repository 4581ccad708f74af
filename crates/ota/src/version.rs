//! Firmware versions: Semantic Versioning 2.0.0 (`MAJOR.MINOR.PATCH[-PRE][+BUILD]`).
//!
//! Parsed here rather than with a crate: the grammar is small, and the device agent
//! needs exactly the ordering rules below (pre-releases sort before their release,
//! build metadata is ignored) to refuse downgrades. Parsing is strict (no leading zeros,
//! no empty identifiers, at most [`MAX_VERSION_LEN`] bytes) so that a version's text is
//! canonical: `Version::parse(s)?.to_string() == s`, which the signed bytes rely on.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Longest version text accepted; keeps manifests and twin properties small.
pub const MAX_VERSION_LEN: usize = 64;

/// Why a text is not a semantic version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a semantic version (MAJOR.MINOR.PATCH[-PRE][+BUILD]): {why}")]
pub struct VersionError {
    /// The text (cut to [`MAX_VERSION_LEN`] bytes).
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// A semantic version. Equality and order ignore build metadata, as SemVer says.
#[derive(Debug, Clone)]
pub struct Version {
    /// Incompatible changes.
    pub major: u64,
    /// Compatible features.
    pub minor: u64,
    /// Fixes.
    pub patch: u64,
    /// Pre-release identifiers (`rc.1` → `["rc", "1"]`); empty for a release.
    pub pre: Vec<String>,
    /// Build metadata (`+build.5` → `"build.5"`); informational only.
    pub build: Option<String>,
}

impl Version {
    /// Parses strictly; see the module documentation.
    pub fn parse(text: &str) -> Result<Version, VersionError> {
        let fail = |why| VersionError {
            text: text.chars().take(MAX_VERSION_LEN).collect(),
            why,
        };
        if text.len() > MAX_VERSION_LEN {
            return Err(fail("too long"));
        }
        let (rest, build) = match text.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (text, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        let mut numbers = core.split('.');
        let mut next = || numbers.next().ok_or(fail("needs three numbers"));
        let major = number(next()?).ok_or(fail("bad major number"))?;
        let minor = number(next()?).ok_or(fail("bad minor number"))?;
        let patch = number(next()?).ok_or(fail("bad patch number"))?;
        if numbers.next().is_some() {
            return Err(fail("more than three numbers"));
        }
        let pre = match pre {
            Some(pre) => identifiers(pre, true).ok_or(fail("bad pre-release"))?,
            None => Vec::new(),
        };
        if let Some(build) = build {
            identifiers(build, false).ok_or(fail("bad build metadata"))?;
        }
        Ok(Version {
            major,
            minor,
            patch,
            pre,
            build: build.map(str::to_owned),
        })
    }
}

/// A numeric part: digits, no leading zero (except `0` itself), fits in `u64`.
fn number(s: &str) -> Option<u64> {
    let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !ok || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

/// Dot-separated identifiers of `[0-9A-Za-z-]`; numeric ones in a pre-release must have
/// no leading zero.
fn identifiers(s: &str, pre: bool) -> Option<Vec<String>> {
    s.split('.')
        .map(|id| {
            let chars_ok = id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if id.is_empty() || !chars_ok {
                return None;
            }
            let numeric = id.bytes().all(|b| b.is_ascii_digit());
            if pre && numeric && number(id).is_none() {
                return None;
            }
            Some(id.to_owned())
        })
        .collect()
}

/// SemVer §11: numeric identifiers compare as numbers and sort before alphanumeric ones.
fn compare_identifier(a: &str, b: &str) -> Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        let core =
            (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch));
        if core != Ordering::Equal {
            return core;
        }
        match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                for (a, b) in self.pre.iter().zip(&other.pre) {
                    let o = compare_identifier(a, b);
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                self.pre.len().cmp(&other.pre.len())
            }
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre.join("."))?;
        }
        if let Some(build) = &self.build {
            write!(f, "+{build}")?;
        }
        Ok(())
    }
}

impl FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Version, VersionError> {
        Version::parse(s)
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Version, D::Error> {
        let text = String::deserialize(d)?;
        Version::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect("valid version")
    }

    #[test]
    fn parses_and_prints_canonically() {
        for s in [
            "0.0.0",
            "1.2.3",
            "10.20.30-rc.1",
            "1.0.0-alpha-1+build.7",
            "1.0.0+x",
        ] {
            assert_eq!(v(s).to_string(), s);
        }
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.02.3",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3-a..b",
            "1.2.3+",
            "v1.2.3",
            "1.2.3-a_b",
            " 1.2.3",
            "1.2.99999999999999999999",
        ] {
            assert!(Version::parse(s).is_err(), "{s:?} should be refused");
        }
        assert!(Version::parse(&"1".repeat(100)).is_err());
    }

    #[test]
    fn orders_as_semver_says() {
        // The example chain of SemVer §11.
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0",
        ];
        for pair in chain.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("1.0.0+a"), v("1.0.0+b"));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = Version::parse(&s);
        }

        #[test]
        fn round_trips(a in 0u64..1000, b in 0u64..1000, c in 0u64..1000, pre in "([a-z]{1,4}|[1-9][0-9]{0,2})") {
            let text = format!("{a}.{b}.{c}-{pre}");
            prop_assert_eq!(v(&text).to_string(), text.clone());
            let release = v(&format!("{a}.{b}.{c}"));
            prop_assert!(v(&text) < release);
        }
    }
}
