//! The login experience a newcomer expects (review findings, one test each): Back after a
//! login, logout, the header, the EN/JA switch, the notices' wording and the LINE button.

use crate::fake_line::FakeLine;
use crate::harness::{Harness, Opts, clock_now, cookie_value, location, query_param};

/// Logs in and returns the callback URL LINE redirected to (now used).
async fn login_keeping_callback(h: &Harness, c: &reqwest::Client) -> String {
    let trip = h.login_at(c, "/login").await;
    assert_eq!(trip.response.status(), 303);
    assert_eq!(location(&trip.response), "/me");
    trip.callback
}

#[tokio::test]
async fn back_to_a_used_callback_with_a_session_goes_to_me() {
    let h = Harness::start().await;
    let c = h.client();
    let callback = login_keeping_callback(&h, &c).await;
    // Back: the browser opens the used callback again, with the session cookie.
    let r = c.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 303, "not an error page");
    assert_eq!(location(&r), "/me");
    // Without a session the same URL is still refused.
    let fresh = h.client();
    let r = fresh.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);
    h.stop().await;
}

#[tokio::test]
async fn back_to_a_stale_callback_with_a_session_goes_to_me() {
    let clock = clock_now();
    let h = Harness::start_with(FakeLine::start().await, Opts::default().clock(&clock)).await;
    let c = h.client();
    h.login(&c).await;
    // A second login is started but its callback is opened after the pending login
    // (10 minutes) has expired, by a browser that is still logged in.
    let r = h.get(&c, "/login").await;
    let r = c.get(location(&r)).send().await.unwrap();
    let callback = location(&r);
    clock.advance(std::time::Duration::from_secs(11 * 60));
    let r = c.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 303, "not an error page");
    assert_eq!(location(&r), "/me");
    // Without a session the stale callback is still refused.
    let r = h.client().get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);
    h.stop().await;
}

#[tokio::test]
async fn error_pages_show_the_logged_in_header() {
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    let r = h.get(&c, "/no-such-page").await;
    assert_eq!(r.status(), 404);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"header-name\">Name of U0000<"), "{html}");
    assert!(!html.contains("id=\"nav-login\""), "{html}");
    h.stop().await;
}

#[tokio::test]
async fn logout_says_logged_out_and_next_login_disables_auto_login() {
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    // Before any logout, a login keeps LINE's auto login.
    let r = h.get(&c, "/login").await;
    assert!(!location(&r).contains("disable_auto_login"));
    let csrf = h.csrf(&c, "/me").await;
    let r = h.post_form(&c, "/logout", Some(&csrf)).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/");
    let home = h.page(&c, "/").await;
    assert!(home.contains("You are logged out."), "{home}");
    // `/me` sends the user to a login that asks LINE to show its login screen.
    let r = h.get(&c, "/me").await;
    assert_eq!(location(&r), "/login?next=/me");
    let r = h.get(&c, "/login?next=/me").await;
    let authorize = location(&r);
    assert!(authorize.contains("disable_auto_login=true"), "{authorize}");
    assert_eq!(cookie_value(&r, "ll_logged_out").as_deref(), Some(""));
    // Only the first login after the logout.
    let r = h.get(&c, "/login").await;
    assert!(!location(&r).contains("disable_auto_login"));
    h.stop().await;
}

#[tokio::test]
async fn header_shows_name_and_avatar_or_placeholder() {
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    for (path, label) in [
        ("/", "My page"),
        ("/me", "My page"),
        ("/terms", "My page"),
        ("/account/unlink", "My page"),
    ] {
        let html = h.page(&c, path).await;
        assert!(
            html.contains("id=\"header-name\">Name of U0000<"),
            "{path}: {html}"
        );
        // The fake LINE profile has no picture: the placeholder shows the initial.
        assert!(
            html.contains("placeholder\" id=\"header-avatar\" aria-hidden=\"true\">N<"),
            "{path}: {html}"
        );
        assert!(html.contains(label), "{path}");
        assert!(!html.contains("Your profile"), "one label for /me: {path}");
    }
    let ja = h.page_in(&c, "/me", "ja").await;
    assert!(ja.contains("<h1>マイページ</h1>"), "{ja}");
    h.stop().await;
}

