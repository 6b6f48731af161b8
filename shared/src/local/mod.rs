//! The one-process local mode: the same router and step handlers over the embedded store and
//! queue, a template drafter, and an outbox folder instead of a mail provider.

pub mod demo;
pub mod runner;
pub mod runtime;
pub mod serve;

pub use runner::{DrainReport, LocalRunner};
pub use runtime::EmbeddedRuntime;
