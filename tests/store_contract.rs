//! One contract for every store: the same tests run against the embedded SQLite store and
//! against DynamoDB on moto (a table created from template.yaml), so both keep one semantics.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use sales_agent::adapters::aws::DynamoStore;
use sales_agent::adapters::embedded::{EmbeddedDb, EmbeddedStore};
use sales_agent::domain::pacing::SlotGap;
use sales_agent::domain::{
    Agent, AgentId, AgentSpec, EmailAddress, EmailDraft, Execution, ExecutionCommand, ExecutionCounters, ExecutionLogEntry, ExecutionState,
    Lead, LeadContact, LeadEvent, LeadSourceKind, LeadStateKind, LogLevel, MarkerChange, ResearchFact, ResearchReport, SendClaim,
    SendingSlot, SentMessage, Suppression, Timestamp, Transition,
};
use sales_agent::ports::store::LeadQuery;
use sales_agent::ports::{PageRequest, Store, StoreError};
use sales_agent_tests::{agent_spec, aws};

fn now() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

fn agent(name: &str) -> Agent {
    let mut spec: AgentSpec = serde_json::from_value(agent_spec()).unwrap();
    spec.name = name.into();
    spec.into_agent(AgentId::generate(), now())
}

fn contact(email: &str) -> LeadContact {
    LeadContact {
        email: EmailAddress::parse(email).unwrap(),
        first_name: "Ada".into(),
        last_name: None,
        company: "Initech".into(),
        title: None,
        company_domain: None,
        time_zone: None,
    }
}

/// An agent's execution with `count` leads, stored and running.
async fn execution_with_leads(store: &dyn Store, count: usize, key: Option<&str>) -> (Execution, Vec<Lead>) {
    let agent = agent("Contract");
    store.create_agent(&agent).await.unwrap();
    let execution = Execution::new(agent.id, LeadSourceKind::Csv, count as u64, key.map(str::to_string), now());
    let leads: Vec<Lead> =
        (0..count).map(|i| Lead::new(execution.id, i, agent.id, contact(&format!("lead{i}@initech.example")), now())).collect();
    store.create_execution(&execution).await.unwrap();
    store.write_leads(&execution, &leads).await.unwrap();
    let start = execution.commanded(ExecutionCommand::Start, now()).unwrap();
    store.commit(&start).await.unwrap();
    (start.next_execution().unwrap().clone(), leads)
}

/// Commits `event` on `lead` and returns the lead as stored.
async fn advance(store: &dyn Store, lead: &Lead, event: LeadEvent) -> Lead {
    let transition = lead.advanced(event, now()).unwrap();
    store.commit(&transition).await.unwrap();
    transition.next_lead().unwrap().clone()
}

fn researched() -> LeadEvent {
    LeadEvent::ResearchCompleted { research_key: None, facts: 0, note: None }
}

fn drafted() -> LeadEvent {
    LeadEvent::DraftReady { needs_approval: false, subject: "Hello".into(), drafted_by: "template".into(), usage: None }
}

fn claimed(id: &str) -> LeadEvent {
    LeadEvent::SendClaimed(SendClaim { claim_id: id.into(), claimed_at: now(), mailbox: None, slots: Vec::new() })
}

fn confirmed(lead: &Lead, claim: &str, next_due: Option<Timestamp>) -> LeadEvent {
    let sent = SentMessage {
        step: lead.step,
        message_id: format!("{}.step{}@northwind.example", lead.id, lead.step),
        provider_message_id: "provider-1".into(),
        subject: "Hello".into(),
        sent_at: now(),
        mailbox: None,
    };
    LeadEvent::SendConfirmed { claim_id: claim.into(), sent, next_step_due_at: next_due }
}

