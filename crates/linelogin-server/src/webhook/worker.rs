//! The webhook delivery worker: claims due events from the webhook outbox and POSTs them to
//! the app.
//!
//! It runs beside the deauthorization worker, with a claim of its own
//! ([`Store::claim_webhook`](crate::store::Store::claim_webhook)), so a down or slow app never
//! delays a deauthorization, and its requests go to the app, never through the LINE client's
//! outbound policy (they use none of LINE's budget). Every delivery has bounded waits
//! (`[webhook] connect_timeout_ms`, `timeout_ms`); redirects are not followed. A `2xx` answer
//! is delivered; anything else, a timeout or a connection error is retried with exponential
//! backoff and jitter ([`backoff_ms`]) until `[webhook] max_attempts`, then the event is
//! `failed` (logged at `error` level, counted in `/healthz`, sendable again with
//! [`Store::retry_failed_webhook`](crate::store::Store::retry_failed_webhook)). The lease is
//! renewed while a POST is in flight and every write is fenced by it, as for deauthorization.

use std::time::Duration;

use crate::config::WebhookConfig;
use crate::deauth::outbox::{WorkerHandle, backoff_ms, claimed, lease, spawn_loop, while_renewing};
use crate::state::AppState;
use crate::store::StoreError;

/// What one pass of the worker did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No event was due (or webhooks are off).
    Idle,
    /// An event was delivered (the app answered 2xx).
    Delivered(String),
    /// A delivery failed and will be retried.
    Retrying(String),
    /// An event ran out of attempts (visible as failed).
    Failed(String),
    /// The lease was lost while the POST was in flight; nothing was recorded.
    LeaseLost(String),
}

/// A running webhook worker (stopped like the deauthorization worker).
pub type WebhookWorker = WorkerHandle;

/// The HTTP client of the deliveries: bounded connect and total timeouts, no redirects, no
/// proxy from the environment (deliveries go straight to the configured URL).
pub fn client(config: &WebhookConfig) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(config.connect_timeout_ms.max(1)))
        .timeout(Duration::from_millis(config.timeout_ms.max(1)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
}

/// Starts the delivery loop when `[webhook]` is configured (`None` otherwise, or when the
/// HTTP client cannot be built, which is logged).
pub fn spawn(state: AppState) -> Option<WebhookWorker> {
    let config = state.settings().webhook.clone()?;
    let client = match client(&config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook client could not be built; webhooks are not delivered");
            return None;
        }
    };
    Some(spawn_loop(
        state,
        |state| &state.inner.webhook_wake,
        move |state| {
            let client = client.clone();
            async move { matches!(run_once(&state, &client).await, Step::Idle) }
        },
    ))
}

/// Claims and delivers at most one due event.
pub async fn run_once(state: &AppState, client: &reqwest::Client) -> Step {
    let Some(config) = state.settings().webhook.as_ref() else {
        return Step::Idle;
    };
    let (lease_ms, renew_every) = lease(state);
    let claim = state.store().claim_webhook(state.now_ms(), lease_ms).await;
    let Some(event) = claimed("a webhook event", claim) else {
        return Step::Idle;
    };
    let id = event.id.clone();
    let lease = event.lease.clone();
    let body = super::payload(&event);
    let attempt_at = state.now_ms() / 1000;
    let result = while_renewing(
        "webhook",
        &id,
        renew_every,
        deliver(client, config, &id, attempt_at, body),
        || {
            state
                .store()
                .renew_webhook_lease(&id, &lease, state.now_ms().saturating_add(lease_ms))
        },
    )
    .await;
    let now = state.now_ms();
    let (written, step) = match result {
        Ok(()) => {
            tracing::info!(event = %id, kind = %event.kind, "webhook delivered");
            (
                state.store().finish_webhook(&id, &lease, now).await,
                Step::Delivered(id.clone()),
            )
        }
        Err(reason) if event.attempts >= i64::from(config.max_attempts) => {
            tracing::error!(
                event = %id,
                kind = %event.kind,
                account = %event.account_id,
                attempts = event.attempts,
                error = %reason,
                "webhook delivery gave up after the last attempt; the event is failed until an operator sends it again"
            );
            (
                state
                    .store()
                    .give_up_webhook(&id, &lease, &format!("gave up: {reason}"), now)
                    .await,
                Step::Failed(id.clone()),
            )
        }
        Err(reason) => {
            let delay = backoff_ms(
                config.backoff_base_ms,
                config.backoff_max_ms,
                event.attempts,
                rand::random::<f64>(),
            );
            tracing::warn!(event = %id, kind = %event.kind, error = %reason, retry_in_ms = delay, "webhook delivery will be retried");
            (
                state
                    .store()
                    .retry_webhook(&id, &lease, now.saturating_add(delay), &reason)
                    .await,
                Step::Retrying(id.clone()),
            )
        }
    };
    match written {
        Ok(()) => step,
        Err(StoreError::LeaseLost) => {
            tracing::warn!(event = %id, "webhook event's lease was lost; its outcome was not recorded (another worker holds it)");
            Step::LeaseLost(id)
        }
        Err(e) => {
            tracing::warn!(event = %id, error = %e, "could not record a webhook outcome; its lease will expire and it is sent again");
            step
        }
    }
}

/// One POST: `Ok` on a 2xx answer, else why not (never the secret or the URL's query).
async fn deliver(
    client: &reqwest::Client,
    config: &WebhookConfig,
    id: &str,
    timestamp: i64,
    body: String,
) -> Result<(), String> {
    let signature = super::signature(config.secret.key(), id, timestamp, &body);
    let answer = client
        .post(config.url.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            format!("{kind}: {}", e.without_url())
        })?;
    let status = answer.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the app answered HTTP {}", status.as_u16()))
    }
}
