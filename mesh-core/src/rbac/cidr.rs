//! CIDR ranges (`envoy.config.core.v3.CidrRange`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// An address range: an IPv4 or IPv6 prefix and its length.
///
/// ```
/// use mesh_core::rbac::Cidr;
/// let lan: Cidr = "10.1.0.0/16".parse().unwrap();
/// assert!(lan.contains("10.1.2.3".parse().unwrap()));
/// assert!(lan.contains("::ffff:10.1.2.3".parse().unwrap()));
/// assert!(!lan.contains("10.2.0.1".parse().unwrap()));
/// let one: Cidr = "192.168.0.7".parse().unwrap();
/// assert_eq!(one.prefix_len(), 32);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix_len: u8,
}

/// Why a CIDR range is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CidrError {
    /// The address part is not an IP address.
    #[error("{0:?} is not an IP address or CIDR range")]
    Address(String),
    /// The length is larger than the address: 32 for IPv4, 128 for IPv6.
    #[error("prefix length {len} is out of range for {addr} (at most {max})")]
    Length {
        /// The address.
        addr: IpAddr,
        /// The length given.
        len: u32,
        /// 32 or 128.
        max: u8,
    },
}

impl Cidr {
    /// The range of `prefix_len` leading bits of `addr`; the other bits of `addr` are ignored,
    /// as Envoy does.
    pub fn new(addr: IpAddr, prefix_len: u32) -> Result<Self, CidrError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix_len > u32::from(max) {
            return Err(CidrError::Length {
                addr,
                len: prefix_len,
                max,
            });
        }
        Ok(Self {
            addr,
            prefix_len: prefix_len as u8,
        })
    }

    /// The address as given.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The number of leading bits compared.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// True when `ip` is in the range. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a
    /// dual-stack socket reports) is compared as the IPv4 address; otherwise families never
    /// match each other.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `10.0.0.0/8`, `2001:db8::/32`, or a single address (`10.0.0.1` = `/32`).
    fn from_str(s: &str) -> Result<Self, CidrError> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| CidrError::Address(s.to_string()))?;
        let len = match len {
            Some(l) => l
                .parse::<u32>()
                .map_err(|_| CidrError::Address(s.to_string()))?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        Cidr::new(addr, len)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
