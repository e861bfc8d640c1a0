//! Races under a multi-threaded runtime: one winner among concurrent refreshes of a rotating
//! token, and the v2.1 quota held by concurrent issues.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_of_a_rotating_token_yield_exactly_one() {
    let mut c = test_config();
    c.rotate_refresh_tokens = true;
    let env = start_with(c).await;
    for _ in 0..5 {
        let t = env.login_tokens(&env.user_ids()[0], "profile").await;
        let refresh = t["refresh_token"].as_str().unwrap();
        let statuses = env
            .token_race(
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh),
                    ("client_id", CHANNEL),
                    ("client_secret", SECRET),
                ],
                16,
            )
            .await;
        let ok = statuses.iter().filter(|s| **s == 200).count();
        assert_eq!(ok, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_v21_issues_respect_the_quota_of_30() {
    let env = start().await;
    let a = assertion(KID, CHANNEL, 600, Some(3600));
    let statuses = env
        .token_race(
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", BEARER),
                ("client_assertion", a.as_str()),
            ],
            40,
        )
        .await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(ok, 30);
}
