//! Time, injected: the app reads the clock only through [`Clock`], so tests can move through retry schedules and
//! deadlines without sleeping. All stored times are Unix milliseconds in UTC.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let now = time::OffsetDateTime::now_utc();
        i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(now_ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(now_ms)))
    }

    /// Starting at the real current time.
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now_ms())
    }

    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// China Standard Time, UTC+8, no daylight saving: how every time is shown to operators.
pub const SHANGHAI: time::UtcOffset = match time::UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => time::UtcOffset::UTC,
};

/// RFC 3339 in Asia/Shanghai, e.g. `2026-11-27T13:26:46.123+08:00`.
pub fn format_shanghai(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(SHANGHAI);
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A time given by an operator: RFC 3339 (`2026-11-27T09:00:00+08:00`), or a date (`2026-11-27`) meaning that day
/// in Asia/Shanghai — its start, or with `end_of_day` the start of the next day (for exclusive upper bounds).
pub fn parse_operator_time(text: &str, end_of_day: bool) -> Option<i64> {
    let text = text.trim();
    if let Ok(at) = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok();
    }
    let date = time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    let date = if end_of_day { date.next_day()? } else { date };
    Some(date.midnight().assume_offset(SHANGHAI).unix_timestamp() * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_times() {
        assert_eq!(parse_operator_time("2025-11-27T12:26:46.123+08:00", false), Some(1_764_217_606_123));
        assert_eq!(parse_operator_time("1970-01-01", false), Some(-8 * 3_600_000));
        assert_eq!(parse_operator_time("1970-01-01", true), Some(16 * 3_600_000));
        assert_eq!(parse_operator_time("yesterday", false), None);
        assert_eq!(parse_operator_time("2025-02-30", false), None);
    }

    #[test]
    fn shanghai_format() {
        assert_eq!(format_shanghai(0), "1970-01-01T08:00:00+08:00");
        assert_eq!(format_shanghai(1_764_217_606_123), "2025-11-27T12:26:46.123+08:00");
    }

    #[test]
    fn manual_clock_moves_when_told() {
        let clock = ManualClock::new(1000);
        let shared = clock.clone();
        clock.advance(std::time::Duration::from_secs(2));
        assert_eq!(shared.now_ms(), 3000);
    }
}
