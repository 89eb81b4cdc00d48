//! Real handshakes between rustls client and server connections in memory: what each side
//! accepts, refuses, and says when it refuses.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mesh_core::identity::Svid;
use mesh_core::{Snapshot, StringMatch};
use mesh_test::ca::TestCa;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

use super::*;

const HOUR: Duration = Duration::from_secs(3600);

fn live(svid: Svid) -> Snapshot<Option<Svid>> {
    Snapshot::new(Some(svid))
}

/// What each side of a handshake ended with.
struct Outcome {
    client: Result<(), rustls::Error>,
    server: Result<(), rustls::Error>,
    /// The certificates each side saw from the other.
    client_saw: Option<Vec<CertificateDer<'static>>>,
    server_saw: Option<Vec<CertificateDer<'static>>>,
}

impl Outcome {
    fn ok(&self) {
        assert!(
            self.client.is_ok() && self.server.is_ok(),
            "client: {:?}, server: {:?}",
            self.client,
            self.server
        );
    }
    fn client_error(&self) -> TlsError {
        TlsError::from_rustls(self.client.as_ref().expect_err("the client should fail"))
    }
    fn server_error(&self) -> TlsError {
        TlsError::from_rustls(self.server.as_ref().expect_err("the server should fail"))
    }
}

/// Moves TLS records between the two sides until both are done or have failed.
fn handshake(client: Arc<ClientConfig>, server: Arc<ServerConfig>) -> Outcome {
    let name = ServerName::try_from("mesh.invalid").unwrap();
    let mut c = ClientConnection::new(client, name).unwrap();
    let mut s = ServerConnection::new(server).unwrap();
    let (mut cres, mut sres) = (Ok(()), Ok(()));
    for _ in 0..16 {
        let mut moved = false;
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() && sres.is_ok() {
            moved = true;
            let mut rd = &buf[..];
            while !rd.is_empty() && sres.is_ok() {
                s.read_tls(&mut rd).unwrap();
                sres = s.process_new_packets().map(|_| ());
            }
        }
        let mut buf = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() && cres.is_ok() {
            moved = true;
            let mut rd = &buf[..];
            while !rd.is_empty() && cres.is_ok() {
                c.read_tls(&mut rd).unwrap();
                cres = c.process_new_packets().map(|_| ());
            }
        }
        if !moved {
            break;
        }
    }
    if cres.is_ok() && sres.is_ok() {
        assert!(
            !c.is_handshaking() && !s.is_handshaking(),
            "handshake stalled"
        );
    }
    Outcome {
        client_saw: c.peer_certificates().map(|c| c.to_vec()),
        server_saw: s.peer_certificates().map(|c| c.to_vec()),
        client: cres,
        server: sres,
    }
}

fn pair(client: Svid, server: Svid) -> Outcome {
    handshake(
        client_config(live(client), &[ALPN_H2]),
        server_config(live(server), ClientAuth::Required, &[ALPN_H2]),
    )
}

#[test]
fn each_side_learns_the_others_identity_through_an_intermediate() {
    let ca = TestCa::with_intermediate("mesh.local");
    let (web, db) = (ca.id("default", "web"), ca.id("data", "db"));
    let out = pair(ca.svid(&web, HOUR), ca.svid(&db, HOUR));
    out.ok();
    assert_eq!(peer_identity(&out.client_saw.unwrap()).unwrap(), db);
    assert_eq!(peer_identity(&out.server_saw.unwrap()).unwrap(), web);
}

#[test]
fn a_server_of_another_trust_domain_is_refused_by_name() {
    let (ca, other) = (TestCa::new("mesh.local"), TestCa::new("evil.example"));
    let out = pair(
        ca.svid(&ca.id("default", "web"), HOUR),
        other.svid(&other.id("default", "db"), HOUR),
    );
    let err = out.client_error();
    assert!(err.is_untrusted(), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("spiffe://evil.example/ns/default/sa/db") && msg.contains("mesh.local"),
        "{msg}"
    );
}

