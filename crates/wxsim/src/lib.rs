//! A simulator of WeChat Pay (service-provider mode), the official-account API, Tencent Cloud SMS and chat robots.
//!
//! It speaks the real protocols with real signatures so that wxrisk's workflows can be tested end to end on a
//! machine that cannot reach those services. Its endpoints arrive with the simulator issue; until then this crate
//! only reserves its place in the workspace.
