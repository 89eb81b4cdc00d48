//! Request hashing for consistent-hash balancing (Envoy's `RouteAction.HashPolicy`).
//!
//! The hash is FNV-1a 64 finished with MurmurHash3's 64-bit mixer: stable across processes,
//! versions and platforms, so every client of a service maps a key to the same endpoint. It is not
//! Envoy's xxHash64: keys map to the same endpoint across our clients, not across a mix of our
//! clients and Envoy sidecars.

use std::net::IpAddr;

use http::Request;
use mesh_core::route::HashPolicy;

/// The hash of `req` under `policies`: the first policy that yields a value decides (a header's
/// value, a cookie's value, the caller's IP address `source`, a query parameter's value). `None`
/// when no policy yields one; the ring then picks a random point.
///
/// Deviations from Envoy: Envoy combines the hashes of every policy that yields one until a
/// `terminal` policy; `HashPolicy` has no `terminal` flag, so the first value wins. A repeated
/// header hashes all its values in order. A cookie with a TTL is not generated when absent (that
/// needs the response path); the policy just yields nothing. Query parameter values are hashed as
/// sent (not percent-decoded).
pub fn hash_request<B>(
    policies: &[HashPolicy],
    req: &Request<B>,
    source: Option<IpAddr>,
) -> Option<u64> {
    policies.iter().find_map(|p| match p {
        HashPolicy::Header(name) => {
            let mut values = req.headers().get_all(name.as_str()).iter().peekable();
            values.peek()?;
            let mut h = Fnv::new();
            for (i, v) in values.enumerate() {
                if i > 0 {
                    h.write(b",");
                }
                h.write(v.as_bytes());
            }
            Some(h.finish())
        }
        HashPolicy::Cookie { name, .. } => req
            .headers()
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                (k == name).then(|| hash_bytes(v.trim_matches('"').as_bytes()))
            }),
        HashPolicy::SourceIp => source.map(|ip| match ip {
            IpAddr::V4(v4) => hash_bytes(&v4.octets()),
            IpAddr::V6(v6) => hash_bytes(&v6.octets()),
        }),
        HashPolicy::QueryParam(name) => req.uri().query()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| hash_bytes(v.as_bytes()))
        }),
    })
}

/// The stable 64-bit hash of `bytes`.
pub(super) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = Fnv::new();
    h.write(bytes);
    h.finish()
}

/// FNV-1a 64 with a final avalanche (MurmurHash3's `fmix64`), since FNV's high bits mix poorly on
/// short, similar inputs and the ring compares whole 64-bit values.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fnv(u64);

impl Fnv {
    pub(super) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(super) fn write(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self
    }

    pub(super) fn finish(&self) -> u64 {
        let mut k = self.0;
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        k ^ (k >> 33)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use mesh_core::route::HashPolicy;

    use super::*;

    #[test]
    fn hash_request_uses_the_first_policy_with_a_value() {
        let header = HashPolicy::Header("x-user".into());
        let cookie = HashPolicy::Cookie {
            name: "session".into(),
            ttl: None,
        };
        let query = HashPolicy::QueryParam("user".into());
        let policies = [
            header.clone(),
            cookie.clone(),
            query.clone(),
            HashPolicy::SourceIp,
        ];
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let req = |uri: &str, headers: &[(&str, &str)]| {
            let mut r = http::Request::get(uri);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.body(()).unwrap()
        };
        let bob = req("/", &[("x-user", "bob")]);
        let h_bob = hash_request(&policies, &bob, Some(ip)).unwrap();
        assert_eq!(
            Some(h_bob),
            hash_request(std::slice::from_ref(&header), &bob, None)
        );
        let alice = req("/", &[("x-user", "alice")]);
        assert_ne!(Some(h_bob), hash_request(&policies, &alice, Some(ip)));

        // No header: the cookie decides.
        let c = req("/?user=carol", &[("cookie", "a=1; session=bob; b=2")]);
        assert_eq!(hash_request(&policies, &c, Some(ip)), Some(h_bob));
        // No header, no cookie: the query parameter.
        let q = req("/p?x=1&user=bob", &[("cookie", "a=1")]);
        assert_eq!(hash_request(&policies, &q, Some(ip)), Some(h_bob));
        // Nothing else: the source address; without one, no hash.
        let none = req("/", &[]);
        let by_ip = hash_request(&policies, &none, Some(ip));
        assert_eq!(
            by_ip,
            hash_request(&[HashPolicy::SourceIp], &none, Some(ip))
        );
        assert!(by_ip.is_some());
        assert_ne!(
            by_ip,
            hash_request(&policies, &none, Some("10.1.2.4".parse().unwrap()))
        );
        assert_eq!(hash_request(&policies, &none, None), None);
        assert_eq!(hash_request(&[], &bob, Some(ip)), None);
        // Stable across runs and processes.
        assert_eq!(h_bob, hash_bytes(b"bob"));
    }
}
