//! The thread a simulated peer serves from (BSF, BM-SC, SCF, P-CSCF): a current-thread tokio
//! runtime of its own, stopped through a one-shot signal and joined on shutdown or drop; and the
//! one HTTP/1.1 serving loop of the HTTP peers (BSF, BM-SC, KMS, the admin API of `keysim serve`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::http::{SERVER_BODY_READ_TIMEOUT, SERVER_HEADER_READ_TIMEOUT};

/// A running peer's server thread.
pub(crate) struct PeerThread {
    peer: &'static str,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl PeerThread {
    /// Spawns the thread "`thread_name` `addr`" running `serve(stopped)` to completion; `stopped`
    /// resolves when [`PeerThread::stop`] is called or the value is dropped.
    pub(crate) fn spawn<F, Fut>(
        peer: &'static str,
        thread_name: &str,
        addr: SocketAddr,
        serve: F,
    ) -> std::io::Result<Self>
    where
        F: FnOnce(oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: Future<Output = std::io::Result<()>>,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name(format!("{thread_name} {addr}")).spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(serve(stopped))
        })?;
        Ok(PeerThread { peer, addr, stop: Some(stop), thread: Some(thread) })
    }

    /// Serves `app` over HTTP/1.1 on `listener` (non-blocking, already bound) until stopped; in-flight
    /// requests finish first ([`serve_connections`]).
    pub(crate) fn serve_http(
        peer: &'static str,
        thread_name: &str,
        listener: std::net::TcpListener,
        app: axum::Router,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        Self::spawn(peer, thread_name, addr, move |stopped| async move {
            serve_connections(tokio::net::TcpListener::from_std(listener)?, app, stopped).await
        })
    }

    /// Signals the server to stop (in-flight work finishes) and waits for the thread.
    pub(crate) fn stop(&mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(t) => {
                t.join().map_err(|_| std::io::Error::other(format!("the {} thread panicked", self.peer)))?
            }
            None => Ok(()),
        }
    }
}

/// Serves `app` over HTTP/1.1 on `listener` until `stopped` resolves; connections in flight then
/// finish. Every request carries `axum::extract::ConnectInfo<SocketAddr>` (the client's address).
/// A client gets [`SERVER_HEADER_READ_TIMEOUT`] for its header fields (then its connection is
/// closed) and [`SERVER_BODY_READ_TIMEOUT`] for its body (then `408`, connection closed), so a
/// stalled client holds its connection for a bounded time and a shutdown cannot wait on it for
/// longer.
pub(crate) async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    stopped: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(SERVER_HEADER_READ_TIMEOUT);
    tokio::pin!(stopped);
    loop {
        let (stream, remote) = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait a little rather than spin.
                    tracing::warn!("HTTP accept: {e}");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |req| answer(app.clone(), remote, req));
        let conn = graceful.watch(builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%remote, "HTTP connection closed: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Pause after a failed `accept`.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// One request through `app`, its body under [`SERVER_BODY_READ_TIMEOUT`].
async fn answer(
    mut app: axum::Router,
    remote: SocketAddr,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<axum::response::Response, std::convert::Infallible> {
    use tower_service::Service as _;
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(axum::extract::ConnectInfo(remote));
    let late = Arc::new(AtomicBool::new(false));
    let body = DeadlineBody {
        inner: body,
        deadline: Box::pin(tokio::time::sleep(SERVER_BODY_READ_TIMEOUT)),
        late: late.clone(),
    };
    let response = app.call(hyper::Request::from_parts(parts, body)).await?;
    if late.load(Ordering::Relaxed) {
        let mut r = axum::response::Response::new(axum::body::Body::from(format!(
            "request body not received within {} s\n",
            SERVER_BODY_READ_TIMEOUT.as_secs()
        )));
        *r.status_mut() = axum::http::StatusCode::REQUEST_TIMEOUT;
        r.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
        return Ok(r);
    }
    Ok(response)
}

/// A request body that fails once its deadline has passed, noting that it did.
struct DeadlineBody {
    inner: hyper::body::Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    late: Arc<AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.late.store(true, Ordering::Relaxed);
            // An error, not an early end: the extractor reading the body fails and the handler
            // never sees a truncated request.
            return Poll::Ready(Some(Err("request body not received in time".into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PeerThread {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!(peer = self.peer, addr = %self.addr, "shutdown: {e}");
        }
    }
}
