//! The operator side of the stores ([`Admin`]) on every backend: listing, showing and
//! cancelling jobs, finding accounts by LINE user id, and re-encrypting stored tokens under a
//! new key. SQLite always runs; PostgreSQL is `#[ignore]`d and runs with `--ignored` in a
//! schema of its own (`DATABASE_URL_POSTGRES`; unset, it fails rather than pass).

use std::sync::Arc;

use linelogin_server::admin::rotate_keys;
use linelogin_server::config::EncryptionKey;
use linelogin_server::crypto::{KeyUsed, TokenCipher, TokenKind, user_binding};
use linelogin_server::store::admin::TokenTable;
use linelogin_server::store::{
    AdminStore, DeauthReason, PostgresStore, SqliteStore, Store, StoreError, StoredTokens,
};

use crate::store::{Cleanup, login, postgres_url};

const ISSUER: &str = "https://access.line.me";

async fn sqlite() -> (Arc<dyn AdminStore>, Cleanup) {
    let s = SqliteStore::in_memory().await.unwrap();
    s.migrate().await.unwrap();
    (Arc::new(s), Cleanup::none())
}

async fn postgres() -> (Arc<dyn AdminStore>, Cleanup) {
    let url = postgres_url();
    let schema = format!("ll_admin_{}", crate::harness::unique_suffix());
    let s = PostgresStore::connect(&url, Some(&schema)).await.unwrap();
    s.migrate().await.unwrap();
    (Arc::new(s), Cleanup::schema(url, schema))
}

fn sealed(cipher: &TokenCipher, sub: &str) -> StoredTokens {
    let b = user_binding(ISSUER, sub);
    StoredTokens {
        access_ct: cipher.seal_str(TokenKind::Access, &b, &format!("access-{sub}")),
        refresh_ct: cipher.seal_str(TokenKind::Refresh, &b, &format!("refresh-{sub}")),
        access_expires_at: 5_000,
        refresh_issued_at: 1_000,
    }
}

async fn admin_suite(s: Arc<dyn AdminStore>) {
    let old = EncryptionKey::from_bytes([1; 32]);
    let new = EncryptionKey::from_bytes([2; 32]);
    let old_cipher = TokenCipher::new(&old);
    let rotating = TokenCipher::with_previous(&new, &[old]);
    assert_eq!(
        s.last_account_update().await.unwrap(),
        None,
        "no account yet"
    );
    let mut ids = Vec::new();
    for (i, sub) in ["Ua", "Ub", "Uc"].into_iter().enumerate() {
        let a = s
            .complete_login(&login(sub, &format!("s{i}"), 1_000))
            .await
            .unwrap();
        // Ua and Ub under the old key; Uc keeps ciphertexts no key opens.
        if sub != "Uc" {
            s.put_tokens(&a.id, &sealed(&old_cipher, sub), 1_000)
                .await
                .unwrap();
        }
        ids.push(a.id);
    }
    // The logins updated the accounts at 1,000 (then put_tokens may touch them too).
    assert!(s.last_account_update().await.unwrap() >= Some(1_000));
    let found = s.accounts_by_user("Ub").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, ids[1]);
    assert!(s.accounts_by_user("Unobody").await.unwrap().is_empty());

    // Ub unlinks: a pending job holding its tokens.
    s.deauthorize_account(&ids[1], "j1", DeauthReason::Unlink, 2_000, None)
        .await
        .unwrap();
    let j1 = s.job("j1").await.unwrap().unwrap();
    assert_eq!((j1.status.as_str(), j1.has_tokens), ("pending", true));
    assert_eq!(s.jobs(None, 10).await.unwrap().len(), 1);
    assert_eq!(s.jobs(Some("pending"), 10).await.unwrap().len(), 1);
    assert!(s.jobs(Some("failed"), 10).await.unwrap().is_empty());
    let of_ub = s.jobs_of_user("Ub", 10).await.unwrap();
    assert_eq!(of_ub.len(), 1);
    assert_eq!(of_ub[0].id, "j1");
    assert!(s.jobs_of_user("Ua", 10).await.unwrap().is_empty());

    // Rotate, one row per batch: each table's rows under the old key are re-encrypted.
    let r = rotate_keys(&*s, &rotating, 1).await.unwrap();
    assert_eq!(
        (
            r.accounts.scanned,
            r.accounts.reencrypted,
            r.accounts.undecryptable
        ),
        (2, 1, 1),
        "{r:?}"
    );
    assert_eq!((r.jobs.scanned, r.jobs.reencrypted), (1, 1), "{r:?}");
    assert!(!r.complete(), "Uc's tokens decrypt under no key");
    let again = rotate_keys(&*s, &rotating, 200).await.unwrap();
    assert_eq!((again.accounts.current, again.accounts.reencrypted), (1, 0));
    assert_eq!((again.jobs.current, again.jobs.reencrypted), (1, 0));
    // The new key alone opens them now.
    let only_new = TokenCipher::new(&EncryptionKey::from_bytes([2; 32]));
    let ua = s.tokens(&ids[0]).await.unwrap().unwrap();
    let b = user_binding(ISSUER, "Ua");
    assert_eq!(
        only_new
            .open_with_key(TokenKind::Refresh, &b, &ua.refresh_ct)
            .unwrap(),
        (b"refresh-Ua".to_vec(), KeyUsed::Current)
    );
    let job_rows = s.token_page(TokenTable::Jobs, "", 10).await.unwrap();
    assert_eq!(job_rows.len(), 1);
    let b = user_binding(ISSUER, "Ub");
    assert!(
        only_new
            .open(TokenKind::Access, &b, &job_rows[0].tokens.access_ct)
            .is_ok()
    );
    // A compare-and-replace against stale ciphertexts changes nothing.
    assert!(
        !s.replace_tokens(
            TokenTable::Accounts,
            &ids[0],
            &sealed(&old_cipher, "Ua"),
            &ua
        )
        .await
        .unwrap()
    );

    // Cancel: the job's tokens go; a second cancel finds nothing to cancel.
    s.cancel_job("j1", "cancelled by test", 3_000)
        .await
        .unwrap();
    let j1 = s.job("j1").await.unwrap().unwrap();
    assert_eq!((j1.status.as_str(), j1.has_tokens), ("cancelled", false));
    assert_eq!(j1.finished_at, Some(3_000));
    assert!(matches!(
        s.cancel_job("j1", "again", 3_000).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.jobs(Some("cancelled"), 10).await.unwrap().len(), 1);
    // A job a worker holds right now is not cancelled under it.
    s.deauthorize_account(&ids[0], "j2", DeauthReason::Unregister, 4_000, None)
        .await
        .unwrap();
    assert_eq!(s.claim_job(4_000, 60_000).await.unwrap().unwrap().id, "j2");
    assert!(matches!(
        s.cancel_job("j2", "x", 5_000).await,
        Err(StoreError::NotFound)
    ));
    assert!(s.job("nope").await.unwrap().is_none());
}

#[tokio::test]
async fn sqlite_admin() {
    let (s, cleanup) = sqlite().await;
    admin_suite(s).await;
    cleanup.run().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL at DATABASE_URL_POSTGRES (CI runs --ignored)"]
async fn postgres_admin() {
    let (s, cleanup) = postgres().await;
    admin_suite(s).await;
    cleanup.run().await;
}
