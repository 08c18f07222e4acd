//! Round trips to PostgreSQL, counted on the wire: a relay in front of the server that counts each
//! time a client sends after the server has answered it since the client last sent. Requests
//! pipelined behind one another (sent before any answer came back) are one round trip, which is
//! what a client waits for; statements counted by pg_stat_statements cannot tell them apart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct TripCounter {
    pub port: u16,
    trips: Arc<AtomicU64>,
}

impl TripCounter {
    /// Relays every connection made to [`TripCounter::port`] to `127.0.0.1:upstream`.
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the relay");
        let port = listener.local_addr().expect("its address").port();
        let trips = Arc::new(AtomicU64::new(0));
        let counted = trips.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, counted.clone()));
            }
        });
        Self { port, trips }
    }

    /// Round trips so far, over every connection.
    pub fn trips(&self) -> u64 {
        self.trips.load(Ordering::SeqCst)
    }
}

async fn relay(client: TcpStream, server: TcpStream, trips: Arc<AtomicU64>) {
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (mut client_in, mut client_out) = client.into_split();
    let (mut server_in, mut server_out) = server.into_split();
    // Whether the server has sent anything since the client last did: the connection's first
    // request starts a round trip too.
    let answered = Arc::new(AtomicBool::new(true));
    let heard = answered.clone();
    let requests = async move {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = client_in.read(&mut buf).await {
            if heard.swap(false, Ordering::SeqCst) {
                trips.fetch_add(1, Ordering::SeqCst);
            }
            if server_out.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_out.shutdown().await;
    };
    let answers = async move {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = server_in.read(&mut buf).await {
            answered.store(true, Ordering::SeqCst);
            if client_out.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_out.shutdown().await;
    };
    tokio::join!(requests, answers);
}
