//! The emulator's HTML pages (consent, add-friend, form_post, error and home), rendered from
//! [minijinja] templates in English or Japanese.
//!
//! - **minijinja**, as in `linelogin-server`: plain template files embedded with
//!   `include_str!` (`templates/` of this crate), parsed once, and every value of an `.html`
//!   template escaped unless marked safe. The only values marked safe are the stylesheet and
//!   nothing the request carries.
//! - **Escaping**: minijinja's own HTML escaper also rewrites `/` (`&#x2f;`) and writes `'`
//!   as `&#x27;`; the emulator's pages have always escaped exactly `& < > " '` (`'` as `&#39;`),
//!   and clients' browser tests match the callback URL in `action="…"` literally, so the
//!   environment's formatter escapes those five characters.
//! - **Language**: Japanese when the authorization request's `ui_locales` starts with `ja`,
//!   else when the browser's `Accept-Language` prefers `ja` over `en`; English otherwise.
//!   Error pages stay in English: they are written for developers.
//! - No external assets; the CSP allows inline style and the one inline script of the
//!   `form_post` page.

use std::fmt::Write as _;
use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, Value, context};
use serde::Serialize;

use crate::config::ConfiguredUrl;

const STYLE: &str = include_str!("../templates/style.css");

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("layout.html", include_str!("../templates/layout.html")),
        ("consent.html", include_str!("../templates/consent.html")),
        ("friend.html", include_str!("../templates/friend.html")),
        (
            "form_post.html",
            include_str!("../templates/form_post.html"),
        ),
        ("error.html", include_str!("../templates/error.html")),
        ("index.html", include_str!("../templates/index.html")),
    ] {
        if let Err(e) = env.add_template(name, source) {
            // The templates are part of the crate; the unit test below renders every one.
            tracing::error!(template = name, error = %e, "emulator template does not parse");
        }
    }
    env.set_formatter(|out, state, value| match value.as_str() {
        Some(s) if !value.is_safe() && matches!(state.auto_escape(), AutoEscape::Html) => {
            for c in s.chars() {
                match c {
                    '&' => out.write_str("&amp;"),
                    '<' => out.write_str("&lt;"),
                    '>' => out.write_str("&gt;"),
                    '"' => out.write_str("&quot;"),
                    '\'' => out.write_str("&#39;"),
                    c => out.write_char(c),
                }
                .map_err(minijinja::Error::from)?;
            }
            Ok(())
        }
        _ => minijinja::escape_formatter(out, state, value),
    });
    env
});

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Lang {
    /// English (the default).
    #[default]
    En,
    /// Japanese.
    Ja,
}

impl Lang {
    /// `ui_locales` first (its first tag we speak), else `Accept-Language` (the supported
    /// language with the highest q-value; ties: first listed), else English.
    pub fn pick(ui_locales: Option<&str>, headers: &HeaderMap) -> Self {
        if let Some(l) = ui_locales.and_then(|u| {
            u.split([' ', '+'])
                .take(16)
                .find_map(|tag| Self::of_tag(tag).ok())
        }) {
            return l;
        }
        let Some(accept) = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        else {
            return Lang::En;
        };
        let mut best: Option<(f32, Lang)> = None;
        for item in accept.split(',').take(32) {
            let mut parts = item.split(';');
            let Ok(lang) = Self::of_tag(parts.next().unwrap_or("")) else {
                continue;
            };
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q=")?.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }

    fn of_tag(tag: &str) -> Result<Self, ()> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or("");
        if primary.eq_ignore_ascii_case("ja") {
            Ok(Lang::Ja)
        } else if primary.eq_ignore_ascii_case("en") {
            Ok(Lang::En)
        } else {
            Err(())
        }
    }

    fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::Ja => &JA,
        }
    }
}

