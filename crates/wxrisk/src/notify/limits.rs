//! How fast each kind of destination may be sent to, checked before sending (channels.md §6): WeCom and DingTalk
//! robots 20 a minute (DingTalk then blocks for ten minutes), Feishu 100 a minute and 5 a second, Tencent SMS one
//! message per number per 30 seconds and ten a day, a mailbox a few a minute (163's spam rules bite fast).
//!
//! Contract: [`next_free_slot`] counts what this destination was sent recently (across every wxrisk instance: it
//! reads the deliveries table) and says when the next message may go, or `None` when now.

use sqlx::AnyConnection;

use crate::domain::channel::ChannelKind;
use crate::store::{StoreResult, deliveries};

/// At most `max` messages in any `span_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub span_ms: i64,
    pub max: usize,
}

const MINUTE: i64 = 60_000;

pub fn windows(kind: ChannelKind) -> &'static [Window] {
    match kind {
        ChannelKind::WecomRobot | ChannelKind::DingtalkRobot => &[Window { span_ms: MINUTE, max: 20 }],
        ChannelKind::FeishuRobot => &[Window { span_ms: MINUTE, max: 100 }, Window { span_ms: 1000, max: 5 }],
        // A rolling day of ten never breaks Tencent's ten per calendar day.
        ChannelKind::TencentSms => &[Window { span_ms: 30_000, max: 1 }, Window { span_ms: 86_400_000, max: 10 }],
        ChannelKind::Email => &[Window { span_ms: MINUTE, max: 10 }],
        ChannelKind::WechatTemplate => &[Window { span_ms: MINUTE, max: 600 }],
        ChannelKind::Webhook => &[Window { span_ms: 1000, max: 50 }],
    }
}

/// When the next message to this destination may be sent; `None`: now.
pub async fn next_free_slot(
    conn: &mut AnyConnection,
    kind: ChannelKind,
    channel_id: i64,
    recipient: &str,
    now: i64,
) -> StoreResult<Option<i64>> {
    let windows = windows(kind);
    let longest = windows.iter().map(|w| w.span_ms).max().unwrap_or(0);
    let sent = deliveries::sent_since(conn, channel_id, recipient, now - longest).await?;
    Ok(free_at(windows, &sent, now))
}

/// Pure part: `sent` are the send times (ascending) within the longest window.
pub fn free_at(windows: &[Window], sent: &[i64], now: i64) -> Option<i64> {
    let mut until: Option<i64> = None;
    for window in windows {
        let recent: Vec<i64> = sent.iter().copied().filter(|at| *at > now - window.span_ms).collect();
        if recent.len() >= window.max {
            // Free once the oldest of the last `max` sends leaves the window.
            let oldest_blocking = recent[recent.len() - window.max];
            let free = oldest_blocking + window.span_ms + 1;
            until = Some(until.map_or(free, |u| u.max(free)));
        }
    }
    until
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_free_up_when_the_oldest_send_leaves() {
        let robot = windows(ChannelKind::WecomRobot);
        let sent: Vec<i64> = (0..20).map(|i| 1_000 + i * 100).collect();
        assert_eq!(free_at(robot, &sent[..19], 5_000), None, "19 in a minute: one more may go");
        assert_eq!(free_at(robot, &sent, 5_000), Some(1_000 + 60_000 + 1));
        assert_eq!(free_at(robot, &sent, 61_001), None);

        let sms = windows(ChannelKind::TencentSms);
        assert_eq!(free_at(sms, &[10_000], 20_000), Some(40_001), "one per 30 seconds");
        let day: Vec<i64> = (0..10).map(|i| i * 60_000).collect();
        assert_eq!(free_at(sms, &day, 3_600_000), Some(86_400_001), "ten a day");
    }
}
