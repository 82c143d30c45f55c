//! The accept loop the control socket and the metrics endpoint share: at
//! most so many connections served at a time, each in its own task. While
//! every slot is taken the loop does not accept, so further clients wait in
//! the kernel's listen backlog and cost the daemon no file descriptor.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::warn;

use crate::chain::Chain;

/// Pause after a failed accept (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A listening socket.
pub trait Listener: Send + 'static {
    /// A connection.
    type Stream: Send + 'static;
    /// Waits for the next connection.
    fn accept_one(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

impl Listener for UnixListener {
    type Stream = UnixStream;
    async fn accept_one(&self) -> io::Result<UnixStream> {
        self.accept().await.map(|(s, _)| s)
    }
}

impl Listener for TcpListener {
    type Stream = TcpStream;
    async fn accept_one(&self) -> io::Result<TcpStream> {
        self.accept().await.map(|(s, _)| s)
    }
}

/// Accepts connections on `listener` until aborted, at most `max` served
/// at once by `serve`, each in its own task (aborted with the loop). `what`
/// names the endpoint in logs.
pub async fn serve_connections<L, F, Fut>(listener: L, max: usize, what: &'static str, serve: F)
where
    L: Listener,
    F: Fn(L::Stream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(max));
    let mut connections = JoinSet::new();
    loop {
        // No free slot, no accept: the client stays in the backlog.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        // The semaphore is never closed.
        let Ok(slot) = slot else { return };
        let accepted = tokio::select! {
            accepted = listener.accept_one() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        match accepted {
            Ok(stream) => {
                let served = serve(stream);
                connections.spawn(async move {
                    served.await;
                    drop(slot);
                });
            }
            Err(e) => {
                warn!(error = %Chain(&e), "{what} accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}
