//! Scoring the harmonic series of each candidate defect in one envelope spectrum, and
//! keeping, per defect, the better of several spectra.
//!
//! A defect is named by a *series*: its rate and a few harmonics, with the sidebands its
//! kinematics predict (±1× shaft for an inner race that turns through the load zone,
//! ±FTF for a ball that turns with the cage). One strong line alone is not a series: a
//! machine line or a coincidence can make one, so [`qualifies`] asks for
//! [`DiagnosisConfig::min_harmonics`] of them.

use super::envelope::BandBins;
use super::matching::Ses;
use super::{Defect, DiagnosisConfig, Evidence};

/// Evidence for each of the four defects in one envelope spectrum.
pub(crate) fn candidates(ses: &Ses<'_>, shaft_hz: f64, config: &DiagnosisConfig) -> Vec<Evidence> {
    let o = &config.orders;
    let ftf = o.ftf * shaft_hz;
    [
        (Defect::InnerRace, o.bpfi, Some(shaft_hz)),
        (Defect::OuterRace, o.bpfo, None),
        (Defect::Ball, o.bsf, Some(ftf)),
        (Defect::Cage, o.ftf, None),
    ]
    .into_iter()
    .map(|(defect, order, sideband)| evidence(ses, defect, order * shaft_hz, sideband, config))
    .collect()
}

/// Scores the harmonic series of `f` Hz, with optional sidebands `±sideband` Hz.
fn evidence(
    ses: &Ses<'_>,
    defect: Defect,
    f: f64,
    sideband: Option<f64>,
    config: &DiagnosisConfig,
) -> Evidence {
    let excess = |s: f64| (s / config.threshold).max(1.0).ln();
    let line = |at: f64| ses.line(at, config.tolerance, config.background);
    let mut out = Evidence {
        defect,
        expected_hz: f,
        found_hz: 0.0,
        harmonics: 0,
        strength: 0.0,
        score: 0.0,
    };
    for h in 1..=config.harmonics {
        let centre = h as f64 * f;
        let Some(l) = line(centre) else { continue };
        if h == 1 {
            out.found_hz = l.found_hz;
            out.strength = l.strength;
        }
        // Higher harmonics count less: they are where other series coincide
        // (3×BPFO ≈ 2×BPFI on a 6205).
        let weight = 1.0 / h as f64;
        out.score += weight * excess(l.strength);
        if l.strength < config.threshold {
            continue;
        }
        out.harmonics += 1;
        // Sidebands only support a carrier that is there.
        if let Some(sb) = sideband {
            for side in [centre - sb, centre + sb] {
                if let Some(s) = line(side) {
                    out.score += weight * config.sideband_weight * excess(s.strength);
                }
            }
        }
    }
    out
}

/// Whether `e` is a series (enough harmonics over the threshold) that could be a verdict.
pub(crate) fn qualifies(e: &Evidence, config: &DiagnosisConfig) -> bool {
    e.harmonics >= config.min_harmonics && e.score >= config.min_score
}

/// Per defect, the best of its evidence from several spectra (each tagged with the band
/// it came from), best first: a qualifying series before one that does not qualify,
/// then by score.
pub(crate) fn rank(
    scored: Vec<(Evidence, BandBins)>,
    config: &DiagnosisConfig,
) -> Vec<(Evidence, BandBins)> {
    let key = |e: &Evidence| (qualifies(e, config), e.score);
    let better = |a: &Evidence, b: &Evidence| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    };
    let mut best: Vec<(Evidence, BandBins)> = Vec::new();
    for (e, band) in scored {
        match best.iter_mut().find(|(b, _)| b.defect == e.defect) {
            Some(slot) if better(&e, &slot.0).is_gt() => *slot = (e, band),
            Some(_) => {}
            None => best.push((e, band)),
        }
    }
    best.sort_by(|a, b| better(&b.0, &a.0));
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(defect: Defect, harmonics: usize, score: f64) -> Evidence {
        Evidence {
            defect,
            expected_hz: 100.0,
            found_hz: 100.0,
            harmonics,
            strength: 10.0,
            score,
        }
    }

    fn band(first: usize) -> BandBins {
        BandBins {
            first,
            width: 64,
            kurtosis: 1.0,
        }
    }

    #[test]
    fn a_series_outranks_a_lone_line_and_each_defect_keeps_its_best_band() {
        let config = DiagnosisConfig::default();
        let ranked = rank(
            vec![
                (ev(Defect::InnerRace, 1, 5.0), band(0)),
                (ev(Defect::Ball, 2, 1.0), band(0)),
                (ev(Defect::Ball, 3, 2.5), band(128)),
                (ev(Defect::OuterRace, 0, 0.0), band(0)),
            ],
            &config,
        );
        let order: Vec<Defect> = ranked.iter().map(|(e, _)| e.defect).collect();
        assert_eq!(
            order,
            [Defect::Ball, Defect::InnerRace, Defect::OuterRace],
            "{ranked:?}"
        );
        assert_eq!(ranked[0].1.first, 128);
        assert!(qualifies(&ranked[0].0, &config));
        // Strong but alone: no verdict from one line.
        assert!(!qualifies(&ranked[1].0, &config));
    }
}
