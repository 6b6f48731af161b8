//! Starting an execution from an Apollo people search, against a wiremock server standing in
//! for Apollo: the searches and enrichments sent, paging, credits reported, people without a
//! usable email left out, retries on 429, and a refused key answered with a clear 4xx.

use std::time::Duration;

use axum::http::StatusCode;
use sales_agent::adapters::apollo::ApolloSettings;
use sales_agent_tests::{TestApp, agent_spec};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn app(server: &MockServer) -> TestApp {
    TestApp::configured(|settings| {
        settings.apollo = Some(ApolloSettings {
            base_url: format!("{}/api/v1", server.uri()),
            api_key: secrecy::SecretString::from("apollo-test-key"),
            timeout: Duration::from_secs(5),
        })
    })
}

fn person(id: &str) -> Value {
    json!({"id": id, "first_name": "Hidden", "title": "VP Sales"})
}

fn enriched(id: &str, email: &str) -> Value {
    json!({"id": id, "first_name": format!("Name{id}"), "last_name": "Doe", "title": "VP Sales", "email": email,
           "email_status": "verified", "organization": {"name": format!("Company {id}"), "primary_domain": format!("company{id}.example")}})
}

fn search_spec(limit: u32) -> Value {
    json!({"lead_source": {"provider": "apollo", "titles": ["VP Sales"], "seniorities": ["vp"], "locations": ["Germany"],
                           "company_sizes": ["51,200"], "limit": limit}})
}

#[tokio::test]
async fn a_search_is_paged_enriched_and_started_with_the_credits_reported() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/mixed_people/api_search"))
        .and(header("x-api-key", "apollo-test-key"))
        .and(body_partial_json(json!({"page": 1, "person_titles": ["VP Sales"], "organization_num_employees_ranges": ["51,200"]})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"people": [person("1"), person("2")], "pagination": {"page": 1, "total_pages": 2}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/mixed_people/api_search"))
        .and(body_partial_json(json!({"page": 2})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"people": [person("3"), person("4")], "pagination": {"page": 2, "total_pages": 2}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/people/bulk_match"))
        .and(body_partial_json(json!({"details": [{"id": "1"}, {"id": "2"}, {"id": "3"}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "matches": [enriched("1", "one@company1.example"), enriched("2", "email_not_unlocked@domain.com"), enriched("3", "three@company3.example")],
            "credits_consumed": 3
        })))
        .expect(1)
        .mount(&server)
        .await;
    let app = app(&server);
    let agent_id = app.create_agent(&agent_spec()).await;

    let started = app.post_json(&format!("/api/v1/agents/{agent_id}/executions"), &search_spec(3)).await;

    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    assert_eq!(started.body["accepted"], 2);
    assert_eq!(started.body["lead_source"], json!({"found": 3, "credits_spent": 3, "without_email": 1}));
    assert_eq!(started.body["execution"]["lead_source"], "apollo");
    let leads = app.leads(started.body["execution"]["id"].as_str().unwrap()).await;
    let first = leads.iter().find(|l| l["contact"]["email"] == "one@company1.example").unwrap();
    assert_eq!((first["contact"]["first_name"].as_str(), first["contact"]["company"].as_str()), (Some("Name1"), Some("Company 1")));
    assert_eq!(first["contact"]["company_domain"], "company1.example");
}

#[tokio::test]
async fn a_rate_limited_search_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/mixed_people/api_search"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"message": "rate limited"})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/mixed_people/api_search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"people": [person("1")], "pagination": {"total_pages": 1}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/people/bulk_match"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"matches": [enriched("1", "one@company1.example")], "credits_consumed": 1})),
        )
        .mount(&server)
        .await;
    let app = app(&server);
    let agent_id = app.create_agent(&agent_spec()).await;

    let started = app.post_json(&format!("/api/v1/agents/{agent_id}/executions"), &search_spec(10)).await;

    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    assert_eq!(started.body["accepted"], 1);
}

#[tokio::test]
async fn a_refused_key_is_a_clear_4xx_and_starts_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "Invalid access credentials."})))
        .expect(1)
        .mount(&server)
        .await;
    let app = app(&server);
    let agent_id = app.create_agent(&agent_spec()).await;

    let refused = app.post_json(&format!("/api/v1/agents/{agent_id}/executions"), &search_spec(5)).await;

    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.problem_fields(), ["lead_source"]);
    assert!(refused.body["detail"].as_str().unwrap().contains("Apollo refused the API key"));
    assert!(app.get("/api/v1/executions").await.body["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_slow_or_garbled_apollo_is_a_503_that_starts_nothing() {
    for answer in [
        ResponseTemplate::new(200).set_body_json(json!({"people": []})).set_delay(Duration::from_secs(3)),
        ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"),
        ResponseTemplate::new(502),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(answer).mount(&server).await;
        let app = TestApp::configured(|settings| {
            settings.apollo = Some(ApolloSettings {
                base_url: format!("{}/api/v1", server.uri()),
                api_key: secrecy::SecretString::from("apollo-test-key"),
                timeout: Duration::from_millis(300),
            })
        });
        let agent_id = app.create_agent(&agent_spec()).await;

        let reply = app.post_json(&format!("/api/v1/agents/{agent_id}/executions"), &search_spec(5)).await;

        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.body);
        assert!(reply.body["detail"].as_str().unwrap().contains("the lead source is unavailable"));
        assert!(app.get("/api/v1/executions").await.body["items"].as_array().unwrap().is_empty());
    }
}
