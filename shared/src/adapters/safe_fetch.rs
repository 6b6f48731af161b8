//! Fetching a page a lead's record points at, without letting that record (or the page's
//! redirects) turn research against the network it runs in: only http(s), only the standard
//! ports, only public addresses, checked on every redirect hop; and the connection goes to
//! the address that was checked, never to a second lookup's answer (no DNS rebinding).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Which addresses research may reach. Public ones always; a deployment may name exceptions
/// (an intranet site, a test server on loopback) as exact `ip:port` pairs, reached by address:
/// a host name must resolve to public addresses, whatever the exceptions.
#[derive(Clone, Debug, Default)]
pub struct FetchPolicy {
    exceptions: Vec<SocketAddr>,
}

/// Whether an address is on the public internet: not loopback, private, link-local (cloud
/// metadata lives there), shared, reserved, documentation, multicast or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let segments = v6.segments();
            let embedded = |high: u16, low: u16| Ipv4Addr::new((high >> 8) as u8, high as u8, (low >> 8) as u8, low as u8);
            // NAT64 (64:ff9b::/96) and SIIT (::ffff:0:0:0/96) reach the IPv4 address in their
            // last 32 bits, 6to4 (2002::/16) the one after its prefix.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || segments[..6] == [0, 0, 0, 0, 0xffff, 0] {
                return is_public_v4(embedded(segments[6], segments[7]));
            }
            if segments[0] == 0x2002 {
                return is_public_v4(embedded(segments[1], segments[2]));
            }
            // Local-use NAT64 (64:ff9b:1::/48) and Teredo (2001::/32) lead wherever their
            // operator routes them.
            if segments[..3] == [0x64, 0xff9b, 1] || (segments[0] == 0x2001 && segments[1] == 0) {
                return false;
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00 // unique local
                || (segments[0] & 0xffc0) == 0xfe80 // link-local
                || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
                || segments[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

impl FetchPolicy {
    /// Public addresses on the standard ports, nothing else.
    pub fn public_only() -> Self {
        Self::default()
    }

    /// Public addresses, and these exact `ip:port` pairs.
    pub fn with_exceptions(exceptions: Vec<SocketAddr>) -> Self {
        Self { exceptions }
    }

    fn excepted(&self, ip: IpAddr, port: Option<u16>) -> bool {
        port.is_some_and(|port| self.exceptions.contains(&SocketAddr::new(ip, port)))
    }

    /// Why `url` may not be fetched, if it may not. Host names are checked again when they are
    /// resolved, against the addresses the connection will use.
    pub fn refusal(&self, url: &Url) -> Option<String> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Some(format!("{url} is not an http(s) link"));
        }
        let port = url.port_or_known_default();
        let standard = url.port().is_none() || port == Some(if scheme == "https" { 443 } else { 80 });
        match url.host() {
            None => Some(format!("{url} names no host")),
            Some(url::Host::Ipv4(v4)) => self.address_refusal(url, IpAddr::V4(v4), port, standard),
            Some(url::Host::Ipv6(v6)) => self.address_refusal(url, IpAddr::V6(v6), port, standard),
            Some(url::Host::Domain(_)) => {
                (!standard).then(|| format!("{url} uses port {}; research reads only ports 80 and 443", port.unwrap_or(0)))
            }
        }
    }

    fn address_refusal(&self, url: &Url, ip: IpAddr, port: Option<u16>, standard: bool) -> Option<String> {
        if self.excepted(ip, port) {
            return None;
        }
        if !is_public(ip) {
            return Some(format!("{url} points at {ip}, which is not a public address"));
        }
        (!standard).then(|| format!("{url} uses port {}; research reads only ports 80 and 443", port.unwrap_or(0)))
    }
}

/// Resolves names for research's client and keeps only public addresses, so the connection
/// is made to an address that was checked.
struct CheckedResolver {
    resolver: TokioResolver,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.resolver.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found = resolver
                .lookup_ip(format!("{}.", host.trim_end_matches('.')))
                .await
                .map_err(|e| format!("{host} could not be resolved: {e}"))?;
            let admitted: Vec<SocketAddr> = found.iter().filter(|ip| is_public(*ip)).map(|ip| SocketAddr::new(ip, 0)).collect();
            if admitted.is_empty() {
                // Which internal addresses it named stays out of the note: the API shows notes.
                return Err(format!("{host} resolves only to addresses research may not reach").into());
            }
            Ok(Box::new(admitted.into_iter()) as Addrs)
        })
    }
}

/// An HTTP client that reaches only what `policy` admits, through `resolver`, with at most
/// `max_redirects` hops, each checked.
pub fn guarded_client(
    policy: Arc<FetchPolicy>,
    resolver: TokioResolver,
    timeout: Duration,
    max_redirects: usize,
) -> reqwest::Result<reqwest::Client> {
    let hops = policy.clone();
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > max_redirects {
            return attempt.error(format!("more than {max_redirects} redirects"));
        }
        // An exception holds for the site it names: a redirect may stay on it, but a page
        // elsewhere cannot send research into it.
        let first = attempt.previous().first();
        let same_site =
            first.is_some_and(|f| f.host() == attempt.url().host() && f.port_or_known_default() == attempt.url().port_or_known_default());
        let refusal = if same_site { hops.refusal(attempt.url()) } else { FetchPolicy::public_only().refusal(attempt.url()) };
        match refusal {
            Some(why) => attempt.error(format!("a redirect was refused: {why}")),
            None => attempt.follow(),
        }
    });
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(4)))
        .redirect(redirects)
        // A proxy would resolve the name itself, past the check.
        .no_proxy()
        .dns_resolver(Arc::new(CheckedResolver { resolver }))
        .user_agent(concat!("sales-agent-research/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::",
            "192.0.2.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_are_refused_for_their_scheme_port_or_address_unless_excepted() {
        let policy = FetchPolicy::with_exceptions(vec!["127.0.0.1:8080".parse().unwrap()]);
        let refused = |url: &str| policy.refusal(&Url::parse(url).unwrap());
        assert!(refused("https://acme.example/").is_none());
        assert!(refused("http://acme.example:80/").is_none());
        assert!(refused("http://127.0.0.1:8080/x").is_none(), "the named exception");
        assert!(refused("http://127.0.0.1:8081/").unwrap().contains("not a public address"));
        assert!(refused("http://[::1]/").unwrap().contains("not a public address"));
        assert!(refused("http://169.254.169.254/latest/meta-data/").unwrap().contains("not a public address"));
        assert!(refused("https://acme.example:8443/").unwrap().contains("port 8443"));
        assert!(refused("ftp://acme.example/").unwrap().contains("not an http(s) link"));
        assert!(refused("file:///etc/passwd").is_some());
    }
}
