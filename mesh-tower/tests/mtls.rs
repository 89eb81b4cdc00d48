//! SPIFFE mutual TLS end to end over loopback: `mesh_tower::Client` with a TLS cluster against
//! `mesh_tower::server::serve`, real rustls handshakes, certificates from a throwaway CA.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use mesh_core::cluster::UpstreamTls;
use mesh_core::identity::{PeerIdentity, SpiffeId, Svid};
use mesh_core::{MeshResources, Snapshot, StringMatch};
use mesh_test::ca::TestCa;
use mesh_tower::server::{self, AcceptError, Acceptor, PeerAuthMode, PeerIdentityLayer};
use mesh_tower::{Client, Error};
use mesh_xds_client::tls::{self, TlsError};
use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tower::Layer;

const HOUR: Duration = Duration::from_secs(3600);
const HOST: &str = "db.data.svc.cluster.local";

fn identity(svid: Svid) -> Snapshot<Option<Svid>> {
    Snapshot::new(Some(svid))
}

/// Target `HOST:80` → one cluster holding `addr`; over mTLS allowing `san` when `tls`.
fn mesh(addr: SocketAddr, tls: bool, san: Vec<StringMatch>) -> (Snapshot<MeshResources>, String) {
    let tls = tls.then(|| UpstreamTls {
        sni: None,
        san_matchers: san,
    });
    let mut r = mesh_test::mesh::single_cluster(HOST, 80, addr, tls);
    let cluster = mesh_core::cluster_name(HOST, 80, None);
    if let Some(c) = r.clusters.get_mut(&cluster) {
        Arc::make_mut(c).connect_timeout = Duration::from_secs(5);
    }
    (Snapshot::new(r), cluster)
}

fn exact(id: &SpiffeId) -> Vec<StringMatch> {
    vec![StringMatch::Exact(id.to_string())]
}

