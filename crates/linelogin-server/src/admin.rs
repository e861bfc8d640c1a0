//! Operator actions that the `linelogin` command runs against the store, without a running
//! server: re-encrypting stored tokens under the current key (`linelogin keys rotate`), and a
//! support-initiated unregister or unlink (`linelogin accounts unregister|unlink`), which
//! takes the same transaction and durable deauthorization job as the pages. The running
//! server's worker sends the job at its next poll.

use line_login::secret::{AccessToken, RefreshToken};

use crate::accounts::OpenTokens;
use crate::crypto::{KeyUsed, TokenCipher, TokenKind, random_id, user_binding};
use crate::store::admin::{Admin, TokenRow, TokenTable};
use crate::store::{Account, DeauthReason, Store, StoreError, StoredTokens};

/// Rows read per batch by [`rotate_keys`] (each row is re-encrypted and written on its own,
/// so an interrupted run loses nothing and a second run finishes it).
pub const ROTATE_BATCH: i64 = 200;

/// What [`rotate_keys`] did to one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RotateCounts {
    /// Token pairs read.
    pub scanned: u64,
    /// Already under the current key: left alone.
    pub current: u64,
    /// Re-encrypted under the current key.
    pub reencrypted: u64,
    /// Changed by the server while being re-encrypted (a refresh, a finished job): left to
    /// the server's write; run again to cover them.
    pub changed_meanwhile: u64,
    /// Decrypt under no configured key: they stay as they are (the key that wrote them is
    /// missing from the configuration).
    pub undecryptable: u64,
}

/// What [`rotate_keys`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RotateReport {
    /// Accounts' tokens.
    pub accounts: RotateCounts,
    /// Deauthorization jobs' tokens (pending and failed jobs).
    pub jobs: RotateCounts,
}

impl RotateReport {
    /// Whether every stored token is now under the current key.
    pub fn complete(&self) -> bool {
        [self.accounts, self.jobs]
            .iter()
            .all(|c| c.changed_meanwhile == 0 && c.undecryptable == 0)
    }
}

/// How one row stands.
enum RowKeys {
    Current,
    Previous(StoredTokens),
    Undecryptable,
}

fn reseal(cipher: &TokenCipher, row: &TokenRow) -> RowKeys {
    let binding = user_binding(&row.issuer, &row.sub);
    let access = cipher.open_with_key(TokenKind::Access, &binding, &row.tokens.access_ct);
    let refresh = cipher.open_with_key(TokenKind::Refresh, &binding, &row.tokens.refresh_ct);
    match (access, refresh) {
        (Ok((_, KeyUsed::Current)), Ok((_, KeyUsed::Current))) => RowKeys::Current,
        (Ok((access, _)), Ok((refresh, _))) => RowKeys::Previous(StoredTokens {
            access_ct: cipher.seal(TokenKind::Access, &binding, &access),
            refresh_ct: cipher.seal(TokenKind::Refresh, &binding, &refresh),
            access_expires_at: row.tokens.access_expires_at,
            refresh_issued_at: row.tokens.refresh_issued_at,
        }),
        _ => RowKeys::Undecryptable,
    }
}

/// How many of the first `limit` stored token rows of each table (accounts, then jobs) no
/// configured key opens, and how many were looked at: `linelogin check`'s key test. Read-only.
pub async fn undecryptable_sample(
    store: &dyn Admin,
    cipher: &TokenCipher,
    limit: i64,
) -> Result<(usize, usize), StoreError> {
    let (mut scanned, mut undecryptable) = (0, 0);
    for table in [TokenTable::Accounts, TokenTable::Jobs] {
        for row in store.token_page(table, "", limit.max(1)).await? {
            scanned += 1;
            if matches!(reseal(cipher, &row), RowKeys::Undecryptable) {
                undecryptable += 1;
            }
        }
    }
    Ok((undecryptable, scanned))
}

