//! PyPI `wechatpayv3` (service-provider mode) against the simulator: if the simulator only agreed with our own
//! crate it would prove nothing. `scripts/test` installs the package in `.venv`.

use serde_json::{Value, json};
use wxsim::keys::SignMode;

use crate::helpers::*;

#[tokio::test]
async fn wechatpayv3_talks_to_the_simulator() {
    let sim = start(SignMode::Both).await;
    let setup = sim.provider();
    let control = Control::new(&sim);
    let created = control.post("/complaints", json!({"sub_mchid": SUB_MCHID, "amount": 500, "notify": false})).await;
    let complaint_id = created["complaint_id"].as_str().expect("id").to_owned();
    let mut callbacks = Vec::new();
    for public_key in [false, true] {
        let rendered = control
            .post("/callbacks/render", json!({"event_type": "COMPLAINT.CREATE", "resource": {"complaint_id": complaint_id, "action_type": "CREATE_COMPLAINT"}, "public_key": public_key}))
            .await;
        callbacks.push(json!({"headers": rendered["headers"], "body": rendered["body"], "public_key": public_key}));
    }
    let request = json!({
        "setup": setup, "complaint_id": complaint_id, "transaction_id": created["transaction_id"], "total": 500,
        "sub_mchid": SUB_MCHID, "callbacks": callbacks,
    });

    let script = format!("{}/tests/it/crosscheck.py", env!("CARGO_MANIFEST_DIR"));
    // The Python client blocks a thread of its own; while this task waits, the runtime keeps serving the simulator.
    let output =
        tokio::task::spawn_blocking(move || crate::support::run_python(&script, &[], request.to_string().as_bytes()))
            .await
            .expect("join");
    let results: Value = serde_json::from_slice(&output).expect("json");

    assert_eq!(
        results["downloaded_serials"],
        json!([setup.platform_cert_serial]),
        "wechatpayv3 decrypted our /v3/certificates"
    );
    assert_eq!(results["detail"]["status"], 200, "and verified our signed answer");
    assert_eq!(results["detail"]["body"]["complaint_id"], complaint_id);
    assert_eq!(results["detail"]["body"]["complainted_mchid"], SUB_MCHID);
    assert_eq!(results["detail_public_key"]["status"], 200, "public-key mode verifies too");
    assert_eq!(results["refund"]["status"], 200);
    assert_eq!(results["refund"]["body"]["status"], "PROCESSING");
    assert_eq!(
        results["refund_again"]["body"]["refund_id"], results["refund"]["body"]["refund_id"],
        "the same out_refund_no, the same refund"
    );
    assert_eq!(results["refund_query"]["body"]["out_refund_no"], "PY-REFUND-1");
    for callback in results["callbacks"].as_array().expect("list") {
        assert_eq!(
            callback["accepted"]["resource"]["complaint_id"], complaint_id,
            "wechatpayv3's callback() accepts ours"
        );
        assert_eq!(callback["accepted"]["event_type"], "COMPLAINT.CREATE");
        assert_eq!(callback["tampered"], Value::Null, "and refuses a tampered one");
    }
    sim.stop().await;
}
