//! The console's door: the first-run setup link, signing in and out, throttling, CSRF, security headers, sessions.

use wxrisk::auth::Role;

use crate::console_client::{ConsoleClient, hidden_value};
use crate::helpers::*;

#[tokio::test]
async fn the_first_run_link_creates_the_first_admin_once_and_signs_them_in() {
    let app = spawn_app().await;
    let base = app.base.clone();
    let link = wxrisk::web::console::signin::offer_setup_link(&app.state, &base)
        .await
        .expect("link")
        .expect("no user yet: a link");
    let path = link.strip_prefix(&base).expect("our address").to_owned();
    let token = path.split("token=").nth(1).expect("token").to_owned();

    let mut browser = ConsoleClient::new(&app);
    let page = browser.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.has("创建第一个管理员账户"), "{}", page.body);
    // Passwords that differ, then a short one: refused, nothing made.
    let csrf = browser.csrf.clone();
    let fields = [
        ("csrf", csrf.as_str()),
        ("token", &token),
        ("username", "ops"),
        ("password", "long enough 1"),
        ("confirm", "long enough 2"),
    ];
    let page = browser.post_raw("/console/setup", &fields).await;
    assert_eq!(page.status, 400);
    assert!(page.has("两次输入的密码不一致"));
    let csrf = browser.csrf.clone();
    let fields =
        [("csrf", csrf.as_str()), ("token", &token), ("username", "ops"), ("password", "short"), ("confirm", "short")];
    let page = browser.post_raw("/console/setup", &fields).await;
    assert_eq!(page.status, 400);
    assert!(page.has("密码至少 10 个字符"), "{}", page.body);
    let csrf = browser.csrf.clone();
    let fields = [
        ("csrf", csrf.as_str()),
        ("token", &token),
        ("username", "ops"),
        ("password", "correct horse battery"),
        ("confirm", "correct horse battery"),
    ];
    let page = browser.post_raw("/console/setup", &fields).await;
    assert_eq!((page.status, page.location.as_deref()), (303, Some("/console")), "{}", page.body);
    let dashboard = browser.get("/console").await;
    assert_eq!(dashboard.status, 200);
    assert!(dashboard.has("ops · 管理员"), "{}", dashboard.body);

    // The link works once, and no new link is offered now that a user exists.
    let mut other = ConsoleClient::new(&app);
    let page = other.get(&path).await;
    assert!(page.has("wxrisk 已设置完成"), "{}", page.body);
    let csrf = other.csrf.clone();
    let fields = [
        ("csrf", csrf.as_str()),
        ("token", &token),
        ("username", "intruder"),
        ("password", "correct horse battery"),
        ("confirm", "correct horse battery"),
    ];
    assert_eq!(other.post_raw("/console/setup", &fields).await.status, 400);
    let mut conn = app.state.store().conn().await.expect("conn");
    assert_eq!(wxrisk::store::users::count(&mut conn).await.expect("count"), 1);
    drop(conn);
    assert!(wxrisk::web::console::signin::offer_setup_link(&app.state, &base).await.expect("link").is_none());
    app.stop().await;
}

#[tokio::test]
async fn signing_in_is_throttled_per_account_and_audited() {
    let app = spawn_app().await;
    let password = secrecy::SecretString::from("the right password");
    wxrisk::auth::add_user(app.state.store(), "ops", &password, Role::Operator, app.now(), &wxrisk::auth::Actor::Cli)
        .await
        .expect("user");
    let mut browser = ConsoleClient::new(&app);
    // Unsigned: the console leads to the sign-in page, and back after it.
    let page = browser.get("/console/account/password?from=menu").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/console/login?next=%2Fconsole%2Faccount%2Fpassword%3Ffrom%3Dmenu"));
    for _ in 0..wxrisk::web::console::signin::MAX_PER_ACCOUNT {
        let page = browser.sign_in("ops", "a wrong password").await;
        assert_eq!(page.status, 401);
        assert!(page.has("用户名或密码不正确"));
    }
    // Now even the right password waits, and says for how long.
    let page = browser.sign_in("ops", "the right password").await;
    assert_eq!(page.status, 429, "{}", page.body);
    assert!(page.has("登录失败次数过多，请 15 分钟后再试"), "{}", page.body);
    assert!(!browser.has_cookie("wxrisk_session"));
    // The window passes.
    app.advance(std::time::Duration::from_secs(15 * 60 + 1));
    let page = browser.sign_in("ops", "the right password").await;
    assert_eq!((page.status, page.location.as_deref()), (303, Some("/console")));
    assert!(browser.has_cookie("wxrisk_session"));
    let mut conn = app.state.store().conn().await.expect("conn");
    let rows = sqlx::query("select action from audit_log where target_type = 'user' order by id")
        .fetch_all(&mut *conn)
        .await
        .expect("audit");
    let actions: Vec<String> = rows.iter().map(|r| sqlx::Row::get(r, "action")).collect();
    assert_eq!(actions.iter().filter(|a| *a == "user.sign_in_failed").count(), 5, "{actions:?}");
    assert_eq!(actions.last().map(String::as_str), Some("user.sign_in"));
    drop(conn);
    app.stop().await;
}