/// Re-encrypts every stored token pair (accounts', then pending and failed jobs') that is
/// not under the cipher's current key, in batches of `batch` rows in id order. Idempotent
/// (rows already under the current key are only read) and safe beside a running server: each
/// row is replaced only if it still holds the ciphertexts that were read.
pub async fn rotate_keys(
    store: &dyn Admin,
    cipher: &TokenCipher,
    batch: i64,
) -> Result<RotateReport, StoreError> {
    let mut report = RotateReport::default();
    for (table, counts) in [
        (TokenTable::Accounts, &mut report.accounts),
        (TokenTable::Jobs, &mut report.jobs),
    ] {
        let mut after = String::new();
        loop {
            let rows = store.token_page(table, &after, batch.max(1)).await?;
            for row in &rows {
                counts.scanned += 1;
                match reseal(cipher, row) {
                    RowKeys::Current => counts.current += 1,
                    RowKeys::Undecryptable => counts.undecryptable += 1,
                    RowKeys::Previous(new) => {
                        if store
                            .replace_tokens(table, &row.owner, &row.tokens, &new)
                            .await?
                        {
                            counts.reencrypted += 1;
                        } else {
                            counts.changed_meanwhile += 1;
                        }
                    }
                }
            }
            match rows.last() {
                Some(last) if i64::try_from(rows.len()).unwrap_or(i64::MAX) >= batch.max(1) => {
                    after.clone_from(&last.owner);
                }
                _ => break,
            }
        }
    }
    Ok(report)
}

/// How a support-initiated unregister or unlink went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorDeauth {
    /// The account is unregistered or unlinked and the deauthorization job is committed.
    Enqueued {
        /// The job id.
        job_id: String,
    },
    /// No usable LINE token is held: nothing changed; the user must log in (and unregister
    /// or unlink from the page) to complete it, so that the app is deauthorized at LINE.
    NeedsLogin,
}

/// Unregisters or unlinks an account on an operator's behalf: the same transaction as the
/// pages ([`Store::deauthorize_account`]): its tokens move into a durable deauthorization
/// job, its sessions end, and it is deleted or marked unlinked. Refuses (without changing
/// anything) when no usable token is held, as the pages do: deauthorization is never skipped.
/// With `webhooks` (the configuration has `[webhook]`), the same transaction queues the
/// `account.unregistered` / `account.unlinked` event for the app.
pub async fn operator_deauthorize(
    store: &dyn Store,
    cipher: &TokenCipher,
    account: &Account,
    reason: DeauthReason,
    now: i64,
    webhooks: bool,
) -> Result<OperatorDeauth, StoreError> {
    let Some(stored) = store.tokens(&account.id).await? else {
        return Ok(OperatorDeauth::NeedsLogin);
    };
    let binding = user_binding(&account.issuer, &account.sub);
    let usable = match (
        cipher.open_str(TokenKind::Access, &binding, &stored.access_ct),
        cipher.open_str(TokenKind::Refresh, &binding, &stored.refresh_ct),
    ) {
        (Ok(access), Ok(refresh)) => {
            let open = OpenTokens {
                access: AccessToken::new(access),
                refresh: RefreshToken::new(refresh),
                access_expires_at: stored.access_expires_at,
                refresh_issued_at: stored.refresh_issued_at,
            };
            open.access_valid(now) || open.refresh_alive(now)
        }
        _ => false,
    };
    if !usable {
        return Ok(OperatorDeauth::NeedsLogin);
    }
    let job_id = format!("j_{}", random_id(16));
    let event = webhooks.then(crate::webhook::new_event_id);
    match store
        .deauthorize_account(&account.id, &job_id, reason, now, event.as_deref())
        .await
    {
        Ok(()) => {}
        // The tokens went away in between (a logout).
        Err(StoreError::NotFound) => return Ok(OperatorDeauth::NeedsLogin),
        Err(e) => return Err(e),
    }
    tracing::info!(job = %job_id, reason = reason.as_str(), "deauthorization job committed by an operator");
    Ok(OperatorDeauth::Enqueued { job_id })
}
