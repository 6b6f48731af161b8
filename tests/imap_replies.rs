//! The reply poller against a real IMAP server (Dovecot, started by `.ci/test`): replies,
//! bounces, complaints and out-of-office answers delivered into the mailbox are matched to their
//! leads and acted on; nothing on the server changes; reading the same mail again changes nothing.

use std::sync::Arc;

use chrono::Duration;
use sales_agent::adapters::imap_inbox::{ImapInbox, ImapLimits};
use sales_agent::app::{ReplyReading, ScheduledReport};
use sales_agent::domain::{MailboxCursor, StepMessage, StepQueue};
use sales_agent::ports::ReadBounds;
use sales_agent_tests::faults::send_then_die;
use sales_agent_tests::imap::TestMailbox;
use sales_agent_tests::mail::{complaint, delivery_failure, first_message_id, lead, reply_to};
use sales_agent_tests::{TestApp, agent_spec};

const FIVE_LEADS: &str = "email,first_name,company\nada@initech.example,Ada,Initech\nbob@globex.example,Bob,Globex\n\
cy@umbrella.example,Cy,Umbrella\ndee@hooli.example,Dee,Hooli\neve@stark.example,Eve,Stark\n";

/// A CSV of `count` leads, each at a company of its own (`lead0@acme0.example`, …).
fn leads_at_own_companies(local: &str, first_name: &str, count: usize) -> String {
    std::iter::once("email,first_name,company".to_string())
        .chain((0..count).map(|i| format!("{local}{i}@acme{i}.example,{first_name},Acme {i}")))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn poll(app: &TestApp) -> ScheduledReport {
    let report = app.runtime.scheduled_tasks().run().await.expect("the scheduled run succeeds");
    app.drain().await;
    report
}

#[tokio::test]
async fn replies_bounces_complaints_and_absences_in_the_mailbox_are_matched_and_acted_on_once() {
    let mailbox = TestMailbox::user(1);
    let app = TestApp::configured(|settings| settings.mailboxes = vec![mailbox.over_tls()]);
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, FIVE_LEADS).await;
    app.drain().await;
    let leads = app.leads(&execution_id).await;
    assert_eq!(app.emails().len(), 5);

    let ada_first = first_message_id(&leads, "ada@initech.example");
    mailbox.deliver(&reply_to(
        &ada_first,
        "Ada <ada@initech.example>",
        "",
        "Happy to talk on Thursday.\r\n\r\nOn Monday Dana wrote:\r\n> Hi",
    ));
    mailbox.deliver(&delivery_failure("bob@globex.example", "5.1.1", Some(&first_message_id(&leads, "bob@globex.example"))));
    let cy_away = reply_to(
        &first_message_id(&leads, "cy@umbrella.example"),
        "cy@umbrella.example",
        "Date: Mon, 2 Mar 2026 09:05:00 +0000\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office\r\n",
        "I am out of the office until 20 March 2026 with no access to email.",
    );
    mailbox.deliver(&cy_away);
    mailbox.deliver(&complaint("dee@hooli.example", &first_message_id(&leads, "dee@hooli.example")));
    // A soft bounce without the original's Message-ID: matched by the failed address.
    mailbox.deliver(&delivery_failure("eve@stark.example", "4.2.2", None));
    // Our own note and a stranger's message match nothing.
    mailbox.deliver("From: Dana <dana@northwind.example>\r\nTo: team@northwind.example\r\nSubject: notes\r\nMessage-ID: <own@northwind.example>\r\n\r\nCall Ada back.\r\n");
    mailbox.deliver("From: someone@elsewhere.example\r\nTo: dana@northwind.example\r\nSubject: Hello\r\nMessage-ID: <x@elsewhere.example>\r\n\r\nHi.\r\n");

    let report = poll(&app).await.replies.expect("the mailbox is read");
    assert_eq!((report.read, report.matched, report.own, report.unmatched), (7, 5, 1, 1), "{report:?}");
    assert!(report.failed_folders.is_empty(), "{report:?}");

    let leads = app.leads(&execution_id).await;
    let ada = lead(&leads, "ada@initech.example");
    assert_eq!(ada["state"], "replied");
    assert_eq!(ada["inbound"][0]["class"], "human_reply");
    assert_eq!(ada["inbound"][0]["text"], "Happy to talk on Thursday.", "quoted history is stripped");
    let bob = lead(&leads, "bob@globex.example");
    assert_eq!((bob["state"].as_str(), bob["inbound"][0]["class"].as_str()), (Some("bounced"), Some("hard_bounce")));
    assert_eq!(bob["inbound"][0]["status"], "5.1.1");
    let cy = lead(&leads, "cy@umbrella.example");
    assert_eq!(cy["state"], "sent", "an out-of-office does not end the sequence");
    assert_eq!(cy["inbound"][0]["absent_until"], "2026-03-20");
    assert_eq!(cy["next_step_due_at"], "2026-03-21T09:00:00Z", "the follow-up waits until the day after the absence");
    assert_eq!(lead(&leads, "dee@hooli.example")["state"], "unsubscribed", "a complaint ends the sequence");
    let eve = lead(&leads, "eve@stark.example");
    assert_eq!((eve["state"].as_str(), eve["inbound"][0]["class"].as_str()), (Some("sent"), Some("soft_bounce")));

    let execution = app.execution(&execution_id).await;
    let counters = &execution["counters"];
    let read = |name: &str| counters[name].as_u64().unwrap_or_default();
    assert_eq!(
        [read("replied"), read("bounced"), read("complained"), read("soft_bounced"), read("auto_replied")],
        [1, 1, 1, 1, 1],
        "{counters}"
    );
    assert_eq!(execution["response_rate"], 0.2);
    let stats = app.get("/api/v1/stats/overview").await.body;
    assert_eq!((stats["complained"].as_u64(), stats["complaint_rate"].as_f64()), (Some(1), Some(0.2)), "{stats}");
    let mailboxes = app.get("/api/v1/mailboxes").await.body;
    assert_eq!(mailboxes["items"][0]["folder"], "user01/INBOX", "{mailboxes}");
    assert_eq!(mailboxes["items"][0]["messages_read"], 7);
    assert_eq!(mailbox.seen_count().await, 0, "nothing was marked read on the server");

    // Hard bounces and complaints are suppressed for good.
    let again = app.start_csv(&agent_id, "email,first_name,company\nbob@globex.example,Bob,Globex\ndee@hooli.example,Dee,Hooli\n").await;
    app.drain().await;
    assert!(app.leads(&again).await.iter().all(|l| l["reason"] == "suppressed"));

    // The next run reads nothing new.
    let report = poll(&app).await.replies.unwrap();
    assert_eq!(report.read, 0, "{report:?}");

    // Forget the cursor, as after a UIDVALIDITY change: everything is read again, nothing changes.
    let cursors = app.runtime.store.list_mailbox_cursors().await.unwrap();
    assert_eq!(cursors.len(), 1);
    assert_eq!((cursors[0].folder.as_str(), cursors[0].last_uid), ("user01/INBOX", 7));
    assert!(cursors[0].uid_validity > 0);
    let before: Vec<(String, u64)> =
        app.leads(&execution_id).await.iter().map(|l| (l["id"].to_string(), l["version"].as_u64().unwrap())).collect();
    app.runtime.store.save_mailbox_cursor(&MailboxCursor { uid_validity: 1, last_uid: 0, ..cursors[0].clone() }).await.unwrap();
    let report = poll(&app).await.replies.unwrap();
    assert_eq!((report.read, report.duplicates), (7, 5), "{report:?}");
    let after: Vec<(String, u64)> =
        app.leads(&execution_id).await.iter().map(|l| (l["id"].to_string(), l["version"].as_u64().unwrap())).collect();
    assert_eq!(before, after, "no lead was written again");
    assert_eq!(app.execution(&execution_id).await["counters"], *counters, "no counter moved");

    // Follow-ups: Eve's soft bounce does not stop hers; Cy's waits for the end of the absence.
    app.clock.advance(Duration::days(3) + Duration::minutes(1));
    poll(&app).await;
    let follow_ups: Vec<String> = app.emails().into_iter().filter(|e| e.contains(".step1@")).collect();
    assert_eq!(follow_ups.len(), 1, "only Eve's follow-up is due");
    assert!(follow_ups[0].contains("eve@stark.example"));
    app.clock.advance(Duration::days(16));
    poll(&app).await;
    let follow_ups: Vec<String> = app.emails().into_iter().filter(|e| e.contains(".step1@")).collect();
    assert_eq!(follow_ups.len(), 2, "Cy's follow-up goes out after the absence");
}

