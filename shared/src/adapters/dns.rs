//! Mail-domain checks over DNS (hickory): the system's resolver deployed and locally, or given
//! name servers (the tests' own, on loopback). Answers are cached per process for a day, so a
//! domain is looked up once however many leads it has; a failed lookup is not cached.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::{ProtoError, ProtoErrorKind};
use hickory_resolver::{ResolveError, TokioResolver};
use tokio::sync::Mutex;

use crate::ports::mail_domains::{DomainVerdict, MailDomains, SendingDomainRecords};

const VERDICT_LIFETIME: Duration = Duration::from_secs(24 * 3600);

pub struct DnsMailDomains {
    resolver: TokioResolver,
    verdicts: Mutex<HashMap<String, (Instant, DomainVerdict)>>,
}

/// What a failed lookup says about the name.
enum Missing {
    /// NXDOMAIN: the name does not exist.
    Name,
    /// The name exists, without records of the type asked for.
    Records,
}

fn missing(error: &ResolveError) -> Option<Missing> {
    let proto: &ProtoError = error.proto()?;
    match proto.kind() {
        ProtoErrorKind::NoRecordsFound { response_code: ResponseCode::NXDomain, .. } => Some(Missing::Name),
        ProtoErrorKind::NoRecordsFound { response_code: ResponseCode::NoError, .. } => Some(Missing::Records),
        _ => None,
    }
}

/// The system's resolver (`/etc/resolv.conf`).
pub fn system_resolver() -> anyhow::Result<TokioResolver> {
    let mut builder = TokioResolver::builder_tokio()?;
    *builder.options_mut() = options();
    Ok(builder.build())
}

/// A resolver that asks these name servers only, over UDP and TCP.
pub fn resolver_for(servers: &[SocketAddr]) -> TokioResolver {
    let mut group = NameServerConfigGroup::new();
    for server in servers {
        group.merge(NameServerConfigGroup::from_ips_clear(&[server.ip()], server.port(), true));
    }
    let config = ResolverConfig::from_parts(None, vec![], group);
    TokioResolver::builder_with_config(config, TokioConnectionProvider::default()).with_options(options()).build()
}

impl DnsMailDomains {
    /// The system's resolver (`/etc/resolv.conf`).
    pub fn system() -> anyhow::Result<Self> {
        Ok(Self::with(system_resolver()?))
    }

    /// These name servers only.
    pub fn servers(servers: &[SocketAddr]) -> Self {
        Self::with(resolver_for(servers))
    }

    fn with(resolver: TokioResolver) -> Self {
        Self { resolver, verdicts: Mutex::new(HashMap::new()) }
    }

    async fn look_up(&self, domain: &str) -> Result<DomainVerdict, String> {
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        match self.resolver.mx_lookup(fqdn.as_str()).await {
            Ok(mx) => {
                let exchanges: Vec<String> = mx.iter().map(|r| r.exchange().to_ascii()).collect();
                if !exchanges.is_empty() && exchanges.iter().all(|e| e == ".") {
                    return Ok(DomainVerdict::Undeliverable(format!("{domain} publishes a null MX (RFC 7505): it accepts no mail")));
                }
                Ok(DomainVerdict::Accepts)
            }
            Err(error) => match missing(&error) {
                Some(Missing::Name) => Ok(DomainVerdict::Undeliverable(format!("{domain} does not exist (NXDOMAIN)"))),
                // No MX: RFC 5321 falls back to the domain's own address.
                Some(Missing::Records) => match self.resolver.lookup_ip(fqdn.as_str()).await {
                    Ok(addresses) if addresses.iter().next().is_some() => Ok(DomainVerdict::Accepts),
                    Ok(_) => Ok(DomainVerdict::Undeliverable(format!("{domain} has no MX and no address records"))),
                    Err(error) if missing(&error).is_some() => {
                        Ok(DomainVerdict::Undeliverable(format!("{domain} has no MX and no address records")))
                    }
                    Err(error) => Err(format!("the address records of {domain} could not be looked up: {error}")),
                },
                None => Err(format!("the MX records of {domain} could not be looked up: {error}")),
            },
        }
    }

    async fn texts(&self, name: &str) -> Result<Vec<String>, String> {
        match self.resolver.txt_lookup(format!("{name}.")).await {
            Ok(records) => Ok(records.iter().map(|txt| txt.iter().map(|part| String::from_utf8_lossy(part)).collect::<String>()).collect()),
            Err(error) if missing(&error).is_some() => Ok(Vec::new()),
            Err(error) => Err(format!("the TXT records of {name} could not be looked up: {error}")),
        }
    }
}

fn options() -> ResolverOpts {
    let mut options = ResolverOpts::default();
    options.timeout = Duration::from_secs(3);
    options.attempts = 2;
    options
}

#[async_trait]
impl MailDomains for DnsMailDomains {
    async fn verdict(&self, domain: &str) -> Result<DomainVerdict, String> {
        let domain = domain.trim().to_ascii_lowercase();
        if let Some((at, verdict)) = self.verdicts.lock().await.get(&domain)
            && at.elapsed() < VERDICT_LIFETIME
        {
            return Ok(verdict.clone());
        }
        let verdict = self.look_up(&domain).await?;
        self.verdicts.lock().await.insert(domain, (Instant::now(), verdict.clone()));
        Ok(verdict)
    }

    async fn sending_records(&self, domain: &str) -> Result<SendingDomainRecords, String> {
        let domain = domain.trim().to_ascii_lowercase();
        let spf: Vec<String> = self.texts(&domain).await?.into_iter().filter(|t| t.to_ascii_lowercase().starts_with("v=spf1")).collect();
        let dmarc: Vec<String> =
            self.texts(&format!("_dmarc.{domain}")).await?.into_iter().filter(|t| t.to_ascii_lowercase().starts_with("v=dmarc1")).collect();
        let mut problems = Vec::new();
        match spf.len() {
            0 => problems.push(format!("{domain} publishes no SPF record: receivers cannot tell its mail servers from forgers")),
            1 => {}
            n => problems.push(format!("{domain} publishes {n} SPF records; receivers treat that as a permanent error (RFC 7208)")),
        }
        if dmarc.is_empty() {
            problems.push(format!("{domain} publishes no DMARC record: Gmail and Yahoo require one from bulk senders"));
        }
        Ok(SendingDomainRecords { domain, spf: spf.into_iter().next(), dmarc: dmarc.into_iter().next(), problems })
    }
}
