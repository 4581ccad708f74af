//! A `no_std` consumer of `bosun-device`: a 3-axis, 4096-point pipeline feeding a CBOR
//! encoder, as firmware would use it. It exists to be compiled (see `Cargo.toml`), and
//! its one function is what the code-size figure in docs/device.md measures.
#![no_std]

use device::{encode::cbor, BearingGeometry, Config, Pipeline};

/// Firmware has nowhere to unwind to; the pipeline itself never panics on data.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// Built at compile time, as firmware would.
static CONFIG: Config = Config::new(12_000.0, BearingGeometry::SKF_6205);

/// Fills one window with a ramp, computes its features and encodes them into `out`;
/// returns the payload length (0 on error). The 48 KiB pipeline is on the stack here
/// only because this is a check; firmware puts it in a `static`.
#[no_mangle]
pub extern "C" fn bosun_features_demo(out: &mut [u8; cbor::MAX_LEN]) -> usize {
    let Ok(mut pipeline) = Pipeline::<4096, 3>::new(CONFIG) else {
        return 0;
    };
    let mut t = 0.0f32;
    while pipeline.push([t, -t, 0.5 * t]).is_ok() {
        t += 0.001;
    }
    match pipeline.compute(1797.0 / 60.0) {
        Ok(features) => cbor::encode(&features, out).unwrap_or(0),
        Err(_) => 0,
    }
}
