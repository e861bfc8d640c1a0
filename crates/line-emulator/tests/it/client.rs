//! The project's own client (`line-login`) works against the emulator unchanged: only the
//! base URL differs from production.

use line_login::callback::{CallbackOutcome, verify_callback};
use line_login::secret::ChannelSecret;
use line_login::types::{ChannelId, UserId};
use line_login::{DeauthorizeOutcome, LineClient};

use crate::common::*;

#[tokio::test]
async fn line_login_client_full_lifecycle() {
    let mut c = test_config();
    c.auto_consent = true;
    let env = start_with(c).await;
    let base: url::Url = env.base.parse().unwrap();
    let client = LineClient::builder(ChannelId::new(CHANNEL), ChannelSecret::new(SECRET))
        .base_url(base.clone())
        .build()
        .unwrap();

    // Discovery and JWKS.
    let disco = client.discovery().await.unwrap();
    assert_eq!(disco.issuer, "https://access.line.me");
    assert!(disco.token_endpoint.starts_with(&env.base));
    let jwks = client.jwks().await.unwrap();
    assert_eq!(jwks.keys[0].kty, "EC");

    // Authorize (auto-consent) → callback → code exchange + local HS256 ID token check.
    let pending = client
        .authorization_request(CALLBACK.parse().unwrap())
        .build()
        .unwrap();
    assert!(pending.url.as_str().starts_with(&env.base));
    let resp = env.api.get(pending.url.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let callback = url::Url::parse(&location(&resp).unwrap()).unwrap();
    let outcome = verify_callback(callback.query().unwrap(), &pending.state).unwrap();
    let CallbackOutcome::Authorized(response) = outcome else {
        panic!("expected a code: {outcome:?}");
    };
    let login = client.complete_login(&pending, &response).await.unwrap();
    let claims = login.claims.unwrap();
    assert_eq!(claims.sub, UserId::new(env.user_ids()[0].clone()));
    assert!(claims.nonce.is_some());
    let access = login.tokens.access_token.clone();

    // Resource APIs and verify.
    let profile = client.profile(&access).await.unwrap();
    assert_eq!(profile.display_name, "Test User 1");
    let info = client.userinfo(&access).await.unwrap();
    assert_eq!(info.sub, claims.sub);
    let friendship = client.friendship_status(&access).await.unwrap();
    assert!(!friendship.friend_flag);
    let verified = client.verify_access_token(&access).await.unwrap();
    assert_eq!(verified.client_id.as_str(), CHANNEL);
    assert!(verified.expires_in > 0);

    // Refresh.
    let refreshed = client.refresh(&login.tokens.refresh_token).await.unwrap();
    assert!(refreshed.id_token.is_none());

    // Deauthorize with a stateless channel token; a second call finds nothing left.
    let channel_token = client.issue_stateless_channel_token().await.unwrap();
    assert_eq!(channel_token.expires_in, 900);
    let outcome = client
        .deauthorize(&channel_token.access_token, &access)
        .await
        .unwrap();
    assert!(matches!(outcome, DeauthorizeOutcome::Deauthorized));
    let outcome = client
        .deauthorize(&channel_token.access_token, &access)
        .await
        .unwrap();
    assert!(matches!(outcome, DeauthorizeOutcome::AlreadyInvalid));
    assert!(client.profile(&refreshed.access_token).await.is_err());
}