#[tokio::test]
async fn lang_switch_overrides_accept_language() {
    let h = Harness::start().await;
    let c = h.client();
    let html = h.page(&c, "/").await;
    assert!(html.contains("href=\"/?lang=ja\""), "the switch: {html}");
    let r = c
        .get(h.url("/?lang=ja"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(cookie_value(&r, "lang").as_deref(), Some("ja"));
    assert!(r.text().await.unwrap().contains("<html lang=\"ja\">"));
    // The cookie keeps the choice on the next pages, over Accept-Language.
    let r = h.page_in(&c, "/terms", "en").await;
    assert!(
        r.contains("<html lang=\"ja\">") && r.contains("利用規約"),
        "{r}"
    );
    let r = h.page_in(&c, "/terms?lang=en", "ja").await;
    assert!(r.contains("<html lang=\"en\">"));
    h.stop().await;
}

#[tokio::test]
async fn notices_say_delete_account_once_and_name_linked_apps() {
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    let me = h.page(&c, "/me").await;
    assert!(me.contains(">Delete account…</a>"), "{me}");
    let page = h.page(&c, "/account/unregister").await;
    assert!(page.contains("<h1>Delete account</h1>"));
    assert!(page.contains("id=\"unregister\">Delete account</button>"));
    for path in ["/account/unregister", "/account/unlink", "/terms"] {
        for lang in ["en", "ja"] {
            let html = h.page_in(&c, path, lang).await;
            let lower = html.to_lowercase();
            assert!(!lower.contains("deauthoriz"), "{path} {lang}");
            assert!(!html.contains("認可を取り消"), "{path} {lang}");
            assert!(!html.contains("許可済みアプリ"), "{path} {lang}");
            let notified = if lang == "en" {
                "LY Corporation will be notified"
            } else {
                "LINEヤフー株式会社に通知され"
            };
            let times = html.matches(notified).count();
            let expected = if path == "/terms" { 2 } else { 1 };
            assert_eq!(times, expected, "said once per action: {path} {lang}");
            if lang == "ja" {
                assert!(html.contains("「連動アプリ」"), "{path}");
            }
        }
    }
    let terms = h.page(&c, "/terms").await;
    assert!(terms.contains(">Deleting your account</h3>"));
    assert!(terms.contains(">Unlinking LINE</h3>"));
    h.stop().await;
}

#[tokio::test]
async fn login_button_follows_line_guidelines_and_pages_have_states() {
    let h = Harness::start().await;
    let c = h.client();
    let css = h.page(&c, "/static/style.css").await;
    for rule in [
        ".button.line { display: inline-flex; align-items: stretch; padding: 0; border-radius: 8px; background: #06c755; color: #fff;",
        ".button.line:hover { background: linear-gradient(rgba(0, 0, 0, .1), rgba(0, 0, 0, .1)), #06c755;",
        ".button.line:active { background: linear-gradient(rgba(0, 0, 0, .3), rgba(0, 0, 0, .3)), #06c755;",
        "button.line:disabled { background: #fff; color: rgba(30, 30, 30, .2); border: 1px solid #e5e5e5;",
        ".button.line:focus-visible",
        "a:focus-visible, button:focus-visible, .button:focus-visible",
        "@media (max-width: 44rem)",
        ".buttons { display: flex;",
    ] {
        assert!(css.contains(rule), "missing: {rule}");
    }
    let home = h.page(&c, "/").await;
    assert!(home.contains("class=\"line-logo\""), "logo area: {home}");
    // The error page's "Try again" and its link are spaced (.buttons).
    let r = h.get(&c, "/callback?code=x").await;
    let html = r.text().await.unwrap();
    assert!(
        html.contains("<p class=\"buttons\"><a class=\"button\" id=\"retry\""),
        "{html}"
    );
    h.stop().await;
}

#[tokio::test]
async fn configured_scopes_and_options_reach_the_authorization_request() {
    let opts = Opts::default().config(|c| {
        c.line.scopes = words("openid profile email");
        c.line.bot_prompt = Some("aggressive".to_owned());
        c.line.prompt = Some("consent".to_owned());
        c.line.ui_locales = words("ja-JP en-US");
    });
    let h = Harness::start_with(FakeLine::start().await, opts).await;
    let c = h.client();
    let r = h.get(&c, "/login").await;
    let url = location(&r);
    let mut scopes: Vec<String> = query_param(&url, "scope")
        .split(' ')
        .map(str::to_owned)
        .collect();
    scopes.sort();
    assert_eq!(scopes, ["email", "openid", "profile"]);
    assert_eq!(query_param(&url, "bot_prompt"), "aggressive");
    assert_eq!(query_param(&url, "prompt"), "consent");
    assert_eq!(query_param(&url, "ui_locales"), "ja-JP en-US");
    h.stop().await;

    // The defaults: openid profile, no options.
    let h = Harness::start().await;
    let r = h.client().get(h.url("/login")).send().await.unwrap();
    let url = location(&r);
    let mut scopes: Vec<String> = query_param(&url, "scope")
        .split(' ')
        .map(str::to_owned)
        .collect();
    scopes.sort();
    assert_eq!(scopes, ["openid", "profile"]);
    assert!(
        !url.contains("bot_prompt=") && !url.contains("prompt="),
        "{url}"
    );
    h.stop().await;
}

#[test]
fn scopes_without_openid_or_unknown_prompt_are_config_errors() {
    use linelogin_server::config::Config;
    use linelogin_server::state::Settings;
    type SetLine = fn(&mut Config);
    let cases: [(&str, SetLine); 3] = [
        ("openid", |c| c.line.scopes = words("profile")),
        ("prompt", |c| c.line.prompt = Some("always".to_owned())),
        ("bot_prompt", |c| {
            c.line.bot_prompt = Some("loud".to_owned())
        }),
    ];
    for (msg, tweak) in cases {
        let config = crate::harness::config_with(
            "http://127.0.0.1:1",
            "http://127.0.0.1:1",
            std::path::Path::new("unused.db"),
            tweak,
        );
        let err = Settings::from_config(&config).unwrap_err().to_string();
        assert!(err.contains(msg), "{msg}: {err}");
    }
}

/// Words separated by spaces, as owned strings.
fn words(s: &str) -> Vec<String> {
    s.split(' ').map(str::to_owned).collect()
}

/// The emulator with one user who has an email and a LINE profile picture, and the server
/// asking for `scopes`.
async fn emulator_with_email(scopes: &str) -> crate::emulator::Emu {
    let scopes = words(scopes);
    crate::emulator::start_custom(
        Opts::default().config(|c| c.line.scopes = scopes),
        true,
        |cfg, _| {
            let user = &mut cfg.users[0];
            user.email = Some("user@example.com".to_owned());
            user.picture_url = Some("https://profile.line-scdn.net/0h_test".to_owned());
        },
    )
    .await
}

#[tokio::test]
async fn email_scope_shows_email_from_id_token() {
    let e = emulator_with_email("openid profile email").await;
    let c = e.h.client();
    e.h.login(&c).await;
    let me = e.h.page(&c, "/me").await;
    assert!(me.contains("id=\"email\">user@example.com<"), "{me}");
    let (status, api) = e.h.api_me(&c).await;
    assert_eq!(status, 200);
    assert_eq!(api["email"], "user@example.com");
    // The header shows LINE's profile picture (CSP img-src allows https:).
    assert!(
        me.contains(
            "id=\"header-avatar\" src=\"https:&#x2f;&#x2f;profile.line-scdn.net&#x2f;0h_test\""
        ),
        "{me}"
    );
    // The email cookie is sealed and bound to its session: with another session it is
    // ignored, and the session alone carries no email.
    let other = e.h.client();
    let r = e.h.login(&other).await;
    let other_session = cookie_value(&r, "ll_session").unwrap();
    let r = e.h.login(&e.h.client()).await;
    let email_cookie = cookie_value(&r, "ll_email").unwrap();
    assert!(!email_cookie.contains("example"), "sealed");
    let api = reqwest::Client::new()
        .get(e.h.url("/api/me"))
        .header(
            "cookie",
            format!("ll_session={other_session}; ll_email={email_cookie}"),
        )
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(api["displayName"], "Emulated User");
    assert!(api.get("email").is_none(), "foreign email cookie: {api}");
    assert!(e.h.api_me_as(&other_session).await.1.get("email").is_none());
    // Logout forgets it.
    let csrf = e.h.csrf(&c, "/me").await;
    e.h.post_form(&c, "/logout", Some(&csrf)).await;
    assert_eq!(e.h.api_me(&c).await.0, 401);
    e.stop().await;

    // Without the scope: no email anywhere.
    let e = emulator_with_email("openid profile").await;
    let c = e.h.client();
    e.h.login(&c).await;
    let me = e.h.page(&c, "/me").await;
    assert!(!me.contains("user@example.com") && !me.contains("id=\"email\""));
    let (_, api) = e.h.api_me(&c).await;
    assert!(api.get("email").is_none(), "{api}");
    e.stop().await;
}

#[tokio::test]
async fn operator_templates_dir_and_branding_replace_the_builtin_pages() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("terms.html"),
        "{% extends \"layout.html\" %}{% block content %}<p id=\"own-terms\">Our own terms for \
         {{ app_name }}.</p><p>{{ t.unregister_notice }}</p><p>{{ t.unlink_notice }}</p>{% endblock %}",
    )
    .unwrap();
    let templates = dir.path().to_owned();
    let opts = Opts::default().config(move |c| {
        c.pages.templates_dir = Some(templates);
        c.pages.app_name = Some("Acme <Login>".to_owned());
        c.pages.logo_url = Some("/static/logo.png".to_owned());
        c.pages.brand_color = Some("#aa3300".to_owned());
    });
    let h = Harness::start_with(FakeLine::start().await, opts).await;
    let c = h.client();
    let terms = h.page(&c, "/terms").await;
    assert!(
        terms.contains("<p id=\"own-terms\">Our own terms for Acme &lt;Login&gt;.</p>"),
        "{terms}"
    );
    let home = h.page(&c, "/").await;
    assert!(
        home.contains("Acme &lt;Login&gt;</a>"),
        "built-in home, operator's name"
    );
    assert!(
        home.contains("class=\"logo\" src=\"&#x2f;static&#x2f;logo.png\""),
        "{home}"
    );
    let css = h.page(&c, "/static/style.css").await;
    assert!(css.ends_with(":root { --brand: #aa3300; }\n"));
    h.stop().await;

    // A template that does not parse stops the start, naming the file and line.
    std::fs::write(dir.path().join("me.html"), "ok\n{% if %}\n").unwrap();
    let config = crate::harness::config_with(
        "http://127.0.0.1:1",
        "http://127.0.0.1:1",
        &dir.path().join("db.sqlite"),
        |c| c.pages.templates_dir = Some(dir.path().to_owned()),
    );
    let err = linelogin_server::state::AppState::builder(&config)
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("me.html:2"), "{err}");
}

