//! Amazon SES event notifications (bounce, complaint, delivery): identity notifications
//! (`notificationType`) and configuration-set events (`eventType`), delivered by SNS to an email
//! subscription or to the feedback queue: a JSON document, sometimes wrapped in an SNS envelope.

use serde::Deserialize;

use super::delivery_status::{BounceReport, DeliveryOutcome};
use super::feedback::Complaint;
use super::text;

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Message")]
    message: String,
    /// SNS's id of the notification; a redelivery of the same notification carries it again.
    #[serde(rename = "MessageId", default)]
    message_id: Option<String>,
    #[serde(rename = "TopicArn", default)]
    topic_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    #[serde(alias = "eventType")]
    notification_type: String,
    #[serde(default)]
    bounce: Option<Bounce>,
    #[serde(default)]
    complaint: Option<ComplaintBody>,
    #[serde(default)]
    delivery: Option<Delivery>,
    #[serde(default)]
    mail: Option<Mail>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    #[serde(default)]
    bounce_type: String,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    diagnostic_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ComplaintBody {
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
    #[serde(default)]
    complaint_feedback_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delivery {
    #[serde(default)]
    recipients: Vec<String>,
    #[serde(default)]
    smtp_response: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mail {
    message_id: String,
    #[serde(default)]
    destination: Vec<String>,
}

pub enum SesEvent {
    Delivery(DeliveryOutcome),
    Complaint(Complaint),
}

pub struct SesNotice {
    pub event: SesEvent,
    /// The Message-IDs SES gave the original, in the forms our sent records keep.
    pub message_ids: Vec<String>,
}

/// The JSON document as sent, and as it may have been folded by the mail system on its way:
/// SNS emails wrap long lines and append an unsubscribe footer.
fn unfolded_candidates(body: &str) -> Vec<String> {
    let end = body.rfind('}').map_or(body.len(), |i| i + 1);
    let json = body[..end].replace("\r\n", "\n");
    vec![json.clone(), json.replace("\n ", ""), json.replace('\n', "")]
}

/// A notice as the feedback queue delivers it: an SNS envelope around the SES event. The key is
/// SNS's id of the notification, which a redelivery repeats.
pub fn read_queued(body: &str) -> Option<(SesNotice, String)> {
    let envelope: Envelope = serde_json::from_str(body.trim()).ok()?;
    let key = format!("sns:{}", envelope.message_id?);
    let notification: Notification = serde_json::from_str(&envelope.message).ok()?;
    let ses_id = notification.mail.as_ref().map(|m| m.message_id.clone());
    let mut notice = notice_of(notification)?;
    // Outside us-east-1 SES's Message-IDs carry the region, which the topic's ARN names.
    if let (Some(id), Some(region)) = (ses_id, envelope.topic_arn.as_deref().and_then(|arn| arn.split(':').nth(3))) {
        let regional = format!("{id}@{}", crate::adapters::aws::ses::ses_message_id_domain(region));
        if !notice.message_ids.contains(&regional) {
            notice.message_ids.push(regional);
        }
    }
    Some((notice, key))
}

pub fn read(body: &str) -> Option<SesNotice> {
    let body = body.trim();
    if !body.starts_with('{') || !(body.contains("notificationType") || body.contains("eventType")) {
        return None;
    }
    let notification = unfolded_candidates(body).into_iter().find_map(|json| {
        serde_json::from_str::<Notification>(&json)
            .ok()
            .or_else(|| serde_json::from_str::<Envelope>(&json).ok().and_then(|e| serde_json::from_str(&e.message).ok()))
    })?;
    notice_of(notification)
}

fn notice_of(notification: Notification) -> Option<SesNotice> {
    let message_ids =
        notification.mail.as_ref().map(|m| vec![format!("{}@email.amazonses.com", m.message_id), m.message_id.clone()]).unwrap_or_default();
    let destination = notification.mail.as_ref().and_then(|m| m.destination.first().cloned());
    let event = match notification.notification_type.as_str() {
        "Bounce" => {
            let bounce = notification.bounce?;
            let first = bounce.bounced_recipients.into_iter().next();
            let permanent = bounce.bounce_type.eq_ignore_ascii_case("Permanent");
            let diagnostic = first.as_ref().and_then(|r| r.diagnostic_code.clone());
            let status = first
                .as_ref()
                .and_then(|r| r.status.as_deref().and_then(|s| text::enhanced_status_in(s, false)))
                .or_else(|| diagnostic.as_deref().and_then(|d| text::enhanced_status_in(d, false)))
                .or_else(|| Some(if permanent { "5.0.0".into() } else { "4.0.0".into() }));
            let recipient = first.map(|r| r.email_address.to_ascii_lowercase()).or(destination);
            SesEvent::Delivery(DeliveryOutcome::Failed(BounceReport { recipient, status, diagnostic, permanent }))
        }
        "Complaint" => {
            let complaint = notification.complaint?;
            let recipient =
                complaint.complained_recipients.into_iter().next().map(|r| r.email_address.to_ascii_lowercase()).or(destination);
            SesEvent::Complaint(Complaint { recipient, feedback_type: complaint.complaint_feedback_type })
        }
        "Delivery" => {
            let delivery = notification.delivery;
            let recipient = delivery.as_ref().and_then(|d| d.recipients.first().cloned()).or(destination);
            let status = delivery.and_then(|d| d.smtp_response).and_then(|r| text::enhanced_status_in(&r, true)).or(Some("2.0.0".into()));
            SesEvent::Delivery(DeliveryOutcome::Delivered { recipient, status })
        }
        _ => return None,
    };
    Some(SesNotice { event, message_ids })
}
