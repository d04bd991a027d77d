//! libFuzzer runs `clive_fuzz_targets::job_documents` (fuzz-targets/src/job_documents.rs says
//! what it decodes and the properties it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clive_fuzz_targets::job_documents(data));
