#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyplan_fuzz::stored_event::run(data));
