//! Bad input gets a clear 4xx problem body naming the field or line, and loses nothing that was
//! accepted before.

use axum::http::{Method, StatusCode};
use sales_agent_tests::{THREE_LEADS_CSV, TestApp, agent_spec};
use serde_json::json;

/// An app with one agent and one started execution, to check nothing of it is lost.
async fn app_with_a_campaign() -> (TestApp, String, String) {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, THREE_LEADS_CSV).await;
    (app, agent_id, execution_id)
}

async fn assert_nothing_lost(app: &TestApp, agent_id: &str, execution_id: &str) {
    assert_eq!(app.get("/api/v1/agents").await.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(app.get(&format!("/api/v1/agents/{agent_id}")).await.status, StatusCode::OK);
    let executions = app.get("/api/v1/executions").await;
    assert_eq!(executions.body["items"].as_array().unwrap().len(), 1, "no execution was half-created");
    assert_eq!(app.execution(execution_id).await["lead_counts"], json!({"queued": 3}));
}

#[tokio::test]
async fn a_malformed_json_body_is_a_400_problem_with_the_position() {
    let (app, agent_id, execution_id) = app_with_a_campaign().await;
    let reply = app.request(Method::POST, "/api/v1/agents", Some("application/json"), "{\"name\": \"x\",", &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.content_type, "application/problem+json");
    assert_eq!(reply.body["status"], 400);
    assert!(reply.body["detail"].as_str().unwrap().contains("line 1 column"), "{}", reply.body);
    let empty = app.request(Method::POST, "/api/v1/agents", Some("application/json"), "", &[]).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_nothing_lost(&app, &agent_id, &execution_id).await;
}

#[tokio::test]
async fn a_missing_required_field_is_named() {
    let (app, agent_id, execution_id) = app_with_a_campaign().await;
    let mut spec = agent_spec();
    spec.as_object_mut().unwrap().remove("pitch");
    let reply = app.post_json("/api/v1/agents", &spec).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.problem_fields(), ["pitch"]);

    let mut spec = agent_spec();
    spec["sender"].as_object_mut().unwrap().remove("email");
    assert_eq!(app.post_json("/api/v1/agents", &spec).await.problem_fields(), ["sender.email"]);

    let mut spec = agent_spec();
    spec["sequence"][1]["wait_days"] = json!("three");
    assert_eq!(app.post_json("/api/v1/agents", &spec).await.problem_fields(), ["sequence[1].wait_days"]);

    let mut spec = agent_spec();
    spec["name"] = json!("");
    spec["sequence"][0]["body"] = json!("Hi {{frist_name}}");
    let reply = app.post_json("/api/v1/agents", &spec).await;
    assert_eq!(reply.problem_fields(), ["name", "sequence[0].body"]);
    assert!(reply.body["errors"][1]["message"].as_str().unwrap().contains("unknown variable 'frist_name'"));

    let lead_without_company = json!({"leads": [{"email": "ada@initech.example", "first_name": "Ada"}]});
    let reply = app.post_json(&format!("/api/v1/agents/{agent_id}/executions"), &lead_without_company).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.problem_fields(), ["leads[0].company"]);
    assert_nothing_lost(&app, &agent_id, &execution_id).await;
}

#[tokio::test]
async fn an_invalid_email_on_one_csv_line_refuses_the_import_and_names_the_line() {
    let (app, agent_id, execution_id) = app_with_a_campaign().await;
    let csv = "email,first_name,company\nzed@zeta.example,Zed,Zeta\nnot-an-address,Bob,Globex\n";
    let reply = app.post_csv(&format!("/api/v1/agents/{agent_id}/executions"), csv).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.content_type, "application/problem+json");
    assert_eq!(reply.body["errors"][0]["line"], 3);
    assert_eq!(reply.problem_fields(), ["line 3: email"]);
    assert!(reply.body["detail"].as_str().unwrap().contains("'not-an-address' is not a valid email address"));
    assert_nothing_lost(&app, &agent_id, &execution_id).await;

    // With skip_invalid the valid rows go ahead and the bad one is reported.
    let reply = app.post_csv(&format!("/api/v1/agents/{agent_id}/executions?skip_invalid=true"), csv).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body["accepted"], 1);
    assert_eq!(reply.body["rejected"][0]["line"], 3);
}

#[tokio::test]
async fn a_company_domain_that_is_an_address_or_has_a_port_is_refused_on_its_line() {
    let (app, agent_id, execution_id) = app_with_a_campaign().await;
    let csv = "email,first_name,company,company_domain\n\
               zed@zeta.example,Zed,Zeta,https://www.zeta.example/about\n\
               amy@acme.example,Amy,Acme,169.254.169.254\n\
               bob@globex.example,Bob,Globex,globex.example:8080\n\
               cy@umbrella.example,Cy,Umbrella,http://[::1]/\n";
    let reply = app.post_csv(&format!("/api/v1/agents/{agent_id}/executions"), csv).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);
    assert_eq!(reply.problem_fields(), ["line 3: company_domain", "line 4: company_domain", "line 5: company_domain"]);
    assert!(reply.body["errors"][0]["message"].as_str().unwrap().contains("not a company's host name"), "{}", reply.body);
    assert_nothing_lost(&app, &agent_id, &execution_id).await;
}