async fn agents_are_created_once_listed_in_pages_updated_conditionally_and_deleted(store: Arc<dyn Store>) {
    let first = agent("One");
    store.create_agent(&first).await.unwrap();
    assert!(matches!(store.create_agent(&first).await, Err(StoreError::Conflict)));
    for name in ["Two", "Three"] {
        store.create_agent(&agent(name)).await.unwrap();
    }
    let page = store.list_agents(&PageRequest::first(2)).await.unwrap();
    assert_eq!(page.items.len(), 2);
    let rest = store.list_agents(&PageRequest { cursor: page.next_cursor.clone(), limit: 2 }).await.unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(rest.next_cursor.is_none());

    let renamed = Agent { name: "One, renamed".into(), ..store.get_agent(first.id).await.unwrap() };
    let stored = store.update_agent(&renamed).await.unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(store.get_agent(first.id).await.unwrap().name, "One, renamed");
    assert!(matches!(store.update_agent(&renamed).await, Err(StoreError::Conflict)), "a stale version is refused");

    store.delete_agent(first.id).await.unwrap();
    assert!(matches!(store.get_agent(first.id).await, Err(StoreError::NotFound)));
    assert!(matches!(store.delete_agent(first.id).await, Err(StoreError::NotFound)));
    assert!(matches!(store.update_agent(&stored).await, Err(StoreError::NotFound)));
}

async fn an_execution_is_created_once_per_idempotency_key_and_a_rewrite_of_its_leads_changes_nothing(store: Arc<dyn Store>) {
    // More leads than one BatchWriteItem takes.
    let (execution, leads) = execution_with_leads(store.as_ref(), 60, Some("import-1")).await;
    let again = Execution::new(execution.agent_id, LeadSourceKind::Csv, 1, Some("import-1".into()), now());
    assert!(matches!(store.create_execution(&again).await, Err(StoreError::Conflict)));
    assert_eq!(store.find_execution_by_idempotency_key(execution.agent_id, "import-1").await.unwrap().map(|e| e.id), Some(execution.id));
    assert!(store.find_execution_by_idempotency_key(execution.agent_id, "other").await.unwrap().is_none());
    // A retried start writes the same leads again: nothing doubles, and a lead a worker moved
    // meanwhile is not reset.
    let moved = advance(store.as_ref(), &leads[0], researched()).await;
    store.write_leads(&execution, &leads).await.unwrap();
    let progress = store.execution_progress(execution.id).await.unwrap();
    assert_eq!((progress.count(LeadStateKind::Queued), progress.count(LeadStateKind::Researched)), (59, 1));
    assert_eq!(store.get_lead(moved.id).await.unwrap().version, moved.version, "the moved lead kept its state");

    let query = LeadQuery { execution_id: Some(execution.id), ..Default::default() };
    let first = store.list_leads(&query, &PageRequest::first(50)).await.unwrap();
    let second = store.list_leads(&query, &PageRequest { cursor: first.next_cursor.clone(), limit: 50 }).await.unwrap();
    assert_eq!((first.items.len(), second.items.len()), (50, 10));
    let mut ids: Vec<_> = first.items.iter().chain(&second.items).map(|l| l.id).collect();
    ids.sort();
    assert_eq!(ids, leads.iter().map(|l| l.id).collect::<Vec<_>>(), "every lead once, across pages");
    let due = store.executions_needing_attention(execution.attention_at.unwrap(), 500).await.unwrap();
    assert!(due.iter().any(|e| e.id == execution.id), "a running execution is looked at when its time comes");
    assert!(!store.executions_needing_attention(now(), 500).await.unwrap().iter().any(|e| e.id == execution.id));

    let unfinished = [ExecutionState::Created, ExecutionState::Running, ExecutionState::Paused];
    assert!(store.has_executions_in(execution.agent_id, &unfinished).await.unwrap());
    assert_eq!((execution.state, execution.version), (ExecutionState::Running, 1));
    let stale = Execution { version: 0, ..execution.clone() }.commanded(ExecutionCommand::Pause, now()).unwrap();
    assert!(matches!(store.commit(&stale).await, Err(StoreError::Conflict)), "a stale version is refused");
    let cancel = execution.commanded(ExecutionCommand::Cancel, now()).unwrap();
    store.commit(&cancel).await.unwrap();
    assert_eq!(store.get_execution(execution.id).await.unwrap().state, ExecutionState::Cancelled);
    assert!(!store.has_executions_in(execution.agent_id, &unfinished).await.unwrap());
}

