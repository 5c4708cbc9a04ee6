//! WeChat's enumerations, open-ended: every one has an `Unknown(String)` arm, because WeChat adds values without
//! notice and a new value must never make a callback or a response unreadable.

macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this version does not know, kept as sent.
            Unknown(String),
        }

        impl $name {
            /// Every value this version knows.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Unknown(text) => text,
                }
            }

            pub fn parse(text: &str) -> Self {
                match text {
                    $($text => $name::$variant,)+
                    other => $name::Unknown(other.to_owned()),
                }
            }

            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Unknown(_))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Ok($name::parse(&text))
            }
        }
    };
}

open_enum! {
    /// A notification's `event_type`.
    EventType {
        ComplaintCreate = "COMPLAINT.CREATE",
        ComplaintStateChange = "COMPLAINT.STATE_CHANGE",
        ViolationPunish = "VIOLATION.PUNISH",
        ViolationIntercept = "VIOLATION.INTERCEPT",
        ViolationAppeal = "VIOLATION.APPEAL",
        RefundSuccess = "REFUND.SUCCESS",
        RefundAbnormal = "REFUND.ABNORMAL",
        RefundClosed = "REFUND.CLOSED",
    }
}

open_enum! {
    /// What happened to a complaint (`action_type` of a complaint notification): all 13 documented values.
    ActionType {
        CreateComplaint = "CREATE_COMPLAINT",
        ContinueComplaint = "CONTINUE_COMPLAINT",
        UserResponse = "USER_RESPONSE",
        ResponseByPlatform = "RESPONSE_BY_PLATFORM",
        SellerRefund = "SELLER_REFUND",
        MerchantResponse = "MERCHANT_RESPONSE",
        MerchantConfirmComplete = "MERCHANT_CONFIRM_COMPLETE",
        UserApplyPlatformService = "USER_APPLY_PLATFORM_SERVICE",
        UserCancelPlatformService = "USER_CANCEL_PLATFORM_SERVICE",
        PlatformServiceFinished = "PLATFORM_SERVICE_FINISHED",
        MerchantApproveRefund = "MERCHANT_APPROVE_REFUND",
        MerchantRejectRefund = "MERCHANT_REJECT_REFUND",
        RefundSuccess = "REFUND_SUCCESS",
    }
}

open_enum! {
    /// `complaint_state`.
    ComplaintState {
        Pending = "PENDING",
        Processing = "PROCESSING",
        Processed = "PROCESSED",
    }
}

open_enum! {
    /// `problem_type` of a complaint.
    ProblemType {
        /// 申请退款: the fast-refund flow (`update-refund-progress` applies).
        Refund = "REFUND",
        ServiceNotWork = "SERVICE_NOT_WORK",
        Others = "OTHERS",
    }
}

open_enum! {
    /// `complaint_media_list[].media_type`.
    MediaType {
        UserComplaintImage = "USER_COMPLAINT_IMAGE",
        OperationImage = "OPERATION_IMAGE",
    }
}

open_enum! {
    /// `service_order_info[].state` (WeChat Pay Score orders).
    ServiceOrderState {
        Doing = "DOING",
        Revoked = "REVOKED",
        WaitPay = "WAITPAY",
        Done = "DONE",
    }
}

open_enum! {
    /// `operate_type` of a negotiation-history entry (WeChat's own spellings, `COMFIRM` and `RERUND` included).
    OperateType {
        UserCreateComplaint = "USER_CREATE_COMPLAINT",
        UserContinueComplaint = "USER_CONTINUE_COMPLAINT",
        UserResponse = "USER_RESPONSE",
        PlatformResponse = "PLATFORM_RESPONSE",
        MerchantResponse = "MERCHANT_RESPONSE",
        MerchantConfirmComplete = "MERCHANT_CONFIRM_COMPLETE",
        UserCreateComplaintSystemMessage = "USER_CREATE_COMPLAINT_SYSTEM_MESSAGE",
        ComplaintFullRefundedSystemMessage = "COMPLAINT_FULL_REFUNDED_SYSTEM_MESSAGE",
        UserContinueComplaintSystemMessage = "USER_CONTINUE_COMPLAINT_SYSTEM_MESSAGE",
        UserRevokeComplaint = "USER_REVOKE_COMPLAINT",
        UserComfirmComplaint = "USER_COMFIRM_COMPLAINT",
        PlatformHelpApplication = "PLATFORM_HELP_APPLICATION",
        UserApplyPlatformHelp = "USER_APPLY_PLATFORM_HELP",
        MerchantApproveRefund = "MERCHANT_APPROVE_REFUND",
        MerchantRefuseRerund = "MERCHANT_REFUSE_RERUND",
        UserSubmitSatisfaction = "USER_SUBMIT_SATISFACTION",
        ServiceOrderCancel = "SERVICE_ORDER_CANCEL",
        ServiceOrderComplete = "SERVICE_ORDER_COMPLETE",
        ComplaintPartialRefundedSystemMessage = "COMPLAINT_PARTIAL_REFUNDED_SYSTEM_MESSAGE",
        ComplaintRefundReceivedSystemMessage = "COMPLAINT_REFUND_RECEIVED_SYSTEM_MESSAGE",
        ComplaintEntrustedRefundSystemMessage = "COMPLAINT_ENTRUSTED_REFUND_SYSTEM_MESSAGE",
        UserApplyPlatformService = "USER_APPLY_PLATFORM_SERVICE",
        UserCancelPlatformService = "USER_CANCEL_PLATFORM_SERVICE",
        PlatformServiceFinished = "PLATFORM_SERVICE_FINISHED",
        UserClickResponse = "USER_CLICK_RESPONSE",
    }
}

