//! Sending from the team's own mailboxes, against a real submission server on loopback (STARTTLS,
//! AUTH PLAIN and XOAUTH2) and an OAuth2 token endpoint served by wiremock: rotation, threading,
//! caps, gaps and windows under a manual clock, and what each SMTP answer does to the lead.

use chrono::Duration;
use sales_agent::adapters::imap_inbox::parse_mailboxes;
use sales_agent_tests::imap::TestMailbox;
use sales_agent_tests::smtp::TestSmtp;
use sales_agent_tests::{TestApp, agent_spec};
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A domain of this test's own, so tests sharing the server read back only their messages.
fn test_domain() -> String {
    format!("t{}.example", uuid::Uuid::new_v4().simple())
}

fn app_with_mailboxes(mailboxes: Vec<Value>) -> TestApp {
    let json = Value::Array(mailboxes).to_string();
    TestApp::configured(move |settings| {
        settings.mailboxes = parse_mailboxes(&json).expect("valid mailboxes");
        // These tests are about sending. A mailbox that logs in with OAuth2 cannot be read here
        // (the test Dovecot offers no XOAUTH2), which would rightly hold every follow-up: the
        // rule is switched off (the hold itself is tested in `imap_replies`).
        settings.reply_freshness = std::time::Duration::ZERO;
    })
}

fn agent_sending_from(mailboxes: &[&str], sending: Value) -> Value {
    let mut spec = agent_spec();
    spec["sending"] = sending;
    spec["sending"]["mailboxes"] = json!(mailboxes);
    spec
}

fn leads_csv(domain: &str, locals: &[&str]) -> String {
    let mut csv = "email,first_name,company,time_zone\n".to_string();
    for local in locals {
        let (local, zone) = local.split_once('|').unwrap_or((local, ""));
        csv.push_str(&format!("{local}@{domain},Ada,Initech,{zone}\n"));
    }
    csv
}

async fn token_endpoint(token: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=test-refresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": token, "expires_in": 3600, "token_type": "Bearer"})))
        .mount(&server)
        .await;
    server
}

fn oauth2(server: &MockServer) -> Value {
    json!({"provider": "other", "token_url": format!("{}/token", server.uri()), "client_id": "test-client",
           "client_secret": "test-client-secret", "refresh_token": "test-refresh"})
}

