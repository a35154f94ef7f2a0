//! The thread a simulated peer serves from (BSF, BM-SC, SCF, P-CSCF): a current-thread tokio
//! runtime of its own, stopped through a one-shot signal and joined on shutdown or drop.

use std::future::Future;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

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
    /// requests finish first.
    pub(crate) fn serve_http(
        peer: &'static str,
        thread_name: &str,
        listener: std::net::TcpListener,
        app: axum::Router,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        Self::spawn(peer, thread_name, addr, move |stopped| async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
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

impl Drop for PeerThread {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!(peer = self.peer, addr = %self.addr, "shutdown: {e}");
        }
    }
}
