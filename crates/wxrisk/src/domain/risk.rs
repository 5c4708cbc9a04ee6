//! Risk vocabulary and arithmetic, no I/O: Chinese labels of WeChat's `risk_type` values, and the sub-merchant
//! risk score (its formula is documented for operators in `docs/risk.md` — keep the two the same).

use serde::Serialize;

/// WeChat's `risk_type` values (wechatpay-apiv3.md §5.3) with a Chinese label. Unknown values keep WeChat's own
/// `risk_description` (or the code itself).
pub const RISK_LABELS: &[(&str, &str)] = &[
    ("ONE_YUAN_PURCHASES", "一元购"),
    ("MULTI_LEVEL_DISTRIBUTION_REBATE", "多级分销返利"),
    ("PROHIBITED_BUSINESS_CATEGORIES", "经营禁售类目"),
    ("CASH_ADVANCE_VIA_CREDIT_CARD", "信用卡套现"),
    ("INDUCING_USERS_TO_MAKE_PAYMENTS", "诱导用户支付"),
    ("FRAUD", "欺诈"),
    ("MALICIOUS_FAN_COUNT_BOOSTING", "恶意刷粉"),
    ("CROSS_CATEGORY_ACTIVITIES", "跨类目经营活动"),
    ("CROSS_CATEGORY_BUSINESS", "跨类目经营"),
    ("GAMBLING", "赌博"),
    ("LEWD_CONTENT", "色情低俗"),
    ("UNLICENSED_PAYMENT_AND_SETTLEMENT_BUSINESS", "无证经营支付结算业务"),
    ("INVESTMENT", "投资"),
    ("TRANSACTION_DISPUTE", "交易纠纷"),
    ("CROSS_BORDER_USE_OF_DOMESTIC_PAYMENT_API", "境内支付接口跨境使用"),
    ("OVERSEAS_ACTIVITIES_OUTSIDE_THE_BUSINESS_SCOPE_APPROVED_BY_REGULATORY_AUTHORITIES", "超出监管核准范围的境外经营"),
    ("UNUSUAL_TRANSACTION", "交易异常"),
    ("UNLICENSED_BUSINESS", "无证经营"),
    ("WEALTH_INVESTMENT", "理财投资"),
    ("AFFILIATED_TO_A_VIOLATING_ENTITY", "关联违规主体"),
    ("INVOLVED_IN_A_JUDICIAL_CASE", "涉及司法案件"),
    ("INCORRECT_INFORMATION_SUBMITTED", "提交资料不实"),
    ("APPEAL_SUCCESSFUL", "申诉成功"),
    ("REPORTED_BY_OTHERS", "被他人举报"),
    ("VIOLATING_SMART_CATERING_ACTIVITIES", "违规智慧餐饮活动"),
    ("MORE_THAN_ONE_MERCHANT_UNDER_A_SINGLE_MERCHANT_ID", "一个商户号多个经营主体"),
    ("CROSS_REGION_USE_OF_INTERNATIONAL_PAYMENT_API", "跨区域使用境外支付接口"),
    ("UNUSUAL_REAL_TIME_TRANSACTION", "实时交易异常"),
    ("UNACCEPTABLE_DOCUMENTS", "资料不合格"),
    ("LARGE_AMOUNT_TRANSACTION", "大额交易"),
    ("ALL_MERCHANTS_HAVE_CONFIRMED_THE_WILLINGNESS_TO_OPEN_AN_ACCOUNT", "已确认开户意愿"),
    ("UNCONFIRMED_WILLINGNESS_TO_OPEN_AN_ACCOUNT", "未确认开户意愿"),
    ("INACTIVE_TRANSACTION", "交易不活跃"),
    ("OTHER_UNUSUAL_ACTIVITIES", "其他异常行为"),
];

/// The Chinese label of a `risk_type`; for a value this version does not know, WeChat's description, else the code.
pub fn risk_label(risk_type: &str, description: &str) -> String {
    match RISK_LABELS.iter().find(|(code, _)| *code == risk_type) {
        Some((_, label)) => (*label).to_owned(),
        None if !description.trim().is_empty() => description.trim().to_owned(),
        None => risk_type.to_owned(),
    }
}

/// WeChat's `limited_functions` values (`merchant-limitations`) with a Chinese and an English label.
pub const LIMITED_FUNCTION_LABELS: &[(&str, &str, &str)] = &[
    ("NO_TRANSACTION_AND_RECHARGE", "禁止交易和充值", "No transactions or top-ups"),
    ("NO_PAYMENT", "禁止付款", "No payments"),
    ("NO_WITHDRAWAL", "禁止提现", "No withdrawals"),
    ("NO_REFUND", "禁止退款", "No refunds"),
    ("NO_TRANSACTION", "禁止交易", "No transactions"),
    ("NO_PROFIT_SHARING", "禁止分账", "No profit sharing"),
];

