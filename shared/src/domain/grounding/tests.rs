use super::*;
use crate::domain::{AgentId, EmailAddress, ResearchFact};

fn sources() -> Sources {
    let mut agent = crate::domain::agent::tests::sample_spec().into_agent(AgentId::generate(), chrono::Utc::now());
    agent.sender.website = Some("https://northwind.example".into());
    agent.sender.phone = Some("+1 555 0100".into());
    agent.pitch.value_proposition = "forecasts you can trust, used by 300 revenue teams and SOC 2 certified".into();
    let contact = LeadContact {
        email: EmailAddress::parse("ada@acme.example").unwrap(),
        first_name: "Ada".into(),
        last_name: Some("Okafor".into()),
        company: "Acme Freight".into(),
        title: Some("VP Operations".into()),
        company_domain: None,
        time_zone: None,
    };
    let fact = |text: &str| ResearchFact { text: text.into(), source_url: "https://acme.example/about".into() };
    let research = ResearchReport {
        company_domain: "acme.example".into(),
        summary: None,
        facts: vec![
            fact("Founded in 2012, Acme Freight runs 40 depots across Ohio and serves 4,200 shippers."),
            fact("In March 2024 Acme Freight raised $20M led by Umbrella Capital."),
        ],
        taglines: vec![fact("The #1 freight network in the Midwest")],
        note: None,
        gathered_at: chrono::Utc::now(),
    };
    Sources::new(&agent, &contact, Some(&research))
}

fn claims(body: &str) -> Vec<String> {
    unsupported_claims("", body, &sources()).into_iter().map(|c| c.claim).collect()
}

#[test]
fn paraphrased_facts_names_from_sources_and_the_brief_pass() {
    let clean = [
        "Hi Ada,\n\nForty depots across Ohio since 2012 is no small thing. Congrats on the $20 million round in March.\n\nDana Reyes\nNorthwind Analytics",
        "Saw Acme Freight serves over 4,000 shippers. We're used by 300 revenue teams and SOC 2 certified. Worth a 15-minute call next week?",
        "Quick question, Ada: how do Ohio depots forecast volume? Scaling forecasts is hard. Details at northwind.example or +1 555 0100.",
    ];
    for body in clean {
        assert_eq!(claims(body), Vec::<String>::new(), "{body}");
    }
}

#[test]
fn invented_figures_names_links_contacts_and_events_are_each_named() {
    let cases = [
        ("Congrats on hitting 5,000 shippers.", "5,000"),
        ("Founded in 2011, Acme has grown fast.", "2011"),
        ("Your CTO, Maria Chen, mentioned forecasting.", "Maria Chen"),
        ("Teams like Globex use us.", "Globex"),
        ("How is Umbrella Freight doing?", "Umbrella Freight"),
        ("Pay the invoice at pay-now.example/inv today.", "pay-now.example/inv"),
        ("Write to me at dana.personal@mail.example anytime.", "dana.personal@mail.example"),
        ("Call me on (555) 010-7788.", "(555) 010-7788"),
        ("Congrats on the new Denver office!", "Denver"),
        ("Congrats on the recent acquisition!", "Congrats on the recent acquisition"),
        ("A mutual friend suggested I write.", "A mutual friend suggested I write"),
        ("Loved your podcast episode on routing.", "Loved your podcast episode on routing"),
        ("We are an award-winning platform.", "We are an award-winning platform"),
        ("You're the #1 freight network in the Midwest.", "#1"),
    ];
    for (body, claim) in cases {
        assert!(claims(body).iter().any(|c| c == claim), "{claim} not refused in {body:?}: {:?}", claims(body));
    }
}

#[test]
fn general_statements_about_an_event_claim_nothing() {
    assert_eq!(
        claims("Companies that just raised often rebuild their forecasting. If you're hiring, it matters more."),
        Vec::<String>::new()
    );
}

#[test]
fn the_english_word_list_is_sorted_for_its_binary_search() {
    let words: Vec<&str> = include_str!("english_words.txt").lines().collect();
    assert!(words.windows(2).all(|w| w[0] < w[1]));
    assert!(
        is_english_word("scaling") && is_english_word("case") && !is_english_word("amazon") && !is_english_word("maria"),
        "names stay names"
    );
}