async fn executions_are_listed_newest_first_per_agent_and_overall(store: Arc<dyn Store>) {
    let (older, _) = execution_with_leads(store.as_ref(), 1, None).await;
    let newer = Execution::new(older.agent_id, LeadSourceKind::Json, 0, None, now());
    store.create_execution(&newer).await.unwrap();
    let page = store.list_executions(Some(older.agent_id), &PageRequest::first(1)).await.unwrap();
    assert_eq!(page.items[0].id, newer.id);
    let next = store.list_executions(Some(older.agent_id), &PageRequest { cursor: page.next_cursor, limit: 1 }).await.unwrap();
    assert_eq!(next.items[0].id, older.id);
    assert!(next.next_cursor.is_none());
    let all = store.list_executions(None, &PageRequest::first(500)).await.unwrap();
    assert!(all.items.iter().position(|e| e.id == newer.id) < all.items.iter().position(|e| e.id == older.id));
}

async fn a_commit_is_conditional_and_moves_state_counters_log_and_index_together(store: Arc<dyn Store>) {
    let (execution, leads) = execution_with_leads(store.as_ref(), 3, None).await;
    let research = leads[0].advanced(researched(), now()).unwrap();
    store.commit(&research).await.unwrap();
    assert_eq!(store.get_lead(leads[0].id).await.unwrap().version, 1);
    assert!(matches!(store.commit(&research).await, Err(StoreError::Conflict)), "the same transition twice");
    let progress = store.execution_progress(execution.id).await.unwrap();
    assert_eq!((progress.count(LeadStateKind::Queued), progress.count(LeadStateKind::Researched)), (2, 1));

    let by_state = LeadQuery { execution_id: Some(execution.id), state: Some(LeadStateKind::Researched), ..Default::default() };
    assert_eq!(
        store.list_leads(&by_state, &PageRequest::first(10)).await.unwrap().items.iter().map(|l| l.id).collect::<Vec<_>>(),
        [leads[0].id]
    );
    let across = LeadQuery { state: Some(LeadStateKind::Researched), agent_id: Some(execution.agent_id), ..Default::default() };
    assert_eq!(store.list_leads(&across, &PageRequest::first(10)).await.unwrap().items.len(), 1);
    let by_email = LeadQuery { email: Some(EmailAddress::parse("LEAD1@initech.example").unwrap()), ..Default::default() };
    assert_eq!(store.list_leads(&by_email, &PageRequest::first(10)).await.unwrap().items[0].id, leads[1].id);

    // Through a send: the claim takes the contact marker, the confirmation counts and indexes.
    let drafted = advance(store.as_ref(), research.next_lead().unwrap(), drafted()).await;
    let sending = advance(store.as_ref(), &drafted, claimed("claim-1")).await;
    assert_eq!(store.contact_holder(execution.agent_id, &sending.contact.email).await.unwrap(), Some(sending.id));
    let sent = advance(store.as_ref(), &sending, confirmed(&sending, "claim-1", Some(now() + Duration::days(3)))).await;
    let found = store.find_lead_by_message_id(&format!("{}.step0@northwind.example", sent.id)).await.unwrap();
    assert_eq!(found.map(|l| l.id), Some(sent.id));
    assert!(store.find_lead_by_message_id("unknown@northwind.example").await.unwrap().is_none());
    let progress = store.execution_progress(execution.id).await.unwrap();
    assert_eq!((progress.count(LeadStateKind::Sent), progress.count(LeadStateKind::Researched), progress.counters.sent), (1, 0, 1));
    let logged: Vec<String> =
        store.list_logs(execution.id, &PageRequest::first(50)).await.unwrap().items.into_iter().map(|e| e.event).collect();
    assert!(logged.contains(&"lead.researched".to_string()) && logged.contains(&"lead.sent".to_string()), "{logged:?}");

    let held = advance(store.as_ref(), &store.get_lead(leads[2].id).await.unwrap(), LeadEvent::Hold).await;
    assert_eq!(store.held_leads(execution.id, 10).await.unwrap().iter().map(|l| l.id).collect::<Vec<_>>(), [held.id]);
    let missing = Lead::new(execution.id, 99, execution.agent_id, contact("ghost@initech.example"), now());
    assert!(matches!(store.commit(&missing.advanced(researched(), now()).unwrap()).await, Err(StoreError::NotFound)));
}

