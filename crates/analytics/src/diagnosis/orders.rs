//! Bearing defect frequencies as multiples of shaft speed, as a data sheet gives them.
//!
//! The CLI takes these four numbers (`--bearing BPFI,BPFO,BSF,FTF`) rather than a
//! geometry, because that is how bearing makers and the CWRU tables publish them. The
//! "BSF" is the rate at which one ball defect strikes a race — CWRU's convention, twice
//! the textbook ball-spin frequency (`device::DefectFrequencies::bsf`).

use serde::{Deserialize, Serialize};

use device::BearingGeometry;

use crate::Error;

/// BPFI, BPFO, BSF (CWRU convention) and FTF in orders of shaft speed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BearingOrders {
    /// Ball pass frequency, inner race.
    pub bpfi: f64,
    /// Ball pass frequency, outer race.
    pub bpfo: f64,
    /// Ball defect rate (twice the textbook ball spin).
    pub bsf: f64,
    /// Fundamental train (cage) frequency.
    pub ftf: f64,
}

impl BearingOrders {
    /// SKF 6205-2RS JEM, the CWRU drive-end bearing (CWRU's published multipliers).
    pub const CWRU_6205: Self = Self {
        bpfi: 5.4152,
        bpfo: 3.5848,
        bsf: 4.7135,
        ftf: 0.39828,
    };

    /// Parses `BPFI,BPFO,BSF,FTF` (four positive numbers).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let values: Vec<f64> = text
            .split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|e| Error::InvalidConfig(format!("--bearing {text:?}: {e}")))?;
        let [bpfi, bpfo, bsf, ftf] = values[..] else {
            return Err(Error::InvalidConfig(format!(
                "--bearing {text:?}: expected four numbers BPFI,BPFO,BSF,FTF"
            )));
        };
        let orders = Self {
            bpfi,
            bpfo,
            bsf,
            ftf,
        };
        orders.validate()?;
        Ok(orders)
    }

    /// Every multiplier positive and finite, and below 100 (no bearing has more).
    pub fn validate(&self) -> Result<(), Error> {
        let ok = [self.bpfi, self.bpfo, self.bsf, self.ftf]
            .iter()
            .all(|v| v.is_finite() && *v > 0.0 && *v < 100.0);
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidConfig(
                "bearing multipliers must be positive, finite and below 100".into(),
            ))
        }
    }

    /// A bearing geometry with these BPFO and BPFI (for the device extractor, which
    /// wants dimensions): `balls = round(BPFO + BPFI)`, ball/pitch ratio
    /// `(BPFI − BPFO)/(BPFI + BPFO)`, contact angle 0. The CWRU multipliers give the exact
    /// SKF 6205. An impossible pair (BPFI ≤ BPFO) gives a geometry the extractor refuses.
    pub fn geometry(&self) -> BearingGeometry {
        if *self == Self::CWRU_6205 {
            return BearingGeometry::SKF_6205;
        }
        let sum = self.bpfi + self.bpfo;
        let balls = sum.round().clamp(0.0, f64::from(u16::MAX)) as u16;
        let ratio = if sum > 0.0 {
            (self.bpfi - self.bpfo) / sum
        } else {
            0.0
        };
        BearingGeometry {
            balls,
            ball_diameter: ratio as f32,
            pitch_diameter: 1.0,
            contact_angle_deg: 0.0,
        }
    }

    /// The highest of the four.
    pub fn max(&self) -> f64 {
        self.bpfi.max(self.bpfo).max(self.bsf).max(self.ftf)
    }
}

impl Default for BearingOrders {
    fn default() -> Self {
        Self::CWRU_6205
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(
            BearingOrders::parse("5.4152, 3.5848,4.7135,0.39828"),
            Ok(BearingOrders::CWRU_6205)
        );
        for bad in [
            "",
            "1,2,3",
            "1,2,3,4,5",
            "1,2,x,4",
            "1,2,3,-4",
            "1,2,NaN,4",
            "1,2,inf,4",
        ] {
            assert!(BearingOrders::parse(bad).is_err(), "{bad}");
        }
        let g = BearingOrders {
            bpfi: 5.4,
            ..BearingOrders::CWRU_6205
        }
        .geometry();
        assert_eq!(g.balls, 9);
        let o = g.orders();
        assert!(
            (o.bpfi - 5.4).abs() < 0.01 && (o.bpfo - 3.5848).abs() < 0.01,
            "{o:?}"
        );
    }
}
