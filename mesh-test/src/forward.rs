//! A loopback TCP forwarder standing in for a Kubernetes Service's virtual IP (kube-proxy):
//! each new connection goes to the first backend that accepts it, so when a control-plane
//! replica dies its clients reconnect to another one through the same address.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

/// The running forwarder; dropping it stops accepting (open connections run to their end).
#[derive(Debug)]
pub struct Forwarder {
    /// Where clients connect.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Forwarder {
    /// Forwards `127.0.0.1:0` to `backends`, trying them in order for every connection.
    pub async fn start(backends: Vec<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("forwarder: bind");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let backends = backends.clone();
                tokio::spawn(async move {
                    for b in backends {
                        if let Ok(mut outbound) = TcpStream::connect(b).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                    // No backend: the client sees the connection closed, as with no endpoints.
                });
            }
        });
        Self { addr, task }
    }
}
