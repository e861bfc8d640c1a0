//! One conformance suite for every store backend. SQLite (in-memory and file) always runs;
//! the PostgreSQL half is `#[ignore]`d (it needs a server) and runs with `--ignored`, each test
//! in its own schema of the database `DATABASE_URL_POSTGRES` names: unset, those tests fail
//! rather than pass without running.

use std::sync::Arc;

use linelogin_server::store::{
    AccountStatus, DeauthReason, JobFinal, LoginWrite, NewSession, PostgresStore, SqliteStore,
    Store, StoreError, StoredTokens,
};

/// Drops a test's PostgreSQL schema when the test is over.
pub struct Cleanup(Option<(String, String)>);

impl Cleanup {
    /// Nothing to drop.
    pub fn none() -> Self {
        Cleanup(None)
    }

    /// Drops `schema` of the database at `url`.
    pub fn schema(url: String, schema: String) -> Self {
        Cleanup(Some((url, schema)))
    }

    pub async fn run(self) {
        if let Some((url, schema)) = self.0 {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&pool)
                .await
                .unwrap();
        }
    }
}

pub async fn sqlite() -> Option<(Arc<dyn Store>, Cleanup)> {
    let s = SqliteStore::in_memory().await.unwrap();
    s.migrate().await.unwrap();
    Some((Arc::new(s), Cleanup(None)))
}

pub async fn sqlite_file() -> Option<(Arc<dyn Store>, Cleanup)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.keep().join("t.db");
    let s = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    s.migrate().await.unwrap();
    Some((Arc::new(s), Cleanup(None)))
}

pub async fn postgres() -> Option<(Arc<dyn Store>, Cleanup)> {
    let url = postgres_url();
    let schema = format!("ll_test_{}_{}", std::process::id(), rand_suffix());
    let s = PostgresStore::connect(&url, Some(&schema)).await.unwrap();
    s.migrate().await.unwrap();
    Some((Arc::new(s), Cleanup(Some((url, schema)))))
}

/// `DATABASE_URL_POSTGRES`, or a failure that says how to set it: a PostgreSQL test that
/// cannot reach a server must fail, not pass without running.
pub fn postgres_url() -> String {
    std::env::var("DATABASE_URL_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "this test needs PostgreSQL: set DATABASE_URL_POSTGRES \
             (e.g. postgres://postgres@127.0.0.1:5432/test)"
        )
    })
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}_{}", nanos, N.fetch_add(1, Ordering::Relaxed))
}

fn tokens(tag: u8) -> StoredTokens {
    StoredTokens {
        access_ct: vec![tag; 40],
        refresh_ct: vec![tag + 1; 40],
        access_expires_at: 5_000,
        refresh_issued_at: 1_000,
    }
}

/// A login of LINE user `sub` at `now`, starting the session keyed `session` (10 s).
pub fn login(sub: &str, session: &str, now: i64) -> LoginWrite {
    LoginWrite {
        new_account_id: format!("a_{sub}_{now}"),
        issuer: "https://access.line.me".into(),
        sub: sub.into(),
        display_name: format!("User {sub}"),
        picture_url: None,
        tokens: tokens(1),
        session: NewSession {
            id_hash: session.into(),
            csrf_token: format!("csrf-{session}"),
            expires_at: now + 10_000,
        },
        replaces_session: None,
        linked_event: None,
        now,
    }
}

pub async fn pending_logins_are_single_use_and_expire(s: Arc<dyn Store>) {
    s.put_pending_login("h1", b"data", 100).await.unwrap();
    assert_eq!(
        s.take_pending_login("h1", 50).await.unwrap().as_deref(),
        Some(&b"data"[..])
    );
    assert_eq!(
        s.take_pending_login("h1", 50).await.unwrap(),
        None,
        "single use"
    );
    s.put_pending_login("h2", b"data", 100).await.unwrap();
    assert_eq!(
        s.take_pending_login("h2", 100).await.unwrap(),
        None,
        "expired"
    );
}

