//! Rolling-element bearing geometry and the defect frequencies it implies.
//!
//! A local defect (a spall) on one part of a bearing is struck at a rate fixed by the
//! geometry and the shaft speed, so a line or an envelope line at that rate points at the
//! damaged part: outer race (BPFO), inner race (BPFI), a ball (BSF) or the cage (FTF).
//! This module turns a datasheet's four numbers into those rates; it knows nothing about
//! spectra.

use crate::trig::cos_quarter_turn;
use crate::Error;

/// Dimensions of a rolling-element bearing, as on its datasheet.
///
/// The diameters only matter as a ratio, so any length unit works as long as both use it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BearingGeometry {
    /// Number of rolling elements.
    pub balls: u16,
    /// Diameter of one rolling element.
    pub ball_diameter: f32,
    /// Pitch diameter: the circle through the centres of the rolling elements.
    pub pitch_diameter: f32,
    /// Contact angle in degrees (0 for a deep-groove ball bearing under radial load).
    pub contact_angle_deg: f32,
}

impl BearingGeometry {
    /// SKF 6205-2RS JEM, the drive-end bearing of the CWRU test rig: 9 balls, ball
    /// diameter 0.3126 in, pitch diameter 1.537 in, contact angle 0°.
    ///
    /// Source: Case Western Reserve University Bearing Data Center, bearing specification
    /// of the seeded-fault test data, <https://engineering.case.edu/bearingdatacenter>.
    pub const SKF_6205: Self = Self {
        balls: 9,
        ball_diameter: 0.3126,
        pitch_diameter: 1.537,
        contact_angle_deg: 0.0,
    };

    /// Refuses geometry that would give meaningless or infinite frequencies: no balls,
    /// non-positive or non-finite diameters, balls as large as the pitch circle, or a
    /// contact angle outside `[0°, 90°)`.
    pub const fn validate(&self) -> Result<(), Error> {
        let (d, p, a) = (
            self.ball_diameter,
            self.pitch_diameter,
            self.contact_angle_deg,
        );
        if self.balls == 0 {
            return Err(Error::InvalidConfig("bearing has no rolling elements"));
        }
        if !(d.is_finite() && p.is_finite() && d > 0.0 && p > d) {
            return Err(Error::InvalidConfig(
                "bearing diameters must satisfy 0 < ball < pitch",
            ));
        }
        if !(a.is_finite() && a >= 0.0 && a < 90.0) {
            return Err(Error::InvalidConfig("contact angle must be in [0°, 90°)"));
        }
        Ok(())
    }

    /// Defect frequencies as multiples of the shaft frequency ("orders"), which do not
    /// change with speed and so can be computed once.
    pub fn orders(&self) -> DefectFrequencies {
        let ratio = self.ball_diameter / self.pitch_diameter
            * cos_quarter_turn(self.contact_angle_deg.to_radians());
        let half_balls = f32::from(self.balls) / 2.0;
        DefectFrequencies {
            bpfo: half_balls * (1.0 - ratio),
            bpfi: half_balls * (1.0 + ratio),
            bsf: self.pitch_diameter / (2.0 * self.ball_diameter) * (1.0 - ratio * ratio),
            ftf: 0.5 * (1.0 - ratio),
        }
    }

    /// Defect frequencies in Hz at a shaft speed in Hz (rpm / 60).
    pub fn frequencies(&self, shaft_hz: f32) -> DefectFrequencies {
        self.orders().scaled(shaft_hz)
    }
}

/// The four characteristic defect rates of a bearing, in Hz or in orders of shaft speed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DefectFrequencies {
    /// Ball pass frequency, outer race: rate at which balls roll over one point of the
    /// stationary outer race.
    pub bpfo: f32,
    /// Ball pass frequency, inner race: the same for a point of the rotating inner race.
    pub bpfi: f32,
    /// Ball spin frequency, the textbook definition `D/(2d)·(1 − (d/D·cos φ)²)`: one
    /// rotation of a ball about its own axis. A ball defect strikes both races each spin,
    /// so its strongest line is often at 2×BSF — which is what CWRU's tables call "BSF"
    /// (4.7135× shaft speed for the 6205, twice our 2.357×). The second harmonic band
    /// covers it.
    pub bsf: f32,
    /// Fundamental train frequency: rotation rate of the cage.
    pub ftf: f32,
}

impl DefectFrequencies {
    /// Every frequency multiplied by `factor` (orders times shaft Hz gives Hz).
    pub fn scaled(&self, factor: f32) -> Self {
        Self {
            bpfo: self.bpfo * factor,
            bpfi: self.bpfi * factor,
            bsf: self.bsf * factor,
            ftf: self.ftf * factor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The multipliers published by CWRU for the 6205 (BSF there is twice ours).
    #[test]
    fn skf_6205_matches_cwru_table() {
        let o = BearingGeometry::SKF_6205.orders();
        assert!((o.bpfi - 5.4152).abs() < 1e-3, "{o:?}");
        assert!((o.bpfo - 3.5848).abs() < 1e-3, "{o:?}");
        assert!((o.ftf - 0.39828).abs() < 1e-4, "{o:?}");
        assert!((2.0 * o.bsf - 4.7135).abs() < 1e-3, "{o:?}");
        let hz = BearingGeometry::SKF_6205.frequencies(1797.0 / 60.0);
        assert!(
            (hz.bpfi - 162.2).abs() < 0.1 && (hz.bpfo - 107.4).abs() < 0.1,
            "{hz:?}"
        );
    }

    #[test]
    fn rejects_impossible_geometry() {
        let good = BearingGeometry::SKF_6205;
        assert!(good.validate().is_ok());
        assert!(BearingGeometry { balls: 0, ..good }.validate().is_err());
        assert!(BearingGeometry {
            ball_diameter: 2.0,
            ..good
        }
        .validate()
        .is_err());
        assert!(BearingGeometry {
            pitch_diameter: f32::NAN,
            ..good
        }
        .validate()
        .is_err());
        assert!(BearingGeometry {
            contact_angle_deg: 90.0,
            ..good
        }
        .validate()
        .is_err());
    }
}
