//! Official account, Tencent Cloud SMS, chat robots and webhook receivers, each with its own protocol and errors.

use protocols::{dingtalk, feishu, standard_webhooks, tc3};
use serde_json::{Value, json};
use wxsim::keys::SignMode;

use crate::helpers::*;

async fn post_json(url: &str, body: &Value) -> Value {
    reqwest::Client::new().post(url).json(body).send().await.expect("POST").json().await.expect("json")
}

#[tokio::test]
async fn official_account_tokens_and_template_messages() {
    let sim = start(SignMode::Certificate).await;
    let control = Control::new(&sim);
    let base = sim.base_url();
    let appid = "wx1234567890abcdef";
    let secret = "0123456789abcdef0123456789abcdef";
    control
        .post("/oa/accounts", json!({"appid": appid, "secret": secret, "templates": {"TPL1": ["thing1", "character_string2", "amount3", "time4"]}, "followers": ["oFOLLOWER0000000000000000001"]}))
        .await;

    // Classic tokens: each call replaces the previous one.
    let classic =
        |secret: &str| format!("{base}/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={secret}");
    let wrong: Value = reqwest::get(classic("bad")).await.expect("GET").json().await.expect("json");
    assert_eq!(wrong["errcode"], 40001);
    let first: Value = reqwest::get(classic(secret)).await.expect("GET").json().await.expect("json");
    let second: Value = reqwest::get(classic(secret)).await.expect("GET").json().await.expect("json");
    assert_ne!(first["access_token"], second["access_token"]);
    assert_eq!(first["expires_in"], 7200);

    // Stable tokens: the same one while valid, and untouched by classic calls.
    let stable_body = json!({"grant_type": "client_credential", "appid": appid, "secret": secret});
    let stable = post_json(&format!("{base}/cgi-bin/stable_token"), &stable_body).await;
    let again = post_json(&format!("{base}/cgi-bin/stable_token"), &stable_body).await;
    assert_eq!(stable["access_token"], again["access_token"]);
    let token = stable["access_token"].as_str().expect("token").to_owned();
    let unknown_app = post_json(
        &format!("{base}/cgi-bin/stable_token"),
        &json!({"grant_type": "client_credential", "appid": "wx0000000000000000", "secret": secret}),
    )
    .await;
    assert_eq!(unknown_app["errcode"], 40013);

    let send = |token: &str, body: Value| {
        let url = format!("{base}/cgi-bin/message/template/send?access_token={token}");
        async move { post_json(&url, &body).await }
    };
    let message = |touser: &str, template: &str, amount: &str| {
        json!({"touser": touser, "template_id": template, "client_msg_id": "complaint-1-ops",
               "data": {"thing1": {"value": "一号店收到新投诉"}, "character_string2": {"value": "200201820200101080076610000"},
                        "amount3": {"value": amount}, "time4": {"value": "2026年11月27日 15:01"}}})
    };
    let ok = send(&token, message("oFOLLOWER0000000000000000001", "TPL1", "¥9.90")).await;
    assert_eq!(ok["errcode"], 0, "{ok}");
    let deduped = send(&token, message("oFOLLOWER0000000000000000001", "TPL1", "¥9.90")).await;
    assert_eq!(deduped["msgid"], ok["msgid"], "client_msg_id deduplicates");
    assert_eq!(control.get("/oa/messages").await.as_array().map(Vec::len), Some(1));
    assert_eq!(send(&token, message("oSTRANGER", "TPL1", "¥9.90")).await["errcode"], 43004);
    assert_eq!(send(&token, message("oFOLLOWER0000000000000000001", "TPL9", "¥9.90")).await["errcode"], 40037);
    assert_eq!(send(&token, message("oFOLLOWER0000000000000000001", "TPL1", "九块九")).await["errcode"], 47003);
    assert_eq!(send("not-a-token", message("oFOLLOWER0000000000000000001", "TPL1", "¥1")).await["errcode"], 40001);
    let missing = post_json(&format!("{base}/cgi-bin/message/template/send"), &message("o", "TPL1", "¥1")).await;
    assert_eq!(missing["errcode"], 41001);

    control.post("/oa/expire-tokens", json!({"appid": appid})).await;
    assert_eq!(send(&token, message("oFOLLOWER0000000000000000001", "TPL1", "¥1")).await["errcode"], 42001);
    let renewed = post_json(&format!("{base}/cgi-bin/stable_token"), &stable_body).await;
    assert_ne!(renewed["access_token"], stable["access_token"]);
    sim.stop().await;
}

