#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| iace_fuzz::auth_token(data));