async fn a_refused_commit_writes_nothing_at_all(store: Arc<dyn Store>) {
    let (execution, leads) = execution_with_leads(store.as_ref(), 2, None).await;
    let logs_before = store.list_logs(execution.id, &PageRequest::first(100)).await.unwrap().items.len();
    // Another lead of the same agent holds the marker for the address.
    let mut twin = leads[1].clone();
    twin.contact = leads[0].contact.clone();
    let first = advance(store.as_ref(), &advance(store.as_ref(), &leads[0], researched()).await, drafted()).await;
    let other = advance(store.as_ref(), &advance(store.as_ref(), &twin, researched()).await, drafted()).await;
    advance(store.as_ref(), &first, claimed("first")).await;
    let refused = other.advanced(claimed("second"), now()).unwrap();
    assert!(matches!(store.commit(&refused).await, Err(StoreError::ContactHeld)));
    assert_eq!(store.get_lead(other.id).await.unwrap().state.kind(), LeadStateKind::Drafted, "the claim was not written");

    // A version conflict leaves the counters and the log alone too.
    let stale = Lead { version: 0, ..other.clone() }.advanced(LeadEvent::Fail("x".into()), now()).unwrap();
    assert!(matches!(store.commit(&stale).await, Err(StoreError::Conflict)));
    let progress = store.execution_progress(execution.id).await.unwrap();
    assert_eq!((progress.counters.failed, progress.count(LeadStateKind::Failed)), (0, 0));
    let logs_after = store.list_logs(execution.id, &PageRequest::first(100)).await.unwrap().items.len();
    assert_eq!(logs_after, logs_before + 4, "one entry per committed transition, none for the refused ones");

    // A refused first email gives the marker back; a released claim keeps it.
    let sending = store.get_lead(first.id).await.unwrap();
    advance(store.as_ref(), &sending, LeadEvent::SendRefused { claim_id: "first".into(), why: "550".into() }).await;
    assert_eq!(store.contact_holder(execution.agent_id, &first.contact.email).await.unwrap(), None);
    advance(store.as_ref(), &other, claimed("second")).await;
    assert_eq!(store.contact_holder(execution.agent_id, &first.contact.email).await.unwrap(), Some(other.id));
}

/// A claim that takes a slot of `meter` on the test day.
fn claim_with_slot(lead: &Lead, claim: &str, meter: &str, cap: u32, gap: Option<SlotGap>) -> Transition {
    let slot = SendingSlot { meter: meter.into(), day: now().date_naive(), cap, gap };
    let claim = SendClaim { claim_id: claim.into(), claimed_at: now(), mailbox: None, slots: vec![slot.reference()] };
    lead.advanced(LeadEvent::SendClaimed(claim), now()).unwrap().and(Transition::markers(vec![MarkerChange::TakeSlot(slot)]))
}

async fn a_cap_slot_is_taken_with_the_claim_never_beyond_the_cap_and_given_back_on_release(store: Arc<dyn Store>) {
    let (_, leads) = execution_with_leads(store.as_ref(), 4, None).await;
    let meter = format!("mailbox:{}@northwind.example", uuid::Uuid::new_v4().simple());
    let mut drafted_leads = Vec::new();
    for lead in &leads {
        drafted_leads.push(advance(store.as_ref(), &advance(store.as_ref(), lead, researched()).await, drafted()).await);
    }
    // Three workers race for the last two slots of a cap of two: exactly two claims land.
    let racing = drafted_leads[..3].iter().enumerate().map(|(i, lead)| {
        let store = store.clone();
        let claim = claim_with_slot(lead, &format!("c{i}"), &meter, 2, None);
        async move { store.commit(&claim).await }
    });
    let results = futures::future::join_all(racing).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2, "{results:?}");
    assert!(results.iter().any(|r| matches!(r, Err(StoreError::Conflict))), "no room is a conflict: decide again");
    let loser = drafted_leads[..3].iter().zip(&results).find(|(_, r)| r.is_err()).unwrap().0;
    assert_eq!(store.get_lead(loser.id).await.unwrap().state.kind(), LeadStateKind::Drafted, "the refused claim wrote nothing");
    assert_eq!(store.meter_usage(&meter, now().date_naive()).await.unwrap().sent, 2);

    // A released claim gives its slot back; the next claim may take it.
    let (winner, _) = drafted_leads[..3].iter().zip(&results).find(|(_, r)| r.is_ok()).unwrap();
    let sending = store.get_lead(winner.id).await.unwrap();
    let claim_id = sending.state.claim().unwrap().claim_id.clone();
    let release = LeadEvent::SendReleased { claim_id, why: "421".into(), hold: false, retry_at: Some(now()), counted: true };
    advance(store.as_ref(), &sending, release).await;
    assert_eq!(store.meter_usage(&meter, now().date_naive()).await.unwrap().sent, 1);
    store.commit(&claim_with_slot(&drafted_leads[3], "c3", &meter, 2, None)).await.unwrap();
    assert_eq!(store.meter_usage(&meter, now().date_naive()).await.unwrap().sent, 2);
    assert_eq!(store.meter_usage(&meter, now().date_naive() + Duration::days(1)).await.unwrap().sent, 0, "a new day, a new count");
}

