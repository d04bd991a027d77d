//! libFuzzer runs `clive_fuzz_targets::tuf_timestamp` (fuzz-targets/src/tuf_timestamp.rs says
//! what it decodes and the properties it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clive_fuzz_targets::tuf_timestamp(data));