async fn by_state(app: &TestApp, execution_id: &str) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for lead in app.leads(execution_id).await {
        *counts.entry(lead["state"].as_str().unwrap().to_string()).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn a_campaign_through_two_mailboxes_arrives_once_per_lead_and_step_rotated_and_threaded() {
    let smtp = TestSmtp::from_env();
    let tokens = token_endpoint("test-access-rotation").await;
    let (dana, eli) = ("dana@northwind.example", "eli@northwind.example");
    // A 30 s gap: each mailbox sends at most once per gap, whatever the workers do at once.
    let app = app_with_mailboxes(vec![
        smtp.mailbox(dana, &TestMailbox::user(10), json!({"display_name": "Dana Reyes", "min_gap_seconds": 30})),
        smtp.mailbox(
            eli,
            &TestMailbox::user(11),
            json!({"display_name": "Eli Park", "password": null, "oauth2": oauth2(&tokens), "min_gap_seconds": 30}),
        ),
    ]);
    let agent_id = app.create_agent(&agent_sending_from(&[dana, eli], json!({}))).await;
    let domain = test_domain();
    let execution_id = app.start_csv(&agent_id, &leads_csv(&domain, &["a", "b", "c", "d", "e", "f"])).await;
    app.drain().await;
    let sent_within = |limit: usize| {
        let app = &app;
        let smtp = &smtp;
        let domain = domain.clone();
        async move {
            for _ in 0..300 {
                if smtp.accepted_for(&domain).len() >= limit {
                    return;
                }
                app.clock.advance(Duration::minutes(1));
                app.run_scheduled().await;
            }
            panic!("{limit} emails were not sent");
        }
    };
    sent_within(6).await;

    let first = smtp.accepted_for(&domain);
    assert_eq!(first.len(), 6, "one first email per lead");
    let from_dana = first.iter().filter(|m| m.mail_from == dana).count();
    assert_eq!((from_dana, first.len() - from_dana), (3, 3), "the mailbox with most room left sends next");
    for message in &first {
        let expected_user = if message.mail_from == dana { dana.to_string() } else { format!("{eli} (oauth2 test-access-rotation)") };
        assert_eq!(message.auth_user, expected_user, "each mailbox signs in as itself");
        let name = if message.mail_from == dana { "Dana Reyes" } else { "Eli Park" };
        assert_eq!(message.header("From").unwrap(), format!("\"{name}\" <{}>", message.mail_from));
    }

    app.clock.advance(Duration::days(3));
    app.run_scheduled().await;
    sent_within(12).await;
    let all = smtp.accepted_for(&domain);
    assert_eq!(all.len(), 12, "one follow-up per lead");
    for lead in app.leads(&execution_id).await {
        let to = lead["contact"]["email"].as_str().unwrap();
        let to_lead: Vec<_> = all.iter().filter(|m| m.rcpt_tos == [to.to_string()]).collect();
        assert_eq!(to_lead.len(), 2, "step 0 and step 1 once each for {to}");
        let (opening, follow_up) = (to_lead[0], to_lead[1]);
        assert_eq!(follow_up.mail_from, opening.mail_from, "the follow-up leaves from the mailbox that started the thread");
        let opening_id = opening.header("Message-ID").unwrap();
        assert_eq!(follow_up.header("In-Reply-To"), Some(opening_id), "threaded on the first email");
        assert!(follow_up.header("Subject").unwrap().starts_with("Re: "));
        assert_eq!(lead["sent_messages"][1]["mailbox"], opening.mail_from);
    }

    let mailboxes = app.get("/api/v1/mailboxes").await;
    let sending = mailboxes.body["sending"].as_array().unwrap();
    assert_eq!(sending.len(), 2, "{}", mailboxes.body);
    assert!(sending.iter().all(|m| m["daily_cap"] == 50 && m["last_sent_at"].is_string()), "{}", mailboxes.body);
}

#[tokio::test]
async fn a_cap_of_three_sends_three_today_and_the_rest_when_the_next_window_opens() {
    let smtp = TestSmtp::from_env();
    let dana = "dana.cap@northwind.example";
    let app = app_with_mailboxes(vec![smtp.mailbox(dana, &TestMailbox::user(12), json!({"daily_cap": 3}))]);
    // Monday 2 March 2026, 09:00 UTC: inside a 09:00–17:00 working-day window.
    let window = json!({"window": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}, "time_zone": "UTC"});
    let agent_id = app.create_agent(&agent_sending_from(&[dana], window)).await;
    let domain = test_domain();
    let execution_id = app.start_csv(&agent_id, &leads_csv(&domain, &["a", "b", "c", "d", "e"])).await;
    app.drain().await;

    assert_eq!(smtp.accepted_for(&domain).len(), 3, "the cap holds");
    assert_eq!(by_state(&app, &execution_id).await, [("sent".to_string(), 3), ("waiting".to_string(), 2)].into());
    let waiting: Vec<Value> = app.leads(&execution_id).await.into_iter().filter(|l| l["state"] == "waiting").collect();
    assert_eq!(waiting[0]["until"], "2026-03-03T00:00:00Z", "{}", waiting[0]);
    assert!(waiting[0]["why"].as_str().unwrap().contains("daily cap"), "{}", waiting[0]);
    let health = app.get("/api/v1/mailboxes").await.body;
    assert_eq!((health["sending"][0]["sent_today"].as_u64(), health["sending"][0]["room_left"].as_u64()), (Some(3), Some(0)));
    let listed = app.get(&format!("/api/v1/executions/{execution_id}/leads?state=waiting")).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2, "waiting leads can be listed: {}", listed.body);

    // Midnight: the cap is free again but the window is closed until 09:00.
    app.clock.advance(Duration::hours(15));
    app.run_scheduled().await;
    assert_eq!(smtp.accepted_for(&domain).len(), 3);
    let waiting = app.leads(&execution_id).await.into_iter().find(|l| l["state"] == "waiting").unwrap();
    assert_eq!(waiting["until"], "2026-03-03T09:00:00Z", "{waiting}");
    assert!(waiting["why"].as_str().unwrap().contains("send window"), "{waiting}");

    app.clock.advance(Duration::hours(9));
    app.run_scheduled().await;
    assert_eq!(smtp.accepted_for(&domain).len(), 5, "the rest go out when the window opens");
    assert_eq!(by_state(&app, &execution_id).await, [("sent".to_string(), 5)].into());
}

