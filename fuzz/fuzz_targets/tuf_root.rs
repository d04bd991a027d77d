//! libFuzzer runs `clive_fuzz_targets::tuf_root` (fuzz-targets/src/tuf_root.rs says
//! what it decodes and the properties it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clive_fuzz_targets::tuf_root(data));
