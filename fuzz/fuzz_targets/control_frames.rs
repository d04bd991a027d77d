//! libFuzzer runs `clive_fuzz_targets::control_frames` (fuzz-targets/src/control_frames.rs says
//! what it decodes and the properties it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clive_fuzz_targets::control_frames(data));
