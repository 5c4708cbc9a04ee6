//! The simulator driven over real HTTP: WeChat Pay with `crates/wechatpay` as the client, the channel services with
//! their own signatures, and — in `crosscheck` — PyPI `wechatpayv3` as a client we did not write.

mod channels;
mod crosscheck;
mod helpers;
#[path = "../../../../testdata/sim_control.rs"]
mod sim_control;
#[path = "../../../../testdata/test_support.rs"]
mod support;
mod wechatpay_api;
mod wechatpay_callbacks;