async fn a_mailboxs_gap_refuses_a_second_claim_until_it_has_passed(store: Arc<dyn Store>) {
    let (_, leads) = execution_with_leads(store.as_ref(), 2, None).await;
    let meter = format!("mailbox:{}@northwind.example", uuid::Uuid::new_v4().simple());
    let first = advance(store.as_ref(), &advance(store.as_ref(), &leads[0], researched()).await, drafted()).await;
    let second = advance(store.as_ref(), &advance(store.as_ref(), &leads[1], researched()).await, drafted()).await;
    let next_send_at = now() + Duration::minutes(2);
    store.commit(&claim_with_slot(&first, "a", &meter, 10, Some(SlotGap { now: now(), next_send_at }))).await.unwrap();
    let usage = store.meter_usage(&meter, now().date_naive()).await.unwrap();
    assert_eq!((usage.next_send_at, usage.last_sent_at), (Some(next_send_at), Some(now())));
    let too_soon = SlotGap { now: now() + Duration::minutes(1), next_send_at: now() + Duration::minutes(3) };
    assert!(matches!(store.commit(&claim_with_slot(&second, "b", &meter, 10, Some(too_soon))).await, Err(StoreError::Conflict)));
    assert_eq!(store.meter_usage(&meter, now().date_naive()).await.unwrap().sent, 1, "the refused claim counted nothing");
    let later = SlotGap { now: next_send_at, next_send_at: next_send_at + Duration::minutes(2) };
    store.commit(&claim_with_slot(&second, "b", &meter, 10, Some(later))).await.unwrap();
}

async fn leads_needing_attention_come_back_earliest_first_and_only_when_due(store: Arc<dyn Store>) {
    let (_, leads) = execution_with_leads(store.as_ref(), 3, None).await;
    for (lead, days) in leads.iter().zip([5, 2, 30]) {
        let sending = advance(
            store.as_ref(),
            &advance(store.as_ref(), &advance(store.as_ref(), lead, researched()).await, drafted()).await,
            claimed("c"),
        )
        .await;
        advance(store.as_ref(), &sending, confirmed(&sending, "c", Some(now() + Duration::days(days)))).await;
    }
    let due: Vec<_> = store.leads_needing_attention(now() + Duration::days(6), 10).await.unwrap().into_iter().map(|l| l.id).collect();
    assert_eq!(due, [leads[1].id, leads[0].id]);
    assert_eq!(store.leads_needing_attention(now() + Duration::days(6), 1).await.unwrap().len(), 1);
    assert!(store.leads_needing_attention(now(), 10).await.unwrap().is_empty());
    // A lead that waits for a worker comes up once its step's budget has passed.
    let (_, queued) = execution_with_leads(store.as_ref(), 1, None).await;
    let budget = sales_agent::domain::transition::STEP_BUDGET;
    let waiting = store.leads_needing_attention(now() + budget, 500).await.unwrap();
    assert!(waiting.iter().any(|l| l.id == queued[0].id));
}