/// A SendSms request, TC3-signed with our signer (itself checked against Tencent's published vectors).
async fn send_sms(base: &str, secret_id: &str, secret_key: &str, body: &Value, timestamp: i64) -> Value {
    let body = body.to_string();
    let host = base.trim_start_matches("http://");
    let headers = [("content-type", "application/json"), ("host", host)];
    let signature = tc3::sign(
        &tc3::Tc3Request {
            method: "POST",
            query: "",
            headers: &headers,
            body: body.as_bytes(),
            service: "sms",
            timestamp,
        },
        secret_key,
    );
    reqwest::Client::new()
        .post(format!("{base}/"))
        .header("content-type", "application/json")
        .header("authorization", tc3::authorization(secret_id, "sms", &signature))
        .header("x-tc-action", "SendSms")
        .header("x-tc-version", "2021-01-11")
        .header("x-tc-region", "ap-guangzhou")
        .header("x-tc-timestamp", timestamp.to_string())
        .body(body)
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn tencent_sms_checks_signature_app_sign_template_and_limits() {
    let sim = start(SignMode::Certificate).await;
    let control = Control::new(&sim);
    let base = sim.base_url();
    let (id, key) = ("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE");
    control.post("/sms/apps", json!({"sdk_app_id": "1400006666", "secret_id": id, "secret_key": key, "sign_names": ["腾讯云"], "templates": {"1110": 2}})).await;
    let body = |phones: Value, params: Value| json!({"PhoneNumberSet": phones, "SmsSdkAppId": "1400006666", "TemplateId": "1110", "SignName": "腾讯云", "TemplateParamSet": params, "SessionContext": "delivery-42"});

    let ok = send_sms(
        &base,
        id,
        key,
        &body(json!(["+8613800138000", "13800138001", "12345"]), json!(["一号店", "9.90"])),
        now(),
    )
    .await;
    let statuses = ok["Response"]["SendStatusSet"].as_array().expect("statuses");
    let codes: Vec<&str> = statuses.iter().map(|s| s["Code"].as_str().expect("code")).collect();
    assert_eq!(codes, ["Ok", "Ok", "InvalidParameterValue.IncorrectPhoneNumber"], "per-number status, HTTP 200");
    assert_eq!(statuses[0]["SessionContext"], "delivery-42");
    assert!(statuses[0]["SerialNo"].as_str().is_some_and(|s| !s.is_empty()));

    let again = send_sms(&base, id, key, &body(json!(["+8613800138000"]), json!(["一号店", "9.90"])), now()).await;
    assert_eq!(again["Response"]["SendStatusSet"][0]["Code"], "LimitExceeded.PhoneNumberThirtySecondLimit");

    let error = |response: &Value| response["Response"]["Error"]["Code"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        error(&send_sms(&base, id, "wrong-key", &body(json!(["+8613800138002"]), json!(["a", "b"])), now()).await),
        "AuthFailure.SignatureFailure"
    );
    assert_eq!(
        error(&send_sms(&base, "AKIDunknown", key, &body(json!(["+8613800138002"]), json!(["a", "b"])), now()).await),
        "AuthFailure.SecretIdNotFound"
    );
    assert_eq!(
        error(&send_sms(&base, id, key, &body(json!(["+8613800138002"]), json!(["a", "b"])), now() - 600).await),
        "AuthFailure.SignatureExpire"
    );
    assert_eq!(
        error(&send_sms(&base, id, key, &body(json!(["+8613800138002"]), json!(["a"])), now()).await),
        "FailedOperation.TemplateParamSetNotMatchApprovedTemplate"
    );
    let mut unsigned = body(json!(["+8613800138002"]), json!(["a", "b"]));
    unsigned["SignName"] = json!("别的签名");
    assert_eq!(
        error(&send_sms(&base, id, key, &unsigned, now()).await),
        "FailedOperation.SignatureIncorrectOrUnapproved"
    );
    let mut template = body(json!(["+8613800138002"]), json!(["a", "b"]));
    template["TemplateId"] = json!("9999");
    assert_eq!(
        error(&send_sms(&base, id, key, &template, now()).await),
        "FailedOperation.TemplateIncorrectOrUnapproved"
    );
    let many: Vec<String> = (0..201).map(|i| format!("+86138{i:08}")).collect();
    assert_eq!(
        error(&send_sms(&base, id, key, &body(json!(many), json!(["a", "b"])), now()).await),
        "LimitExceeded.PhoneNumberCountLimit"
    );

    // Ten a day per number: vary the content so the 30-second rule does not apply.
    for i in 0..9 {
        let answer =
            send_sms(&base, id, key, &body(json!(["+8613800138000"]), json!(["x", format!("{i}")])), now()).await;
        assert_eq!(answer["Response"]["SendStatusSet"][0]["Code"], "Ok", "{i}: {answer}");
    }
    let eleventh = send_sms(&base, id, key, &body(json!(["+8613800138000"]), json!(["x", "last"])), now()).await;
    assert_eq!(eleventh["Response"]["SendStatusSet"][0]["Code"], "LimitExceeded.PhoneNumberDailyLimit");
    assert_eq!(control.get("/sms/messages").await.as_array().map(Vec::len), Some(2 + 9));
    sim.stop().await;
}

#[tokio::test]
async fn robots_check_signatures_and_limits() {
    let sim = start(SignMode::Certificate).await;
    let control = Control::new(&sim);
    let base = sim.base_url();
    control.post("/robots", json!({"kind": "wecom", "token": "wecom-key"})).await;
    control
        .post("/robots", json!({"kind": "dingtalk", "token": "ding-token", "secret": "SECtestsecret0123456789"}))
        .await;
    control.post("/robots", json!({"kind": "feishu", "token": "lark-token", "secret": "testsecret0123456789"})).await;

    let text = json!({"msgtype": "markdown", "markdown": {"content": "**新投诉** 一号店"}});
    assert_eq!(post_json(&format!("{base}/cgi-bin/webhook/send?key=wecom-key"), &text).await["errcode"], 0);
    assert_eq!(post_json(&format!("{base}/cgi-bin/webhook/send?key=nope"), &text).await["errcode"], 93000);
    let too_long = json!({"msgtype": "text", "text": {"content": "x".repeat(2049)}});
    assert_eq!(post_json(&format!("{base}/cgi-bin/webhook/send?key=wecom-key"), &too_long).await["errcode"], 40058);
    for _ in 0..19 {
        assert_eq!(post_json(&format!("{base}/cgi-bin/webhook/send?key=wecom-key"), &text).await["errcode"], 0);
    }
    assert_eq!(
        post_json(&format!("{base}/cgi-bin/webhook/send?key=wecom-key"), &text).await["errcode"],
        45009,
        "20 a minute"
    );

    let ding = json!({"msgtype": "text", "text": {"content": "新投诉"}});
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let signed = format!(
        "{base}/robot/send?access_token=ding-token{}",
        dingtalk::query_suffix("SECtestsecret0123456789", now_ms)
    );
    assert_eq!(post_json(&signed, &ding).await["errcode"], 0);
    let forged = format!("{base}/robot/send?access_token=ding-token{}", dingtalk::query_suffix("SECwrong", now_ms));
    assert_eq!(post_json(&forged, &ding).await["errcode"], 310000);
    let stale = format!(
        "{base}/robot/send?access_token=ding-token{}",
        dingtalk::query_suffix("SECtestsecret0123456789", now_ms - 3_700_000)
    );
    assert_eq!(post_json(&stale, &ding).await["errcode"], 310000);
    assert_eq!(
        post_json(&format!("{base}/robot/send?access_token=ding-token"), &ding).await["errcode"],
        310000,
        "a signed robot needs a signature"
    );

    let secs = now();
    let mut lark = json!({"msg_type": "text", "content": {"text": "新投诉"}, "timestamp": secs.to_string(), "sign": feishu::sign("testsecret0123456789", secs)});
    assert_eq!(post_json(&format!("{base}/open-apis/bot/v2/hook/lark-token"), &lark).await["code"], 0);
    // DingTalk's arrangement of Feishu's inputs is refused.
    lark["sign"] = json!(dingtalk::sign("testsecret0123456789", secs));
    assert_eq!(post_json(&format!("{base}/open-apis/bot/v2/hook/lark-token"), &lark).await["code"], 19021);
    assert_eq!(post_json(&format!("{base}/open-apis/bot/v2/hook/unknown"), &lark).await["code"], 19001);

    let messages = control.get("/robots/messages").await;
    let kinds: Vec<&str> =
        messages.as_array().expect("list").iter().map(|m| m["kind"].as_str().expect("kind")).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "wecom").count(), 20);
    assert_eq!(kinds.iter().filter(|k| **k == "dingtalk").count(), 1);
    assert_eq!(kinds.iter().filter(|k| **k == "feishu").count(), 1);
    sim.stop().await;
}

