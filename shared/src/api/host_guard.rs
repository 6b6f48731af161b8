//! DNS rebinding: a web page can point its own domain at 127.0.0.1 and then call a local server
//! from the browser as if it were same-origin. A local server that asks for no API key only
//! answers requests addressed to a loopback name.

use axum::extract::{Request, State};
use axum::http::header::HOST;
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::problem::Problem;

/// Whether `host` (a `Host` header, with or without a port) names the loopback interface.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, port)| if port.chars().all(|c| c.is_ascii_digit()) { name } else { host }),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub async fn loopback_hosts_only(State(app): State<AppState>, request: Request, next: Next) -> Result<Response, Problem> {
    if !app.services.loopback_hosts_only {
        return Ok(next.run(request).await);
    }
    let host = request.headers().get(HOST).and_then(|v| v.to_str().ok()).or_else(|| request.uri().host());
    match host {
        Some(host) if is_loopback_host(host) => Ok(next.run(request).await),
        // A request built in-process (tests, the demo) has no Host at all.
        None => Ok(next.run(request).await),
        Some(_) => Err(Problem::misdirected(
            "this local server answers only requests to localhost or 127.0.0.1; set SALES_AGENT_AUTH=required to serve other names",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn only_loopback_names_pass() {
        for host in ["localhost", "localhost:3000", "127.0.0.1:3000", "127.1.2.3", "[::1]:3000", "app.localhost:80", "LOCALHOST."] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["attacker.example", "attacker.example:3000", "192.168.1.5:3000", "localhost.attacker.example", "[::2]:3000", "0.0.0.0"]
        {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
