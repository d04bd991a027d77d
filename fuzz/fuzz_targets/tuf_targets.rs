//! libFuzzer runs `clive_fuzz_targets::tuf_targets` (fuzz-targets/src/tuf_targets.rs says
//! what it decodes and the properties it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clive_fuzz_targets::tuf_targets(data));
