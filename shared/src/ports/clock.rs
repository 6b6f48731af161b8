use crate::domain::Timestamp;

/// Time, injectable so tests can jump to the day a follow-up is due.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// A clock that only moves when told to, so a test can reach the day a follow-up is due.
#[derive(Debug)]
pub struct ManualClock {
    now: std::sync::Mutex<Timestamp>,
}

impl ManualClock {
    pub fn starting_at(now: Timestamp) -> Self {
        Self { now: std::sync::Mutex::new(now) }
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }

    /// Moves the clock to `at` (forwards, as time goes).
    pub fn set(&self, at: Timestamp) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now = at.max(*now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}
