//! Mail-domain checks against an authoritative DNS server on loopback (`.ci/dns-server.py`): a
//! lead whose domain cannot receive mail is skipped before any research or draft, a lookup that
//! fails proves nothing, and each sending domain's SPF and DMARC show with its mailbox.

use sales_agent::adapters::dns::DnsMailDomains;
use sales_agent::adapters::imap_inbox::parse_mailboxes;
use sales_agent::config::DnsChecks;
use sales_agent::ports::{DomainVerdict, MailDomains};
use sales_agent_tests::{TestApp, agent_spec};
use serde_json::json;

fn dns_server() -> std::net::SocketAddr {
    std::env::var("SALES_AGENT_TEST_DNS")
        .expect("SALES_AGENT_TEST_DNS is not set: run the tests through `bash .ci/test`, which starts the DNS server")
        .parse()
        .expect("ip:port")
}

#[tokio::test]
async fn leads_at_domains_that_cannot_receive_mail_are_skipped_as_undeliverable_before_research() {
    let app = TestApp::configured(|settings| settings.dns = Some(DnsChecks::Servers(vec![dns_server()])));
    let agent_id = app.create_agent(&agent_spec()).await;
    let csv = "email,first_name,company\n\
        ada@accepts.example,Ada,Accepts\n\
        bob@a-only.example,Bob,A Only\n\
        cy@null-mx.example,Cy,Null MX\n\
        di@nxdomain.example,Di,Gone\n\
        ed@no-mail.example,Ed,No Mail\n\
        fay@servfail.example,Fay,Flaky DNS\n";
    let execution_id = app.start_csv(&agent_id, csv).await;
    app.drain().await;

    let mut states: Vec<(String, String, String)> = app
        .leads(&execution_id)
        .await
        .iter()
        .map(|l| {
            let domain = l["contact"]["email"].as_str().unwrap().split('@').nth(1).unwrap().to_string();
            (domain, l["state"].as_str().unwrap().to_string(), l["reason"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    states.sort();
    let expected: Vec<(String, String, String)> = [
        ("a-only.example", "sent", ""), // no MX: its address is the implicit MX (RFC 5321)
        ("accepts.example", "sent", ""),
        ("no-mail.example", "skipped", "undeliverable"),
        ("null-mx.example", "skipped", "undeliverable"), // RFC 7505
        ("nxdomain.example", "skipped", "undeliverable"),
        ("servfail.example", "sent", ""), // a failed lookup proves nothing
    ]
    .into_iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(states, expected);
    assert_eq!(app.emails().len(), 3);
    let logs = app.get(&format!("/api/v1/executions/{execution_id}/logs")).await.body;
    let reasons: Vec<&str> = logs["items"].as_array().unwrap().iter().filter_map(|e| e["message"].as_str()).collect();
    assert!(reasons.iter().any(|m| m.contains("cy@null-mx.example") && m.contains("null MX")), "{reasons:?}");
    assert!(reasons.iter().any(|m| m.contains("di@nxdomain.example") && m.contains("does not exist")), "{reasons:?}");
}

#[tokio::test]
async fn verdicts_are_cached_and_sending_domains_show_their_spf_and_dmarc() {
    let domains = DnsMailDomains::servers(&[dns_server()]);
    assert_eq!(domains.verdict("Accepts.Example").await, Ok(DomainVerdict::Accepts));
    assert!(matches!(domains.verdict("null-mx.example").await, Ok(DomainVerdict::Undeliverable(_))));
    assert!(domains.verdict("servfail.example").await.is_err());

    let northwind = domains.sending_records("northwind.example").await.unwrap();
    assert_eq!(northwind.spf.as_deref(), Some("v=spf1 include:_spf.google.com ~all"));
    assert!(northwind.dmarc.as_deref().unwrap().starts_with("v=DMARC1; p=quarantine"));
    assert!(northwind.problems.is_empty(), "{:?}", northwind.problems);
    let no_dmarc = domains.sending_records("nodmarc.example").await.unwrap();
    assert!(no_dmarc.problems.iter().any(|p| p.contains("no DMARC")), "{:?}", no_dmarc.problems);
    let two_spf = domains.sending_records("twospf.example").await.unwrap();
    assert!(two_spf.problems.iter().any(|p| p.contains("2 SPF records")), "{:?}", two_spf.problems);
    let nothing = domains.sending_records("a-only.example").await.unwrap();
    assert_eq!(nothing.problems.len(), 2, "neither SPF nor DMARC: {:?}", nothing.problems);

    // The health view shows them for each sending mailbox.
    let mailboxes = json!([{"host": "127.0.0.1", "port": 1, "username": "u", "password": "p", "address": "dana@northwind.example",
                            "smtp": {"host": "127.0.0.1", "port": 1, "security": "plain"}}]);
    let app = TestApp::configured(|settings| {
        settings.dns = Some(DnsChecks::Servers(vec![dns_server()]));
        settings.mailboxes = parse_mailboxes(&mailboxes.to_string()).unwrap();
    });
    let health = app.get("/api/v1/mailboxes").await.body;
    let dns = &health["sending"][0]["dns"];
    assert_eq!(dns["domain"], "northwind.example", "{health}");
    assert_eq!(dns["spf"], "v=spf1 include:_spf.google.com ~all");
    assert_eq!(dns["problems"], json!([]));
}
