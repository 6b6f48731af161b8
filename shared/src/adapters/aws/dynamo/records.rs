//! Artifacts, logs, suppressions, API keys, mailbox cursors and the health probe on DynamoDB.

use async_trait::async_trait;

use super::items::*;
use super::store::DynamoStore;
use crate::domain::api_key::ApiKey;
use crate::domain::{
    EmailAddress, EmailDraft, ExecutionId, ExecutionLogEntry, LeadId, MailboxCursor, MeterUsage, ResearchReport, Suppression, Timestamp,
};
use crate::ports::store::{ApiKeyStore, ArtifactStore, HealthProbe, LogStore, MailboxCursorStore, SendingMeters, SuppressionList};
use crate::ports::{Page, PageRequest, StoreError};

#[async_trait]
impl ArtifactStore for DynamoStore {
    async fn put_research(&self, report: &ResearchReport) -> Result<(), StoreError> {
        self.put(research_item(report)?).await
    }

    async fn get_research(&self, company_domain: &str) -> Result<Option<ResearchReport>, StoreError> {
        self.get(research_key(company_domain)).await?.as_ref().map(data_of).transpose()
    }

    async fn put_draft(&self, draft: &EmailDraft) -> Result<(), StoreError> {
        self.put(draft_item(draft)?).await
    }

    async fn get_draft(&self, lead_id: LeadId, step: u32) -> Result<Option<EmailDraft>, StoreError> {
        self.get(draft_key(lead_id, step)).await?.as_ref().map(data_of).transpose()
    }
}

#[async_trait]
impl LogStore for DynamoStore {
    async fn append_logs(&self, entries: &[ExecutionLogEntry]) -> Result<(), StoreError> {
        let items = entries.iter().map(log_item).collect::<Result<Vec<_>, _>>()?;
        match items.len() {
            0 => Ok(()),
            1 => self.put(items.into_iter().next().expect("one item")).await,
            _ => self.batch_put(items).await,
        }
    }

    async fn list_logs(&self, execution_id: ExecutionId, page: &PageRequest) -> Result<Page<ExecutionLogEntry>, StoreError> {
        let query = || {
            self.client.query().key_condition_expression("pk = :pk").expression_attribute_values(":pk", s(logs_of_execution(execution_id)))
        };
        let (items, next_cursor) = self.query_page(None, query, page).await?;
        Ok(Page { items: items.iter().map(data_of).collect::<Result<_, _>>()?, next_cursor })
    }
}

#[async_trait]
impl SuppressionList for DynamoStore {
    async fn suppression_for(&self, address: &EmailAddress) -> Result<Option<Suppression>, StoreError> {
        let keys = Suppression::keys_for(address).iter().map(|entry| suppression_key(entry)).collect();
        self.batch_get(keys).await?.first().map(data_of).transpose()
    }

    async fn suppression_entry(&self, entry: &str) -> Result<Option<Suppression>, StoreError> {
        self.get(suppression_key(entry)).await?.as_ref().map(data_of).transpose()
    }

    async fn list_suppressions(&self, page: &PageRequest) -> Result<Page<Suppression>, StoreError> {
        let query = || self.client.query().key_condition_expression("gsi1pk = :pk").expression_attribute_values(":pk", s(SUPPRESSIONS));
        let (items, next_cursor) = self.query_page(Some("gsi1"), query, page).await?;
        Ok(Page { items: items.iter().map(data_of).collect::<Result<_, _>>()?, next_cursor })
    }
}

#[async_trait]
impl ApiKeyStore for DynamoStore {
    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        if self.put_new(api_key_item(key)?).await? { Ok(()) } else { Err(StoreError::Conflict) }
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        self.get(api_key_key(id)).await?.as_ref().map(data_of).transpose()
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let query = || self.client.query().key_condition_expression("gsi1pk = :pk").expression_attribute_values(":pk", s("APIKEYS"));
        let (items, _) = self.query_page(Some("gsi1"), query, &PageRequest::first(PageRequest::MAX_LIMIT)).await?;
        items.iter().map(data_of).collect()
    }

    async fn revoke_api_key(&self, id: &str, at: Timestamp) -> Result<ApiKey, StoreError> {
        let mut key = self.get_api_key(id).await?.ok_or(StoreError::NotFound)?;
        key.revoked_at.get_or_insert(at);
        self.put(api_key_item(&key)?).await?;
        Ok(key)
    }
}

#[async_trait]
impl MailboxCursorStore for DynamoStore {
    async fn get_mailbox_cursor(&self, folder: &str) -> Result<Option<MailboxCursor>, StoreError> {
        self.get(mailbox_cursor_key(folder)).await?.as_ref().map(data_of).transpose()
    }

    async fn save_mailbox_cursor(&self, cursor: &MailboxCursor) -> Result<(), StoreError> {
        self.put(mailbox_cursor_item(cursor)?).await
    }

    async fn list_mailbox_cursors(&self) -> Result<Vec<MailboxCursor>, StoreError> {
        let query = || self.client.query().key_condition_expression("gsi1pk = :pk").expression_attribute_values(":pk", s("MAILBOXES"));
        let (items, _) = self.query_page(Some("gsi1"), query, &PageRequest::first(PageRequest::MAX_LIMIT)).await?;
        items.iter().map(data_of).collect()
    }
}

#[async_trait]
impl SendingMeters for DynamoStore {
    async fn meter_usage(&self, meter: &str, day: chrono::NaiveDate) -> Result<MeterUsage, StoreError> {
        let (day_item, gap_item) = futures::try_join!(self.get(meter_day_key(meter, day)), self.get(meter_gap_key(meter)))?;
        let at = |item: &Option<Item>, name: &str| {
            item.as_ref()
                .and_then(|i| i.get(name))
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
                .and_then(chrono::DateTime::from_timestamp_millis)
        };
        Ok(MeterUsage {
            sent: day_item.as_ref().map_or(0, |i| signed_number_of(i, "sent").max(0) as u32),
            next_send_at: at(&gap_item, "next_send_at"),
            last_sent_at: at(&gap_item, "last_sent_at"),
        })
    }

    async fn mailbox_standing(&self, meter: &str) -> Result<crate::domain::pacing::MailboxStanding, StoreError> {
        let Some(item) = self.get(mailbox_health_key(meter)).await? else { return Ok(Default::default()) };
        let count = |name: &str| signed_number_of(&item, name).max(0) as u64;
        Ok(crate::domain::pacing::MailboxStanding {
            sent: count("sent"),
            hard_bounced: count("hard_bounced"),
            complained: count("complained"),
            paused: item
                .get("pause")
                .map(|v| serde_dynamo::from_attribute_value(v.clone()))
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            last_error: item
                .get("last_error")
                .map(|v| serde_dynamo::from_attribute_value(v.clone()))
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        })
    }
}

#[async_trait]
impl HealthProbe for DynamoStore {
    async fn probe(&self, now: Timestamp) -> Result<(), StoreError> {
        let mut item = health_key();
        item.insert("at".into(), n(now.timestamp_millis()));
        self.put(item).await
    }
}