#[tokio::test]
async fn a_folder_that_cannot_be_read_is_reported_and_the_others_are_still_read() {
    let mailbox = TestMailbox::user(2);
    let mut with_missing_folder = mailbox.plain();
    with_missing_folder.folders = vec!["INBOX".into(), "Replies/Archive".into()];
    let mut wrong_password = TestMailbox::user(3).plain();
    wrong_password.password = Some("not-the-password".to_string().into());
    let app = TestApp::configured(|settings| settings.mailboxes = vec![with_missing_folder, wrong_password]);
    mailbox.deliver("From: someone@elsewhere.example\r\nTo: dana@northwind.example\r\nSubject: Hello\r\nMessage-ID: <y@elsewhere.example>\r\n\r\nHi.\r\n");

    let report = poll(&app).await.replies.expect("the mailboxes are read");
    assert_eq!(report.read, 1, "the INBOX was read: {report:?}");
    let failures = report.failed_folders.join("\n");
    assert!(failures.contains("user02/Replies/Archive"), "{failures}");
    assert!(failures.contains("user03/INBOX") && failures.contains("login"), "{failures}");
    assert!(!failures.contains("not-the-password"), "a password is never reported");

    let cursors = app.runtime.store.list_mailbox_cursors().await.unwrap();
    let cursor = |folder: &str| cursors.iter().find(|c| c.folder == folder).unwrap_or_else(|| panic!("a cursor for {folder}"));
    assert_eq!(cursor("user02/INBOX").last_error, None);
    assert!(cursor("user02/Replies/Archive").last_error.is_some());
    assert!(cursor("user03/INBOX").last_error.as_deref().is_some_and(|e| e.contains("login")));
}

