//! Time comes from a `Clock` so tests can control it. `SystemClock` is the only place that reads
//! the wall clock (clippy.toml bans the other ways).

use std::sync::Mutex;

use time::OffsetDateTime;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when a test moves it.
#[derive(Debug)]
pub struct ManualClock {
    current: Mutex<OffsetDateTime>,
}

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            current: Mutex::new(start),
        }
    }

    pub fn set(&self, to: OffsetDateTime) {
        *self.current.lock().expect("clock lock poisoned") = to;
    }

    pub fn advance(&self, by: time::Duration) {
        let mut current = self.current.lock().expect("clock lock poisoned");
        *current += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.current.lock().expect("clock lock poisoned")
    }
}