async fn research_drafts_logs_and_suppressions_round_trip(store: Arc<dyn Store>) {
    let (execution, leads) = execution_with_leads(store.as_ref(), 1, None).await;
    let report = ResearchReport {
        company_domain: "initech.example".into(),
        summary: Some("Payroll software".into()),
        facts: vec![ResearchFact { text: "Payroll for 4,000 firms".into(), source_url: "https://initech.example/".into() }],
        taglines: vec![ResearchFact { text: "Payroll, done".into(), source_url: "https://initech.example/".into() }],
        note: None,
        gathered_at: now(),
    };
    store.put_research(&report).await.unwrap();
    assert_eq!(store.get_research("initech.example").await.unwrap(), Some(report));
    assert_eq!(store.get_research("globex.example").await.unwrap(), None);
    let draft = EmailDraft {
        lead_id: leads[0].id,
        step: 1,
        subject: "Hi".into(),
        body: "Hello".into(),
        facts_used: vec![],
        drafted_by: "template".into(),
        created_at: now(),
    };
    store.put_draft(&draft).await.unwrap();
    assert_eq!(store.get_draft(leads[0].id, 1).await.unwrap(), Some(draft));
    assert_eq!(store.get_draft(leads[0].id, 0).await.unwrap(), None);

    let entries: Vec<_> = (0..30)
        .map(|i| {
            ExecutionLogEntry::execution(LogLevel::Info, execution.id, "test.entry", format!("entry {i:02}"), now() + Duration::seconds(i))
        })
        .collect();
    store.append_logs(&entries[..1]).await.unwrap();
    store.append_logs(&entries[1..]).await.unwrap();
    let first = store.list_logs(execution.id, &PageRequest::first(20)).await.unwrap();
    let rest = store.list_logs(execution.id, &PageRequest { cursor: first.next_cursor.clone(), limit: 20 }).await.unwrap();
    let messages: Vec<String> =
        first.items.iter().chain(&rest.items).filter(|e| e.event == "test.entry").map(|e| e.message.clone()).collect();
    assert_eq!(messages, (0..30).map(|i| format!("entry {i:02}")).collect::<Vec<_>>(), "oldest first, every entry once");

    let address = EmailAddress::parse("ada@initech.example").unwrap();
    assert!(store.suppression_for(&address).await.unwrap().is_none());
    let suppress = |entry: &str, reason: &str| {
        Transition::markers(vec![MarkerChange::Suppress(Suppression {
            entry: entry.into(),
            reason: reason.into(),
            source: None,
            created_at: now(),
        })])
    };
    store.commit(&suppress("ada@initech.example", "unsubscribed")).await.unwrap();
    store.commit(&suppress("ada@initech.example", "manual")).await.unwrap();
    assert_eq!(store.suppression_for(&address).await.unwrap().map(|s| s.reason), Some("unsubscribed".into()), "the first reason is kept");
    store.commit(&suppress("globex.example", "manual")).await.unwrap();
    assert!(
        store.suppression_for(&EmailAddress::parse("anyone@globex.example").unwrap()).await.unwrap().is_some(),
        "a domain covers its addresses"
    );
    assert_eq!(
        store.suppression_for(&EmailAddress::parse("anyone@eu.sales.globex.example").unwrap()).await.unwrap().map(|s| s.entry),
        Some("globex.example".into()),
        "and its subdomains' addresses"
    );
    assert!(store.suppression_for(&EmailAddress::parse("anyone@globex.example.org").unwrap()).await.unwrap().is_none());

    for entry in ["b@initech.example", "c@initech.example"] {
        store.commit(&suppress(entry, "manual")).await.unwrap();
    }
    let first = store.list_suppressions(&PageRequest::first(2)).await.unwrap();
    let rest = store.list_suppressions(&PageRequest { cursor: first.next_cursor.clone(), limit: 10 }).await.unwrap();
    let listed: Vec<String> = first.items.iter().chain(&rest.items).map(|s| s.entry.clone()).collect();
    for entry in ["ada@initech.example", "b@initech.example", "c@initech.example", "globex.example"] {
        assert!(listed.contains(&entry.to_string()), "{entry} listed in {listed:?}");
    }
    store.commit(&Transition::markers(vec![MarkerChange::Unsuppress("globex.example".into())])).await.unwrap();
    assert!(store.suppression_entry("globex.example").await.unwrap().is_none());
    assert!(store.suppression_for(&EmailAddress::parse("anyone@globex.example").unwrap()).await.unwrap().is_none(), "taken off");
}