#[tokio::test]
async fn a_batch_limit_spreads_a_full_mailbox_over_several_runs_without_skipping_any_message() {
    let mailbox = TestMailbox::user(4);
    let app = TestApp::configured(|settings| {
        settings.mailboxes = vec![mailbox.plain()];
        settings.reply_bounds.max_messages = 3;
    });
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, &leads_at_own_companies("lead", "Lead", 7)).await;
    app.drain().await;
    for l in app.leads(&execution_id).await {
        mailbox.deliver(&reply_to(
            l["sent_messages"][0]["message_id"].as_str().unwrap(),
            l["contact"]["email"].as_str().unwrap(),
            "",
            "Interested.",
        ));
    }
    let mut per_run = Vec::new();
    for _ in 0..4 {
        per_run.push(poll(&app).await.replies.unwrap().matched);
    }
    assert_eq!(per_run, vec![3, 3, 1, 0]);
    assert_eq!(app.execution(&execution_id).await["counters"]["replied"], 7);
}

#[tokio::test]
async fn a_newsletter_from_the_lead_s_own_address_is_kept_but_ends_nothing() {
    let mailbox = TestMailbox::user(6);
    let app = TestApp::configured(|settings| settings.mailboxes = vec![mailbox.over_tls()]);
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, "email,first_name,company\nada@initech.example,Ada,Initech\n").await;
    app.drain().await;
    mailbox.deliver(
        "From: Ada Lovelace <ada@initech.example>\r\nTo: dana@northwind.example\r\nSubject: Initech News: November\r\n\
         Message-ID: <news-11@initech.example>\r\nList-Id: Initech News <news.initech.example>\r\n\
         List-Unsubscribe: <https://initech.example/unsubscribe>\r\nPrecedence: bulk\r\n\r\n\
         Our November news. To stop receiving these, unsubscribe here.\r\n",
    );

    poll(&app).await.replies.expect("the mailbox is read");

    let leads = app.leads(&execution_id).await;
    let ada = lead(&leads, "ada@initech.example");
    assert_eq!(ada["state"], "sent", "a newsletter is no reply and no unsubscribe request: {ada}");
    assert_eq!(ada["inbound"][0]["class"], "bulk_mail");
    let execution = app.execution(&execution_id).await;
    assert_eq!(execution["counters"]["replied"].as_u64().unwrap_or(0), 0, "{execution}");
}

