//! libFuzzer runs `clive_fuzz_targets::naming_records` (fuzz-targets/src/naming_records.rs says
//! what it decodes and the properties it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clive_fuzz_targets::naming_records(data));
