//! A sub-merchant's limitations (`GET /v3/mch-operation-manage/merchant-limitations/sub-mchid/{sub_mchid}`):
//! which functions WeChat has taken away (`NO_REFUND` matters to automatic refunds) and how to get them back.

use http::Method;
use serde::{Deserialize, Serialize};

use super::path_id;
use crate::client::{ApiRequest, Body, Client};
use crate::enums::LimitedFunction;
use crate::error::Result;

/// No limitation is an answer with empty fields, not an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantLimitations {
    #[serde(default)]
    pub mchid: String,
    #[serde(default)]
    pub limited_functions: Vec<LimitedFunction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_limited_functions: Option<String>,
    #[serde(default)]
    pub recovery_specifications: Vec<RecoverySpecification>,
}

impl MerchantLimitations {
    pub fn is_limited(&self, function: &LimitedFunction) -> bool {
        self.limited_functions.contains(function)
    }
}

/// Why a function was limited, and the way back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoverySpecification {
    #[serde(default)]
    pub limitation_case_id: String,
    #[serde(default)]
    pub limitation_reason_type: String,
    #[serde(default)]
    pub limitation_reason: String,
    #[serde(default)]
    pub limitation_reason_describe: String,
    #[serde(default)]
    pub relate_limitations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_relate_limitations: Option<String>,
    #[serde(default)]
    pub recover_way: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover_way_param: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover_help_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limitation_action_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limitation_start_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limitation_date: Option<String>,
}

impl Client {
    pub async fn merchant_limitations(&self, sub_mchid: &str) -> Result<MerchantLimitations> {
        let target =
            format!("/v3/mch-operation-manage/merchant-limitations/sub-mchid/{}", path_id("sub_mchid", sub_mchid)?);
        self.json(ApiRequest { method: Method::GET, target, body: Body::Empty, encrypted: false, verify: true }).await
    }
}
