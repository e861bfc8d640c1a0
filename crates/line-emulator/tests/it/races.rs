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
        let refresh = t["refresh_token"].as_str().unwrap().to_owned();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let api = env.api.clone();
            let url = env.url("/oauth2/v2.1/token");
            let refresh = refresh.clone();
            tasks.push(tokio::spawn(async move {
                api.post(url)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh.as_str()),
                        ("client_id", CHANNEL),
                        ("client_secret", SECRET),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        let mut ok = 0;
        for t in tasks {
            if t.await.unwrap() == 200 {
                ok += 1;
            }
        }
        assert_eq!(ok, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_v21_issues_respect_the_quota_of_30() {
    let env = start().await;
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let api = env.api.clone();
        let url = env.url("/oauth2/v2.1/token");
        let a = assertion(KID, CHANNEL, 600, Some(3600));
        tasks.push(tokio::spawn(async move {
            api.post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", a.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 30);
}