/// An app served by `server::serve_with_shutdown` that answers with the peer it was told about.
struct App {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl App {
    async fn start(acceptor: Acceptor) -> App {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = tower::service_fn(move |req: Request<hyper::body::Incoming>| {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = match req.extensions().get::<PeerIdentity>() {
                Some(PeerIdentity(id)) => format!("hello {id}"),
                None => "hello plaintext".to_string(),
            };
            async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
        });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(server::serve_with_shutdown(
            listener,
            acceptor,
            app,
            async {
                let _ = stopped.await;
            },
        ));
        App {
            addr,
            hits,
            stop: Some(stop),
            task,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops gracefully; panics if that takes more than a few seconds.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("serve_with_shutdown returns after the shutdown signal")
            .unwrap();
    }
}

async fn get(client: &Client, version: http::Version) -> Result<String, Error> {
    let req = Request::get(format!("http://{HOST}/hello"))
        .version(version)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = client.request(req).await?;
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Ok(String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn mtls_round_trip_gives_the_app_the_client_identity() {
    let ca = TestCa::with_intermediate("mesh.local");
    let (web, db) = (ca.id("shop", "web"), ca.id("data", "db"));
    let app = App::start(Acceptor::new(identity(ca.svid(&db, HOUR)))).await;
    let (state, _) = mesh(app.addr, true, exact(&db));
    let client = Client::builder(state)
        .identity(identity(ca.svid(&web, HOUR)))
        .build();
    for version in [http::Version::HTTP_11, http::Version::HTTP_2] {
        let body = get(&client, version).await.expect("request over mTLS");
        assert_eq!(body, format!("hello {web}"), "{version:?}");
    }
    assert_eq!(app.hits(), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_server_with_the_wrong_identity_never_gets_a_request() {
    let ca = TestCa::new("mesh.local");
    let (web, db, evil) = (
        ca.id("shop", "web"),
        ca.id("data", "db"),
        ca.id("data", "evil"),
    );
    let app = App::start(Acceptor::new(identity(ca.svid(&evil, HOUR)))).await;
    let (state, cluster) = mesh(app.addr, true, exact(&db));
    let client = Client::builder(state)
        .identity(identity(ca.svid(&web, HOUR)))
        .build();
    let err = get(&client, http::Version::HTTP_11).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, Error::Tls { source, .. } if source.is_not_allowed()),
        "{err:?}"
    );
    assert!(
        msg.contains(&evil.to_string()) && msg.contains(&db.to_string()) && msg.contains(&cluster),
        "{msg}"
    );
    assert!(err.never_sent());
    assert_eq!(app.hits(), 0, "the wrong server saw a request");
}

/// The client refuses the server's certificate; the error says why and nothing reaches the app.
async fn refused_server(server: Svid, client: Svid) -> (TlsError, usize) {
    let app = App::start(Acceptor::new(identity(server))).await;
    let (state, _) = mesh(app.addr, true, Vec::new());
    let client = Client::builder(state).identity(identity(client)).build();
    let err = get(&client, http::Version::HTTP_11).await.unwrap_err();
    let Error::Tls { source, .. } = err else {
        panic!("expected a TLS refusal, got {err:?}");
    };
    (*source, app.hits())
}

#[tokio::test]
async fn an_expired_server_certificate_is_refused() {
    let ca = TestCa::new("mesh.local");
    let db = ca.id("data", "db");
    let (err, hits) =
        refused_server(ca.expired_svid(&db), ca.svid(&ca.id("shop", "web"), HOUR)).await;
    assert!(matches!(err, TlsError::Expired { .. }), "{err}");
    assert!(
        err.to_string().contains("expired at") && err.to_string().contains(&db.to_string()),
        "{err}"
    );
    assert_eq!(hits, 0);
}

#[tokio::test]
async fn a_server_certificate_from_another_trust_domain_is_refused() {
    let (ca, other) = (TestCa::new("mesh.local"), TestCa::new("other.example"));
    let impostor = other.id("data", "db");
    let (err, hits) = refused_server(
        other.svid(&impostor, HOUR),
        ca.svid(&ca.id("shop", "web"), HOUR),
    )
    .await;
    assert!(err.is_untrusted(), "{err}");
    assert!(
        err.to_string().contains(&impostor.to_string()) && err.to_string().contains("mesh.local"),
        "{err}"
    );
    assert_eq!(hits, 0);
}

/// Opens a raw TLS connection with `client` to a fresh listener and returns what
/// `Acceptor::accept` made of it.
async fn accept_one(
    acceptor: &Acceptor,
    client: impl FnOnce(SocketAddr) -> tokio::task::JoinHandle<()>,
) -> Result<Option<PeerIdentity>, AcceptError> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = client(listener.local_addr().unwrap());
    let (tcp, _) = listener.accept().await.unwrap();
    let result = acceptor.accept(tcp).await.map(|(_, id)| id);
    peer.abort();
    result
}

fn tls_client(svid: Svid) -> impl FnOnce(SocketAddr) -> tokio::task::JoinHandle<()> {
    move |addr| {
        tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let config = tls::client_config(identity(svid), &[]);
            let name = ServerName::try_from("mesh.invalid").unwrap();
            if let Ok(mut s) = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
            {
                let _ = s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
                let _ = s.flush().await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        })
    }
}

fn plaintext_client() -> impl FnOnce(SocketAddr) -> tokio::task::JoinHandle<()> {
    |addr| {
        tokio::spawn(async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            let _ = tcp.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
    }
}

#[tokio::test]
async fn a_self_signed_client_certificate_is_refused_by_the_server() {
    let ca = TestCa::new("mesh.local");
    let (web, db) = (ca.id("shop", "web"), ca.id("data", "db"));
    let server_id = identity(ca.svid(&db, HOUR));
    let forged = ca.self_signed_svid(&web, HOUR);

    // What the server says.
    let acceptor = Acceptor::new(server_id.clone());
    let err = accept_one(&acceptor, tls_client(forged.clone()))
        .await
        .unwrap_err();
    assert!(err.is_refused(), "{err}");
    assert!(
        err.to_string().contains("self-signed") && err.to_string().contains(&web.to_string()),
        "{err}"
    );

    // What the client sees through the mesh stack: a failed request, and no request served.
    let app = App::start(acceptor).await;
    let (state, _) = mesh(app.addr, true, exact(&db));
    let client = Client::builder(state).identity(identity(forged)).build();
    let err = get(&client, http::Version::HTTP_11).await.unwrap_err();
    assert!(
        matches!(&err, Error::Tls { source, .. } if source.is_refused_by_peer()),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("does not accept this workload's certificate"),
        "{err}"
    );
    assert_eq!(app.hits(), 0);
}

#[tokio::test]
async fn plaintext_is_refused_by_strict_while_mtls_keeps_working() {
    let ca = TestCa::new("mesh.local");
    let (web, db) = (ca.id("shop", "web"), ca.id("data", "db"));
    let acceptor = Acceptor::new(identity(ca.svid(&db, HOUR)));

    let err = accept_one(&acceptor, plaintext_client()).await.unwrap_err();
    let AcceptError::PlaintextRefused { peer, mode } = &err else {
        panic!("expected a plaintext refusal, got {err:?}");
    };
    assert_eq!(*mode, PeerAuthMode::Strict);
    assert!(
        err.to_string().contains(&peer.to_string()) && err.to_string().contains("STRICT"),
        "{err}"
    );

    let app = App::start(acceptor).await;
    let (plain_state, _) = mesh(app.addr, false, Vec::new());
    let plain = Client::from_snapshot(plain_state);
    let (tls_state, _) = mesh(app.addr, true, exact(&db));
    let mtls = Client::builder(tls_state)
        .identity(identity(ca.svid(&web, HOUR)))
        .build();
    for _ in 0..3 {
        let err = get(&plain, http::Version::HTTP_11).await.unwrap_err();
        assert!(matches!(err, Error::Upstream { .. }), "{err:?}");
        assert_eq!(
            get(&mtls, http::Version::HTTP_11).await.unwrap(),
            format!("hello {web}")
        );
    }
    assert_eq!(app.hits(), 3, "only the mTLS requests were served");
    app.stop().await;
}

#[tokio::test]
async fn permissive_serves_plaintext_and_mtls_on_one_port() {
    let ca = TestCa::new("mesh.local");
    let (web, db) = (ca.id("shop", "web"), ca.id("data", "db"));
    let acceptor = Acceptor::new(identity(ca.svid(&db, HOUR))).mode(PeerAuthMode::Permissive);
    let app = App::start(acceptor).await;
    let (plain_state, _) = mesh(app.addr, false, Vec::new());
    let (tls_state, _) = mesh(app.addr, true, exact(&db));
    let plain = Client::from_snapshot(plain_state);
    let mtls = Client::builder(tls_state)
        .identity(identity(ca.svid(&web, HOUR)))
        .build();
    for version in [http::Version::HTTP_11, http::Version::HTTP_2] {
        assert_eq!(get(&plain, version).await.unwrap(), "hello plaintext");
        assert_eq!(get(&mtls, version).await.unwrap(), format!("hello {web}"));
    }
    app.stop().await;
}

#[tokio::test]
async fn a_tls_cluster_without_an_identity_fails_clearly_and_sends_nothing() {
    let ca = TestCa::new("mesh.local");
    let (web, db) = (ca.id("shop", "web"), ca.id("data", "db"));
    let app =
        App::start(Acceptor::new(identity(ca.svid(&db, HOUR))).mode(PeerAuthMode::Permissive))
            .await;
    let (state, cluster) = mesh(app.addr, true, exact(&db));

    // Built without an identity: never plaintext.
    let err = get(
        &Client::from_snapshot(state.clone()),
        http::Version::HTTP_11,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::NoIdentity { cluster: c } if *c == cluster),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&cluster) && err.never_sent(),
        "{err}"
    );