/// Bob's follow-up claimed by a send worker that died after the email left: his lead stays in
/// `sending` until the claim times out, so his reply cannot be acted on.
async fn bob_stuck_sending_his_follow_up(app: &TestApp, agent_id: &str) {
    let execution_id = app.start_csv(agent_id, "email,first_name,company\nbob@globex.example,Bob,Globex\n").await;
    app.drain().await;
    app.clock.advance(Duration::days(3) + Duration::minutes(1));
    app.runtime.scheduled_tasks().run().await.expect("the follow-up falls due");
    app.lose_messages(StepQueue::Draft).await;
    let lead_id = app.leads(&execution_id).await[0]["id"].as_str().unwrap().parse().unwrap();
    let message = StepMessage { execution_id: execution_id.parse().unwrap(), lead_id, step: 1 };
    app.runtime.draft_step().handle(&message).await.unwrap();
    app.lose_messages(StepQueue::Send).await;
    send_then_die(&app.runtime, &message).await;
    assert_eq!(app.leads(&execution_id).await[0]["state"], "sending");
}

#[tokio::test]
async fn a_poison_message_is_quarantined_after_three_runs_and_the_rest_of_the_folder_is_read() {
    let mailbox = TestMailbox::user(7);
    let app = TestApp::configured(|settings| settings.mailboxes = vec![mailbox.plain()]);
    let agent_id = app.create_agent(&agent_spec()).await;
    bob_stuck_sending_his_follow_up(&app, &agent_id).await;
    let execution_id =
        app.start_csv(&agent_id, "email,first_name,company\nada@initech.example,Ada,Initech\ncy@umbrella.example,Cy,Umbrella\n").await;
    app.drain().await;
    let leads = app.leads(&execution_id).await;

    mailbox.deliver(&reply_to(&first_message_id(&leads, "ada@initech.example"), "ada@initech.example", "", "Tell me more."));
    mailbox.deliver("From: bob@globex.example\r\nTo: dana@northwind.example\r\nSubject: Re: Globex\r\nMessage-ID: <bob-1@globex.example>\r\n\r\nNot now.\r\n");
    // A hostile In-Reply-To far over any store's key limit, and a thousand References: the ids
    // are dropped and Cy's reply is matched by his address.
    let huge_id = format!("<{}@umbrella.example>", "x".repeat(3_000));
    let references: String = (0..1_000).map(|i| format!("<r{i}@umbrella.example> ")).collect();
    mailbox.deliver(&format!(
        "From: cy@umbrella.example\r\nTo: dana@northwind.example\r\nSubject: Re: Umbrella\r\nMessage-ID: {huge_id}\r\n\
         In-Reply-To: {huge_id}\r\nReferences: {references}\r\n\r\nSure, send it over.\r\n"
    ));

    let mut runs = Vec::new();
    for _ in 0..3 {
        let report = app.runtime.scheduled_tasks().run().await.expect("a run with a waiting message succeeds").replies.unwrap();
        app.drain().await;
        runs.push((report.matched, report.deferred, report.quarantined));
    }
    assert_eq!(runs, vec![(1, 1, 0), (0, 1, 0), (1, 1, 1)], "Ada at once, Bob tried three times, then Cy");

    let mailboxes = app.get("/api/v1/mailboxes").await.body;
    let folder = &mailboxes["items"][0];
    assert_eq!(folder["quarantined"][0]["uid"], 2, "{mailboxes}");
    assert_eq!(folder["quarantined"][0]["from"], "bob@globex.example");
    assert_eq!(folder["quarantined"][0]["message_id"], "bob-1@globex.example");
    assert!(folder["quarantined"][0]["error"].as_str().unwrap().contains("send in flight"), "{mailboxes}");
    assert_eq!(folder["last_uid"], 3);
    assert!(folder.get("failing").is_none(), "{mailboxes}");
    let leads = app.leads(&execution_id).await;
    assert_eq!(lead(&leads, "ada@initech.example")["state"], "replied");
    let cy = lead(&leads, "cy@umbrella.example");
    assert_eq!(cy["state"], "replied", "{cy}");
    assert!(cy["inbound"][0]["message_key"].as_str().unwrap().starts_with("sha256:"), "an unusable Message-ID is no key");

    // The next run reads nothing again: the quarantined message is skipped for good.
    let report = poll(&app).await.replies.unwrap();
    assert_eq!(report.read, 0, "{report:?}");
}

