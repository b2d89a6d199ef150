//! A TCP proxy a test can cut: every live connection is dropped and new ones
//! are refused until it is restored — what a client sees while its server
//! restarts or a network partition lasts. Put it between the code under test
//! and a real service (Postgres, Redis, a provider fake).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; it stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    /// Bumped on every cut: connections opened before it end.
    cuts: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts forwarding a local port to `upstream`. Not async, so that a
    /// configuration callback can put it in place, but it must be called
    /// inside a Tokio runtime.
    ///
    /// # Panics
    /// When no local port can be bound, or outside a runtime (a test's
    /// set-up failing).
    #[must_use]
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("non-blocking");
        let listener = TcpListener::from_std(listener).expect("inside a Tokio runtime");
        let addr = listener.local_addr().expect("proxy addr");
        let up = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0u64);
        let task = tokio::spawn(accept(listener, upstream, up.clone(), cuts.clone()));
        Self {
            addr,
            up,
            cuts,
            task,
        }
    }

    /// Where clients connect.
    #[must_use]
    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every live connection and refuses new ones (each is closed as
    /// soon as it is accepted) until [`FaultProxy::restore`].
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cuts.send_modify(|n| *n += 1);
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    up: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
) {
    while let Ok((client, _)) = listener.accept().await {
        if !up.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let mut cut = cuts.subscribe();
        cut.mark_unchanged();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let (mut client, mut server) = (client, server);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = cut.changed() => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream) -> Option<Vec<u8>> {
        stream.write_all(b"ping").await.ok()?;
        let mut buf = [0u8; 4];
        match stream.read_exact(&mut buf).await {
            Ok(_) => Some(buf.to_vec()),
            Err(_) => None,
        }
    }

    #[tokio::test]
    async fn a_cut_drops_live_connections_and_refuses_new_ones_until_restored() {
        let proxy = FaultProxy::start(echo_server().await);
        let mut live = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(round_trip(&mut live).await.as_deref(), Some(&b"ping"[..]));

        proxy.cut();
        assert_eq!(
            round_trip(&mut live).await,
            None,
            "the live connection survived"
        );
        let mut refused = TcpStream::connect(proxy.addr()).await.expect("accepted");
        assert_eq!(
            round_trip(&mut refused).await,
            None,
            "a new connection got through"
        );

        proxy.restore();
        let mut again = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(round_trip(&mut again).await.as_deref(), Some(&b"ping"[..]));
    }
}