pub async fn pending_logins_are_counted_until_they_expire(s: Arc<dyn Store>) {
    assert_eq!(s.count_pending_logins(0).await.unwrap(), 0);
    s.put_pending_login("c1", b"data", 100).await.unwrap();
    s.put_pending_login("c2", b"data", 200).await.unwrap();
    assert_eq!(s.count_pending_logins(50).await.unwrap(), 2);
    assert_eq!(s.count_pending_logins(100).await.unwrap(), 1, "c1 expired");
    assert!(s.take_pending_login("c2", 150).await.unwrap().is_some());
    assert_eq!(s.count_pending_logins(150).await.unwrap(), 0, "c2 taken");
}

pub async fn login_creates_then_updates_one_account_keyed_by_sub(s: Arc<dyn Store>) {
    let a = s.complete_login(&login("U1", "s1", 10)).await.unwrap();
    let mut second = login("U1", "s2", 20);
    second.display_name = "Renamed".into();
    second.replaces_session = Some("s1".into());
    let b = s.complete_login(&second).await.unwrap();
    assert_eq!(a.id, b.id, "same (issuer, sub) → same account");
    assert_eq!(b.display_name, "Renamed");
    assert!(
        s.session("s1", 20).await.unwrap().is_none(),
        "replaced session ended"
    );
    let rec = s.session("s2", 20).await.unwrap().unwrap();
    assert_eq!(rec.account.id, a.id);
    assert_eq!(rec.csrf_token, "csrf-s2");
    let other = s.complete_login(&login("U2", "s3", 30)).await.unwrap();
    assert_ne!(
        other.id, a.id,
        "another sub → another account, even with the same name"
    );
    assert_eq!(
        s.account_by_sub("https://access.line.me", "U1")
            .await
            .unwrap()
            .unwrap()
            .id,
        a.id
    );
    assert_eq!(s.tokens(&a.id).await.unwrap().unwrap(), tokens(1));
}

pub async fn sessions_expire_and_end(s: Arc<dyn Store>) {
    s.complete_login(&login("U1", "s1", 10)).await.unwrap();
    assert!(s.session("s1", 10_009).await.unwrap().is_some());
    assert!(
        s.session("s1", 10_010).await.unwrap().is_none(),
        "absolute expiry"
    );
    s.touch_session("s1", 500).await.unwrap();
    assert_eq!(
        s.session("s1", 600).await.unwrap().unwrap().last_seen_at,
        500
    );
    s.delete_session("s1").await.unwrap();
    assert!(s.session("s1", 600).await.unwrap().is_none());
    s.complete_login(&login("U2", "s2", 10)).await.unwrap();
    assert_eq!(s.purge_expired(1_000_000).await.unwrap(), 1);
}

