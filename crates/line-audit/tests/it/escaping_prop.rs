//! Fuzz-style tests of escaping: arbitrary values round-trip and stay on one line.

use std::time::{Duration, UNIX_EPOCH};

use line_audit::escape::{escape, escape_opt, unescape, unescape_opt};
use line_audit::{
    ApiRequest, AuthorizationRequest, AuthorizationResponse, LogFormat, LogKind, Record,
};
use proptest::prelude::*;

/// Strings biased towards the dangerous characters.
fn nasty() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<char>(),
            2 => prop::sample::select(vec!['\t', '\n', '\r', '\\', '\u{0}', '\u{1b}', '\u{7f}',
                '\u{85}', '\u{2028}', '\u{2029}', 'x', '-', '{', '}', 'u']),
        ],
        0..64,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn one_line(line: &str) -> bool {
    line.ends_with('\n')
        && line.matches('\n').count() == 1
        && !line[..line.len() - 1]
            .chars()
            .any(|c| (c.is_control() && c != '\t') || c == '\u{2028}' || c == '\u{2029}')
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn escape_round_trips(s in nasty()) {
        let e = escape(&s);
        let clean = !e.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}');
        prop_assert!(clean, "{:?}", e);
        prop_assert_eq!(unescape(&e).unwrap(), s);
    }

    #[test]
    fn optional_round_trips(s in prop::option::of(nasty())) {
        prop_assert_eq!(unescape_opt(&escape_opt(s.as_deref())).unwrap(), s);
    }

    #[test]
    fn unescape_never_panics(s in any::<String>()) {
        let _ = unescape(&s);
    }

    #[test]
    fn records_stay_on_one_line_and_round_trip(
        url in nasty(), method in nasty(), path in nasty(),
        rid in prop::option::of(nasty()), endpoint in nasty(),
        status in prop::option::of(100u16..600), outcome in prop::option::of("[a-z_]{1,12}"),
        req in prop::option::of(nasty()), resp in prop::option::of(nasty()),
        bodies in any::<bool>(), secs in 0u64..4_102_444_800,
    ) {
        let time = UNIX_EPOCH + Duration::from_secs(secs);
        let records = [
            Record::AuthorizationRequest(AuthorizationRequest { time, url }),
            Record::AuthorizationResponse(AuthorizationResponse { time, method: method.clone(), path }),
            Record::ApiRequest(ApiRequest {
                request_id: rid, time, method, endpoint,
                // In TSV the outcome is only kept when there is no status.
                outcome: if status.is_some() { None } else { outcome },
                status,
                attempt: None, duration_ms: None,
                request_body: if bodies { req } else { None },
                response_body: if bodies { resp } else { None },
                has_body_columns: bodies,
            }),
        ];
        for r in records {
            let line = r.to_tsv();
            prop_assert!(one_line(&line), "{:?}", line);
            let back = Record::parse(r.kind(), LogFormat::Tsv, line.trim_end_matches('\n')).unwrap();
            prop_assert_eq!(&back, &r);

            let mut json = String::new();
            r.write_json_line(&mut json);
            prop_assert!(json.ends_with('\n') && json.matches('\n').count() == 1);
            let back = Record::parse(r.kind(), LogFormat::JsonLines, json.trim_end()).unwrap();
            prop_assert_eq!(back.to_json(), r.to_json());
        }
    }

    #[test]
    fn parse_never_panics_on_garbage(line in any::<String>()) {
        for kind in LogKind::ALL {
            let _ = Record::parse(kind, LogFormat::Tsv, &line);
            let _ = Record::parse(kind, LogFormat::JsonLines, &line);
        }
    }
}