#[test]
fn an_expired_server_certificate_is_refused_with_its_expiry() {
    let ca = TestCa::new("mesh.local");
    let expired = ca.expired_svid(&ca.id("default", "db"));
    let out = pair(ca.svid(&ca.id("default", "web"), HOUR), expired.clone());
    let err = out.client_error();
    assert!(matches!(err, TlsError::Expired { not_after, .. } if not_after == expired.not_after));
    assert!(err.to_string().contains("expired at"), "{err}");
}

#[test]
fn a_not_yet_valid_server_certificate_is_refused() {
    let ca = TestCa::new("mesh.local");
    let now = SystemTime::now();
    let future = ca.svid_between(&ca.id("default", "db"), now + HOUR, now + 2 * HOUR);
    let out = pair(ca.svid(&ca.id("default", "web"), HOUR), future);
    assert!(matches!(out.client_error(), TlsError::NotYetValid { .. }));
}

#[test]
fn a_self_signed_client_certificate_is_refused_by_the_server() {
    let ca = TestCa::new("mesh.local");
    let web = ca.id("default", "web");
    let out = pair(
        ca.self_signed_svid(&web, HOUR),
        ca.svid(&ca.id("default", "db"), HOUR),
    );
    let err = out.server_error();
    assert!(err.is_untrusted());
    assert!(
        err.to_string().contains("self-signed") && err.to_string().contains(&web.to_string()),
        "{err}"
    );
    assert!(out.client.is_err(), "the client hears the refusal");
}

#[test]
fn a_certificate_without_exactly_one_spiffe_id_is_refused() {
    let ca = TestCa::new("mesh.local");
    let db = ca.id("default", "db");
    let now = SystemTime::now();
    let (from, to) = (now - HOUR, now + HOUR);
    for (uris, expect) in [
        (vec![], "no URI SAN"),
        (
            vec![
                "spiffe://mesh.local/ns/default/sa/db",
                "spiffe://mesh.local/ns/default/sa/x",
            ],
            "2 URI SANs",
        ),
        (vec!["https://db.example"], "not a mesh SPIFFE ID"),
    ] {
        let server = ca.svid_with_uris(&db, &uris, from, to);
        let direct = peer_identity(&[CertificateDer::from(server.chain[0].clone())]).unwrap_err();
        assert!(direct.to_string().contains(expect), "{direct}");
        let out = pair(ca.svid(&ca.id("default", "web"), HOUR), server);
        let err = out.client_error();
        assert!(matches!(err, TlsError::NoSpiffeId { .. }), "{err}");
    }
    assert!(matches!(
        peer_identity(&[]),
        Err(TlsError::NoPeerCertificate)
    ));
}

#[test]
fn without_an_identity_handshakes_fail_clearly() {
    let ca = TestCa::new("mesh.local");
    let out = handshake(
        client_config(Snapshot::new(None), &[]),
        server_config(
            live(ca.svid(&ca.id("default", "db"), HOUR)),
            ClientAuth::Required,
            &[],
        ),
    );
    let err = out.client_error();
    assert!(err.is_no_identity(), "{err}");
    assert_eq!(
        err.to_string(),
        "no identity yet: the workload has no certificate"
    );
}