/// More expired rows than one purge batch (1,000), beside live ones: all expired rows go,
/// every live one stays, and the count is exact.
pub async fn purge_removes_every_expired_row_across_batches(s: Arc<dyn Store>) {
    for i in 0..1_100 {
        // Sessions expire 10 s after `now`.
        s.complete_login(&login("U1", &format!("old{i}"), i))
            .await
            .unwrap();
    }
    for i in 0..5 {
        s.complete_login(&login("U1", &format!("live{i}"), 100_000))
            .await
            .unwrap();
    }
    for i in 0..1_050 {
        s.put_pending_login(&format!("p{i}"), b"x", 5_000)
            .await
            .unwrap();
    }
    s.put_pending_login("p-live", b"x", 200_000).await.unwrap();
    assert_eq!(s.purge_expired(50_000).await.unwrap(), 1_100 + 1_050);
    for i in 0..5 {
        assert!(
            s.session(&format!("live{i}"), 50_000)
                .await
                .unwrap()
                .is_some()
        );
    }
    assert!(
        s.take_pending_login("p-live", 50_000)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(s.purge_expired(50_000).await.unwrap(), 0);
}

pub async fn unregister_moves_tokens_into_a_job_and_ends_sessions(s: Arc<dyn Store>) {
    let a = s.complete_login(&login("U1", "s1", 10)).await.unwrap();
    s.complete_login(&login("U1", "s2", 11)).await.unwrap();
    s.deauthorize_account(&a.id, "j1", DeauthReason::Unregister, 20, None)
        .await
        .unwrap();
    assert!(s.account(&a.id).await.unwrap().is_none(), "account deleted");
    assert!(s.tokens(&a.id).await.unwrap().is_none(), "tokens deleted");
    assert!(
        s.session("s1", 20).await.unwrap().is_none()
            && s.session("s2", 20).await.unwrap().is_none()
    );
    let stats = s.job_stats(2_020).await.unwrap();
    assert_eq!(
        (stats.pending, stats.failed, stats.oldest_pending_age_secs),
        (1, 0, 2)
    );
    let job = s.claim_job(20, 1_000).await.unwrap().unwrap();
    assert_eq!(job.id, "j1");
    assert_eq!(job.reason, DeauthReason::Unregister);
    assert_eq!(job.tokens.unwrap(), tokens(1));
    assert_eq!(job.attempts, 1);
    assert!(s.claim_job(21, 1_000).await.unwrap().is_none(), "leased");
    s.finish_job("j1", &job.lease, JobFinal::Deauthorized, 30, None)
        .await
        .unwrap();
    assert_eq!(s.job_status("j1").await.unwrap().as_deref(), Some("done"));
    assert_eq!(s.job_stats(30).await.unwrap().pending, 0);
    assert!(matches!(
        s.deauthorize_account(&a.id, "j2", DeauthReason::Unregister, 40, None)
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn unlink_keeps_the_account_and_relogin_links_again(s: Arc<dyn Store>) {
    let a = s.complete_login(&login("U1", "s1", 10)).await.unwrap();
    s.deauthorize_account(&a.id, "j1", DeauthReason::Unlink, 20, None)
        .await
        .unwrap();
    let acc = s.account(&a.id).await.unwrap().unwrap();
    assert_eq!(acc.status, AccountStatus::Unlinked);
    assert!(s.tokens(&a.id).await.unwrap().is_none());
    let job = s.claim_job(20, 1_000).await.unwrap().unwrap();
    s.finish_job(&job.id, &job.lease, JobFinal::AlreadyInvalid, 25, None)
        .await
        .unwrap();
    let again = s.complete_login(&login("U1", "s2", 30)).await.unwrap();
    assert_eq!(again.id, a.id);
    assert_eq!(again.status, AccountStatus::Linked);
}

pub async fn crash04_stale_job_is_superseded_by_a_new_link(s: Arc<dyn Store>) {
    let a = s.complete_login(&login("U1", "s1", 10)).await.unwrap();
    s.deauthorize_account(&a.id, "j1", DeauthReason::Unregister, 20, None)
        .await
        .unwrap();
    // Claimed (in flight): a new login must wait.
    let job = s.claim_job(20, 1_000).await.unwrap().unwrap();
    assert!(matches!(
        s.complete_login(&login("U1", "s2", 30)).await,
        Err(StoreError::Busy(_))
    ));
    s.retry_job(&job.id, &job.lease, 5_000, "LINE unavailable")
        .await
        .unwrap();
    // Not in flight: the new login supersedes it, and it is never sent.
    s.complete_login(&login("U1", "s3", 40)).await.unwrap();
    assert_eq!(
        s.job_status("j1").await.unwrap().as_deref(),
        Some("superseded")
    );
    assert!(s.claim_job(10_000, 1_000).await.unwrap().is_none());
}

pub async fn retries_are_scheduled_and_failures_visible(s: Arc<dyn Store>) {
    let a = s.complete_login(&login("U1", "s1", 10)).await.unwrap();
    s.deauthorize_account(&a.id, "j1", DeauthReason::Unregister, 20, None)
        .await
        .unwrap();
    let job = s.claim_job(20, 1_000).await.unwrap().unwrap();
    s.retry_job(&job.id, &job.lease, 500, "429").await.unwrap();
    assert!(
        s.claim_job(499, 1_000).await.unwrap().is_none(),
        "not due yet"
    );
    let job = s.claim_job(500, 1_000).await.unwrap().unwrap();
    assert_eq!(job.attempts, 2);
    s.put_job_tokens(&job.id, &job.lease, &tokens(7))
        .await
        .unwrap();
    s.retry_job(&job.id, &job.lease, 600, "500").await.unwrap();
    let job = s.claim_job(600, 1_000).await.unwrap().unwrap();
    assert_eq!(job.tokens.clone().unwrap(), tokens(7));
    s.fail_job("j1", &job.lease, "gave up", 700, None)
        .await
        .unwrap();
    let st = s.job_stats(700).await.unwrap();
    assert_eq!((st.pending, st.failed), (0, 1));
    // A lease that expires (crash) makes the job claimable again.
    let b = s.complete_login(&login("U2", "s2", 10)).await.unwrap();
    s.deauthorize_account(&b.id, "j2", DeauthReason::Unregister, 800, None)
        .await
        .unwrap();
    assert!(s.claim_job(800, 100).await.unwrap().is_some());
    assert!(s.claim_job(850, 100).await.unwrap().is_none());
    assert_eq!(s.claim_job(900, 100).await.unwrap().unwrap().attempts, 2);
}

/// Finding (fault run): jobs refused locally by the outbound policy used up their attempts
/// and were failed for good with no deauthorize call sent. `release_job` gives the attempt
/// back; a job that gave up keeps its tokens and `retry_failed_job` sends it again.
pub async fn refused_attempts_are_given_back_and_failed_jobs_can_be_retried(s: Arc<dyn Store>) {
    let a = s.complete_login(&login("U1", "s1", 10)).await.unwrap();
    s.deauthorize_account(&a.id, "j1", DeauthReason::Unregister, 20, None)
        .await
        .unwrap();
    let mut job = s.claim_job(20, 1_000).await.unwrap().unwrap();
    assert_eq!(job.attempts, 1);
    for at in [500, 600, 700] {
        s.release_job(&job.id, &job.lease, at, "held back")
            .await
            .unwrap();
        assert!(
            s.claim_job(at - 1, 1_000).await.unwrap().is_none(),
            "due at {at}"
        );
        job = s.claim_job(at, 1_000).await.unwrap().unwrap();
        assert_eq!(job.attempts, 1, "a refusal is not an attempt");
    }
    s.retry_job(&job.id, &job.lease, 800, "500").await.unwrap();
    let job = s.claim_job(800, 1_000).await.unwrap().unwrap();
    assert_eq!(job.attempts, 2);
    s.give_up_job(&job.id, &job.lease, "gave up: 500", 900, None)
        .await
        .unwrap();
    let st = s.job_stats(900).await.unwrap();
    assert_eq!((st.pending, st.failed), (0, 1));
    assert!(matches!(
        s.release_job(&job.id, &job.lease, 950, "late").await,
        Err(StoreError::LeaseLost)
    ));
    assert_eq!(s.job_status("j1").await.unwrap().as_deref(), Some("failed"));
    let failed = s.failed_jobs(10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (
            failed[0].id.as_str(),
            failed[0].account_id.as_str(),
            failed[0].reason.as_str(),
            failed[0].attempts,
            failed[0].last_error.as_deref(),
            failed[0].finished_at,
            failed[0].retryable
        ),
        (
            "j1",
            a.id.as_str(),
            "unregister",
            2,
            Some("gave up: 500"),
            Some(900),
            true
        )
    );
    s.retry_failed_job("j1", 1_000).await.unwrap();
    assert_eq!(
        s.job_status("j1").await.unwrap().as_deref(),
        Some("pending")
    );
    let st = s.job_stats(1_000).await.unwrap();
    assert_eq!((st.pending, st.failed), (1, 0));
    let job = s.claim_job(1_000, 1_000).await.unwrap().unwrap();
    assert_eq!(job.attempts, 1, "attempts start over");
    assert_eq!(
        job.tokens.clone().unwrap(),
        tokens(1),
        "the tokens were kept"
    );
    // Failed for good (tokens wiped): nothing left to send.
    s.fail_job("j1", &job.lease, "refresh token rejected", 1_100, None)
        .await
        .unwrap();
    assert!(matches!(
        s.retry_failed_job("j1", 1_200).await,
        Err(StoreError::NotFound)
    ));
    assert!(!s.failed_jobs(10).await.unwrap()[0].retryable);
    assert!(matches!(
        s.retry_failed_job("nope", 1_200).await,
        Err(StoreError::NotFound)
    ));
    // A user who linked again since must not be deauthorized by the old job.
    let b = s.complete_login(&login("U2", "s2", 10)).await.unwrap();
    s.deauthorize_account(&b.id, "j2", DeauthReason::Unlink, 2_000, None)
        .await
        .unwrap();
    let job = s.claim_job(2_000, 1_000).await.unwrap().unwrap();
    assert_eq!(job.id, "j2");
    s.give_up_job("j2", &job.lease, "gave up", 2_100, None)
        .await
        .unwrap();
    s.complete_login(&login("U2", "s3", 2_200)).await.unwrap();
    assert!(matches!(
        s.retry_failed_job("j2", 2_300).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.failed_jobs(1).await.unwrap().len(), 1);
}

pub async fn crash06_concurrent_first_logins_make_one_account(s: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut write = login("U9", &format!("c{i}"), 10 + i);
            write.linked_event = Some(format!("e{i}"));
            s.complete_login(&write).await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(a) => {
                ids.insert(a.id);
            }
            Err(StoreError::Conflict(_)) | Err(StoreError::Unavailable(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ids.len(), 1, "exactly one account for one (issuer, sub)");
    assert_eq!(
        s.webhook_stats(100).await.unwrap().pending,
        1,
        "one account.linked event: only the login that created the account writes it"
    );
}

/// Issue 14: a worker whose lease expired (it stalled) and whose job another worker claimed
/// since cannot finish, retry, release, fail, give up, renew or refresh that job: each write
/// is refused with `LeaseLost` and changes nothing; the new holder's writes go through.
pub async fn fencing_a_stalled_worker_cannot_overwrite_a_reclaimed_job(s: Arc<dyn Store>) {
    let a = s.complete_login(&login("U1", "s1", 10)).await.unwrap();
    s.deauthorize_account(&a.id, "j1", DeauthReason::Unregister, 20, None)
        .await
        .unwrap();
    let stalled = s.claim_job(20, 100).await.unwrap().unwrap();
    let holder = s.claim_job(200, 1_000).await.unwrap().unwrap();
    assert_eq!(holder.id, stalled.id);
    assert_ne!(
        holder.lease, stalled.lease,
        "each claim has its own lease id"
    );
    assert_eq!(holder.attempts, 2);
    let lost =
        |r: Result<(), StoreError>| assert!(matches!(r, Err(StoreError::LeaseLost)), "{r:?}");
    lost(s.renew_job_lease("j1", &stalled.lease, 5_000).await);
    lost(s.put_job_tokens("j1", &stalled.lease, &tokens(9)).await);
    lost(
        s.finish_job(
            "j1",
            &stalled.lease,
            JobFinal::Deauthorized,
            300,
            Some("e1"),
        )
        .await,
    );
    lost(s.retry_job("j1", &stalled.lease, 300, "x").await);
    lost(s.release_job("j1", &stalled.lease, 300, "x").await);
    lost(s.fail_job("j1", &stalled.lease, "x", 300, None).await);
    lost(s.give_up_job("j1", &stalled.lease, "x", 300, None).await);
    assert_eq!(
        s.job_status("j1").await.unwrap().as_deref(),
        Some("pending")
    );
    assert!(
        s.claim_job(300, 1_000).await.unwrap().is_none(),
        "still held"
    );
    assert_eq!(
        s.webhook_stats(300).await.unwrap().pending,
        0,
        "no event written"
    );
    s.renew_job_lease("j1", &holder.lease, 2_000).await.unwrap();
    assert!(
        s.claim_job(1_500, 1_000).await.unwrap().is_none(),
        "renewed"
    );
    s.finish_job("j1", &holder.lease, JobFinal::Deauthorized, 1_600, None)
        .await
        .unwrap();
    assert_eq!(s.job_status("j1").await.unwrap().as_deref(), Some("done"));
    lost(
        s.finish_job("j1", &holder.lease, JobFinal::Deauthorized, 1_700, None)
            .await,
    );
}

/// Webhook events are written with the state change, only when asked for (`linked` only
/// when a login creates the account or links it again), and each account's events are
/// claimed in order: a later one waits while an earlier one is pending.
pub async fn webhook_events_ride_the_transaction_and_arrive_in_order(s: Arc<dyn Store>) {
    let mut first = login("U1", "s1", 10);
    first.linked_event = Some("e_linked".into());
    let a = s.complete_login(&first).await.unwrap();
    let mut again = login("U1", "s2", 11);
    again.linked_event = Some("e_not_written".into());
    s.complete_login(&again).await.unwrap();
    s.deauthorize_account(&a.id, "j1", DeauthReason::Unlink, 20, Some("e_unlinked"))
        .await
        .unwrap();
    let job = s.claim_job(20, 1_000).await.unwrap().unwrap();
    s.finish_job(
        "j1",
        &job.lease,
        JobFinal::Deauthorized,
        30,
        Some("e_deauth"),
    )
    .await
    .unwrap();
    let mut relink = login("U1", "s3", 40);
    relink.linked_event = Some("e_relinked".into());
    s.complete_login(&relink).await.unwrap();
    let st = s.webhook_stats(1_040).await.unwrap();
    assert_eq!(
        (st.pending, st.failed, st.oldest_pending_age_secs),
        (4, 0, 1)
    );

    let e = s.claim_webhook(40, 1_000).await.unwrap().unwrap();
    assert_eq!(
        (e.id.as_str(), e.kind.as_str()),
        ("e_linked", "account.linked")
    );
    assert_eq!(
        (e.account_id.as_str(), e.user_id.as_str()),
        (a.id.as_str(), "U1")
    );
    assert_eq!(
        (e.occurred_at, e.attempts, e.job_id.as_deref()),
        (10, 1, None)
    );
    assert!(
        s.claim_webhook(40, 1_000).await.unwrap().is_none(),
        "in order"
    );
    s.retry_webhook(&e.id, &e.lease, 500, "503").await.unwrap();
    assert!(
        s.claim_webhook(499, 1_000).await.unwrap().is_none(),
        "waits for the first"
    );
    let e = s.claim_webhook(500, 1_000).await.unwrap().unwrap();
    assert_eq!(
        (e.id.as_str(), e.attempts),
        ("e_linked", 2),
        "same id on the retry"
    );
    // A stalled delivery's lease is lost to a new claim: its writes are refused.
    let held = s.claim_webhook(1_600, 1_000).await.unwrap().unwrap();
    assert_eq!(held.id, "e_linked");
    let lost =
        |r: Result<(), StoreError>| assert!(matches!(r, Err(StoreError::LeaseLost)), "{r:?}");
    lost(s.finish_webhook(&e.id, &e.lease, 1_700).await);
    lost(s.retry_webhook(&e.id, &e.lease, 1_700, "x").await);
    lost(s.give_up_webhook(&e.id, &e.lease, "x", 1_700).await);
    lost(s.renew_webhook_lease(&e.id, &e.lease, 9_000).await);
    s.renew_webhook_lease(&held.id, &held.lease, 3_000)
        .await
        .unwrap();
    assert!(
        s.claim_webhook(2_700, 1_000).await.unwrap().is_none(),
        "renewed"
    );
    s.finish_webhook(&held.id, &held.lease, 2_700)
        .await
        .unwrap();
    let mut kinds = Vec::new();
    loop {
        let Some(e) = s.claim_webhook(2_800, 1_000).await.unwrap() else {
            break;
        };
        kinds.push((e.kind.clone(), e.job_id.clone()));
        s.finish_webhook(&e.id, &e.lease, 2_800).await.unwrap();
    }
    assert_eq!(
        kinds,
        vec![
            ("account.unlinked".to_owned(), Some("j1".to_owned())),
            ("account.deauthorized".to_owned(), Some("j1".to_owned())),
            ("account.linked".to_owned(), None),
        ]
    );
    assert_eq!(s.webhook_stats(2_800).await.unwrap(), Default::default());
    // Giving up makes it failed (visible), and it can be sent again.
    let b = s.complete_login(&login("U2", "t1", 3_000)).await.unwrap();
    s.deauthorize_account(&b.id, "j2", DeauthReason::Unregister, 3_000, Some("e_b"))
        .await
        .unwrap();
    let e = s.claim_webhook(3_000, 1_000).await.unwrap().unwrap();
    assert_eq!(e.kind, "account.unregistered");
    s.give_up_webhook(&e.id, &e.lease, "gave up: 500", 3_100)
        .await
        .unwrap();
    assert_eq!(s.webhook_stats(3_100).await.unwrap().failed, 1);
    s.retry_failed_webhook("e_b", 3_200).await.unwrap();
    assert!(matches!(
        s.retry_failed_webhook("e_b", 3_200).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        s.claim_webhook(3_200, 1_000)
            .await
            .unwrap()
            .unwrap()
            .attempts,
        1
    );
    let latest = s.latest_job(&b.id).await.unwrap().unwrap();
    assert_eq!(
        (latest.id.as_str(), latest.status.as_str()),
        ("j2", "pending")
    );
    assert!(s.latest_job("nobody").await.unwrap().is_none());
}

pub async fn finished_jobs_are_purged_after_their_keep_time_failed_ones_stay(s: Arc<dyn Store>) {
    for (i, sub) in ["U1", "U2", "U3"].iter().enumerate() {
        let a = s.complete_login(&login(sub, sub, 10)).await.unwrap();
        s.deauthorize_account(&a.id, &format!("j{i}"), DeauthReason::Unregister, 20, None)
            .await
            .unwrap();
    }
    // Claimed in whichever order the store gives them: finished at 100, finished at 5,000,
    // failed at 200.
    let mut claimed = Vec::new();
    for at in [100, 101, 102] {
        let job = s.claim_job(at, 10_000).await.unwrap().unwrap();
        claimed.push((job.id, job.lease));
    }
    let ids: Vec<String> = claimed.iter().map(|(id, _)| id.clone()).collect();
    s.finish_job(&ids[0], &claimed[0].1, JobFinal::Deauthorized, 100, None)
        .await
        .unwrap();
    s.finish_job(&ids[1], &claimed[1].1, JobFinal::Deauthorized, 5_000, None)
        .await
        .unwrap();
    s.fail_job(&ids[2], &claimed[2].1, "gave up", 200, None)
        .await
        .unwrap();
    // Done before 1,000: the first only; the failed one stays although it is older.
    assert_eq!(s.purge_finished_jobs(1_000).await.unwrap(), 1);
    assert_eq!(s.job_status(&ids[0]).await.unwrap(), None);
    assert_eq!(
        s.job_status(&ids[1]).await.unwrap().as_deref(),
        Some("done")
    );
    assert_eq!(
        s.job_status(&ids[2]).await.unwrap().as_deref(),
        Some("failed")
    );
    assert_eq!(s.purge_finished_jobs(1_000).await.unwrap(), 0);
}

pub async fn delivered_webhook_events_are_purged_after_their_keep_time(s: Arc<dyn Store>) {
    let a = s.complete_login(&login("U1", "U1", 10)).await.unwrap();
    s.deauthorize_account(&a.id, "j1", DeauthReason::Unregister, 20, Some("msg_1"))
        .await
        .unwrap();
    let event = s.claim_webhook(100, 10_000).await.unwrap().unwrap();
    assert_eq!(event.id, "msg_1");
    s.finish_webhook(&event.id, &event.lease, 100)
        .await
        .unwrap();
    // Not yet at the keep time: it stays; after it: it goes, once.
    assert_eq!(s.purge_finished_jobs(50).await.unwrap(), 0);
    assert_eq!(s.purge_finished_jobs(1_000).await.unwrap(), 1);
    assert_eq!(s.purge_finished_jobs(1_000).await.unwrap(), 0);
    assert_eq!(s.webhook_stats(1_000).await.unwrap().pending, 0);
}

pub async fn maintenance_is_claimed_once_per_period(s: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.claim_maintenance("purge", 1_000_000, 60_000).await
        }));
    }
    let mut claimed = 0;
    for t in tasks {
        claimed += usize::from(t.await.unwrap().unwrap());
    }
    assert_eq!(claimed, 1, "eight concurrent claims, one period");
    // Within the period: refused; another task is independent.
    assert!(
        !s.claim_maintenance("purge", 1_030_000, 60_000)
            .await
            .unwrap()
    );
    assert!(
        s.claim_maintenance("other", 1_030_000, 60_000)
            .await
            .unwrap()
    );
    // A period later (less a tenth, for timer jitter): the next run.
    assert!(
        s.claim_maintenance("purge", 1_054_000, 60_000)
            .await
            .unwrap()
    );
    assert!(
        !s.claim_maintenance("purge", 1_100_000, 60_000)
            .await
            .unwrap()
    );
}

/// The suite's cases as tests of one backend; `$attr` (one attribute's bracketed body, e.g.
/// `[ignore = "why"]`, or `[cfg(all())]` for none) goes on each.
macro_rules! store_suite {
    ($backend:ident $attr:tt: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                #$attr
                async fn $test() {
                    let Some((store, cleanup)) = super::$backend().await else { return };
                    super::$test(store).await;
                    cleanup.run().await;
                }
            )*
        }
    };
}

macro_rules! all_backends {
    ($($backend:ident $attr:tt),* $(,)?) => {
        $(
            store_suite!($backend $attr:
                pending_logins_are_single_use_and_expire,
                pending_logins_are_counted_until_they_expire,
                login_creates_then_updates_one_account_keyed_by_sub,
                sessions_expire_and_end,
                purge_removes_every_expired_row_across_batches,
                unregister_moves_tokens_into_a_job_and_ends_sessions,
                unlink_keeps_the_account_and_relogin_links_again,
                crash04_stale_job_is_superseded_by_a_new_link,
                retries_are_scheduled_and_failures_visible,
                refused_attempts_are_given_back_and_failed_jobs_can_be_retried,
                crash06_concurrent_first_logins_make_one_account,
                fencing_a_stalled_worker_cannot_overwrite_a_reclaimed_job,
                webhook_events_ride_the_transaction_and_arrive_in_order,
                finished_jobs_are_purged_after_their_keep_time_failed_ones_stay,
                maintenance_is_claimed_once_per_period,
                delivered_webhook_events_are_purged_after_their_keep_time,
            );
        )*
    };
}

all_backends!(
    sqlite[cfg(all())],
    sqlite_file[cfg(all())],
    postgres[ignore = "needs PostgreSQL at DATABASE_URL_POSTGRES (CI runs --ignored)"],
);