async fn api_keys_are_stored_hashed_listed_and_revoked(store: Arc<dyn Store>) {
    let issued = sales_agent::domain::api_key::ApiKey::issue("ops", now());
    store.create_api_key(&issued.key).await.unwrap();
    assert!(matches!(store.create_api_key(&issued.key).await, Err(StoreError::Conflict)));
    let stored = store.get_api_key(&issued.key.id).await.unwrap().expect("the key");
    let (_, secret) = sales_agent::domain::api_key::parse_token(&issued.token).unwrap();
    assert!(stored.accepts(secret));
    assert!(store.list_api_keys().await.unwrap().iter().any(|k| k.id == issued.key.id));
    let revoked = store.revoke_api_key(&issued.key.id, now()).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(!store.get_api_key(&issued.key.id).await.unwrap().unwrap().accepts(secret));
    assert!(matches!(store.revoke_api_key("missing", now()).await, Err(StoreError::NotFound)));
    assert!(store.get_api_key("missing").await.unwrap().is_none());
}

async fn a_cursor_that_was_not_issued_is_refused(store: Arc<dyn Store>) {
    let forged = PageRequest { cursor: Some("Zm9yZ2Vk".into()), limit: 10 };
    assert!(matches!(store.list_agents(&forged).await, Err(StoreError::InvalidCursor)));
}

async fn mailbox_cursors_are_replaced_per_folder_and_listed_with_counters_that_add_up(store: Arc<dyn Store>) {
    assert!(store.get_mailbox_cursor("sales/INBOX").await.unwrap().is_none());
    let cursor = sales_agent::domain::MailboxCursor {
        folder: "sales/INBOX".into(),
        uid_validity: 1_700_000_000,
        last_uid: 41,
        last_polled_at: now(),
        last_error: None,
        messages_read: 41,
        last_read_at: Some(now()),
        failing: Some(sales_agent::domain::FailingMessage { uid: 42, failures: 1, error: "lead busy".into() }),
        quarantined: vec![sales_agent::domain::QuarantinedMessage {
            uid: 12,
            message_id: Some("q@initech.example".into()),
            from: Some("ada@initech.example".into()),
            subject: "Re: hello".into(),
            error: "failed on 3 runs in a row".into(),
            quarantined_at: now(),
        }],
    };
    store.save_mailbox_cursor(&cursor).await.unwrap();
    assert_eq!(store.get_mailbox_cursor("sales/INBOX").await.unwrap().as_ref(), Some(&cursor), "every field is kept");
    let moved = sales_agent::domain::MailboxCursor { last_uid: 57, messages_read: 57, ..cursor.clone() };
    store.save_mailbox_cursor(&moved).await.unwrap();
    let other = sales_agent::domain::MailboxCursor { folder: "support/INBOX".into(), last_error: Some("login failed".into()), ..cursor };
    store.save_mailbox_cursor(&other).await.unwrap();
    assert_eq!(store.get_mailbox_cursor("sales/INBOX").await.unwrap(), Some(moved.clone()));
    let folders: Vec<String> = store.list_mailbox_cursors().await.unwrap().into_iter().map(|c| c.folder).collect();
    assert_eq!(folders, vec!["sales/INBOX".to_string(), "support/INBOX".to_string()]);

    // Counters of many leads add up, whichever shard each lead's transition lands on.
    let (execution, leads) = execution_with_leads(store.as_ref(), 20, None).await;
    let delta = ExecutionCounters { complained: 1, soft_bounced: 2, auto_replied: 3, ..Default::default() };
    for lead in &leads {
        let mut transition = lead.advanced(LeadEvent::Hold, now()).unwrap();
        transition.counters = delta;
        store.commit(&transition).await.unwrap();
    }
    let counters = store.execution_progress(execution.id).await.unwrap().counters;
    assert_eq!((counters.complained, counters.soft_bounced, counters.auto_replied), (20, 40, 60));
}

async fn the_health_probe_writes(store: Arc<dyn Store>) {
    store.probe(now()).await.unwrap();
    store.probe(now() + Duration::seconds(1)).await.unwrap();
}