#[tokio::test]
async fn signing_in_is_throttled_per_address() {
    let app = spawn_app().await;
    let mut browser = ConsoleClient::new(&app);
    // Twenty failures from one address, spread over accounts so no account is locked.
    for i in 0..wxrisk::web::console::signin::MAX_PER_ADDRESS {
        let page = browser.sign_in(&format!("user{}", i % 5), "wrong wrong wrong").await;
        assert_eq!(page.status, if i < 20 { 401 } else { 429 }, "attempt {i}");
    }
    let page = browser.sign_in("someone-else", "wrong wrong wrong").await;
    assert_eq!(page.status, 429, "{}", page.body);
    app.stop().await;
}

#[tokio::test]
async fn forms_need_their_token_and_cross_site_posts_are_refused() {
    let app = spawn_app().await;
    let mut browser = ConsoleClient::signed_in(&app, "ops", Role::Operator).await;
    // The sign-in form's own token must match its cookie.
    let mut stranger = ConsoleClient::new(&app);
    let page = stranger.post_raw("/console/login", &[("csrf", "forged"), ("username", "ops"), ("password", "x")]).await;
    assert_eq!(page.status, 403);
    // A form without the session's token, or with another, does nothing.
    assert_eq!(browser.post_raw("/console/logout", &[]).await.status, 403);
    assert_eq!(browser.post_raw("/console/logout", &[("csrf", "not-the-token")]).await.status, 403);
    assert_eq!(browser.get("/console").await.status, 200, "still signed in");
    // Another site's form, even with a token.
    let csrf = browser.csrf.clone();
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{}/console/logout", app.base))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 403);
    // The real form signs out, and the session is gone.
    let page = browser.post("/console/logout", &[]).await;
    assert_eq!((page.status, page.location.as_deref()), (303, Some("/console/login")));
    assert_eq!(browser.get("/console").await.status, 303);
    app.stop().await;
}

#[tokio::test]
async fn pages_carry_security_headers_and_cookies_are_locked_down() {
    let app = spawn_app().await;
    let mut browser = ConsoleClient::new(&app);
    let page = browser.get("/console/login").await;
    let csp = page.headers.get("content-security-policy").and_then(|v| v.to_str().ok()).expect("csp");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'")
    );
    assert_eq!(page.headers.get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"));
    assert!(!page.body.contains("<script>") && !page.body.contains(" onclick="), "no inline script");
    let cookie = page.headers.get("set-cookie").and_then(|v| v.to_str().ok()).expect("cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Secure"), "the test app's public URL is https: {cookie}");
    // `/` leads to the console; an unknown console page is a page, not JSON.
    let root = browser.get("/").await;
    assert_eq!(root.location.as_deref(), Some("/console"));
    let missing = browser.get("/console/no-such-page").await;
    assert_eq!(missing.status, 404);
    assert!(missing.has("页面不存在"));
    app.stop().await;
}

#[tokio::test]
async fn changing_the_password_ends_other_sessions() {
    let app = spawn_app().await;
    let mut laptop = ConsoleClient::signed_in(&app, "ops", Role::Viewer).await;
    let mut phone = ConsoleClient::new(&app);
    assert_eq!(phone.sign_in("ops", "ops-password-1").await.status, 303);
    assert_eq!(phone.get("/console").await.status, 200);
    laptop.get("/console/account/password").await;
    let wrong = laptop
        .post(
            "/console/account/password",
            &[("current", "nope"), ("password", "a new password 1"), ("confirm", "a new password 1")],
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.has("当前密码不正确"));
    let done = laptop
        .post(
            "/console/account/password",
            &[("current", "ops-password-1"), ("password", "a new password 1"), ("confirm", "a new password 1")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let next = laptop.get("/console").await;
    assert!(next.has("密码已修改"), "the flash message: {}", next.body);
    assert_eq!(phone.get("/console").await.status, 303, "the other session ended");
    assert_eq!(ConsoleClient::new(&app).sign_in("ops", "a new password 1").await.status, 303);
    app.stop().await;
}

#[tokio::test]
async fn english_is_one_click_away() {
    let app = spawn_app().await;
    let mut browser = ConsoleClient::signed_in(&app, "ops", Role::Admin).await;
    let page = browser.get("/console").await;
    assert!(page.has("lang=\"zh-CN\"") && page.has("概览"));
    let link = hidden_value(&page.body.replace("href=\"/console/lang", "name=\"lang\" value=\"/console/lang"), "lang")
        .expect("switch link")
        .replace("&amp;", "&");
    let switched = browser.get(&link).await;
    assert_eq!(switched.location.as_deref(), Some("/console"));
    let page = browser.get("/console").await;
    assert!(page.has("lang=\"en\"") && page.has("Dashboard"), "{}", page.body);
    app.stop().await;
}