#[tokio::test]
async fn a_mailboxs_gap_spaces_its_sends_and_the_window_is_the_leads_own() {
    let smtp = TestSmtp::from_env();
    let dana = "dana.gap@northwind.example";
    let app = app_with_mailboxes(vec![smtp.mailbox(dana, &TestMailbox::user(13), json!({"min_gap_seconds": 120}))]);
    let window = json!({"window": {"start": "09:00", "end": "17:00"}, "time_zone": "Europe/London"});
    let agent_id = app.create_agent(&agent_sending_from(&[dana], window)).await;
    let domain = test_domain();
    // 09:00 UTC on Monday is 18:00 in Tokyo: that lead waits for Tokyo's Tuesday morning.
    let execution_id = app.start_csv(&agent_id, &leads_csv(&domain, &["a", "b", "tokyo|Asia/Tokyo"])).await;
    app.drain().await;

    assert_eq!(smtp.accepted_for(&domain).len(), 1, "one send, then the gap");
    let leads = app.leads(&execution_id).await;
    let tokyo = leads.iter().find(|l| l["contact"]["email"].as_str().unwrap().starts_with("tokyo")).unwrap();
    assert_eq!(tokyo["until"], "2026-03-03T00:00:00Z", "09:00 in Tokyo: {tokyo}");
    let gapped = leads.iter().find(|l| l["state"] == "waiting" && l["until"] != tokyo["until"]).unwrap();
    let until: chrono::DateTime<chrono::Utc> = gapped["until"].as_str().unwrap().parse().unwrap();
    let gap_ends: chrono::DateTime<chrono::Utc> = "2026-03-02T09:02:00Z".parse().unwrap();
    // Spread over the time the mailbox's other 48 sends of the day take, so waiting leads do not
    // all wake when one gap ends.
    assert!(until >= gap_ends && until <= gap_ends + Duration::seconds(48 * 120), "{gapped}");
    assert!(gapped["why"].as_str().unwrap().contains("gap"), "{gapped}");

    app.clock.set(until - Duration::seconds(1));
    app.run_scheduled().await;
    assert_eq!(smtp.accepted_for(&domain).len(), 1, "not a second early");
    app.clock.set(until);
    app.run_scheduled().await;
    assert_eq!(smtp.accepted_for(&domain).len(), 2);
    app.clock.set("2026-03-03T00:00:00Z".parse().unwrap());
    app.run_scheduled().await;
    assert_eq!(smtp.accepted_for(&domain).len(), 3, "the Tokyo lead goes out in its morning");
}

#[tokio::test]
async fn each_smtp_answer_decides_the_lead_and_nothing_is_sent_twice() {
    let smtp = TestSmtp::from_env();
    let dana = "dana.answers@northwind.example";
    let app = app_with_mailboxes(vec![smtp.mailbox(dana, &TestMailbox::user(14), json!({}))]);
    let agent_id = app.create_agent(&agent_sending_from(&[dana], json!({}))).await;
    let domain = test_domain();
    let execution_id =
        app.start_csv(&agent_id, &leads_csv(&domain, &["fine", "rcpt-busy", "rcpt-unknown", "data-drop", "data-busy"])).await;
    app.drain().await;

    let states: std::collections::BTreeMap<String, String> = app
        .leads(&execution_id)
        .await
        .iter()
        .map(|l| (l["contact"]["email"].as_str().unwrap().split('@').next().unwrap().to_string(), l["state"].as_str().unwrap().to_string()))
        .collect();
    let expected: std::collections::BTreeMap<String, String> = [
        ("fine", "sent"),
        ("rcpt-busy", "waiting"),   // 450 before the data: nothing left, try later
        ("rcpt-unknown", "failed"), // 550 before the data: nothing left, never will
        ("data-drop", "parked"),    // the connection closed after the data: unknown
        ("data-busy", "parked"),    // a 451 after the data: unknown
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(states, expected);
    assert_eq!(smtp.accepted_for(&domain).len(), 1);
    let health = app.get("/api/v1/mailboxes").await.body;
    assert_eq!(health["sending"][0]["sent_today"], 3, "the sent and the two parked count; refused and deferred gave theirs back: {health}");
    let last_error = health["sending"][0]["last_error"]["error"].as_str().expect("the last refusal shows");
    assert!(["450", "550", "451", "after it was sent"].iter().any(|code| last_error.contains(code)), "{last_error}");

    // Deliveries again, the sweep, time passing: the parked leads are never sent on a guess.
    app.clock.advance(Duration::hours(1));
    app.run_scheduled().await;
    assert_eq!(smtp.accepted_for(&domain).len(), 1);
    let busy =
        app.leads(&execution_id).await.into_iter().find(|l| l["contact"]["email"].as_str().unwrap().starts_with("rcpt-busy")).unwrap();
    assert_eq!((busy["state"].as_str(), busy["send_retries"].as_u64()), (Some("waiting"), Some(2)), "{busy}");
}

#[tokio::test]
async fn refused_credentials_pause_the_execution_with_the_reason_and_send_nothing() {
    let smtp = TestSmtp::from_env();
    let revoked = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})),
        )
        .mount(&revoked)
        .await;
    for (address, user, extra) in [
        ("dana.password@northwind.example", 15, json!({"password": "not-the-password"})),
        ("dana.oauth@northwind.example", 16, json!({"password": null, "oauth2": oauth2(&revoked)})),
        // The server's certificate is signed by a CA this mailbox does not trust.
        ("dana.tls@northwind.example", 17, json!({"ca_pem": null})),
    ] {
        let app = app_with_mailboxes(vec![smtp.mailbox(address, &TestMailbox::user(user), extra)]);
        let agent_id = app.create_agent(&agent_sending_from(&[address], json!({}))).await;
        let domain = test_domain();
        let execution_id = app.start_csv(&agent_id, &leads_csv(&domain, &["a", "b"])).await;
        app.drain().await;

        let execution = app.execution(&execution_id).await;
        assert_eq!(execution["state"], "paused", "{execution}");
        let reason = execution["pause_reason"].as_str().unwrap();
        let expected = match user {
            15 => "refused the sign-in",
            16 => "invalid_grant",
            _ => "failed",
        };
        assert!(reason.contains(expected), "{reason}");
        assert!(smtp.accepted_for(&domain).is_empty());
        assert!(app.leads(&execution_id).await.iter().all(|l| l["state"] == "drafted"), "no lead failed: they wait for the resume");
    }
}