/// The fixed texts of the pages.
#[derive(Debug, Serialize)]
struct Texts {
    bar: &'static str,
    bar_note: &'static str,
    footer: &'static str,
    requests_access: &'static str,
    channel: &'static str,
    permissions: &'static str,
    log_in_as: &'static str,
    signed_in_as: &'static str,
    not_you: &'static str,
    add_friend_pre: &'static str,
    add_friend_post: &'static str,
    cancel: &'static str,
    allow: &'static str,
    consent_title: &'static str,
    friend_title_pre: &'static str,
    friend_title_post: &'static str,
    friend_sub: &'static str,
    not_now: &'static str,
    add_friend_button: &'static str,
    returning: &'static str,
    #[serde(rename = "continue")]
    continue_: &'static str,
    received: &'static str,
    registered: &'static str,
    how_to_register: &'static str,
    index_sub: &'static str,
    base_url: &'static str,
    issuer: &'static str,
    channels: &'static str,
    users: &'static str,
    admin: &'static str,
    #[serde(skip)]
    perm_profile: &'static str,
    #[serde(skip)]
    perm_openid: &'static str,
    #[serde(skip)]
    perm_email: &'static str,
    #[serde(skip)]
    perm_other: &'static str,
    #[serde(skip)]
    notes: [&'static str; 5],
}

static EN: Texts = Texts {
    bar: "LINE Platform emulator",
    bar_note: "local test environment, not the real LINE",
    footer: "linelogin emulator: never send load to the real LINE Platform.",
    requests_access: "requests access to your LINE account",
    channel: "channel",
    permissions: "Permissions requested",
    log_in_as: "Log in as",
    signed_in_as: "Signed in as",
    not_you: "Not you? Choose another test user",
    add_friend_pre: "Add ",
    add_friend_post: " as a friend",
    cancel: "Cancel",
    allow: "Allow",
    consent_title: "consent",
    friend_title_pre: "Add ",
    friend_title_post: " as a friend?",
    friend_sub: "This LINE Official Account is linked to the app you are logging in to.",
    not_now: "Not now",
    add_friend_button: "Add friend",
    returning: "Returning to the app…",
    continue_: "Continue",
    received: "The redirect_uri received:",
    registered: "Callback URLs registered for channel",
    how_to_register: "Register it when you start the emulator, or in its configuration file:",
    index_sub: "LINE Login v2.1 on one origin: use this base URL for both access.line.me and api.line.me.",
    base_url: "Base URL",
    issuer: "issuer",
    channels: "Channels",
    users: "Test users",
    admin: "Admin API",
    perm_profile: "Your display name, profile picture and status message",
    perm_openid: "Your user identifier (an ID token is issued)",
    perm_email: "Your email address",
    perm_other: "Other information",
    notes: [
        "Log in again: this app asked LINE to confirm who you are (prompt=login).",
        "This app asked LINE to show the consent screen again (prompt=consent).",
        "Your last login is older than the app allows (max_age): log in again.",
        "This app asked LINE not to log you in automatically (disable_auto_login=true): confirm who you are.",
        "Choose a test user to log in as.",
    ],
};

static JA: Texts = Texts {
    bar: "LINEプラットフォーム エミュレーター",
    bar_note: "ローカルのテスト環境です(本物のLINEではありません)",
    footer: "linelogin エミュレーター:本物のLINEプラットフォームに負荷をかけないでください。",
    requests_access: "このアプリがあなたのLINEアカウントへのアクセスを求めています",
    channel: "チャネル",
    permissions: "許可を求められている情報",
    log_in_as: "ログインするテストユーザー",
    signed_in_as: "ログイン中:",
    not_you: "別のテストユーザーを選ぶ",
    add_friend_pre: "",
    add_friend_post: "を友だち追加",
    cancel: "キャンセル",
    allow: "許可する",
    consent_title: "同意",
    friend_title_pre: "",
    friend_title_post: "を友だち追加しますか?",
    friend_sub: "このLINE公式アカウントは、ログインしようとしているアプリと連携しています。",
    not_now: "今はしない",
    add_friend_button: "友だち追加",
    returning: "アプリに戻っています…",
    continue_: "続ける",
    received: "受け取った redirect_uri:",
    registered: "登録済みのコールバックURL:チャネル",
    how_to_register: "エミュレーターの起動時か設定ファイルで登録してください:",
    index_sub: "LINEログイン v2.1 を1つのオリジンで提供します。access.line.me と api.line.me の両方にこのベースURLを使ってください。",
    base_url: "ベースURL",
    issuer: "issuer",
    channels: "チャネル",
    users: "テストユーザー",
    admin: "管理API",
    perm_profile: "表示名、プロフィール画像、ステータスメッセージ",
    perm_openid: "ユーザー識別子(IDトークンが発行されます)",
    perm_email: "メールアドレス",
    perm_other: "その他の情報",
    notes: [
        "もう一度ログインしてください:アプリが本人確認を求めています(prompt=login)。",
        "アプリが同意画面の再表示を求めています(prompt=consent)。",
        "前回のログインがアプリの許容する時間(max_age)より前です。もう一度ログインしてください。",
        "アプリが自動ログインをしないよう求めています(disable_auto_login=true)。ログインするユーザーを確認してください。",
        "ログインするテストユーザーを選んでください。",
    ],
};

/// Why the consent page is shown, or what the user must fix on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Note {
    /// `prompt=login`.
    PromptLogin = 0,
    /// `prompt=consent`.
    PromptConsent = 1,
    /// `max_age` exceeded.
    MaxAge = 2,
    /// `disable_auto_login=true` with a single-sign-on session.
    NoAutoLogin = 3,
    /// Allow without a user.
    ChooseUser = 4,
}

