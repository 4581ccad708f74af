//! Payload codecs: any `Features` survives CBOR and Protobuf bit for bit, encodings fit
//! the advertised `MAX_LEN`, and no byte string makes a decoder panic.

use device::encode::{cbor, protobuf, DecodeError};
use device::{AxisFeatures, DefectBands, Features, HARMONICS, MAX_AXES};
use proptest::prelude::*;

/// Any `f32` bit pattern: NaNs with payloads, −0.0, subnormals, infinities.
fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<u32>().prop_map(f32::from_bits),
        Just(0.0f32),
        Just(-0.0f32),
        -1e3f32..1e3,
    ]
}

/// Values per axis: eight scalars and two sets of band energies.
const AXIS_VALUES: usize = 8 + 2 * 4 * HARMONICS;

/// Builds one axis from `AXIS_VALUES` floats, in field order.
fn axis_from(v: &[f32]) -> AxisFeatures {
    let h = |at: usize| -> [f32; HARMONICS] { std::array::from_fn(|i| v[at + i]) };
    let bands = |at: usize| DefectBands {
        bpfo: h(at),
        bpfi: h(at + 3),
        bsf: h(at + 6),
        ftf: h(at + 9),
    };
    AxisFeatures {
        mean: v[0],
        rms: v[1],
        peak: v[2],
        crest: v[3],
        kurtosis: v[4],
        shaft_1x: v[5],
        shaft_2x: v[6],
        resonance: v[7],
        spectrum: bands(8),
        envelope: bands(8 + 4 * HARMONICS),
    }
}

/// Any `Features`. Built from a flat vector rather than nested strategies: a strategy
/// nested as deep as the struct overflows the test thread's stack in debug builds.
fn features() -> impl Strategy<Value = Features> {
    (
        any::<u32>(),
        any::<u32>(),
        prop::collection::vec(any_f32(), 2 + MAX_AXES * AXIS_VALUES),
        any::<[bool; MAX_AXES]>(),
    )
        .prop_map(|(seq, window_len, v, present)| Features {
            seq,
            sample_rate_hz: v[0],
            window_len,
            shaft_hz: v[1],
            axes: std::array::from_fn(|i| {
                present[i].then(|| axis_from(&v[2 + i * AXIS_VALUES..2 + (i + 1) * AXIS_VALUES]))
            }),
        })
}

/// Every value as bits (NaN ≠ NaN under `==`), with the axis layout.
fn bits(f: &Features) -> Vec<u64> {
    let mut out = vec![
        u64::from(f.seq),
        u64::from(f.sample_rate_hz.to_bits()),
        u64::from(f.window_len),
    ];
    out.push(u64::from(f.shaft_hz.to_bits()));
    for a in &f.axes {
        let Some(a) = a else {
            out.push(u64::MAX);
            continue;
        };
        for v in [
            a.mean,
            a.rms,
            a.peak,
            a.crest,
            a.kurtosis,
            a.shaft_1x,
            a.shaft_2x,
            a.resonance,
        ] {
            out.push(u64::from(v.to_bits()));
        }
        for b in [&a.spectrum, &a.envelope] {
            for v in b.bpfo.iter().chain(&b.bpfi).chain(&b.bsf).chain(&b.ftf) {
                out.push(u64::from(v.to_bits()));
            }
        }
    }
    out
}

/// The largest record either encoding can produce: every axis, no zero, widest integers.
fn widest() -> Features {
    let b = DefectBands {
        bpfo: [1.0; 3],
        bpfi: [1.0; 3],
        bsf: [1.0; 3],
        ftf: [1.0; 3],
    };
    let a = AxisFeatures {
        mean: 1.0,
        rms: 1.0,
        peak: 1.0,
        crest: 1.0,
        kurtosis: 1.0,
        shaft_1x: 1.0,
        shaft_2x: 1.0,
        resonance: 1.0,
        spectrum: b,
        envelope: b,
    };
    Features {
        seq: u32::MAX,
        sample_rate_hz: 1.0,
        window_len: u32::MAX,
        shaft_hz: 1.0,
        axes: [Some(a); MAX_AXES],
    }
}