#[tokio::test]
async fn a_token_the_server_refuses_is_replaced_once_and_the_email_goes_out() {
    let smtp = TestSmtp::from_env();
    let tokens = MockServer::start().await;
    // The first token was revoked on the provider's side before it expired.
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "revoked-token", "expires_in": 3600})))
        .up_to_n_times(1)
        .mount(&tokens)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "test-access-fresh", "expires_in": 3600})))
        .mount(&tokens)
        .await;
    let eli = "eli.fresh@northwind.example";
    let app = app_with_mailboxes(vec![smtp.mailbox(eli, &TestMailbox::user(18), json!({"password": null, "oauth2": oauth2(&tokens)}))]);
    let agent_id = app.create_agent(&agent_sending_from(&[eli], json!({}))).await;
    let domain = test_domain();
    let execution_id = app.start_csv(&agent_id, &leads_csv(&domain, &["a"])).await;
    app.drain().await;

    assert_eq!(by_state(&app, &execution_id).await, [("sent".to_string(), 1)].into());
    let accepted = smtp.accepted_for(&domain);
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].auth_user, format!("{eli} (oauth2 test-access-fresh)"));
    assert_eq!(tokens.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn an_agent_whose_sender_is_a_configured_mailbox_keeps_that_mailboxs_cap() {
    let smtp = TestSmtp::from_env();
    let dana = "dana.sender@northwind.example";
    let app = app_with_mailboxes(vec![smtp.mailbox(dana, &TestMailbox::user(19), json!({"daily_cap": 1}))]);
    // No pool: the agent sends as its sender, which is the configured mailbox.
    let mut spec = agent_spec();
    spec["sender"]["email"] = json!(dana);
    let agent_id = app.create_agent(&spec).await;
    let domain = test_domain();
    let execution_id = app.start_csv(&agent_id, &leads_csv(&domain, &["a", "b"])).await;
    app.drain().await;

    assert_eq!(smtp.accepted_for(&domain).len(), 1, "the mailbox's cap holds whichever way the agent names it");
    assert_eq!(by_state(&app, &execution_id).await, [("sent".to_string(), 1), ("waiting".to_string(), 1)].into());
}

#[tokio::test]
async fn an_access_token_is_fetched_once_while_valid_and_again_after_a_refusal_or_near_its_end() {
    use sales_agent::adapters::mailbox_settings::{OAuth2Provider, OAuth2Settings};
    use sales_agent::adapters::oauth2::OAuth2Tokens;
    use secrecy::ExposeSecret;
    let endpoint = token_endpoint("test-access-cached").await;
    let settings = OAuth2Settings {
        provider: OAuth2Provider::Other,
        token_url: Some(format!("{}/token", endpoint.uri())),
        tenant: None,
        client_id: "test-client".into(),
        client_secret: Some("test-client-secret".to_string().into()),
        refresh_token: "test-refresh".to_string().into(),
        scope: None,
    };
    let tokens = OAuth2Tokens::new(settings.clone()).unwrap();
    for _ in 0..3 {
        assert_eq!(tokens.access_token().await.unwrap().expose_secret(), "test-access-cached");
    }
    assert_eq!(endpoint.received_requests().await.unwrap().len(), 1, "cached while valid");
    tokens.forget().await;
    tokens.access_token().await.unwrap();
    assert_eq!(endpoint.received_requests().await.unwrap().len(), 2, "fetched again after a server refused it");

    // A token with less than five minutes to live is refreshed before use.
    let short = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "test-access-short", "expires_in": 120})))
        .mount(&short)
        .await;
    let tokens = OAuth2Tokens::new(OAuth2Settings { token_url: Some(format!("{}/token", short.uri())), ..settings }).unwrap();
    tokens.access_token().await.unwrap();
    tokens.access_token().await.unwrap();
    assert_eq!(short.received_requests().await.unwrap().len(), 2);
}

