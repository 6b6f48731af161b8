//! API keys: every /api/v1 route wants `Authorization: Bearer <key>` when auth is on; health
//! and unsubscribe stay open; keys are issued once, listed without secrets and revoked.

use axum::http::{Method, StatusCode};
use sales_agent_tests::{TestApp, agent_spec};
use serde_json::json;

fn app() -> TestApp {
    TestApp::configured(|settings| settings.auth_required = true)
}

/// The token printed by `sales-agent api-key create`.
async fn first_key(app: &TestApp) -> String {
    let output = sales_agent::admin::create_api_key(&app.runtime, "first key").await.unwrap();
    output.lines().find(|l| l.starts_with("sa_")).expect("the token is printed").to_string()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn without_a_valid_key_the_api_answers_401_and_health_and_unsubscribe_stay_open() {
    let app = app();
    let token = first_key(&app).await;

    let missing = app.get("/api/v1/agents").await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.content_type, "application/problem+json");
    // The real token with its last character changed (to another one whatever it was).
    let last = if token.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &token[..token.len() - 1]);
    for presented in [bearer(&forged), bearer("sa_nothing.0123456789abcdef0123456789abcdef"), "Basic abc".into(), bearer("garbage")] {
        let reply = app.request(Method::GET, "/api/v1/agents", None, "", &[("authorization", presented.as_str())]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{presented}");
    }
    let created = app
        .request(
            Method::POST,
            "/api/v1/agents",
            Some("application/json"),
            agent_spec().to_string(),
            &[("authorization", bearer(&token).as_str())],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(app.get("/health").await.status, StatusCode::OK);
    assert_eq!(app.get("/unsubscribe/not-a-token").await.status, StatusCode::NOT_FOUND, "reached the handler, not the key check");
}

#[tokio::test]
async fn keys_are_issued_once_listed_without_secrets_and_revoked() {
    let app = app();
    let admin = bearer(&first_key(&app).await);
    let auth = [("authorization", admin.as_str())];

    let issued =
        app.request(Method::POST, "/api/v1/api-keys", Some("application/json"), json!({"name": "crm sync"}).to_string(), &auth).await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
    let token = issued.body["token"].as_str().unwrap().to_string();
    let id = issued.body["id"].as_str().unwrap().to_string();
    let with_new_key = bearer(&token);
    assert_eq!(
        app.request(Method::GET, "/api/v1/agents", None, "", &[("authorization", with_new_key.as_str())]).await.status,
        StatusCode::OK
    );

    let listed = app.request(Method::GET, "/api/v1/api-keys", None, "", &auth).await;
    let text = listed.body.to_string();
    assert_eq!(listed.body.as_array().unwrap().len(), 2);
    assert!(!text.contains(&token[token.find('.').unwrap() + 1..]) && !text.contains("secret_hash"), "no secret or hash is listed: {text}");

    let revoked = app.request(Method::DELETE, &format!("/api/v1/api-keys/{id}"), None, "", &auth).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(revoked.body["revoked_at"].is_string());
    assert_eq!(
        app.request(Method::GET, "/api/v1/agents", None, "", &[("authorization", with_new_key.as_str())]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.request(Method::DELETE, "/api/v1/api-keys/unknown", None, "", &auth).await.status, StatusCode::NOT_FOUND);
    let unnamed = app.request(Method::POST, "/api/v1/api-keys", Some("application/json"), json!({"name": " "}).to_string(), &auth).await;
    assert_eq!(unnamed.problem_fields(), ["name"]);

    let listing = sales_agent::admin::list_api_keys(&app.runtime).await.unwrap();
    assert!(listing.contains("crm sync") && listing.contains("revoked"), "{listing}");
}