impl Note {
    fn text(self, lang: Lang) -> &'static str {
        lang.texts().notes[self as usize]
    }
}

/// An HTML response with security headers.
pub(crate) fn html_response(status: StatusCode, html: String) -> Response {
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; form-action *; frame-ancestors 'none'",
        ),
    );
    resp
}

/// Renders a template in a language; a template bug answers a plain 500 (the templates are
/// fixed at build time and every one is rendered by the unit tests).
fn render(status: StatusCode, name: &str, lang: Lang, title: &str, ctx: Value) -> Response {
    let base = context! {
        lang => lang.code(),
        t => Value::from(Serde(lang.texts())),
        style => Value::from_safe_string(STYLE.to_owned()),
        title => title,
    };
    let merged = context! { ..ctx, ..base };
    match ENV.get_template(name).and_then(|t| t.render(merged)) {
        Ok(html) => html_response(status, html),
        Err(e) => {
            tracing::error!(template = name, error = %e, "emulator page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "page could not be rendered",
            )
                .into_response()
        }
    }
}

/// A test user as shown on the consent page.
#[derive(Debug, Serialize)]
pub(crate) struct UserChoice<'a> {
    /// The user ID as the channel sees it.
    pub id: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Preselected.
    pub checked: bool,
}

/// The consent page.
#[derive(Debug)]
pub(crate) struct ConsentPage<'a> {
    /// Channel name.
    pub channel_name: &'a str,
    /// Channel ID.
    pub channel_id: &'a str,
    /// Requested permissions, e.g. `profile`, `openid`, `email`.
    pub permissions: &'a [&'a str],
    /// The users to pick from.
    pub users: Vec<UserChoice<'a>>,
    /// The browser's single-sign-on user, offered with "Not you?".
    pub signed_in_as: Option<&'a str>,
    /// The pending request id.
    pub request: &'a str,
    /// The CSRF token bound to the session.
    pub csrf: &'a str,
    /// Show the add-friend checkbox (bot_prompt=normal).
    pub add_friend: Option<&'a str>,
    /// An error to show above the form.
    pub error: Option<Note>,
    /// Why the page is shown (e.g. prompt=login).
    pub note: Option<Note>,
    /// The language.
    pub lang: Lang,
}

