//! RAM budget of the feature pipeline, measured with `size_of` so that docs/device.md
//! cannot drift from the code: if a struct grows, this test fails and the doc's table is
//! updated with it.

use std::mem::size_of;

use device::encode::{cbor, protobuf};
use device::{AxisFeatures, Config, FeatureExtractor, Features, Pipeline};

/// Bytes of one `N`-point `f32` window.
const fn window(n: usize) -> usize {
    n * size_of::<f32>()
}

#[test]
fn state_sizes() {
    let rows = [
        ("Pipeline<4096, 3>", size_of::<Pipeline<4096, 3>>()),
        ("Pipeline<4096, 1>", size_of::<Pipeline<4096, 1>>()),
        ("Pipeline<2048, 3>", size_of::<Pipeline<2048, 3>>()),
        (
            "FeatureExtractor<4096>",
            size_of::<FeatureExtractor<4096>>(),
        ),
        ("Config", size_of::<Config>()),
        ("Features", size_of::<Features>()),
        ("AxisFeatures", size_of::<AxisFeatures>()),
        ("CBOR buffer (cbor::MAX_LEN)", cbor::MAX_LEN),
        ("Protobuf buffer (protobuf::MAX_LEN)", protobuf::MAX_LEN),
    ];
    for (name, bytes) in rows {
        println!("{name:<36} {bytes:>6} bytes");
    }
    let config = size_of::<Config>();
    assert!(config <= 64, "Config is {config} bytes");
    // The state is the sample windows plus the configuration and two counters: no hidden
    // buffers.
    assert!(size_of::<Pipeline<4096, 3>>() <= 3 * window(4096) + config + 16);
    assert!(size_of::<FeatureExtractor<4096>>() <= window(4096) + config);
    assert!(size_of::<Features>() <= 512);
}
