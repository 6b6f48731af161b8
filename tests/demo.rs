//! The README's first command: the sample campaign runs to the end offline, and running it
//! again sends nothing twice.

use sales_agent::config::Settings;
use sales_agent::local::demo;

#[tokio::test]
async fn the_demo_campaign_ends_every_lead_in_a_terminal_or_waiting_state_and_a_second_run_sends_nothing() {
    let data = tempfile::tempdir().unwrap();

    let first = demo::run(Settings::for_data_dir(data.path())).await.unwrap();

    assert!(first.started_now);
    assert_eq!(first.leads.len(), 6, "eight rows: one duplicate and one invalid address are not imported");
    assert_eq!(first.rejected_rows.len(), 1);
    assert_eq!(first.duplicate_rows.len(), 1);
    for lead in &first.leads {
        assert!(lead.state.is_terminal() || lead.state.is_waiting(), "{} ended {}", lead.email, lead.state);
    }
    let contacted = first.leads.iter().filter(|l| l.state.as_str() != "skipped").count();
    assert_eq!(first.emails_written_now, contacted, "one .eml per sent email");
    assert_eq!(first.outbox_total, contacted);
    assert!(first.leads.iter().any(|l| l.state.as_str() == "replied"), "the sample reply was matched");
    assert!(first.leads.iter().any(|l| l.detail == "suppressed"));
    let rendered = first.render();
    assert!(rendered.contains("Emails written in this run: 5"), "{rendered}");

    let second = demo::run(Settings::for_data_dir(data.path())).await.unwrap();

    assert!(!second.started_now);
    assert_eq!(second.execution_id, first.execution_id);
    assert_eq!(second.emails_written_now, 0);
    assert_eq!(second.outbox_total, first.outbox_total);
    assert!(second.render().contains("nothing was sent twice"));
}
