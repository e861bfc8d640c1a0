//! The login's writes on SQLite: one function run inside the group commit's transaction
//! (see [`super::batch`]).

use rusqlite::Connection;
use rusqlite::types::ToSql;

use super::{execute, map_err, query_opt};
use crate::store::rows::account as account_from_row;
use crate::store::{Account, AccountStatus, EventKind, LoginWrite, StoreError, sql};

/// A completed login's writes (see [`Store::complete_login`](crate::store::Store::complete_login)), inside the batch's
/// transaction: an error rolls back all of them and none of the batch's other writes.
pub(super) fn complete_login(tx: &Connection, login: &LoginWrite) -> Result<Account, StoreError> {
    let user: [&dyn ToSql; 2] = [&login.issuer, &login.sub];
    let count = |tx: &Connection| {
        query_opt(tx, sql::COUNT_PENDING_JOBS, &user, |r| {
            r.get::<_, i64>("n").map_err(map_err)
        })
        .map(Option::unwrap_or_default)
    };
    // A stale deauthorization of this LINE user must never revoke the new link:
    // supersede it unless a worker is sending it right now.
    if count(tx)? > 0 {
        execute(
            tx,
            sql::SUPERSEDE_JOBS,
            &[&login.issuer, &login.sub, &login.now],
        )?;
        if count(tx)? > 0 {
            return Err(StoreError::Busy(
                "a deauthorization of this user is in progress",
            ));
        }
    }
    // With webhooks on: was the account unlinked before this login? (`account.linked` is
    // written only when the login creates the account or links it again.)
    let was_unlinked = login.linked_event.is_some()
        && query_opt(tx, sql::ACCOUNT_BY_SUB, &user, |r| account_from_row(r))?
            .is_some_and(|a| a.status == AccountStatus::Unlinked);
    let account = query_opt(
        tx,
        sql::UPSERT_ACCOUNT,
        &[
            &login.new_account_id,
            &login.issuer,
            &login.sub,
            &login.display_name,
            &login.picture_url,
            &login.now,
        ],
        |r| account_from_row(r),
    )?
    .ok_or(StoreError::NotFound)?;
    execute(
        tx,
        sql::UPSERT_TOKENS,
        &[
            &account.id,
            &login.tokens.access_ct,
            &login.tokens.refresh_ct,
            &login.tokens.access_expires_at,
            &login.tokens.refresh_issued_at,
            &login.now,
        ],
    )?;
    if let Some(old) = &login.replaces_session {
        execute(tx, sql::DELETE_SESSION, &[old])?;
    }
    execute(
        tx,
        sql::INSERT_SESSION,
        &[
            &login.session.id_hash,
            &account.id,
            &login.session.csrf_token,
            &login.now,
            &login.session.expires_at,
        ],
    )?;
    // Created by this login: the upsert kept our fresh id (of two first logins at once, only
    // the one that inserted writes the event).
    let created = account.id == login.new_account_id;
    if let Some(event) = login
        .linked_event
        .as_ref()
        .filter(|_| created || was_unlinked)
    {
        execute(
            tx,
            sql::INSERT_EVENT_FOR_ACCOUNT,
            &[
                event,
                &EventKind::Linked.as_str(),
                &login.now,
                &account.id,
                &None::<String>,
            ],
        )?;
    }
    Ok(account)
}
