//! A browser-like client for the console's handler tests: keeps cookies, does not follow redirects (tests look at
//! them), and sends each form with the session's CSRF token, as a page's form would.

use std::collections::BTreeMap;

use wxrisk::auth::Role;

use crate::helpers::TestApp;

/// What a page answered.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub body: String,
    /// `Location` of a redirect.
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    /// The page contains `text` (after HTML escaping of `&`, `<`, `>`, `"`).
    pub fn has(&self, text: &str) -> bool {
        self.body.contains(text)
    }
}

#[derive(Debug)]
pub struct ConsoleClient {
    pub base: String,
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
    /// The session's CSRF token, read from the last page that had a form.
    pub csrf: String,
}

impl ConsoleClient {
    pub fn new(app: &TestApp) -> Self {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        ConsoleClient { base: app.base.clone(), client, cookies: BTreeMap::new(), csrf: String::new() }
    }

    /// A user with `role` made on the command line's path, and a client signed in as them.
    pub async fn signed_in(app: &TestApp, username: &str, role: Role) -> Self {
        let password = secrecy::SecretString::from(format!("{username}-password-1"));
        wxrisk::auth::add_user(app.state.store(), username, &password, role, app.now(), &wxrisk::auth::Actor::Cli)
            .await
            .expect("user");
        let mut client = ConsoleClient::new(app);
        let page = client.sign_in(username, &format!("{username}-password-1")).await;
        assert_eq!(page.status, 303, "signed in: {}", page.body);
        client.get("/console").await;
        client
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn finish(&mut self, response: reqwest::Response) -> Page {
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let text = value.to_str().unwrap_or_default();
            let first = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = first.split_once('=') {
                if text.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers.get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.text().await.unwrap_or_default();
        if let Some(token) = hidden_value(&body, "csrf") {
            self.csrf = token;
        }
        Page { status, body, location, headers }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.finish(response).await
    }

    /// Post a form with the session's CSRF token.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone();
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Post exactly these fields (no token added).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).expect("form");
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST");
        self.finish(response).await
    }

    /// Sign in through the form.
    pub async fn sign_in(&mut self, username: &str, password: &str) -> Page {
        self.get("/console/login").await;
        let csrf = self.csrf.clone();
        self.post_raw("/console/login", &[("csrf", &csrf), ("username", username), ("password", password)]).await
    }

    pub fn has_cookie(&self, name: &str) -> bool {
        self.cookies.contains_key(name)
    }
}

/// The value of `<input type="hidden" name="{name}" value="…">` in a page.
pub fn hidden_value(body: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker)? + marker.len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_owned())
}