/// The value of each `name="…" value="…"` input of a page, entities decoded.
fn form_fields(html: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&#39;", "'")
            .replace("&#x2f;", "/")
            .replace("&#x2F;", "/")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    html.split("<input")
        .skip(1)
        .filter_map(|tag| {
            let tag = tag.split('>').next()?;
            let attr = |name: &str| {
                let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
                let len = tag[start..].find('"')?;
                Some(decode(&tag[start..start + len]))
            };
            Some((attr("name")?, attr("value")?))
        })
        .collect()
}

/// Logs in through the emulator's consent page as its first test user, as a browser would.
async fn login_through_consent(e: &crate::emulator::Emu, c: &reqwest::Client) {
    let r = e.h.get(c, "/login").await;
    let authorize = location(&r);
    assert!(authorize.starts_with(&e.emu_url), "{authorize}");
    let r = c.get(&authorize).send().await.unwrap();
    assert_eq!(r.status(), 200, "the consent page");
    let html = r.text().await.unwrap();
    let mut form: Vec<(String, String)> = form_fields(&html)
        .into_iter()
        .filter(|(k, _)| k == "request" || k == "csrf")
        .collect();
    form.push(("user".into(), crate::emulator::EMU_USER.into()));
    form.push(("decision".into(), "allow".into()));
    let r = c
        .post(format!("{}/oauth2/v2.1/authorize/consent", e.emu_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(&form).unwrap())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "consent given: {}", r.status());
    let r = c.get(location(&r)).send().await.unwrap();
    assert_eq!(location(&r), "/me", "logged in");
}

