//! A streaming, per-device anomaly model over named numeric features.
//!
//! The hub sees one feature record per window from each device and must say, message by
//! message, whether the machine still behaves as it did when it was known to be healthy.
//! The model learns a baseline for every feature during a warm-up, then scores each
//! message by how far its features are from that baseline, and turns scores into a
//! normal/anomalous state with hysteresis so one noisy reading does not flap an alarm.
//!
//! - Features are `(name, value)` pairs, whatever the message carried: a name never
//!   seen starts its own baseline (scored once it has `warmup` values), a missing name
//!   is skipped, NaN and infinities are ignored. At most `max_features` names are kept.
//! - Scale: each feature on `asinh(v / scale)` (log-like, see `baseline`), z-score
//!   against its mean and standard deviation (floored at `min_sigma`); the message's
//!   score is the RMS of the `top_k` largest |z|.
//! - The model explains itself: the features with the largest |z| and their ratio to the
//!   baseline come with every score.
//! - The whole state is serde-serialisable so the pipeline can persist it and resume
//!   with identical scores after a restart.
//!
//! Layout: `config` (settings), `baseline` (per-feature statistics), this file (scoring
//! and the state machine).
//!
//! ```
//! use analytics::anomaly::{Model, ModelConfig, State, Transition};
//!
//! let mut model = Model::new(ModelConfig { warmup: 5, ..ModelConfig::default() });
//! for i in 0..5 {
//!     model.observe(&[("x.rms", 0.07 + 0.001 * f64::from(i)), ("x.kurtosis", 3.0)]);
//! }
//! let calm = model.observe(&[("x.rms", 0.071), ("x.kurtosis", 3.0)]);
//! assert_eq!(calm.state, State::Normal);
//! model.observe(&[("x.rms", 0.5), ("x.kurtosis", 9.0)]);
//! let loud = model.observe(&[("x.rms", 0.5), ("x.kurtosis", 9.0)]);
//! assert_eq!(loud.transition, Transition::Entered);
//! assert_eq!(loud.top[0].feature, "x.rms");
//! let restored: Model = serde_json::from_str(&serde_json::to_string(&model)?)?;
//! assert_eq!(restored, model);
//! # Ok::<(), serde_json::Error>(())
//! ```

mod baseline;
mod config;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use baseline::{transform, untransform, Baseline};
pub use config::ModelConfig;

/// Largest |z| reported or scored: keeps scores finite and comparable when a feature
/// jumps by many decades.
const MAX_Z: f64 = 1e6;

/// Where the model stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Still learning the baseline; no verdict yet.
    WarmingUp,
    /// Behaving like the baseline.
    Normal,
    /// Scores stayed at or above the enter threshold; not yet back below exit.
    Anomalous,
}

impl State {
    /// The snake_case name used in output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WarmingUp => "warming_up",
            Self::Normal => "normal",
            Self::Anomalous => "anomalous",
        }
    }
}

/// What changed with this message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// The state did not change.
    None,
    /// Normal → anomalous: raise an alert.
    Entered,
    /// Anomalous → normal: clear it.
    Exited,
}

/// One feature's share in a score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// Feature name.
    pub feature: String,
    /// Standard score on the log-like scale (signed: negative is below baseline).
    pub z: f64,
    /// Value over the baseline's typical (geometric-mean) value, for values well above
    /// the model's `scale`; `exp` of the log-scale difference in general.
    pub ratio: f64,
    /// The value in this message.
    pub value: f64,
    /// The baseline's typical value.
    pub baseline: f64,
}

/// The model's answer to one message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// RMS of the largest |z| (0 while warming up or with nothing to score).
    pub score: f64,
    /// State after this message.
    pub state: State,
    /// Whether this message changed the state.
    pub transition: Transition,
    /// Features that drove the score, largest |z| first.
    pub top: Vec<Contribution>,
    /// Features that were scored.
    pub scored: usize,
}

/// One device's alarm: where it stands, and how many messages in a row pushed towards
/// the other state. A per-device [`Model`] keeps its own; devices that share a model
/// (a group of identical machines) each keep one beside it, so one device's alarm never
/// raises or clears another's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    /// Current state.
    state: State,
    /// Consecutive messages pushing towards the other state.
    streak: u32,
}

impl Default for Alarm {
    fn default() -> Self {
        Alarm {
            state: State::WarmingUp,
            streak: 0,
        }
    }
}

impl Alarm {
    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Hysteresis: `enter_count` scores ≥ enter in a row to enter, `exit_count` scores
    /// < exit in a row to leave.
    fn step(&mut self, score: f64, c: &ModelConfig) -> Transition {
        let (pushing, needed, next, transition) = match self.state {
            State::Anomalous => (
                score < c.exit,
                c.exit_count,
                State::Normal,
                Transition::Exited,
            ),
            _ => (
                score >= c.enter,
                c.enter_count,
                State::Anomalous,
                Transition::Entered,
            ),
        };
        self.streak = if pushing {
            self.streak.saturating_add(1)
        } else {
            0
        };
        if self.streak >= needed {
            self.state = next;
            self.streak = 0;
            transition
        } else {
            Transition::None
        }
    }
}

/// A baseline of feature statistics plus, for a per-device model, that device's alarm
/// state machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Settings (sanitised).
    config: ModelConfig,
    /// Messages observed.
    seen: u64,
    /// The owning device's alarm (unused when devices share the model); flattened so
    /// saved models keep their `state` and `streak` keys.
    #[serde(flatten)]
    alarm: Alarm,
    /// Baselines by feature name (ordered, so serialisation is deterministic).
    features: BTreeMap<String, Baseline>,
}