#[tokio::test]
async fn follow_ups_wait_while_the_mailbox_login_fails_and_go_out_once_it_is_read_again() {
    let mailbox = TestMailbox::user(8);
    let app = TestApp::configured(|settings| settings.mailboxes = vec![mailbox.plain()]);
    // The same deployment after the mailbox's app password was revoked.
    let mut revoked = mailbox.plain();
    revoked.password = Some("a-revoked-app-password".to_string().into());
    let mut broken = app.runtime.clone();
    let limits = ImapLimits { attempts: 1, ..ImapLimits::default() };
    broken.inbox = ReplyReading::On(Arc::new(ImapInbox::new(vec![revoked], limits).expect("valid settings")));

    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id =
        app.start_csv(&agent_id, "email,first_name,company\nada@initech.example,Ada,Initech\nbob@globex.example,Bob,Globex\n").await;
    app.drain().await;
    poll(&app).await;
    let leads = app.leads(&execution_id).await;

    // The follow-ups fall due while the login is refused, and Ada has answered meanwhile.
    app.clock.advance(Duration::days(3) + Duration::minutes(1));
    mailbox.deliver(&reply_to(&first_message_id(&leads, "ada@initech.example"), "ada@initech.example", "", "Yes, let's talk."));
    for _ in 0..2 {
        let report = broken.scheduled_tasks().run().await.expect("a run with an unreadable mailbox still sweeps");
        app.drain().await;
        assert!(report.replies.unwrap().failed_folders[0].contains("login"));
        assert_eq!(report.sweep.follow_ups, 0, "{:?}", report.sweep);
        assert_eq!(report.sweep.follow_ups_waiting, 2, "{:?}", report.sweep);
        let why = report.sweep.waiting_because.join("\n");
        assert!(why.contains("user08/INBOX") && why.contains("login"), "{why}");
        app.clock.advance(Duration::minutes(2));
    }
    assert!(!app.emails().iter().any(|e| e.contains(".step1@")), "no follow-up left while replies could not be read");
    let execution = app.execution(&execution_id).await;
    assert!(execution["follow_ups_waiting"].as_str().unwrap().contains("login"), "{execution}");
    assert!(execution["needs_attention"].to_string().contains("follow-ups wait"), "{execution}");

    // The password is fixed: Ada's answer is read first, and only Bob gets his follow-up.
    let report = poll(&app).await;
    assert_eq!(report.replies.unwrap().matched, 1);
    assert_eq!(report.sweep.follow_ups, 1, "{:?}", report.sweep);
    let follow_ups: Vec<String> = app.emails().into_iter().filter(|e| e.contains(".step1@")).collect();
    assert_eq!(follow_ups.len(), 1);
    assert!(follow_ups[0].contains("bob@globex.example"));
    let execution = app.execution(&execution_id).await;
    assert!(execution.get("follow_ups_waiting").is_none(), "{execution}");
    assert_eq!(lead(&app.leads(&execution_id).await, "ada@initech.example")["state"], "replied");
}

/// A message from `from` with `text` and an attachment of about `attachment_bytes`.
fn with_attachment(from: &str, in_reply_to: Option<&str>, subject: &str, text: &str, attachment_bytes: usize) -> String {
    let line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n";
    let attachment = line.repeat(attachment_bytes / line.len() + 1);
    let threading = in_reply_to.map(|id| format!("In-Reply-To: <{id}>\r\nReferences: <{id}>\r\n")).unwrap_or_default();
    format!(
        "From: {from}\r\nTo: dana@northwind.example\r\nSubject: {subject}\r\nMessage-ID: <{}@mail.example>\r\n{threading}\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"part\"\r\n\r\n--part\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         {text}\r\n--part\r\nContent-Type: application/pdf; name=\"rfp.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{attachment}--part--\r\n",
        uuid::Uuid::new_v4()
    )
}

