//! Property tests: parsers never panic on arbitrary input, and accept only what they should.

use std::sync::Arc;

use line_login::callback::{CallbackResponse, parse_callback};
use line_login::clock::MockClock;
use line_login::error::LineErrorBody;
use line_login::id_token::{Expectations, IdTokenVerifier};
use line_login::secret::{ChannelSecret, IdToken};
use line_login::types::{ChannelId, State};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn callback_parser_never_panics(query in ".{0,300}") {
        let _ = parse_callback(&query).map(|r| r.verify_state(&State::new("s")));
    }

    #[test]
    fn callback_values_round_trip(code in "[!-~]{1,200}", state in "[A-Za-z0-9]{1,100}") {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code)
            .append_pair("state", &state)
            .finish();
        match parse_callback(&q).unwrap() {
            CallbackResponse::Success(s) => {
                prop_assert_eq!(s.code.secret(), code.as_str());
                prop_assert!(s.state.ct_eq(&State::new(state.as_str())));
            }
            CallbackResponse::Error(_) => prop_assert!(false, "parsed as an error"),
        }
    }

    #[test]
    fn id_token_verifier_never_panics(token in "[A-Za-z0-9_.-]{0,400}") {
        let v = IdTokenVerifier::hs256(ChannelId::new("1"), &ChannelSecret::new("s"))
            .with_clock(Arc::new(MockClock::at_unix(0)));
        prop_assert!(v.verify_now(&IdToken::new(token), &Expectations::default()).is_err());
    }

    #[test]
    fn error_body_parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let parsed = LineErrorBody::parse(&body);
        let _ = parsed.to_string();
    }
}
