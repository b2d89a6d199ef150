#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| iace_fuzz::phone_number(data));
