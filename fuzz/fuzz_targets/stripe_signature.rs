#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| iace_fuzz::stripe_signature(data));