/// A hard-bounce event for the email `message_id` to `recipient`, in the envelope the feedback
/// queue delivers.
fn ses_hard_bounce(message_id: &str, recipient: &str) -> String {
    let event = json!({"eventType": "Bounce",
        "mail": {"timestamp": "2026-03-02T09:00:00.000Z", "source": "x@northwind.example", "messageId": message_id, "destination": [recipient]},
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": recipient, "status": "5.1.1",
                   "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]}});
    json!({"Type": "Notification", "MessageId": uuid::Uuid::new_v4().to_string(), "Message": event.to_string()}).to_string()
}

#[tokio::test]
async fn a_mailbox_pauses_by_itself_at_the_bounce_limit_for_every_agent_until_a_person_resumes_it() {
    let smtp = TestSmtp::from_env();
    let dana = "dana.health@northwind.example";
    let app = app_with_mailboxes(vec![smtp.mailbox(dana, &TestMailbox::user(21), json!({"daily_cap": 100}))]);
    let first_agent = app.create_agent(&agent_sending_from(&[dana], json!({}))).await;
    let domain = test_domain();
    let locals: Vec<String> = (0..20).map(|i| format!("lead{i}")).collect();
    let first = app.start_csv(&first_agent, &leads_csv(&domain, &locals.iter().map(String::as_str).collect::<Vec<_>>())).await;
    app.drain().await;
    assert_eq!(smtp.accepted_for(&domain).len(), 20);

    // One hard bounce in 20 sends: 5 %, the default limit, reached after the minimum sample.
    let feedback = app.runtime.feedback_consumer();
    let bounced = app.leads(&first).await.into_iter().find(|l| l["contact"]["email"] == format!("lead0@{domain}")).unwrap();
    let message_id = bounced["sent_messages"][0]["message_id"].as_str().unwrap().to_string();
    feedback.handle(&ses_hard_bounce(&message_id, &format!("lead0@{domain}"))).await.unwrap();
    let health = app.get("/api/v1/mailboxes").await.body;
    let record = &health["sending"][0]["since_resume"];
    assert_eq!((record["sent"].as_u64(), record["hard_bounced"].as_u64()), (Some(20), Some(1)), "{health}");
    let reason = record["paused"]["reason"].as_str().expect("the mailbox paused");
    assert!(reason.contains(dana) && reason.contains("hard bounces reached 5.0 % of 20"), "{reason}");
    assert_eq!(app.execution(&first).await["state"], "paused", "the execution judged on its own sends too");

    // Another agent sending from the same mailbox sends nothing: its execution pauses, saying why.
    let second_agent = app.create_agent(&agent_sending_from(&[dana], json!({}))).await;
    let other_domain = test_domain();
    let second = app.start_csv(&second_agent, &leads_csv(&other_domain, &["x", "y"])).await;
    app.drain().await;
    let execution = app.execution(&second).await;
    assert_eq!(execution["state"], "paused", "{execution}");
    assert!(execution["pause_reason"].as_str().unwrap().contains("paused by itself"), "{execution}");
    assert!(smtp.accepted_for(&other_domain).is_empty());

    let resumed = app.post_empty(&format!("/api/v1/mailboxes/{dana}/resume")).await;
    assert_eq!(resumed.status, axum::http::StatusCode::OK, "{}", resumed.body);
    assert!(resumed.body["since_resume"]["paused"].is_null() && resumed.body["since_resume"]["sent"] == 0, "{}", resumed.body);
    assert_eq!(app.post_empty("/api/v1/mailboxes/nobody@northwind.example/resume").await.status, axum::http::StatusCode::NOT_FOUND);
    app.post_empty(&format!("/api/v1/executions/{second}/resume")).await;
    app.drain().await;
    assert_eq!(smtp.accepted_for(&other_domain).len(), 2, "sent after both resumes");
}