fn embedded() -> Arc<dyn Store> {
    Arc::new(EmbeddedStore::new(EmbeddedDb::in_memory().unwrap()))
}

/// A sent lead that answered with `intent`.
async fn answered(store: &dyn Store, lead: &Lead, intent: sales_agent::domain::ReplyIntent) -> Lead {
    let lead = advance(store, lead, researched()).await;
    let lead = advance(store, &lead, drafted()).await;
    let lead = advance(store, &lead, claimed("c")).await;
    let lead = advance(store, &lead, confirmed(&lead, "c", None)).await;
    let record = sales_agent::domain::InboundRecord {
        class: "human_reply".into(),
        message_key: format!("reply-{}@initech.example", lead.id),
        from: Some(lead.contact.email.to_string()),
        subject: "Re: Hello".into(),
        text: "Sure".into(),
        status: None,
        absent_until: None,
        folder: "sales/INBOX".into(),
        received_at: now(),
        intent: Some(intent),
        referral: None,
        usage: None,
    };
    let effect = sales_agent::domain::InboundEffect::Ends(sales_agent::domain::SequenceEnd::Replied);
    advance(store, &lead, LeadEvent::Inbound { record: Some(record), effect }).await
}

async fn leads_are_listed_by_the_intent_of_their_reply_and_counted_per_intent(store: Arc<dyn Store>) {
    use sales_agent::domain::ReplyIntent;
    let (execution, leads) = execution_with_leads(store.as_ref(), 3, None).await;
    answered(store.as_ref(), &leads[0], ReplyIntent::MeetingRequest).await;
    answered(store.as_ref(), &leads[1], ReplyIntent::NotInterested).await;
    answered(store.as_ref(), &leads[2], ReplyIntent::MeetingRequest).await;
    let meetings = LeadQuery { state: Some(LeadStateKind::Replied), intent: Some(ReplyIntent::MeetingRequest), ..Default::default() };
    let mut found: Vec<_> = store.list_leads(&meetings, &PageRequest::first(50)).await.unwrap().items.iter().map(|l| l.id).collect();
    found.sort();
    let mut expected = vec![leads[0].id, leads[2].id];
    expected.sort();
    assert_eq!(found, expected);
    let in_execution = LeadQuery { execution_id: Some(execution.id), intent: Some(ReplyIntent::NotInterested), ..Default::default() };
    assert_eq!(store.list_leads(&in_execution, &PageRequest::first(50)).await.unwrap().items[0].id, leads[1].id);
    let counters = store.execution_progress(execution.id).await.unwrap().counters;
    assert_eq!((counters.replied, counters.meeting_requests, counters.not_interested, counters.questions), (3, 2, 1, 0));
}

async fn dynamodb() -> Arc<dyn Store> {
    let config = aws::config().await;
    let table = aws::unique("contract");
    aws::create_state_table(&config, &table).await;
    Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table))
}

macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod embedded_store {
            $( #[tokio::test] async fn $test() { super::$test(super::embedded()).await } )*
        }
        mod dynamodb_store {
            $( #[tokio::test] async fn $test() { super::$test(super::dynamodb().await).await } )*
        }
    };
}

contract!(
    agents_are_created_once_listed_in_pages_updated_conditionally_and_deleted,
    an_execution_is_created_once_per_idempotency_key_and_a_rewrite_of_its_leads_changes_nothing,
    executions_are_listed_newest_first_per_agent_and_overall,
    a_commit_is_conditional_and_moves_state_counters_log_and_index_together,
    a_refused_commit_writes_nothing_at_all,
    leads_needing_attention_come_back_earliest_first_and_only_when_due,
    the_health_probe_writes,
    research_drafts_logs_and_suppressions_round_trip,
    a_cursor_that_was_not_issued_is_refused,
    api_keys_are_stored_hashed_listed_and_revoked,
    mailbox_cursors_are_replaced_per_folder_and_listed_with_counters_that_add_up,
    a_cap_slot_is_taken_with_the_claim_never_beyond_the_cap_and_given_back_on_release,
    a_mailboxs_gap_refuses_a_second_claim_until_it_has_passed,
    leads_are_listed_by_the_intent_of_their_reply_and_counted_per_intent,
);
