//! The AWS adapters: DynamoDB for state, SQS for the step queues, SES for sending, and Secrets
//! Manager for API keys and mailbox credentials.

pub mod dynamo;
pub mod secret_drafter;
pub mod secrets;
pub mod ses;
pub mod sqs;

pub use dynamo::DynamoStore;
pub use secret_drafter::SecretReloadingDrafter;
pub use secrets::{AgentSecrets, SecretUnsubscribeKeys};
pub use ses::SesMailer;
pub use sqs::{QueueUrls, SqsQueue};

/// Loads the AWS configuration once per cold start: region and credentials from the Lambda
/// environment, and `AWS_ENDPOINT_URL` when set (moto, LocalStack).
pub async fn load_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