/// After a logout, opening `/me` leads to an authorization request that asks the real
/// emulator for its login screen; without the logout the same browser is logged straight in
/// by LINE's single sign-on (the control).
#[tokio::test]
async fn after_logout_the_next_authorize_request_disables_auto_login_end_to_end() {
    let e = crate::emulator::start(Opts::default(), false).await;
    let c = e.h.client();
    login_through_consent(&e, &c).await;
    // Control: logged in at LINE, a second login goes through without a page.
    let r = e.h.get(&c, "/login").await;
    let authorize = location(&r);
    assert!(!authorize.contains("disable_auto_login"), "{authorize}");
    let r = c.get(&authorize).send().await.unwrap();
    assert!(
        r.status().is_redirection(),
        "single sign-on logs the browser straight in: {}",
        r.status()
    );
    let r = c.get(location(&r)).send().await.unwrap();
    assert_eq!(location(&r), "/me");

    let csrf = e.h.csrf(&c, "/me").await;
    assert_eq!(
        e.h.post_form(&c, "/logout", Some(&csrf)).await.status(),
        303
    );
    let r = e.h.get(&c, "/me").await;
    assert_eq!(location(&r), "/login?next=/me");
    let r = e.h.get(&c, "/login?next=/me").await;
    let authorize = location(&r);
    assert!(authorize.starts_with(&e.emu_url), "{authorize}");
    assert!(authorize.contains("disable_auto_login=true"), "{authorize}");
    e.stop().await;
}

/// The emulator's half of the above: given `disable_auto_login=true`, it shows its login
/// screen instead of logging the browser straight back in.
#[tokio::test]
#[ignore = "needs the emulator to honour disable_auto_login (branch wt-emulator): run with --ignored once merged"]
async fn after_logout_the_emulator_shows_its_login_screen() {
    let e = crate::emulator::start(Opts::default(), false).await;
    let c = e.h.client();
    login_through_consent(&e, &c).await;
    let csrf = e.h.csrf(&c, "/me").await;
    assert_eq!(
        e.h.post_form(&c, "/logout", Some(&csrf)).await.status(),
        303
    );
    let r = e.h.get(&c, "/login?next=/me").await;
    let r = c.get(location(&r)).send().await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "a page, not a silent single sign-on back to the callback"
    );
    e.stop().await;
}
