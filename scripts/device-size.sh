#!/usr/bin/env bash
# Measures the flash footprint of the device SDK on a Cortex-M4F (thumbv7em-none-eabihf):
# builds crates/device/no-std-check (a 3-axis, 4096-point pipeline + CBOR encoder, as
# firmware would use it) with opt-level "s" and panic = "abort", links it with rust-lld
# keeping only what its one entry point reaches, and prints the sections and the bytes
# each crate contributes. Needs `rustup` (adds the target once). See docs/device.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGET=thumbv7em-none-eabihf
OUT=target/no-std-check
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"
cargo build --quiet --release --manifest-path crates/device/no-std-check/Cargo.toml \
    --target "$TARGET" --target-dir "$OUT"

sysroot=$(rustc --print sysroot)
lld=$(find "$sysroot/lib/rustlib" -name rust-lld -type f | head -n 1)
elf="$OUT/$TARGET/release/features-demo.elf"
"$lld" -flavor gnu --gc-sections --strip-debug -e bosun_features_demo \
    "$OUT/$TARGET/release/libbosun_device_no_std_check.a" -o "$elf"

echo "## $TARGET, opt-level s, panic = abort: what bosun_features_demo pulls in"
size -A "$elf" | grep -E '^\.(text|rodata|data|bss|ARM)'
size "$elf" | tail -n 1 | awk '{print "flash (text + data):", $1 + $2, "bytes"}'
echo "## bytes by origin (symbol sizes; t = code, r = read-only data)"
nm -S -C "$elf" | awk '
    NF >= 4 && $3 ~ /^[tTrR]$/ {
        name = $4; for (i = 5; i <= NF; i++) name = name " " $i
        origin = "other"
        if (name ~ /device::/) origin = "bosun-device"
        else if (name ~ /minicbor/) origin = "minicbor"
        else if (name ~ /compiler_builtins|__aeabi/) origin = "compiler_builtins"
        else if (name ~ /^(<)?core::/) origin = "core"
        else if (name ~ /^(floorf|ceilf|sqrtf|fmaxf|fminf|libm)/ || name ~ /libm::/) origin = "libm"
        else if (name ~ /bosun_features_demo|no_std_check/) origin = "the demo itself"
        bytes[origin " (" tolower($3) ")"] += ("0x" $2) + 0
    }
    END { for (k in bytes) printf "%8d  %s\n", bytes[k], k }' | sort -rn
