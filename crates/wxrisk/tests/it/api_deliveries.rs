//! `/api/v1/deliveries` (filters, pages, bad input), per-provider templates and language, and
//! `wxrisk channel test`.

use serde_json::{Value, json};
use wxrisk::notify::EventKind;

use crate::helpers::*;
use crate::notify::{app_with_sim, channel, delivery, notify};

async fn ids_of(app: &TestApp, query: &str) -> Vec<i64> {
    let (status, body) = app.get(&format!("/api/v1/deliveries{query}")).await;
    assert_eq!(status, 200, "{query}: {body}");
    body["items"].as_array().expect("items").iter().map(|d| d["id"].as_i64().expect("id")).collect()
}

#[tokio::test]
async fn deliveries_filter_by_channel_status_event_and_date_and_page_newest_first() {
    let (app, sim, control) = app_with_sim().await;
    control.post("/robots", json!({"kind": "wecom", "token": "wecom-key"})).await;
    let provider_id = app.create_provider("1900000100").await;
    let owner = json!({"provider_id": provider_id});
    let wecom = channel(&app, owner.clone(), "wecom_robot", json!({"webhook_key": "wecom-key"})).await;
    let lost = channel(&app, owner.clone(), "wecom_robot", json!({"webhook_key": "unknown-key"})).await;

    let created = notify(&app, provider_id, EventKind::ComplaintCreated, "c1", None).await;
    app.worker().run_pending().await.expect("run");
    let violation = notify(&app, provider_id, EventKind::ViolationIntercept, "v1", Some("1900000109")).await;
    assert_eq!((created.len(), violation.len()), (2, 2));
    let mut all: Vec<i64> = created.iter().chain(&violation).copied().collect();
    all.sort_unstable_by(|a, b| b.cmp(a));

    assert_eq!(ids_of(&app, "").await, all, "newest first");
    let on_wecom = ids_of(&app, &format!("?channel_id={wecom}")).await;
    assert_eq!(on_wecom.len(), 2);
    for id in &on_wecom {
        assert_eq!(delivery(&app, *id).await["channel_id"], wecom);
    }
    let dead = ids_of(&app, "?status=dead").await;
    assert_eq!(dead.len(), 1, "the unknown robot key (93000) is permanent");
    assert_eq!(delivery(&app, dead[0]).await["channel_id"], lost);
    assert_eq!(ids_of(&app, "?status=queued").await.len(), 2, "the violation is not sent yet");
    assert_eq!(ids_of(&app, "?event=violation_intercept").await.len(), 2);
    assert_eq!(ids_of(&app, &format!("?event=complaint_created&status=succeeded&channel_id={wecom}")).await.len(), 1);
    assert_eq!(ids_of(&app, &format!("?provider_id={}", provider_id + 1)).await.len(), 0);

    let today = wxrisk::clock::format_shanghai(app.now())[..10].to_owned();
    assert_eq!(ids_of(&app, &format!("?since={today}&until={today}")).await.len(), 4);
    let later = wxrisk::clock::format_shanghai(app.now() + 3_600_000);
    assert_eq!(ids_of(&app, &format!("?since={}", later.replace('+', "%2B"))).await.len(), 0);
    assert_eq!(ids_of(&app, &format!("?until={}", later.replace('+', "%2B"))).await.len(), 4);

    // Pages: limit 3, then the rest, nothing twice.
    let (_, first) = app.get("/api/v1/deliveries?limit=3").await;
    assert_eq!(first["items"].as_array().map(Vec::len), Some(3));
    let cursor = first["next_cursor"].as_str().expect("cursor");
    let (_, second) = app.get(&format!("/api/v1/deliveries?limit=3&cursor={cursor}")).await;
    assert_eq!(second["items"].as_array().map(Vec::len), Some(1));
    assert!(second["next_cursor"].is_null());
    assert_eq!(second["items"][0]["id"], all[3]);

    for (query, field) in [
        ("?status=lost", "status"),
        ("?event=complaint_exploded", "event"),
        ("?since=yesterday", "since"),
        ("?until=2026-13-01", "until"),
        ("?limit=0", "limit"),
        ("?channel=1", "channel"),
    ] {
        let (status, body) = app.get(&format!("/api/v1/deliveries{query}")).await;
        assert_eq!((status, body["field"].as_str()), (400, Some(field)), "{query}: {body}");
    }
    let (status, _) = app.get("/api/v1/deliveries/999999").await;
    assert_eq!(status, 404);
    let (status, _) = app.post("/api/v1/deliveries/999999/retry", &json!({})).await;
    assert_eq!(status, 404);

    // One delivery in full: the rendered message and the attempts.
    let full = delivery(&app, dead[0]).await;
    assert!(full["message"]["text"].as_str().is_some_and(|t| t.contains("200201820261127000000000001")));
    assert_eq!(full["attempt_log"][0]["outcome"], "dead");
    assert_eq!(full["attempt_log"][0]["code"], "93000");
    sim.stop().await;
}

