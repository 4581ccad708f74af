//! The anomaly model's contract: warm-up, scores, hysteresis, explanations, persistence,
//! and graceful handling of odd input (new, missing, duplicate and non-finite features).

use analytics::anomaly::{Model, ModelConfig, State, Transition};

/// Deterministic noise in [-0.5, 0.5).
struct Noise(u32);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        f64::from(self.0) / f64::from(u32::MAX) - 0.5
    }
}

/// A healthy message: energies around fixed levels with ±5 % noise.
fn healthy(noise: &mut Noise) -> Vec<(String, f64)> {
    vec![
        ("x.rms".to_owned(), 0.07 * (1.0 + 0.1 * noise.next())),
        ("x.kurtosis".to_owned(), 3.0 * (1.0 + 0.1 * noise.next())),
        (
            "x.envelope.bpfo.0".to_owned(),
            4e-6 * (1.0 + 0.1 * noise.next()),
        ),
        ("x.mean".to_owned(), 0.01 * (1.0 + 0.1 * noise.next())),
    ]
}

/// The healthy message with BPFO energy multiplied by `factor`.
fn faulty(noise: &mut Noise, factor: f64) -> Vec<(String, f64)> {
    let mut m = healthy(noise);
    m[2].1 *= factor;
    m
}

fn warmed(config: ModelConfig) -> (Model, Noise) {
    let mut model = Model::new(config);
    let mut noise = Noise(7);
    for i in 0..model.config().warmup {
        let a = model.observe(&healthy(&mut noise));
        assert_eq!(a.state, State::WarmingUp, "message {i}");
        assert_eq!(a.score, 0.0);
    }
    (model, noise)
}

#[test]
fn healthy_stays_normal_and_a_fault_enters_and_leaves_with_hysteresis() {
    let (mut model, mut noise) = warmed(ModelConfig::default());
    for _ in 0..200 {
        let a = model.observe(&healthy(&mut noise));
        assert_eq!(a.state, State::Normal);
        assert!(a.score < 4.0, "{a:?}");
        assert_eq!(a.scored, 4);
    }
    // One spike alone does not enter (enter_count = 2).
    let a = model.observe(&faulty(&mut noise, 100.0));
    assert!(a.score >= 6.0 && a.state == State::Normal && a.transition == Transition::None);
    assert_eq!(model.observe(&healthy(&mut noise)).state, State::Normal);
    // Two in a row do, and the explanation names the feature and its ratio.
    model.observe(&faulty(&mut noise, 100.0));
    let a = model.observe(&faulty(&mut noise, 100.0));
    assert_eq!(
        (a.state, a.transition),
        (State::Anomalous, Transition::Entered)
    );
    let top = &a.top[0];
    assert_eq!(top.feature, "x.envelope.bpfo.0");
    assert!(
        top.z > 10.0 && (top.ratio / 100.0 - 1.0).abs() < 0.2,
        "{top:?}"
    );
    assert!((top.baseline / 4e-6 - 1.0).abs() < 0.1, "{top:?}");
    // Leaving takes exit_count (3) healthy messages; a fault in between resets it.
    for _ in 0..2 {
        assert_eq!(model.observe(&healthy(&mut noise)).state, State::Anomalous);
    }
    model.observe(&faulty(&mut noise, 100.0));
    for _ in 0..2 {
        assert_eq!(model.observe(&healthy(&mut noise)).state, State::Anomalous);
    }
    let a = model.observe(&healthy(&mut noise));
    assert_eq!((a.state, a.transition), (State::Normal, Transition::Exited));
}

#[test]
fn does_not_learn_the_fault_while_anomalous() {
    let config = ModelConfig {
        adapt: 0.05,
        ..ModelConfig::default()
    };
    let (mut model, mut noise) = warmed(config);
    for _ in 0..100 {
        model.observe(&faulty(&mut noise, 50.0));
    }
    let a = model.observe(&faulty(&mut noise, 50.0));
    assert_eq!(a.state, State::Anomalous);
    assert!(a.score > 6.0, "the fault became the baseline: {a:?}");
}

#[test]
fn restored_model_gives_identical_scores() {
    let (mut model, mut noise) = warmed(ModelConfig {
        adapt: 0.01,
        ..ModelConfig::default()
    });
    for i in 0..50 {
        model.observe(&faulty(&mut noise, if i % 7 < 3 { 30.0 } else { 1.0 }));
    }
    let saved = serde_json::to_string(&model).expect("serialises");
    let mut restored: Model = serde_json::from_str(&saved).expect("deserialises");
    assert_eq!(restored, model);
    let mut other = Noise(99);
    for i in 0..100 {
        let m = faulty(&mut other, if i % 11 < 4 { 20.0 } else { 1.0 });
        assert_eq!(model.observe(&m), restored.observe(&m), "message {i}");
    }
}