    // With an identity that has no certificate yet, then gets one.
    let pending = Snapshot::new(None);
    let client = Client::builder(state).identity(pending.clone()).build();
    let err = get(&client, http::Version::HTTP_11).await.unwrap_err();
    assert!(matches!(err, Error::NoIdentity { .. }), "{err:?}");
    assert_eq!(app.hits(), 0);
    pending.store(Some(ca.svid(&web, HOUR)));
    assert_eq!(
        get(&client, http::Version::HTTP_11).await.unwrap(),
        format!("hello {web}")
    );
    app.stop().await;
}

/// The leaf certificate a fresh handshake with `client` gets from the server at `addr`.
async fn server_leaf(addr: SocketAddr, client: Snapshot<Option<Svid>>) -> Vec<u8> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let config = tls::client_config(client, &[]);
    let name = ServerName::try_from("mesh.invalid").unwrap();
    let s = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    s.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_requests_drops_nothing_and_new_connections_use_the_new_certificates() {
    let ca = TestCa::new("mesh.local");
    let (web, db) = (ca.id("shop", "web"), ca.id("data", "db"));
    let (client_id, server_id) = (identity(ca.svid(&web, HOUR)), identity(ca.svid(&db, HOUR)));

    // Our own accept loop (with PeerIdentityLayer), recording each connection's client leaf and,
    // after the rotation, which leaf each request's connection had. Every 5th HTTP/1.1 response
    // on a connection closes it, so new connections keep being made; the HTTP/2 connection stays.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let leaves: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let rotated = Arc::new(AtomicBool::new(false));
    type Served = Vec<(http::Version, Arc<Vec<u8>>)>;
    let after: Arc<Mutex<Served>> = Arc::default();
    let acceptor = Acceptor::new(server_id.clone());
    let server = {
        let (leaves, rotated, after) = (leaves.clone(), rotated.clone(), after.clone());
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let (stream, peer) = acceptor.accept(tcp).await.expect("mTLS peer");
                let leaf = Arc::new(stream.peer_certificates().unwrap()[0].to_vec());
                leaves.lock().unwrap().push(leaf.to_vec());
                let served = Arc::new(AtomicUsize::new(0));
                let (rotated, after) = (rotated.clone(), after.clone());
                let app = tower::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let n = served.fetch_add(1, Ordering::SeqCst) + 1;
                    if rotated.load(Ordering::SeqCst) {
                        after.lock().unwrap().push((req.version(), leaf.clone()));
                    }
                    let peer = req.extensions().get::<PeerIdentity>().cloned();
                    let close = req.version() == http::Version::HTTP_11 && n.is_multiple_of(5);
                    async move {
                        let mut resp = Response::new(Full::new(Bytes::from(format!(
                            "hello {}",
                            peer.expect("a peer identity").0
                        ))));
                        if close {
                            resp.headers_mut()
                                .insert(http::header::CONNECTION, "close".parse().unwrap());
                        }
                        Ok::<_, Infallible>(resp)
                    }
                });
                let svc = hyper_util::service::TowerToHyperService::new(
                    PeerIdentityLayer::new(peer).layer(app),
                );
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
                });
            }
        })
    };

    let (state, _) = mesh(addr, true, exact(&db));
    let client = Client::builder(state).identity(client_id.clone()).build();
    let ok = Arc::new(AtomicUsize::new(0));
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for version in [
        http::Version::HTTP_2,
        http::Version::HTTP_11,
        http::Version::HTTP_11,
        http::Version::HTTP_11,
    ] {
        let (client, ok, failures, stop) =
            (client.clone(), ok.clone(), failures.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            for _ in 0..500 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                match get(&client, version).await {
                    Ok(_) => ok.fetch_add(1, Ordering::SeqCst),
                    Err(e) => {
                        failures.lock().unwrap().push(e.to_string());
                        0
                    }
                };
            }
        }));
    }
    let wait_for = |n: usize| {
        let ok = ok.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(30), async {
                while ok.load(Ordering::SeqCst) < n {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
            .await
            .expect("requests keep succeeding");
        }
    };

    wait_for(40).await;
    let old_client = client_id.load_full().as_ref().clone().unwrap();
    let (new_client, new_server) = (ca.svid(&web, 2 * HOUR), ca.svid(&db, 2 * HOUR));
    client_id.store(Some(new_client.clone()));
    server_id.store(Some(new_server.clone()));
    rotated.store(true, Ordering::SeqCst);
    let connections_before = leaves.lock().unwrap().len();
    let rotated_at = ok.load(Ordering::SeqCst);
    wait_for(rotated_at + 80).await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }

    assert_eq!(*failures.lock().unwrap(), Vec::<String>::new());
    let after = after.lock().unwrap().clone();
    assert!(
        after
            .iter()
            .any(|(v, leaf)| *v == http::Version::HTTP_2 && **leaf == old_client.chain[0]),
        "the HTTP/2 connection made before the rotation carried on"
    );
    assert!(
        after.iter().any(|(_, leaf)| **leaf == new_client.chain[0]),
        "requests after the rotation went over connections with the new certificate"
    );
    let leaves = leaves.lock().unwrap().clone();
    assert!(
        leaves.len() > connections_before,
        "no new connection after the rotation"
    );
    assert_eq!(
        leaves.last().unwrap(),
        &new_client.chain[0],
        "the newest connection presents the new client certificate"
    );
    assert_eq!(server_leaf(addr, client_id).await, new_server.chain[0]);
    server.abort();
}