/// The label of a limited function in Chinese (`zh`) or English; a value this version does not know stays the code.
pub fn limited_function_label(code: &str, zh: bool) -> String {
    match LIMITED_FUNCTION_LABELS.iter().find(|(known, _, _)| *known == code) {
        Some((_, label_zh, label_en)) => (if zh { *label_zh } else { *label_en }).to_owned(),
        None => code.to_owned(),
    }
}

/// What counts toward a sub-merchant's risk in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RiskFigures {
    pub complaints: i64,
    /// `user_complaint_times` > 1.
    pub repeat_complaints: i64,
    /// WeChat's customer service took part.
    pub platform_assisted: i64,
    /// Refunds made (accepted or done) and their sum in fen.
    pub refunds: i64,
    pub refunded_fen: i64,
    /// Complaints that passed a deadline unmet.
    pub sla_misses: i64,
    pub punishments: i64,
    pub interceptions: i64,
    pub appeals: i64,
}

/// Points per signal, over the last 30 days (see `docs/risk.md`).
pub const COMPLAINT_POINTS: i64 = 2;
pub const REPEAT_POINTS: i64 = 4;
pub const PLATFORM_POINTS: i64 = 6;
pub const SLA_MISS_POINTS: i64 = 5;
pub const PUNISH_POINTS: i64 = 20;
pub const INTERCEPT_POINTS: i64 = 8;
/// One point per this many fen refunded (¥500).
pub const REFUND_FEN_PER_POINT: i64 = 50_000;
pub const LIMITED_POINTS: i64 = 25;
pub const MAX_SCORE: i64 = 100;

/// The score from the last 30 days' figures and whether WeChat limits any function now: 0 (nothing) to 100.
pub fn score(last_30_days: &RiskFigures, limited: bool) -> i64 {
    let f = last_30_days;
    let points = COMPLAINT_POINTS * f.complaints
        + REPEAT_POINTS * f.repeat_complaints
        + PLATFORM_POINTS * f.platform_assisted
        + SLA_MISS_POINTS * f.sla_misses
        + PUNISH_POINTS * f.punishments
        + INTERCEPT_POINTS * f.interceptions
        + f.refunded_fen / REFUND_FEN_PER_POINT
        + if limited { LIMITED_POINTS } else { 0 };
    points.clamp(0, MAX_SCORE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_cover_every_known_risk_type() {
        assert_eq!(RISK_LABELS.len(), wechatpay::enums::RiskType::KNOWN.len());
        for known in wechatpay::enums::RiskType::KNOWN {
            assert!(RISK_LABELS.iter().any(|(code, _)| *code == known.as_str()), "{known:?}");
        }
        assert_eq!(risk_label("FRAUD", "whatever"), "欺诈");
        assert_eq!(risk_label("NEW_KIND", "新的风险"), "新的风险");
        assert_eq!(risk_label("NEW_KIND", ""), "NEW_KIND");
        assert_eq!(LIMITED_FUNCTION_LABELS.len(), wechatpay::enums::LimitedFunction::KNOWN.len());
        for known in wechatpay::enums::LimitedFunction::KNOWN {
            assert_ne!(limited_function_label(known.as_str(), true), known.as_str(), "{known:?}");
        }
        assert_eq!(limited_function_label("NO_REFUND", true), "禁止退款");
        assert_eq!(limited_function_label("NO_REFUND", false), "No refunds");
        assert_eq!(limited_function_label("NO_SOMETHING_NEW", true), "NO_SOMETHING_NEW");
    }

    #[test]
    fn the_score_adds_its_signals_and_stops_at_100() {
        let quiet = RiskFigures::default();
        assert_eq!(score(&quiet, false), 0);
        let some = RiskFigures {
            complaints: 3,
            repeat_complaints: 1,
            platform_assisted: 1,
            sla_misses: 1,
            refunds: 2,
            refunded_fen: 120_000,
            interceptions: 1,
            ..RiskFigures::default()
        };
        assert_eq!(score(&some, false), 6 + 4 + 6 + 5 + 8 + 2);
        assert_eq!(score(&some, true), 31 + 25);
        let bad = RiskFigures { punishments: 5, ..RiskFigures::default() };
        assert_eq!(score(&bad, false), 100);
    }
}