impl ConsentPage<'_> {
    /// Renders the page.
    pub fn render(&self) -> Response {
        let t = self.lang.texts();
        let permissions: Vec<Value> = self
            .permissions
            .iter()
            .map(|p| {
                let text = match *p {
                    "profile" => t.perm_profile,
                    "openid" => t.perm_openid,
                    "email" => t.perm_email,
                    _ => t.perm_other,
                };
                context! { scope => *p, text => text }
            })
            .collect();
        let users: Vec<Value> = self
            .users
            .iter()
            .map(|u| {
                let initial = u.name.chars().next().unwrap_or('?').to_string();
                context! { id => u.id, name => u.name, checked => u.checked, initial => initial }
            })
            .collect();
        render(
            StatusCode::OK,
            "consent.html",
            self.lang,
            &format!("{} - {}", self.channel_name, t.consent_title),
            context! {
                channel_name => self.channel_name,
                channel_id => self.channel_id,
                permissions => permissions,
                users => users,
                signed_in_as => self.signed_in_as,
                request => self.request,
                csrf => self.csrf,
                add_friend => self.add_friend,
                error => self.error.map(|n| n.text(self.lang)),
                note => self.note.map(|n| n.text(self.lang)),
            },
        )
    }
}

/// The separate add-friend screen of `bot_prompt=aggressive`.
pub(crate) fn friend_page(lang: Lang, oa: &str, request: &str, csrf: &str, user: &str) -> Response {
    render(
        StatusCode::OK,
        "friend.html",
        lang,
        &format!(
            "{}{oa}{}",
            lang.texts().friend_title_pre,
            lang.texts().friend_title_post
        ),
        context! { oa, request, csrf, user },
    )
}

/// The `response_mode=form_post` page: an auto-submitting form to the callback.
pub(crate) fn form_post_page(action: &str, fields: &[(&str, String)]) -> Response {
    render(
        StatusCode::OK,
        "form_post.html",
        Lang::En,
        "Redirecting",
        context! { action, fields => Value::from(Serde(fields)) },
    )
}

/// How to register a redirect_uri the emulator refused, for the error page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterHelp {
    /// The channel ID.
    pub channel: String,
    /// The redirect_uri received (cut to 2,048 bytes).
    pub received: String,
    /// The callback URLs registered for the channel.
    pub registered: Vec<ConfiguredUrl>,
    /// What to register: the received URL without its query, when it parses.
    pub suggested: String,
}

/// An error page (no redirect), for developers.
pub(crate) fn error_page(
    status: StatusCode,
    heading: &str,
    detail: &str,
    help: Option<&RegisterHelp>,
) -> Response {
    render(
        status,
        "error.html",
        Lang::En,
        heading,
        context! { status => status.as_u16(), heading, detail, help => help.map(|h| Value::from(Serde(h))) },
    )
}

/// A channel on the home page.
#[derive(Debug, Serialize)]
pub(crate) struct ChannelRow<'a> {
    /// Channel ID.
    pub id: &'a str,
    /// Channel secret (a test emulator shows it).
    pub secret: &'a str,
    /// Callback URLs.
    pub callbacks: &'a [ConfiguredUrl],
}

/// A test user on the home page.
#[derive(Debug, Serialize)]
pub(crate) struct UserRow<'a> {
    /// User ID under the default provider.
    pub id: &'a str,
    /// Display name.
    pub name: &'a str,
}

