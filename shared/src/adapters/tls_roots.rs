//! The certificate authorities a mail server's certificate is checked against: the system's,
//! the public ones when the system has none (a minimal container), and a mailbox's own CA when
//! its server uses a private one.

use anyhow::Context;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

/// The trusted roots for a server whose settings may add `extra_pem`; `owner` names the
/// settings in an error.
pub fn trusted_roots(extra_pem: Option<&str>, owner: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let mut roots: Vec<CertificateDer<'static>> = rustls_native_certs::load_native_certs().certs;
    if roots.is_empty() {
        roots.extend(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
    }
    if let Some(pem) = extra_pem {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.push(cert.with_context(|| format!("the ca_pem of {owner} is not PEM"))?);
        }
    }
    Ok(roots)
}
