//! A TCP proxy a test can break: cut (every live connection dropped, new ones
//! closed at once — what a client sees while its server restarts) or stall
//! (connections stay open but nothing passes — a network partition, a server
//! hung without resetting anything), and restore. Put it between the code
//! under test and a real service (Postgres, Redis, a provider fake).

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Up,
    Cut,
    Stalled,
}

/// A running proxy; it stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
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
        let (mode, _) = watch::channel(Mode::Up);
        let task = tokio::spawn(accept(listener, upstream, mode.clone()));
        Self { addr, mode, task }
    }

    /// Where clients connect.
    #[must_use]
    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every live connection and closes new ones as soon as they are
    /// accepted, until [`FaultProxy::restore`].
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Lets nothing through, and closes nothing: live connections and new
    /// ones stay open and silent until [`FaultProxy::restore`] (which then
    /// drops them, as the far side would have given up on them).
    pub fn stall(&self) {
        self.mode.send_replace(Mode::Stalled);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Up);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.mode.send_replace(Mode::Cut);
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr, mode: watch::Sender<Mode>) {
    while let Ok((client, _)) = listener.accept().await {
        let mut changes = mode.subscribe();
        let now = *changes.borrow_and_update();
        match now {
            Mode::Cut => drop(client),
            Mode::Stalled => {
                // Held open, silent, until the mode changes.
                tokio::spawn(async move {
                    let _ = changes.changed().await;
                    drop(client);
                });
            }
            Mode::Up => {
                tokio::spawn(forward(client, upstream, changes));
            }
        }
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr, mut changes: watch::Receiver<Mode>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
        _ = changes.changed() => {}
    }
    if *changes.borrow_and_update() == Mode::Stalled {
        // Both ends stay open with nothing passing until the next change.
        let _ = changes.changed().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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

    /// `Some(echo)`, `None` when the connection closed, `Err` when nothing
    /// came back within half a second.
    async fn round_trip(stream: &mut TcpStream) -> Result<Option<Vec<u8>>, ()> {
        if stream.write_all(b"ping").await.is_err() {
            return Ok(None);
        }
        let mut buf = [0u8; 4];
        match tokio::time::timeout(Duration::from_millis(500), stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => Ok(Some(buf.to_vec())),
            Ok(Err(_)) => Ok(None),
            Err(_) => Err(()),
        }
    }

    #[tokio::test]
    async fn a_cut_drops_live_connections_and_refuses_new_ones_until_restored() {
        let proxy = FaultProxy::start(echo_server().await);
        let mut live = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(round_trip(&mut live).await, Ok(Some(b"ping".to_vec())));

        proxy.cut();
        assert_eq!(
            round_trip(&mut live).await,
            Ok(None),
            "the live connection survived"
        );
        let mut refused = TcpStream::connect(proxy.addr()).await.expect("accepted");
        assert_eq!(
            round_trip(&mut refused).await,
            Ok(None),
            "a new connection got through"
        );

        proxy.restore();
        let mut again = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(round_trip(&mut again).await, Ok(Some(b"ping".to_vec())));
    }

    #[tokio::test]
    async fn a_stall_keeps_connections_open_and_silent_until_restored() {
        let proxy = FaultProxy::start(echo_server().await);
        let mut live = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(round_trip(&mut live).await, Ok(Some(b"ping".to_vec())));

        proxy.stall();
        assert_eq!(
            round_trip(&mut live).await,
            Err(()),
            "the stalled connection answered"
        );
        let mut new = TcpStream::connect(proxy.addr()).await.expect("accepted");
        assert_eq!(
            round_trip(&mut new).await,
            Err(()),
            "a new connection got through"
        );

        proxy.restore();
        let mut again = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(round_trip(&mut again).await, Ok(Some(b"ping".to_vec())));
    }
}
