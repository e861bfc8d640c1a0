//! The bodies: the request body on its way up (counted against the limit, its progress
//! noted), and the response body on its way back ([`ProxyBody`]).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::future::Future as _;

use tokio::time::{Duration, Instant, Sleep};

use crate::error::{BoxError, ClientBodyError, ProxyError, TooLarge};

/// What the request body tells the waiting [`crate::Proxy::forward`]: when it last moved
/// (the response-header timeout counts from there), and whether it went past the limit.
#[derive(Debug)]
pub(crate) struct Progress {
    base: Instant,
    /// Milliseconds after `base`.
    last_ms: AtomicU64,
    too_large: AtomicBool,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Self {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
            too_large: AtomicBool::new(false),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// The last time the body moved.
    pub(crate) fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn too_large(&self) -> bool {
        self.too_large.load(Ordering::Relaxed)
    }
}

pin_project_lite::pin_project! {
    /// The client's request body as sent upstream.
    pub(crate) struct RequestBody<B> {
        #[pin]
        inner: B,
        seen: u64,
        limit: Option<u64>,
        progress: Arc<Progress>,
    }
}

impl<B> RequestBody<B> {
    pub(crate) fn new(inner: B, limit: Option<u64>, progress: Arc<Progress>) -> Self {
        Self {
            inner,
            seen: 0,
            limit,
            progress,
        }
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let frame = match this.inner.poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => {
                this.progress.touch();
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(e))) => {
                return Poll::Ready(Some(Err(Box::new(ClientBodyError(e.into())))));
            }
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        this.progress.touch();
        if let Some(data) = frame.data_ref() {
            *this.seen = this.seen.saturating_add(data.len() as u64);
            if this.limit.is_some_and(|limit| *this.seen > limit) {
                this.progress.too_large.store(true, Ordering::Relaxed);
                return Poll::Ready(Some(Err(Box::new(TooLarge))));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body streamed from the upstream, frame by frame as it arrives (nothing is
/// buffered). It errors with [`ProxyError::Upstream`] when the upstream breaks it off (closes
/// the connection before the end), and with [`ProxyError::Timeout`] when no frame arrives
/// within [`crate::ProxyConfig::response_idle_timeout`]; either way the client's connection is
/// aborted instead of the response looking complete or hanging. Return it from an axum
/// handler with `axum::body::Body::new`.
#[derive(Debug)]
pub struct ProxyBody {
    inner: Incoming,
    idle: Option<Duration>,
    /// Made at the first wait for a frame, re-armed at the first wait after each frame.
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl ProxyBody {
    pub(crate) fn new(inner: Incoming, idle: Option<Duration>) -> Self {
        Self {
            inner,
            idle,
            sleep: None,
            armed: false,
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = ProxyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ProxyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.armed = false;
                Poll::Ready(frame.map(|f| f.map_err(|e| ProxyError::Upstream(e.into()))))
            }
            Poll::Pending => {
                let Some(idle) = this.idle else {
                    return Poll::Pending;
                };
                let sleep = match &mut this.sleep {
                    Some(sleep) => {
                        if !this.armed {
                            sleep.as_mut().reset(Instant::now() + idle);
                        }
                        sleep
                    }
                    None => this.sleep.insert(Box::pin(tokio::time::sleep(idle))),
                };
                this.armed = true;
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(ProxyError::Timeout))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