/// The home page.
pub(crate) fn index_page(
    lang: Lang,
    base: &str,
    issuer: &str,
    channels: &[ChannelRow<'_>],
    users: &[UserRow<'_>],
) -> Response {
    render(
        StatusCode::OK,
        "index.html",
        lang,
        lang.texts().bar,
        context! {
            base,
            issuer,
            channels => Value::from(Serde(channels)),
            users => Value::from(Serde(users)),
            wide => true
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(resp: Response) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let bytes = rt
            .block_on(axum::body::to_bytes(resp.into_body(), usize::MAX))
            .unwrap_or_else(|e| panic!("body: {e}"));
        String::from_utf8(bytes.to_vec()).unwrap_or_else(|e| panic!("utf-8: {e}"))
    }

    fn consent(lang: Lang, signed_in_as: Option<&str>) -> String {
        let page = ConsentPage {
            channel_name: "Shop <&>",
            channel_id: "1234567890",
            permissions: &["profile", "openid"],
            users: vec![UserChoice {
                id: "U1",
                name: "O'Brien",
                checked: true,
            }],
            signed_in_as,
            request: "r1",
            csrf: "c1",
            add_friend: Some("Shop (LINE Official Account)"),
            error: None,
            note: Some(Note::NoAutoLogin),
            lang,
        };
        body(page.render())
    }

    #[test]
    fn every_template_renders_and_escapes_like_before() {
        let en = consent(Lang::En, Some("O'Brien"));
        assert!(en.contains("<html lang=\"en\">"), "{en}");
        assert!(en.contains("Shop &lt;&amp;&gt;"), "{en}");
        assert!(en.contains("O&#39;Brien"), "{en}");
        assert!(
            en.contains("value=\"U1\" id=\"user-U1\" checked required"),
            "{en}"
        );
        assert!(en.contains("id=\"switch-user\""), "{en}");
        assert!(en.contains("Not you? Choose another test user"), "{en}");
        assert!(en.contains("disable_auto_login=true"), "{en}");
        assert!(!consent(Lang::En, None).contains("switch-user"));

        let fp = body(form_post_page(
            "http://127.0.0.1:8080/callback",
            &[("code", "a\"b".into())],
        ));
        assert!(
            fp.contains("action=\"http://127.0.0.1:8080/callback\""),
            "{fp}"
        );
        assert!(fp.contains("name=\"code\" value=\"a&quot;b\""), "{fp}");

        let fr = body(friend_page(Lang::Ja, "OA", "r", "c", "U1"));
        assert!(fr.contains("OAを友だち追加しますか?"), "{fr}");

        let help = RegisterHelp {
            channel: "1234567890".into(),
            received: "http://localhost:3000/cb?x=<y>".into(),
            registered: vec!["http://127.0.0.1:8080/callback".parse().unwrap()],
            suggested: "http://localhost:3000/cb".into(),
        };
        let err = body(error_page(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            "Invalid redirect_uri value.",
            Some(&help),
        ));
        assert!(err.contains("<h1>400 Bad Request</h1>"), "{err}");
        assert!(
            err.contains("http://localhost:3000/cb?x=&lt;y&gt;"),
            "{err}"
        );
        assert!(
            err.contains("--channel 1234567890,SECRET,http://localhost:3000/cb"),
            "{err}"
        );
        assert!(
            err.contains("callback_urls = [\"http://localhost:3000/cb\"]"),
            "{err}"
        );

        let idx = body(index_page(
            Lang::En,
            "http://127.0.0.1:9000",
            "https://access.line.me",
            &[ChannelRow {
                id: "1",
                secret: "s",
                callbacks: &[
                    "http://a/cb".parse().unwrap(),
                    "http://b/cb".parse().unwrap(),
                ],
            }],
            &[UserRow {
                id: "U1",
                name: "n",
            }],
        ));
        assert!(idx.contains("<td>http://a/cb http://b/cb</td>"), "{idx}");
        assert!(idx.contains("class=\"scroll\""), "{idx}");
    }

    #[test]
    fn the_consent_page_speaks_japanese_to_a_japanese_browser() {
        let ja = consent(Lang::Ja, Some("O'Brien"));
        assert!(ja.contains("<html lang=\"ja\">"), "{ja}");
        for text in [
            "許可する",
            "キャンセル",
            "別のテストユーザーを選ぶ",
            "表示名",
        ] {
            assert!(ja.contains(text), "missing {text}: {ja}");
        }
        let mut h = HeaderMap::new();
        assert_eq!(Lang::pick(None, &h), Lang::En);
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("ja-JP,ja;q=0.9,en-US;q=0.8"),
        );
        assert_eq!(Lang::pick(None, &h), Lang::Ja);
        assert_eq!(Lang::pick(Some("en-US"), &h), Lang::En);
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("en;q=0.5, ja;q=0.8"),
        );
        assert_eq!(Lang::pick(None, &h), Lang::Ja);
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("fr, en;q=0.1, ja;q=0"),
        );
        assert_eq!(Lang::pick(None, &h), Lang::En);
        assert_eq!(Lang::pick(Some("fr ja"), &HeaderMap::new()), Lang::Ja);
    }
}