#[tokio::test]
async fn a_csv_without_a_required_column_is_refused_by_name() {
    let (app, agent_id, execution_id) = app_with_a_campaign().await;
    let reply = app.post_csv(&format!("/api/v1/agents/{agent_id}/executions"), "email,company\nzed@zeta.example,Zeta\n").await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.body["detail"].as_str().unwrap().contains("no 'first_name' column"), "{}", reply.body);
    assert_nothing_lost(&app, &agent_id, &execution_id).await;
}

#[tokio::test]
async fn unknown_ids_routes_and_methods_are_404_and_405_problems() {
    let (app, agent_id, execution_id) = app_with_a_campaign().await;
    for uri in [
        "/api/v1/executions/01a1b2c3-0000-7000-8000-000000000000".to_string(),
        "/api/v1/executions/not-an-id".to_string(),
        "/api/v1/agents/01a1b2c3-0000-7000-8000-000000000000/executions".to_string(),
        "/api/v1/leads/01a1b2c3-0000-7000-8000-000000000000".to_string(),
        "/api/v1/nothing-here".to_string(),
    ] {
        let reply = app.get(&uri).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(reply.content_type, "application/problem+json", "{uri}");
    }
    let unknown = app.get("/api/v1/executions/01a1b2c3-0000-7000-8000-000000000000").await;
    assert_eq!(unknown.body["detail"], "no execution with id '01a1b2c3-0000-7000-8000-000000000000'");
    let pause_unknown = app.post_empty("/api/v1/executions/01a1b2c3-0000-7000-8000-000000000000/pause").await;
    assert_eq!(pause_unknown.status, StatusCode::NOT_FOUND);
    let wrong_method = app.request(Method::DELETE, "/api/v1/executions", None, "", &[]).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.content_type, "application/problem+json");
    assert_nothing_lost(&app, &agent_id, &execution_id).await;
}

#[tokio::test]
async fn bad_query_parameters_are_named() {
    let (app, _agent_id, execution_id) = app_with_a_campaign().await;
    let leads = format!("/api/v1/executions/{execution_id}/leads");
    assert_eq!(app.get(&format!("{leads}?state=happy")).await.problem_fields(), ["state"]);
    assert_eq!(app.get(&format!("{leads}?limit=0")).await.problem_fields(), ["limit"]);
    assert_eq!(app.get(&format!("{leads}?limit=many")).await.problem_fields(), ["limit"]);
    assert_eq!(app.get(&format!("{leads}?cursor=forged")).await.problem_fields(), ["cursor"]);
    assert_eq!(app.get("/api/v1/leads?email=nobody").await.problem_fields(), ["email"]);
    assert_eq!(app.get("/api/v1/leads").await.problem_fields(), ["state"], "a lead list names what it lists by");
}

#[tokio::test]
async fn wrong_content_types_oversized_bodies_and_unconfigured_sources_are_refused_clearly() {
    let (app, agent_id, execution_id) = app_with_a_campaign().await;
    let start = format!("/api/v1/agents/{agent_id}/executions");
    let text = app.request(Method::POST, &start, Some("text/plain"), "hello", &[]).await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let huge = "email,first_name,company\n".to_string() + &"someone@example.org,Some,One\n".repeat(250_000);
    let too_big = app.post_csv(&start, &huge).await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_big.content_type, "application/problem+json");

    let too_many = "email,first_name,company\n".to_string() + &(0..10_001).map(|i| format!("p{i}@example.org,P,Co\n")).collect::<String>();
    let reply = app.post_csv(&start, &too_many).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(reply.body["detail"].as_str().unwrap().contains("10000 rows"));

    let apollo = json!({"lead_source": {"provider": "apollo", "titles": ["VP Sales"], "limit": 50}});
    let reply = app.post_json(&start, &apollo).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.problem_fields(), ["lead_source.provider"]);
    assert!(reply.body["detail"].as_str().unwrap().contains("not configured"));

    let both = json!({"leads": [], "lead_source": {"provider": "apollo", "limit": 5}});
    assert_eq!(app.post_json(&start, &both).await.problem_fields(), ["leads"]);
    let neither = json!({});
    assert_eq!(app.post_json(&start, &neither).await.problem_fields(), ["leads"]);
    assert_nothing_lost(&app, &agent_id, &execution_id).await;
}