#[test]
fn optional_client_auth_accepts_a_client_without_certificate_but_verifies_one_that_is_sent() {
    let ca = TestCa::new("mesh.local");
    let server_id = live(ca.svid(&ca.id("mesh-system", "control-plane"), HOUR));
    let server = server_config(server_id, ClientAuth::Optional, &[ALPN_H2]);
    // A workload with no certificate yet: verifies the server, presents nothing.
    let anonymous = bootstrap_client_config("mesh.local", &ca.bundle(), &[ALPN_H2]).unwrap();
    let out = handshake(anonymous, server.clone());
    out.ok();
    assert!(out.server_saw.is_none());

    let forged = ca.self_signed_svid(&ca.id("default", "web"), HOUR);
    let out = handshake(client_config(live(forged), &[ALPN_H2]), server.clone());
    assert!(out.server_error().is_untrusted());

    // The bootstrap config verifies the server all the same.
    let other = TestCa::new("mesh.local");
    let wrong = bootstrap_client_config("mesh.local", &other.bundle(), &[ALPN_H2]).unwrap();
    assert!(handshake(wrong, server).client_error().is_untrusted());
    let err = bootstrap_client_config("mesh.local", &[], &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the trust bundle of mesh.local cannot be used: the trust bundle is empty"
    );
}

#[test]
fn rotation_presents_the_new_certificate_and_applies_the_new_bundle() {
    let ca = TestCa::new("mesh.local");
    let (web, db) = (ca.id("default", "web"), ca.id("default", "db"));
    let client_id = live(ca.svid(&web, HOUR));
    let server_id = live(ca.svid(&db, HOUR));
    let client = client_config(client_id.clone(), &[]);
    let server = server_config(server_id.clone(), ClientAuth::Required, &[]);
    handshake(client.clone(), server.clone()).ok();

    let next = ca.svid(&web, 2 * HOUR);
    client_id.store(Some(next.clone()));
    let out = handshake(client.clone(), server.clone());
    out.ok();
    assert_eq!(
        out.server_saw.unwrap()[0].as_ref(),
        next.chain[0].as_slice()
    );

    // The server moves to a new CA: the client, still on the old bundle, refuses it; once the
    // client holds the new bundle too, they agree again.
    let new_ca = TestCa::new("mesh.local");
    server_id.store(Some(new_ca.svid(&db, HOUR)));
    assert!(
        handshake(client.clone(), server.clone())
            .client_error()
            .is_untrusted()
    );
    client_id.store(Some(new_ca.svid(&web, HOUR)));
    handshake(client, server).ok();
}

#[test]
fn each_svid_is_parsed_once() {
    let ca = TestCa::new("mesh.local");
    let id = live(ca.svid(&ca.id("default", "web"), HOUR));
    let live = Live::new(id.clone(), provider());
    let (a, b) = (live.current().unwrap(), live.current().unwrap());
    assert!(Arc::ptr_eq(&a.key, &b.key));
    id.store(Some(ca.svid(&ca.id("default", "web"), HOUR)));
    assert!(!Arc::ptr_eq(&a.key, &live.current().unwrap().key));
}

#[test]
fn an_unusable_svid_is_named() {
    let ca = TestCa::new("mesh.local");
    let mut svid = ca.svid(&ca.id("default", "web"), HOUR);
    svid.key = ca.svid(&ca.id("default", "web"), HOUR).key; // a key of another certificate
    let err = Live::new(live(svid), provider()).current().unwrap_err();
    assert!(err.is_no_identity());
    assert!(
        err.to_string()
            .contains("spiffe://mesh.local/ns/default/sa/web"),
        "{err}"
    );
}

#[test]
fn san_matchers_allow_or_name_both_identities() {
    let ca = TestCa::new("mesh.local");
    let db = ca.id("default", "db");
    assert!(check_san(&db, &[]).is_ok());
    let allowed = [
        StringMatch::Exact("spiffe://mesh.local/ns/default/sa/web".into()),
        StringMatch::Prefix("spiffe://mesh.local/ns/data/".into()),
    ];
    let err = check_san(&db, &allowed).unwrap_err();
    assert!(err.is_not_allowed());
    assert_eq!(
        err.to_string(),
        "peer presented spiffe://mesh.local/ns/default/sa/db, allowed are [exact spiffe://mesh.local/ns/default/sa/web, prefix spiffe://mesh.local/ns/data/]"
    );
    assert!(check_san(&ca.id("data", "pg"), &allowed).is_ok());
}