/// One message's feature after the transform.
struct Reading<'a> {
    name: &'a str,
    value: f64,
    t: f64,
}

impl Model {
    /// A fresh model, warming up. The configuration is sanitised (see
    /// [`ModelConfig::sanitised`]), so this cannot fail.
    pub fn new(config: ModelConfig) -> Self {
        Self {
            config: config.sanitised(),
            seen: 0,
            alarm: Alarm::default(),
            features: BTreeMap::new(),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The current state (of the owning device's alarm).
    pub fn state(&self) -> State {
        self.alarm.state
    }

    /// Messages observed so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Learns from or scores one message, and advances the model's own alarm.
    pub fn observe<S: AsRef<str>>(&mut self, features: &[(S, f64)]) -> Assessment {
        let mut alarm = self.alarm;
        let assessment = self.observe_for(&mut alarm, features);
        self.alarm = alarm;
        assessment
    }

    /// Learns from or scores one message of a device whose alarm is `alarm`: the model
    /// is shared by several devices (a group), each with its own alarm. The model warms
    /// up on the first `warmup` messages of all of them together; a device that joins
    /// later is scored from its first message.
    pub fn observe_for<S: AsRef<str>>(
        &mut self,
        alarm: &mut Alarm,
        features: &[(S, f64)],
    ) -> Assessment {
        let readings = self.readings(features);
        let warming = self.seen < self.config.warmup;
        self.seen = self.seen.saturating_add(1);
        if warming {
            self.learn_all(&readings);
            if self.seen >= self.config.warmup {
                alarm.state = State::Normal;
            }
            return Assessment {
                score: 0.0,
                state: State::WarmingUp,
                transition: Transition::None,
                top: Vec::new(),
                scored: 0,
            };
        }
        if alarm.state == State::WarmingUp {
            *alarm = Alarm {
                state: State::Normal,
                streak: 0,
            };
        }
        let mut scored = self.score(&readings);
        let score = rms_top(&scored, self.config.top_k);
        let transition = alarm.step(score, &self.config);
        if alarm.state == State::Normal && alarm.streak == 0 && score < self.config.exit {
            self.learn_normal(&readings);
        }
        scored.sort_by(|a, b| b.z.abs().total_cmp(&a.z.abs()));
        let count = scored.len();
        scored.truncate(self.config.explain);
        Assessment {
            score,
            state: alarm.state,
            transition,
            top: scored,
            scored: count,
        }
    }

    /// Finite, named, first-occurrence readings whose name is (or can become) tracked.
    fn readings<'a, S: AsRef<str>>(&self, features: &'a [(S, f64)]) -> Vec<Reading<'a>> {
        let mut out: Vec<Reading<'a>> = Vec::with_capacity(features.len());
        let mut names = std::collections::HashSet::new();
        let mut room = self.config.max_features.saturating_sub(self.features.len());
        for (name, value) in features {
            let name = name.as_ref();
            let Some(t) = transform(*value, self.config.scale) else {
                continue;
            };
            if name.is_empty() || !names.insert(name) {
                continue;
            }
            if !self.features.contains_key(name) {
                if room == 0 {
                    continue;
                }
                room -= 1;
            }
            out.push(Reading {
                name,
                value: *value,
                t,
            });
        }
        out
    }

    /// Warm-up: every reading goes into its baseline.
    fn learn_all(&mut self, readings: &[Reading<'_>]) {
        for r in readings {
            self.features
                .entry(r.name.to_owned())
                .or_insert_with(Baseline::new)
                .learn(r.value, r.t);
        }
    }

    /// After warm-up, on a normal message: features still warming up learn, ready ones
    /// drift if adaptation is on.
    fn learn_normal(&mut self, readings: &[Reading<'_>]) {
        let (warmup, rate) = (self.config.warmup, self.config.adapt);
        for r in readings {
            let b = self
                .features
                .entry(r.name.to_owned())
                .or_insert_with(Baseline::new);
            if b.n < warmup {
                b.learn(r.value, r.t);
            } else if rate > 0.0 {
                b.drift(r.value, r.t, rate);
            }
        }
    }

    /// Contributions of the readings whose baseline is ready.
    fn score(&self, readings: &[Reading<'_>]) -> Vec<Contribution> {
        let (min_sigma, scale) = (self.config.min_sigma, self.config.scale);
        readings
            .iter()
            .filter_map(|r| {
                let b = self.features.get(r.name)?;
                if b.n < self.config.warmup {
                    return None;
                }
                let z = b.z(r.value, r.t, min_sigma);
                let z = if z.is_nan() {
                    0.0
                } else {
                    z.clamp(-MAX_Z, MAX_Z)
                };
                Some(Contribution {
                    feature: r.name.to_owned(),
                    z,
                    ratio: (r.t - b.mean).clamp(-700.0, 700.0).exp(),
                    value: r.value,
                    baseline: untransform(b.mean, scale),
                })
            })
            .collect()
    }
}

/// RMS of the `k` largest |z| (0 when there are none).
fn rms_top(contributions: &[Contribution], k: usize) -> f64 {
    let mut sq: Vec<f64> = contributions.iter().map(|c| c.z * c.z).collect();
    sq.sort_by(|a, b| b.total_cmp(a));
    let top = sq.get(..k.min(sq.len())).unwrap_or_default();
    if top.is_empty() {
        return 0.0;
    }
    let rms = (top.iter().sum::<f64>() / top.len() as f64).sqrt();
    if rms.is_finite() {
        rms
    } else {
        MAX_Z
    }
}
