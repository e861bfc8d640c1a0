//! The callback parser (`line_login::callback`): any query string, as a browser could send it.
//! Properties: no panic; a parsed response's state verifies against itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use line_login::callback::{CallbackOutcome, parse_callback, verify_callback};
use line_login::types::State;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(resp) = parse_callback(query)
        && let Some(state) = resp.state().cloned()
    {
        let outcome = verify_callback(query, &state);
        assert!(
            !matches!(outcome, Ok(CallbackOutcome::StateMismatch { .. })),
            "a callback's own state must match it"
        );
    }
    let _ = verify_callback(query, &State::new("fuzz-state"));
});