#[tokio::test]
async fn a_busy_mailbox_with_large_attachments_is_read_within_its_byte_bound_across_runs() {
    let mailbox = TestMailbox::user(9);
    let bounds = ReadBounds { max_messages: 200, max_message_bytes: 64 * 1024, max_batch_bytes: 1024 * 1024 };
    let app = TestApp::configured(|settings| {
        settings.mailboxes = vec![mailbox.plain()];
        settings.reply_bounds = bounds;
    });
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, &leads_at_own_companies("buyer", "Buyer", 10)).await;
    app.drain().await;
    let leads = app.leads(&execution_id).await;

    // 500 messages: ten leads answer with a 3 MB RFP attached, 45 newsletters carry 1 MB, the
    // rest is everyday mail from strangers.
    let mut large = 0;
    for i in 0..500 {
        let raw = if i % 50 == 7 {
            let email = format!("buyer{}@acme{}.example", i / 50, i / 50);
            let id = first_message_id(&leads, &email);
            with_attachment(&email, Some(&id), "Re: hello", "Yes: our RFP is attached, can you answer by Friday?", 3 * 1024 * 1024)
        } else if i % 10 == 0 {
            with_attachment(&format!("news{i}@vendor.example"), None, "Catalogue", "Our new catalogue.", 1024 * 1024)
        } else {
            format!(
                "From: someone{i}@elsewhere.example\r\nTo: dana@northwind.example\r\nSubject: Note {i}\r\nMessage-ID: <n{i}@elsewhere.example>\r\n\r\nHello.\r\n"
            )
        };
        large += u32::from(raw.len() > bounds.max_message_bytes);
        mailbox.deliver(&raw);
    }

    let mut runs = Vec::new();
    loop {
        let report = poll(&app).await.replies.expect("the mailbox is read");
        if report.read == 0 {
            break;
        }
        assert!(report.bytes_read <= bounds.max_batch_bytes as u64, "run {} fetched {} bytes", runs.len() + 1, report.bytes_read);
        runs.push(report);
        assert!(runs.len() <= 12, "the mailbox is read through in a few runs");
    }
    for (run, report) in runs.iter().enumerate() {
        println!("run {}: {} messages, {} bytes, {} cut short", run + 1, report.read, report.bytes_read, report.cut_short);
    }
    let total = |f: fn(&sales_agent::app::replies::ReplyReport) -> u32| runs.iter().map(f).sum::<u32>();
    assert_eq!(total(|r| r.read), 500, "every message read once");
    assert_eq!(total(|r| r.matched), 10);
    assert_eq!(total(|r| r.cut_short), large, "large messages were fetched only in part");
    assert!(runs.iter().any(|r| r.more_waiting && r.read < 200), "the byte bound, not the count, ended a run");
    assert!(runs[..runs.len() - 1].iter().all(|r| r.more_waiting), "each run but the last says more is waiting");
    let leads = app.leads(&execution_id).await;
    assert!(leads.iter().all(|l| l["state"] == "replied"), "every answer with a large attachment was understood");
    assert!(lead(&leads, "buyer3@acme3.example")["inbound"][0]["text"].as_str().unwrap().contains("RFP is attached"));
}