#[tokio::test]
async fn templates_are_per_provider_checked_before_saving_and_used() {
    let (app, sim, control) = app_with_sim().await;
    control.post("/robots", json!({"kind": "wecom", "token": "wecom-key"})).await;
    let provider_id = app.create_provider("1900000100").await;
    channel(&app, json!({"provider_id": provider_id}), "wecom_robot", json!({"webhook_key": "wecom-key"})).await;
    let base = format!("/api/v1/providers/{provider_id}/templates");

    let (status, listed) = app.get(&base).await;
    assert_eq!(status, 200, "{listed}");
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 30, "15 event kinds in two languages");
    assert!(items.iter().all(|t| t["customized"] == false));

    let custom = json!({
        "subject": "{{ merchant.name }} 被投诉了：{{ data.complaint.id }}",
        "text": "{{ subject }}\n金额 {{ data.complaint.amount_fen / 100 }} 元",
        "html": "<p>{{ merchant.name }}</p>",
    });
    let path = format!("{base}/complaint_created/zh-CN");
    let (status, saved) = app
        .client
        .put(app.url(&path))
        .bearer_auth(&app.token)
        .json(&custom)
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .expect("PUT");
    let saved: Value = saved.json().await.expect("json");
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["customized"], true);
    assert_eq!(saved["preview"]["subject"], "示例门店 被投诉了：200201820261127000000000001");

    let put = |body: Value, path: String| {
        let app = &app;
        async move {
            let response =
                app.client.put(app.url(&path)).bearer_auth(&app.token).json(&body).send().await.expect("PUT");
            decode(response).await
        }
    };
    for (body, field) in [
        (json!({"subject": "{{ unclosed", "text": "x", "html": "x"}), "subject"),
        (json!({"subject": "x", "text": "{% for i in range(100000000) %}{{ i }}{% endfor %}", "html": "x"}), "text"),
        (json!({"subject": "x", "text": "x", "html": "  "}), "html"),
        (json!({"subject": "x", "text": "x"}), "html"),
    ] {
        let (status, answer) = put(body.clone(), format!("{base}/complaint_continued/zh-CN")).await;
        assert_eq!((status, answer["field"].as_str()), (400, Some(field)), "{body}: {answer}");
    }
    let (status, _) = put(custom.clone(), format!("{base}/complaint_exploded/zh-CN")).await;
    assert_eq!(status, 404);
    let (status, _) = put(custom.clone(), format!("{base}/complaint_created/fr")).await;
    assert_eq!(status, 404);
    let (status, _) = put(custom.clone(), "/api/v1/providers/999999/templates/complaint_created/zh-CN".into()).await;
    assert_eq!(status, 404);
    let (_, one) = app.get(&format!("{base}/complaint_continued/zh-CN")).await;
    assert_eq!(one["customized"], false, "refused templates are not saved");

    let ids = notify(&app, provider_id, EventKind::ComplaintCreated, "t1", None).await;
    let d = delivery(&app, ids[0]).await;
    assert!(d["subject"].as_str().is_some_and(|s| s.ends_with("被投诉了：200201820261127000000000001")), "{d}");
    assert!(d["message"]["text"].as_str().is_some_and(|t| t.contains("金额 9.9 元")), "{d}");

    // The provider's language: English notifications use the English templates (still built in).
    let (status, provider) = app.patch(&format!("/api/v1/providers/{provider_id}"), &json!({"locale": "en"})).await;
    assert_eq!(status, 200, "{provider}");
    assert_eq!(provider["locale"], "en");
    let ids = notify(&app, provider_id, EventKind::ComplaintCreated, "t2", None).await;
    let d = delivery(&app, ids[0]).await;
    assert!(d["subject"].as_str().is_some_and(|s| s.starts_with("[New complaint]")), "{d}");
    assert_eq!(d["locale"], "en");
    let (status, body) = app.patch(&format!("/api/v1/providers/{provider_id}"), &json!({"locale": "fr"})).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("locale")));

    let (status, _) = app.delete(&path).await;
    assert_eq!(status, 204);
    let (status, _) = app.delete(&path).await;
    assert_eq!(status, 404);
    let (_, back) = app.get(&path).await;
    assert_eq!(back["customized"], false);
    sim.stop().await;
}

#[tokio::test]
async fn channel_test_from_the_command_line() {
    let (app, sim, control) = app_with_sim().await;
    control.post("/robots", json!({"kind": "wecom", "token": "wecom-key"})).await;
    let provider_id = app.create_provider("1900000100").await;
    let owner = json!({"provider_id": provider_id});
    let good = channel(&app, owner.clone(), "wecom_robot", json!({"webhook_key": "wecom-key"})).await;
    let bad = channel(&app, owner.clone(), "wecom_robot", json!({"webhook_key": "not-registered"})).await;

    let run = |id: i64| {
        let mut cmd = wxrisk_command(&app.db);
        cmd.envs(notify_env(&sim.base_url())).args(["channel", "test", &id.to_string()]);
        // Off the runtime: the simulator answering the binary runs on this test's runtime.
        async move { tokio::task::spawn_blocking(move || cmd.output()).await.expect("join").expect("wxrisk runs") }
    };
    let ok = run(good).await;
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{out}\n{}", String::from_utf8_lossy(&ok.stderr));
    assert!(out.contains("accepted: code 0") && out.contains("\"errcode\":0"), "{out}");
    assert_eq!(control.get("/robots/messages").await.as_array().map(Vec::len), Some(1));

    let refused = run(bad).await;
    let out = String::from_utf8_lossy(&refused.stdout);
    assert_eq!(refused.status.code(), Some(1), "{out}");
    assert!(out.contains("refused: code 93000"), "{out}");
    let (status, _) = app.get("/api/v1/channels/1").await;
    assert_eq!(status, 200);
    sim.stop().await;
}
