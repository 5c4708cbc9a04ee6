//! The simulator's business clock: real time plus an offset the control API can move forward. It times refund
//! completion, per-minute limits, token expiry and the once-a-day intercept rule. Wire-protocol timestamps
//! (signatures) always use real time, so moving the clock never makes a signature stale.

use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Debug, Default)]
pub struct SimClock {
    offset_ms: AtomicI64,
}

impl SimClock {
    /// Simulated now, Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        real_now_ms() + self.offset_ms.load(Ordering::SeqCst)
    }

    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    pub fn advance_ms(&self, ms: i64) {
        self.offset_ms.fetch_add(ms.max(0), Ordering::SeqCst);
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::SeqCst)
    }
}

pub fn real_now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub fn real_now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

const CHINA: time::UtcOffset = match time::UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => time::UtcOffset::UTC,
};

/// RFC 3339 in China time, as WeChat writes times.
pub fn rfc3339_china(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(CHINA)
        .replace_nanosecond(0)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The calendar day in China (days since the epoch), for once-a-day rules.
pub fn china_day(ms: i64) -> i64 {
    (ms + 8 * 3_600_000).div_euclid(86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn china_time() {
        assert_eq!(rfc3339_china(0), "1970-01-01T08:00:00+08:00");
        // 15:59:59 UTC is 23:59:59 in China; one second later is the next China day.
        let before_midnight = 1_764_259_199_000;
        assert_eq!(china_day(before_midnight) + 1, china_day(before_midnight + 1000));
    }

    #[test]
    fn clock_moves_forward_only() {
        let clock = SimClock::default();
        let before = clock.now_ms();
        clock.advance_ms(3_600_000);
        clock.advance_ms(-5);
        assert!(clock.now_ms() - before >= 3_600_000);
    }
}