#[test]
fn odd_features_are_handled() {
    let (mut model, mut noise) = warmed(ModelConfig::default());
    // Missing features: only the present ones are scored.
    let a = model.observe(&[("x.rms", 0.07)]);
    assert_eq!((a.scored, a.state), (1, State::Normal));
    // Non-finite values and duplicates are ignored; empty names too.
    let a = model.observe(&[
        ("x.rms", f64::NAN),
        ("x.kurtosis", f64::INFINITY),
        ("", 1.0),
        ("x.mean", 0.01),
        ("x.mean", 1e9),
    ]);
    assert_eq!(a.scored, 1);
    assert!(a.score < 4.0, "{a:?}");
    // A new feature learns its own baseline first, then is scored.
    for i in 0..40 {
        let mut m = healthy(&mut noise);
        m.push(("y.rms".to_owned(), 0.05 * (1.0 + 0.1 * noise.next())));
        let a = model.observe(&m);
        let expect = if i < 30 { 4 } else { 5 };
        assert_eq!(a.scored, expect, "message {i}");
    }
    // Nothing at all: score 0, still normal.
    let empty: [(&str, f64); 0] = [];
    let a = model.observe(&empty);
    assert_eq!((a.score, a.state), (0.0, State::Normal));
}

#[test]
fn feature_count_is_bounded() {
    let mut model = Model::new(ModelConfig {
        max_features: 10,
        warmup: 2,
        ..ModelConfig::default()
    });
    for i in 0..50 {
        let names: Vec<(String, f64)> = (0..20).map(|j| (format!("f{i}.{j}"), 1.0)).collect();
        model.observe(&names);
    }
    let json = serde_json::to_value(&model).expect("serialises");
    assert_eq!(json["features"].as_object().map(|o| o.len()), Some(10));
}

#[test]
fn bad_settings_are_sanitised() {
    let model = Model::new(ModelConfig {
        warmup: 0,
        enter: f64::NAN,
        exit: 100.0,
        enter_count: 0,
        top_k: 0,
        min_sigma: -1.0,
        scale: 0.0,
        adapt: 7.0,
        ..ModelConfig::default()
    });
    let c = model.config();
    assert!(c.warmup >= 2 && c.enter == 6.0 && c.exit <= c.enter && c.enter_count == 1);
    assert!(c.top_k == 1 && c.min_sigma > 0.0 && c.scale > 0.0 && c.adapt <= 1.0);
}

/// A model shared by a group of identical machines: one device's fault raises only its
/// own alarm, a device joining after the group's warm-up is scored from its first
/// message, and the saved form of a per-device model still holds its alarm.
#[test]
fn a_shared_model_keeps_one_alarm_per_device() {
    use analytics::anomaly::Alarm;
    let mut shared = Model::new(ModelConfig::default());
    let mut noise = Noise(11);
    let (mut a, mut b) = (Alarm::default(), Alarm::default());
    let warmup = shared.config().warmup;
    for i in 0..warmup {
        let alarm = if i % 2 == 0 { &mut a } else { &mut b };
        let got = shared.observe_for(alarm, &healthy(&mut noise));
        assert_eq!(got.state, State::WarmingUp, "message {i}");
    }
    // A newcomer is scored at once: the group's baseline is its baseline.
    let mut c = Alarm::default();
    let got = shared.observe_for(&mut c, &healthy(&mut noise));
    assert_eq!((got.state, got.scored), (State::Normal, 4), "{got:?}");
    // Device a develops a fault: a enters, b stays normal on the same model.
    let mut entered = false;
    for _ in 0..4 {
        entered |= shared
            .observe_for(&mut a, &faulty(&mut noise, 100.0))
            .transition
            == Transition::Entered;
        let got = shared.observe_for(&mut b, &healthy(&mut noise));
        assert_eq!(got.state, State::Normal, "{got:?}");
    }
    assert!(entered);
    assert_eq!((a.state(), b.state()), (State::Anomalous, State::Normal));

    // A per-device model's alarm survives a save and load in its old JSON shape.
    let (mut own, mut noise) = warmed(ModelConfig::default());
    for _ in 0..3 {
        own.observe(&faulty(&mut noise, 100.0));
    }
    assert_eq!(own.state(), State::Anomalous);
    let json = serde_json::to_value(&own).expect("json");
    assert_eq!(json["state"], "anomalous", "{json}");
    let back: Model = serde_json::from_value(json).expect("back");
    assert_eq!(back, own);
}