open_enum! {
    /// A refund's `status` / `refund_status`.
    RefundStatus {
        Success = "SUCCESS",
        Closed = "CLOSED",
        Processing = "PROCESSING",
        Abnormal = "ABNORMAL",
    }
}

open_enum! {
    /// Where refunded money went.
    RefundChannel {
        Original = "ORIGINAL",
        Balance = "BALANCE",
        OtherBalance = "OTHER_BALANCE",
        OtherBankcard = "OTHER_BANKCARD",
    }
}

open_enum! {
    /// `risk_type` of a violation notice.
    RiskType {
        OneYuanPurchases = "ONE_YUAN_PURCHASES",
        MultiLevelDistributionRebate = "MULTI_LEVEL_DISTRIBUTION_REBATE",
        ProhibitedBusinessCategories = "PROHIBITED_BUSINESS_CATEGORIES",
        CashAdvanceViaCreditCard = "CASH_ADVANCE_VIA_CREDIT_CARD",
        InducingUsersToMakePayments = "INDUCING_USERS_TO_MAKE_PAYMENTS",
        Fraud = "FRAUD",
        MaliciousFanCountBoosting = "MALICIOUS_FAN_COUNT_BOOSTING",
        CrossCategoryActivities = "CROSS_CATEGORY_ACTIVITIES",
        CrossCategoryBusiness = "CROSS_CATEGORY_BUSINESS",
        Gambling = "GAMBLING",
        LewdContent = "LEWD_CONTENT",
        UnlicensedPaymentAndSettlementBusiness = "UNLICENSED_PAYMENT_AND_SETTLEMENT_BUSINESS",
        Investment = "INVESTMENT",
        TransactionDispute = "TRANSACTION_DISPUTE",
        CrossBorderUseOfDomesticPaymentApi = "CROSS_BORDER_USE_OF_DOMESTIC_PAYMENT_API",
        OverseasActivitiesOutsideTheBusinessScope =
            "OVERSEAS_ACTIVITIES_OUTSIDE_THE_BUSINESS_SCOPE_APPROVED_BY_REGULATORY_AUTHORITIES",
        UnusualTransaction = "UNUSUAL_TRANSACTION",
        UnlicensedBusiness = "UNLICENSED_BUSINESS",
        WealthInvestment = "WEALTH_INVESTMENT",
        AffiliatedToAViolatingEntity = "AFFILIATED_TO_A_VIOLATING_ENTITY",
        InvolvedInAJudicialCase = "INVOLVED_IN_A_JUDICIAL_CASE",
        IncorrectInformationSubmitted = "INCORRECT_INFORMATION_SUBMITTED",
        AppealSuccessful = "APPEAL_SUCCESSFUL",
        ReportedByOthers = "REPORTED_BY_OTHERS",
        ViolatingSmartCateringActivities = "VIOLATING_SMART_CATERING_ACTIVITIES",
        MoreThanOneMerchantUnderASingleMerchantId = "MORE_THAN_ONE_MERCHANT_UNDER_A_SINGLE_MERCHANT_ID",
        CrossRegionUseOfInternationalPaymentApi = "CROSS_REGION_USE_OF_INTERNATIONAL_PAYMENT_API",
        UnusualRealTimeTransaction = "UNUSUAL_REAL_TIME_TRANSACTION",
        UnacceptableDocuments = "UNACCEPTABLE_DOCUMENTS",
        LargeAmountTransaction = "LARGE_AMOUNT_TRANSACTION",
        AllMerchantsHaveConfirmedTheWillingnessToOpenAnAccount =
            "ALL_MERCHANTS_HAVE_CONFIRMED_THE_WILLINGNESS_TO_OPEN_AN_ACCOUNT",
        UnconfirmedWillingnessToOpenAnAccount = "UNCONFIRMED_WILLINGNESS_TO_OPEN_AN_ACCOUNT",
        InactiveTransaction = "INACTIVE_TRANSACTION",
        OtherUnusualActivities = "OTHER_UNUSUAL_ACTIVITIES",
    }
}

open_enum! {
    /// Functions WeChat can take from a sub-merchant (`limited_functions`).
    LimitedFunction {
        NoTransactionAndRecharge = "NO_TRANSACTION_AND_RECHARGE",
        NoPayment = "NO_PAYMENT",
        NoWithdrawal = "NO_WITHDRAWAL",
        NoRefund = "NO_REFUND",
        NoTransaction = "NO_TRANSACTION",
        NoProfitSharing = "NO_PROFIT_SHARING",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_thirteen_action_types_round_trip() {
        assert_eq!(ActionType::KNOWN.len(), 13);
        for action in ActionType::KNOWN {
            assert_eq!(&ActionType::parse(action.as_str()), action);
            let json = serde_json::to_string(action).expect("json");
            assert_eq!(&serde_json::from_str::<ActionType>(&json).expect("back"), action);
        }
    }

    #[test]
    fn unknown_values_survive() {
        let value: ActionType = serde_json::from_str("\"SOMETHING_NEW\"").expect("parses");
        assert_eq!(value, ActionType::Unknown("SOMETHING_NEW".into()));
        assert!(!value.is_known());
        assert_eq!(serde_json::to_string(&value).expect("json"), "\"SOMETHING_NEW\"");
        assert_eq!(RiskType::KNOWN.len(), 34);
        assert_eq!(OperateType::parse("USER_COMFIRM_COMPLAINT"), OperateType::UserComfirmComplaint);
    }
}
