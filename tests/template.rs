//! template.yaml keeps the rules the workers depend on: every SQS event source reports partial
//! batch failures, every queue's visibility timeout is at least six times its function's
//! timeout, redrive policies allow at least five receives, and every function is built by
//! cargo-lambda from the workspace root.

use serde_yaml::Value;

fn template() -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The logical id a `!GetAtt X.Arn` names.
fn get_att_target(value: &Value) -> String {
    match value {
        Value::Tagged(tagged) if tagged.tag == "!GetAtt" => tagged.value.as_str().unwrap().split('.').next().unwrap().to_string(),
        other => panic!("expected !GetAtt, got {other:?}"),
    }
}

fn number(template: &Value, value: &Value) -> u64 {
    match value {
        Value::Number(n) => n.as_u64().unwrap(),
        Value::Tagged(tagged) if tagged.tag == "!Ref" => {
            let parameter = &template["Parameters"][tagged.value.as_str().unwrap()];
            parameter["MinValue"].as_u64().or_else(|| parameter["Default"].as_u64()).unwrap()
        }
        other => panic!("expected a number, got {other:?}"),
    }
}

#[test]
fn queues_functions_and_event_sources_keep_the_rules_the_workers_rely_on() {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    let global_timeout = template["Globals"]["Function"]["Timeout"].as_u64().unwrap();
    let mut functions = 0;
    let mut sqs_sources = 0;
    for (name, resource) in resources {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        functions += 1;
        let name = name.as_str().unwrap();
        let properties = &resource["Properties"];
        assert_eq!(properties["CodeUri"], ".", "{name} builds from the workspace root");
        assert_eq!(resource["Metadata"]["BuildMethod"], "rust-cargolambda", "{name}");
        assert!(resource["Metadata"]["BuildProperties"]["Binary"].is_string(), "{name} names its binary");
        let timeout = properties["Timeout"].as_u64().unwrap_or(global_timeout);
        for (_, event) in properties["Events"].as_mapping().into_iter().flatten() {
            if event["Type"] != "SQS" {
                continue;
            }
            sqs_sources += 1;
            let event = &event["Properties"];
            assert_eq!(event["FunctionResponseTypes"][0], "ReportBatchItemFailures", "{name}");
            let queue = &resources[&Value::from(get_att_target(&event["Queue"]))]["Properties"];
            let visibility = queue["VisibilityTimeout"].as_u64().unwrap();
            assert!(visibility >= 6 * timeout, "{name}: visibility {visibility} s < 6 × timeout {timeout} s");
            let redrive = &queue["RedrivePolicy"];
            assert!(number(&template, &redrive["maxReceiveCount"]) >= 5, "{name}");
            assert!(resources.contains_key(Value::from(get_att_target(&redrive["deadLetterTargetArn"]))), "{name} has a dead-letter queue");
            assert!(matches!(event["ScalingConfig"]["MaximumConcurrency"], Value::Tagged(_)), "{name}: maximum concurrency is a parameter");
        }
    }
    assert_eq!((functions, sqs_sources), (6, 4));
    let table = &resources[&Value::from("StateTable")]["Properties"];
    assert_eq!(table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true);
    assert!(template["Outputs"]["ApiUrl"].is_mapping());
}

#[test]
fn the_sweeps_timers_fit_the_queues_and_functions_they_watch() {
    use sales_agent::domain::transition::{SEND_CLAIM_TIMEOUT, STEP_BUDGET};
    let template = template();
    let resources = &template["Resources"];
    let receives = template["Parameters"]["MaxReceiveCount"]["Default"].as_u64().unwrap();
    for queue in ["ResearchQueue", "DraftQueue", "SendQueue"] {
        let visibility = resources[queue]["Properties"]["VisibilityTimeout"].as_u64().unwrap();
        // A message's last receive ends within the budget, so the sweep never re-drives a lead
        // whose message may still come back.
        assert!(visibility * receives <= STEP_BUDGET.num_seconds() as u64, "{queue}: {visibility} s × {receives} receives");
    }
    let send_timeout = resources["SendFunction"]["Properties"]["Timeout"].as_u64().unwrap();
    assert!((send_timeout as i64) < SEND_CLAIM_TIMEOUT.num_seconds(), "a live send worker's claim is never taken for a dead one's");
}

#[test]
fn the_send_function_may_send_only_as_the_configured_sender_addresses() {
    let template = template();
    let statements = template["Resources"]["SendFunction"]["Properties"]["Policies"].as_sequence().unwrap();
    let send = statements
        .iter()
        .flat_map(|p| p["Statement"].as_sequence().cloned().unwrap_or_default())
        .find(|s| s["Action"] == "ses:SendRawEmail")
        .expect("a SendRawEmail statement");
    let from = &send["Condition"]["StringLike"]["ses:FromAddress"];
    assert!(matches!(from, Value::Tagged(t) if t.tag == "!Ref" && t.value == "SenderAddresses"), "{from:?}");
    assert!(template["Parameters"]["SenderAddresses"]["Default"].is_null(), "no default: every deployment names its own");
}

#[test]
fn ses_sending_events_reach_the_feedback_function_through_its_topic_and_queue() {
    let template = template();
    let resources = &template["Resources"];
    let destination = &resources["SendingEventsDestination"]["Properties"]["EventDestination"];
    let mut kinds: Vec<&str> = destination["MatchingEventTypes"].as_sequence().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(kinds, ["bounce", "complaint", "delivery"]);
    let topic = &destination["SnsDestination"]["TopicARN"];
    assert!(matches!(topic, Value::Tagged(t) if t.tag == "!Ref" && t.value == "FeedbackTopic"), "{topic:?}");
    let subscription = &resources["FeedbackSubscription"]["Properties"];
    assert_eq!(subscription["Protocol"], "sqs");
    assert_eq!(get_att_target(&subscription["Endpoint"]), "FeedbackQueue");
    let source = &resources["FeedbackFunction"]["Properties"]["Events"]["SesEvents"]["Properties"];
    assert_eq!(get_att_target(&source["Queue"]), "FeedbackQueue");
    let allowed = &resources["FeedbackQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0];
    assert_eq!(allowed["Principal"]["Service"], "sns.amazonaws.com");
    // The send function sends with the configuration set that publishes these events.
    let set = &resources["SendFunction"]["Properties"]["Environment"]["Variables"]["SALES_AGENT_SES_CONFIGURATION_SET"];
    let used = &resources["SendingEventsDestination"]["Properties"]["ConfigurationSetName"];
    assert_eq!(set, used, "the events come from the set the emails are sent with");
}