#[test]
fn max_len_is_exact() {
    let f = widest();
    assert_eq!(cbor::len(&f), cbor::MAX_LEN);
    assert_eq!(protobuf::len(&f), protobuf::MAX_LEN);
    let mut buf = [0u8; cbor::MAX_LEN];
    assert_eq!(cbor::encode(&f, &mut buf), Ok(cbor::MAX_LEN));
    assert_eq!(protobuf::encode(&f, &mut buf), Ok(protobuf::MAX_LEN));
}

/// What one CWRU-like single-axis record costs on the wire.
#[test]
fn single_axis_record_sizes() {
    let mut f = widest();
    f.seq = 1234;
    f.window_len = 4096;
    f.axes[1] = None;
    f.axes[2] = None;
    let (c, p) = (cbor::len(&f), protobuf::len(&f));
    println!("single-axis record: CBOR {c} bytes, Protobuf {p} bytes");
    assert!(c < 200 && p < 180, "CBOR {c}, Protobuf {p}");
}

#[test]
fn cbor_rejects_trailing_bytes_and_truncation() {
    let bytes = cbor::to_vec(&widest());
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        cbor::decode(&longer),
        Err(DecodeError::TrailingBytes {
            position: bytes.len()
        })
    );
    assert_eq!(
        cbor::decode(&bytes[..bytes.len() - 1]),
        Err(DecodeError::Truncated)
    );
    assert_eq!(cbor::decode(&[]), Err(DecodeError::Truncated));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn cbor_roundtrips_any_features(f in features()) {
        let bytes = cbor::to_vec(&f);
        prop_assert_eq!(bytes.len(), cbor::len(&f));
        prop_assert!(bytes.len() <= cbor::MAX_LEN);
        let back = cbor::decode(&bytes).expect("own encoding decodes");
        prop_assert_eq!(bits(&back), bits(&f));
        // A buffer one byte short is refused, not overrun.
        let mut short = vec![0u8; bytes.len() - 1];
        prop_assert!(cbor::encode(&f, &mut short).is_err());
    }

    #[test]
    fn protobuf_roundtrips_any_features(f in features()) {
        let bytes = protobuf::to_vec(&f);
        prop_assert_eq!(bytes.len(), protobuf::len(&f));
        prop_assert!(bytes.len() <= protobuf::MAX_LEN);
        let back = protobuf::decode(&bytes).expect("own encoding decodes");
        prop_assert_eq!(bits(&back), bits(&f));
        if !bytes.is_empty() {
            let mut short = vec![0u8; bytes.len() - 1];
            prop_assert!(protobuf::encode(&f, &mut short).is_err());
        }
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..700)) {
        let _ = cbor::decode(&bytes);
        let _ = protobuf::decode(&bytes);
    }

    /// Random bytes rarely get past the first value; corrupting valid encodings reaches
    /// the nested paths.
    #[test]
    fn decoders_never_panic_on_corrupted_records(
        f in features(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        for mut bytes in [cbor::to_vec(&f), protobuf::to_vec(&f)] {
            if bytes.is_empty() {
                continue;
            }
            for (at, value) in &edits {
                let i = at.index(bytes.len());
                bytes[i] = *value;
            }
            let _ = cbor::decode(&bytes);
            let _ = protobuf::decode(&bytes);
            let end = cut.index(bytes.len());
            let _ = cbor::decode(&bytes[..end]);
            let _ = protobuf::decode(&bytes[..end]);
        }
    }
}

/// Forward compatibility: a newer device may append fields (new `#[n]` indices) to any
/// struct; this decoder must skip them rather than fail.
#[test]
fn cbor_skips_fields_appended_by_newer_encoders() {
    let f = Features {
        seq: 7,
        window_len: 4096,
        ..Features::default()
    };
    let bytes = cbor::to_vec(&f);
    assert_eq!(bytes[0], 0x85, "Features is a 5-element array");
    let mut newer = vec![0x86];
    newer.extend_from_slice(&bytes[1..]);
    newer.extend_from_slice(&[0x63, b'n', b'e', b'w']); // a sixth field: text "new"
    assert_eq!(cbor::decode(&newer), Ok(f));
}