#[tokio::test]
async fn webhook_receivers_check_standard_webhooks_signatures() {
    let sim = start(SignMode::Certificate).await;
    let control = Control::new(&sim);
    let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let url = control.post("/webhooks", json!({"name": "erp", "secret": secret})).await["url"]
        .as_str()
        .expect("url")
        .to_owned();
    let body =
        json!({"type": "complaint.created", "timestamp": "2026-11-27T13:26:46+08:00", "data": {"complaint_id": "1"}})
            .to_string();
    let send = |signature: String, timestamp: i64| {
        let (url, body) = (url.clone(), body.clone());
        async move {
            reqwest::Client::new()
                .post(url)
                .header("webhook-id", "msg_1")
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(body)
                .send()
                .await
                .expect("POST")
                .status()
                .as_u16()
        }
    };
    let ts = now();
    assert_eq!(send(standard_webhooks::sign(secret, "msg_1", ts, body.as_bytes()).expect("sign"), ts).await, 204);
    assert_eq!(send("v1,bm9wZQ==".into(), ts).await, 401);
    assert_eq!(
        send(standard_webhooks::sign(secret, "msg_1", ts - 600, body.as_bytes()).expect("sign"), ts - 600).await,
        401
    );
    let received = control.get("/webhooks/messages").await;
    assert_eq!(received.as_array().map(Vec::len), Some(1));
    assert_eq!(received[0]["body"]["data"]["complaint_id"], "1");
    sim.stop().await;
}
