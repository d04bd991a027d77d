//! libFuzzer runs `clive_fuzz_targets::cert_body` (fuzz-targets/src/cert_body.rs says
//! what it decodes and the properties it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clive_fuzz_targets::cert_body(data));
