//! Per-account stored-volume quotas (issue 7): at most so many events per UTC day (counted by
//! `received_at`) and at most so many bytes of stored events (each event's stored JSON body).
//! Both are off unless `logbook limits set --events-per-day N / --stored-bytes N` stored one.
//!
//! Each store's writer keeps one usage row per account, updated in the transaction that stores
//! the events (under the account's lock on PostgreSQL, under SQLite's single writer), so nodes
//! writing at once can never overshoot. A request that would go over is refused whole before
//! any of its events is written; the other requests of the same group commit are unaffected.

use time::OffsetDateTime;

use crate::AccountId;
use crate::store::StoreError;

const SECONDS_PER_DAY: i64 = 86_400;

/// Which quota refused a request (the `field` of the error answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeQuotaField {
    EventsPerDay,
    StoredBytes,
}

impl VolumeQuotaField {
    /// The name used by the CLI flag, the stored column and the error's `field`.
    pub fn name(self) -> &'static str {
        match self {
            VolumeQuotaField::EventsPerDay => "events_per_day",
            VolumeQuotaField::StoredBytes => "stored_bytes",
        }
    }
}

/// The day an instant falls on, as days since 1970-01-01 UTC.
pub fn utc_day_of(at: OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(SECONDS_PER_DAY)
}

/// Seconds from `at` to the next UTC midnight (1 ..= 86 400), when a day's count starts over.
pub fn seconds_until_next_utc_day(at: OffsetDateTime) -> u64 {
    (SECONDS_PER_DAY - at.unix_timestamp().rem_euclid(SECONDS_PER_DAY)) as u64
}

/// One account's quotas as stored (`None`: no quota of that kind).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VolumeQuota {
    pub events_per_day: Option<u64>,
    pub stored_bytes: Option<u64>,
}

impl VolumeQuota {
    pub fn is_unlimited(&self) -> bool {
        self.events_per_day.is_none() && self.stored_bytes.is_none()
    }
}

/// One account's counted usage: the events stored on `usage_day` and the bytes stored in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VolumeUsage {
    /// Days since 1970-01-01 UTC of the newest counted event.
    pub usage_day: i64,
    pub events_on_usage_day: u64,
    pub stored_bytes: u64,
}

impl VolumeUsage {
    /// Counts one stored event. An event dated before the counted day (another node's clock a
    /// little behind) is counted toward the counted day: the count never goes under.
    pub fn count(&mut self, received_at: OffsetDateTime, body_bytes: u64) {
        let day = utc_day_of(received_at);
        if day > self.usage_day {
            self.usage_day = day;
            self.events_on_usage_day = 0;
        }
        self.events_on_usage_day += 1;
        self.stored_bytes += body_bytes;
    }
}

/// What one request would add to one account: only its new events (a duplicate of a stored
/// idempotency key adds nothing, so a retry of a stored batch always gets its receipts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestVolume {
    pub events: u64,
    pub bytes: u64,
    /// The newest `received_at` among them: the day they count toward.
    pub received_at: Option<OffsetDateTime>,
}

impl RequestVolume {
    pub fn add(&mut self, received_at: OffsetDateTime, body_bytes: u64) {
        self.events += 1;
        self.bytes += body_bytes;
        self.received_at = Some(
            self.received_at
                .map_or(received_at, |seen| seen.max(received_at)),
        );
    }
}

/// Refuses `request` if storing it on top of `usage` would go over `quota`.
pub fn check_request(
    account: &AccountId,
    quota: &VolumeQuota,
    usage: &VolumeUsage,
    request: &RequestVolume,
) -> Result<(), StoreError> {
    let Some(received_at) = request.received_at else {
        return Ok(());
    };
    if let Some(limit) = quota.events_per_day {
        let day = utc_day_of(received_at);
        let already = if day > usage.usage_day {
            0
        } else {
            usage.events_on_usage_day
        };
        if already.saturating_add(request.events) > limit {
            return Err(StoreError::VolumeQuotaExceeded {
                account: account.clone(),
                field: VolumeQuotaField::EventsPerDay,
                limit,
                retry_after_seconds: Some(seconds_until_next_utc_day(received_at)),
            });
        }
    }
    if let Some(limit) = quota.stored_bytes
        && usage.stored_bytes.saturating_add(request.bytes) > limit
    {
        return Err(StoreError::VolumeQuotaExceeded {
            account: account.clone(),
            field: VolumeQuotaField::StoredBytes,
            limit,
            retry_after_seconds: None,
        });
    }
    Ok(())
}

/// The refusal's message (`StoreError::VolumeQuotaExceeded`), which the API sends as is.
pub fn refusal_message(account: &AccountId, field: VolumeQuotaField, limit: u64) -> String {
    match field {
        VolumeQuotaField::EventsPerDay => format!(
            "account {account} may store at most {limit} events per UTC day (quota events_per_day); \
             this request would go over it, so none of its events was stored; the count starts \
             over at the next UTC midnight"
        ),
        VolumeQuotaField::StoredBytes => format!(
            "account {account} may store at most {limit} bytes of events (quota stored_bytes); \
             this request would go over it, so none of its events was stored; ask the operator \
             to raise the quota"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_day_starts_over_at_utc_midnight() {
        let late = datetime!(2026-03-01 23:59:30 UTC);
        assert_eq!(seconds_until_next_utc_day(late), 30);
        assert_eq!(
            utc_day_of(late) + 1,
            utc_day_of(datetime!(2026-03-02 00:00 UTC))
        );
        assert_eq!(
            seconds_until_next_utc_day(datetime!(2026-03-02 00:00 UTC)),
            86_400
        );
    }

    #[test]
    fn a_request_reaching_the_quota_exactly_passes_and_one_more_event_is_refused() {
        let account = AccountId::parse("acme").unwrap();
        let quota = VolumeQuota {
            events_per_day: Some(3),
            stored_bytes: None,
        };
        let at = datetime!(2026-03-01 12:00 UTC);
        let mut usage = VolumeUsage::default();
        usage.count(at, 10);
        let mut request = RequestVolume::default();
        request.add(at, 10);
        request.add(at, 10);
        check_request(&account, &quota, &usage, &request).unwrap();
        request.add(at, 10);
        let refused = check_request(&account, &quota, &usage, &request).unwrap_err();
        assert!(matches!(
            refused,
            StoreError::VolumeQuotaExceeded {
                field: VolumeQuotaField::EventsPerDay,
                limit: 3,
                retry_after_seconds: Some(43_200),
                ..
            }
        ));
        // The next day, yesterday's count no longer applies.
        let mut tomorrow = RequestVolume::default();
        tomorrow.add(datetime!(2026-03-02 00:00 UTC), 10);
        tomorrow.add(datetime!(2026-03-02 00:00 UTC), 10);
        tomorrow.add(datetime!(2026-03-02 00:00 UTC), 10);
        check_request(&account, &quota, &usage, &tomorrow).unwrap();
    }
}
