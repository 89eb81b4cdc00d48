//! PEM in and out. Parsing uses `rustls-pki-types`; encoding is the few lines of RFC 7468 below
//! (pki-types does not encode).

use std::path::Path;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::{PemObject, SectionKind};

use super::CaError;

/// `der` as a PEM block with `label` (`CERTIFICATE`, `PRIVATE KEY`), 64 columns, trailing newline.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = Vec::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]);
            } else {
                b64.push(b'=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A certificate as PEM.
pub(crate) fn cert(der: &[u8]) -> String {
    encode("CERTIFICATE", der)
}

/// Every `CERTIFICATE` block of `path` (other blocks are refused: a key in a certificate file is
/// a mistake worth reporting). At least one is required.
pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CaError> {
    let bytes = read(path)?;
    let mut certs = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(&bytes) {
        match section {
            Ok((SectionKind::Certificate, der)) => certs.push(CertificateDer::from(der)),
            Ok((kind, _)) => {
                return Err(CaError::invalid(
                    path,
                    format!("holds a {kind:?} PEM block where only CERTIFICATE blocks belong"),
                ));
            }
            Err(e) => return Err(CaError::invalid(path, format!("not valid PEM: {e}"))),
        }
    }
    if certs.is_empty() {
        return Err(CaError::invalid(path, "holds no CERTIFICATE PEM block"));
    }
    Ok(certs)
}

/// The file's bytes, or an error naming it.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, CaError> {
    std::fs::read(path).map_err(|source| CaError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_what_pki_types_decodes() {
        for len in [0usize, 1, 2, 3, 47, 48, 49, 100, 1000] {
            let der: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let pem = cert(&der);
            if len == 0 {
                continue;
            }
            let back = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
            assert_eq!(back.as_ref(), der.as_slice(), "len {len}");
            assert!(pem.lines().all(|l| l.len() <= 64));
        }
    }
}
