//! The device-side decision "may this device install this image?", before any byte is
//! downloaded. Pure, so the agent, the hub (to pre-filter a rollout's targets) and the
//! tests share it.

use crate::manifest::Manifest;
use crate::refusal::Refusal;
use crate::version::Version;

/// Whether a device running `current` on hardware `hw` may install `manifest`'s image.
///
/// Checks, in order: hardware, `minFrom`, then downgrade (an older or equal version is
/// refused unless the manifest sets `allowDowngrade`). The signature is checked apart
/// ([`Manifest::verify_signature`]), since it needs the trusted keys.
pub fn check_update(manifest: &Manifest, current: &Version, hw: &str) -> Result<(), Refusal> {
    if !manifest.hw.iter().any(|h| h == hw) {
        return Err(Refusal::IncompatibleHardware {
            hw: hw.to_owned(),
            supported: manifest.hw.clone(),
        });
    }
    if let Some(min_from) = &manifest.min_from {
        if current < min_from {
            return Err(Refusal::BelowMinFrom {
                current: Box::new(current.clone()),
                min_from: Box::new(min_from.clone()),
            });
        }
    }
    if !manifest.allow_downgrade {
        if manifest.version < *current {
            return Err(Refusal::Downgrade {
                current: Box::new(current.clone()),
                offered: Box::new(manifest.version.clone()),
            });
        }
        if manifest.version == *current {
            return Err(Refusal::AlreadyInstalled {
                current: Box::new(current.clone()),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect("version")
    }

    fn manifest(version: &str) -> Manifest {
        Manifest::describe(b"img", v(version), vec!["hw-a".into(), "hw-b".into()])
    }

    #[test]
    fn accepts_an_upgrade_on_listed_hardware() {
        assert_eq!(
            check_update(&manifest("1.1.0"), &v("1.0.0"), "hw-b"),
            Ok(())
        );
    }

    #[test]
    fn refuses_other_hardware() {
        let r = check_update(&manifest("1.1.0"), &v("1.0.0"), "hw-c");
        assert!(matches!(r, Err(Refusal::IncompatibleHardware { .. })));
        assert!(r
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("hw-c"));
    }

    #[test]
    fn refuses_downgrade_and_reinstall_unless_allowed() {
        let mut m = manifest("1.0.0");
        assert!(matches!(
            check_update(&m, &v("1.1.0"), "hw-a"),
            Err(Refusal::Downgrade { .. })
        ));
        assert!(matches!(
            check_update(&m, &v("1.0.0+other-build"), "hw-a"),
            Err(Refusal::AlreadyInstalled { .. })
        ));
        // A release is newer than its own pre-release.
        assert!(matches!(
            check_update(&manifest("1.0.0-rc.1"), &v("1.0.0"), "hw-a"),
            Err(Refusal::Downgrade { .. })
        ));
        m.allow_downgrade = true;
        assert_eq!(check_update(&m, &v("1.1.0"), "hw-a"), Ok(()));
    }

    #[test]
    fn refuses_below_min_from() {
        let mut m = manifest("2.0.0");
        m.min_from = Some(v("1.5.0"));
        assert!(matches!(
            check_update(&m, &v("1.4.9"), "hw-a"),
            Err(Refusal::BelowMinFrom { .. })
        ));
        assert_eq!(check_update(&m, &v("1.5.0"), "hw-a"), Ok(()));
    }
}