#[tokio::test]
async fn replies_are_filed_by_intent_a_referral_becomes_a_lead_and_a_colleague_s_answer_stops_the_company() {
    let mailbox = TestMailbox::user(15);
    let app = TestApp::configured(|settings| settings.mailboxes = vec![mailbox.plain()]);
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app
        .start_csv(
            &agent_id,
            "email,first_name,company\nada@initech.example,Ada,Initech\ngrace@initech.example,Grace,Initech\n\
             bob@globex.example,Bob,Globex\ncy@umbrella.example,Cy,Umbrella\neve@gmail.com,Eve,Eve Consulting\n\
             fay@gmail.com,Fay,Fay Design\nkim@hooli.example,Kim,Hooli\nlou@hooli.example,Lou,Hooli\n",
        )
        .await;
    app.drain().await;
    let leads = app.leads(&execution_id).await;
    let answer = |email: &str, text: &str| reply_to(&first_message_id(&leads, email), email, "", text);
    mailbox.deliver(&answer("ada@initech.example", "Happy to chat. Does Thursday at 2pm work for you?\r\n\r\nAda"));
    mailbox.deliver(&answer("bob@globex.example", "Thanks, but we're all set: we already use a forecasting vendor."));
    mailbox.deliver(&answer(
        "cy@umbrella.example",
        "I'm not the right person for this. Please talk to Jane Doe (jane.doe@umbrella.example), she runs planning.",
    ));
    mailbox.deliver(&answer("eve@gmail.com", "Sounds interesting, send me the deck."));
    mailbox.deliver(&answer("kim@hooli.example", "Please disregard, sent this by mistake."));

    let report = poll(&app).await.replies.expect("the mailbox is read");
    assert_eq!(report.matched, 5, "{report:?}");

    let leads = app.leads(&execution_id).await;
    let intent_of = |email: &str| lead(&leads, email)["reply_intent"].as_str().map(str::to_string);
    assert_eq!(intent_of("ada@initech.example").as_deref(), Some("meeting_request"));
    assert_eq!(intent_of("bob@globex.example").as_deref(), Some("not_interested"));
    assert_eq!(intent_of("cy@umbrella.example").as_deref(), Some("referral"));
    assert_eq!(intent_of("eve@gmail.com").as_deref(), Some("interested"));
    let cy = lead(&leads, "cy@umbrella.example");
    assert_eq!(cy["inbound"][0]["referral"], serde_json::json!({"name": "Jane Doe", "email": "jane.doe@umbrella.example"}));

    // Ada's answer ends her colleague's sequence; two strangers on gmail.com are no company.
    let grace = lead(&leads, "grace@initech.example");
    assert_eq!((grace["state"].as_str(), grace["reason"].as_str()), (Some("skipped"), Some("colleague_replied")), "{grace}");
    assert_eq!(lead(&leads, "fay@gmail.com")["state"], "sent");
    assert_eq!(intent_of("kim@hooli.example").as_deref(), Some("other"));
    assert_eq!(lead(&leads, "lou@hooli.example")["state"], "sent", "a note filed as other stops no one");
    let log = app.get(&format!("/api/v1/executions/{execution_id}/logs?limit=200")).await.body.to_string();
    assert!(log.contains("ada@initech.example, at the same company, answered"), "{log}");

    // Filed, filterable and counted.
    let meetings = app.get("/api/v1/leads?intent=meeting_request").await.body;
    let emails: Vec<&str> = meetings["items"].as_array().unwrap().iter().map(|l| l["contact"]["email"].as_str().unwrap()).collect();
    assert_eq!(emails, vec!["ada@initech.example"]);
    let refused = app.get("/api/v1/leads?intent=maybe").await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.to_string().contains("intent"), "{}", refused.body);
    let counters = &app.execution(&execution_id).await["counters"];
    assert_eq!(
        [&counters["meeting_requests"], &counters["not_interested"], &counters["referrals"], &counters["interested"], &counters["replied"]],
        [1, 1, 1, 1, 5],
        "{counters}"
    );
    let overview = app.get("/api/v1/stats/overview").await.body;
    assert_eq!(overview["replies_by_intent"]["referral"], 1, "{overview}");

    // The referred colleague becomes a lead of the same agent, once.
    app.clock.advance(Duration::minutes(1));
    let cy_id = cy["id"].as_str().unwrap();
    let referred = app.post_json(&format!("/api/v1/leads/{cy_id}/referral"), &serde_json::json!({})).await;
    assert_eq!(referred.status, 201, "{}", referred.body);
    let referral_execution = referred.body["execution"]["id"].as_str().unwrap().to_string();
    assert_eq!(referred.body["execution"]["lead_source"], "referral");
    let again = app.post_json(&format!("/api/v1/leads/{cy_id}/referral"), &serde_json::json!({})).await;
    assert_eq!((again.status.as_u16(), again.body["replayed"].as_bool()), (200, Some(true)), "{}", again.body);
    app.drain().await;
    let jane = &app.leads(&referral_execution).await[0];
    assert_eq!(
        (jane["contact"]["email"].as_str(), jane["contact"]["first_name"].as_str()),
        (Some("jane.doe@umbrella.example"), Some("Jane"))
    );
    assert_eq!(jane["state"], "sent", "the referred colleague is emailed: {jane}");
    // Cy's answer read again (its folder's UIDVALIDITY changed): Jane, started after it, keeps
    // her sequence.
    let cursors = app.runtime.store.list_mailbox_cursors().await.unwrap();
    app.runtime.store.save_mailbox_cursor(&MailboxCursor { uid_validity: 1, last_uid: 0, ..cursors[0].clone() }).await.unwrap();
    assert_eq!(poll(&app).await.replies.unwrap().duplicates, 5);
    assert_eq!(app.leads(&referral_execution).await[0]["state"], "sent", "a re-read answer stops no one started after it");
    let no_referral = app
        .post_json(
            &format!("/api/v1/leads/{}/referral", lead(&leads, "bob@globex.example")["id"].as_str().unwrap()),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(no_referral.status, 422, "{}", no_referral.body);

    // Bob said no: this agent never emails him again.
    let later = app.start_csv(&agent_id, "email,first_name,company\nbob@globex.example,Bob,Globex\n").await;
    app.drain().await;
    assert_eq!(app.leads(&later).await[0]["reason"], "already_contacted");
}
