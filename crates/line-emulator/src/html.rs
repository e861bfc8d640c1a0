//! The HTML pages: consent, add-friend, form_post, error and index. No external assets;
//! everything echoed is escaped.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root{color-scheme:light;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Hiragino Sans",sans-serif}
body{margin:0;background:#f2f4f5;color:#1e1e1e}
.bar{background:#06c755;color:#fff;padding:10px 20px;font-weight:600;letter-spacing:.02em}
.bar small{font-weight:400;opacity:.85;margin-left:.5em}
main{max-width:440px;margin:32px auto;background:#fff;border-radius:14px;box-shadow:0 2px 10px rgba(0,0,0,.08);padding:28px}
h1{font-size:1.25rem;margin:0 0 6px}
p.sub{color:#666;margin:0 0 20px;font-size:.92rem}
h2{font-size:.95rem;margin:22px 0 8px;color:#333}
ul.perms{list-style:none;padding:0;margin:0}
ul.perms li{padding:8px 10px;border-bottom:1px solid #eee;font-size:.92rem}
ul.perms li b{display:inline-block;min-width:70px}
fieldset{border:0;padding:0;margin:0}
label.user{display:flex;align-items:center;gap:10px;padding:10px;border:1px solid #ddd;border-radius:10px;margin:6px 0;cursor:pointer}
label.user:hover{border-color:#06c755}
label.user .id{color:#888;font-size:.75rem;font-family:ui-monospace,monospace}
.avatar{width:32px;height:32px;border-radius:50%;background:#06c755;color:#fff;display:flex;align-items:center;justify-content:center;font-weight:700}
label.friend{display:flex;gap:8px;align-items:center;margin-top:18px;padding:10px;background:#f6fff9;border:1px solid #bfe8cf;border-radius:10px}
.buttons{display:flex;gap:10px;margin-top:24px}
button{flex:1;font-size:1rem;padding:12px;border-radius:10px;border:1px solid #ccc;background:#fff;cursor:pointer}
button.primary{background:#06c755;border-color:#06c755;color:#fff;font-weight:600}
.err{background:#fff1f0;border:1px solid #ffccc7;color:#a8071a;padding:10px;border-radius:10px;margin-bottom:14px}
code{font-family:ui-monospace,monospace;font-size:.85rem;background:#f4f4f4;padding:1px 4px;border-radius:4px}
footer{text-align:center;color:#888;font-size:.78rem;margin:12px 0 32px}
table{border-collapse:collapse;width:100%;font-size:.85rem}td,th{text-align:left;padding:4px 6px;border-bottom:1px solid #eee}
"#;

/// Wraps a body in the emulator's page layout.
pub fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<title>{title}</title><style>{STYLE}</style></head><body>\
<div class=\"bar\">LINE Platform emulator<small>local test environment, not the real LINE</small></div>\
<main>{body}</main><footer>linelogin emulator: never send load to the real LINE Platform.</footer></body></html>",
        title = escape(title)
    )
}

/// An HTML response with security headers.
pub fn html_response(status: StatusCode, html: String) -> Response {
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

/// An error page (no redirect).
pub fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = format!(
        "<h1>{} {}</h1><p class=\"sub\">{}</p>",
        status.as_u16(),
        escape(title),
        escape(detail)
    );
    html_response(status, layout(title, &body))
}

/// A test user as shown on the consent page.
pub struct UserChoice<'a> {
    /// The user ID as the channel sees it.
    pub id: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Preselected.
    pub checked: bool,
}

/// The consent page.
pub struct ConsentPage<'a> {
    /// Channel name.
    pub channel_name: &'a str,
    /// Channel ID.
    pub channel_id: &'a str,
    /// Requested permissions, e.g. `profile`, `openid`, `email`.
    pub permissions: &'a [&'a str],
    /// The users to pick from.
    pub users: Vec<UserChoice<'a>>,
    /// The pending request id.
    pub request: &'a str,
    /// The CSRF token bound to the session.
    pub csrf: &'a str,
    /// Show the add-friend checkbox (bot_prompt=normal).
    pub add_friend: Option<&'a str>,
    /// An error to show above the form.
    pub error: Option<&'a str>,
    /// Why the page is shown (e.g. prompt=login).
    pub note: Option<&'a str>,
}

fn permission_text(p: &str) -> &'static str {
    match p {
        "profile" => "Your display name, profile picture and status message",
        "openid" => "Your user identifier (an ID token is issued)",
        "email" => "Your email address",
        _ => "Other information",
    }
}

impl ConsentPage<'_> {
    /// Renders the page.
    pub fn render(&self) -> String {
        let mut b = String::with_capacity(4096);
        b.push_str(&format!(
            "<h1>{}</h1><p class=\"sub\">requests access to your LINE account &middot; channel <code>{}</code></p>",
            escape(self.channel_name),
            escape(self.channel_id)
        ));
        if let Some(e) = self.error {
            b.push_str(&format!(
                "<div class=\"err\" id=\"error\">{}</div>",
                escape(e)
            ));
        }
        if let Some(n) = self.note {
            b.push_str(&format!("<p class=\"sub\" id=\"note\">{}</p>", escape(n)));
        }
        b.push_str("<h2>Permissions requested</h2><ul class=\"perms\" id=\"permissions\">");
        for p in self.permissions {
            b.push_str(&format!(
                "<li data-scope=\"{p}\"><b>{p}</b> {}</li>",
                permission_text(p),
                p = escape(p)
            ));
        }
        b.push_str("</ul>");
        b.push_str(&format!(
            "<form method=\"post\" action=\"/oauth2/v2.1/authorize/consent\" id=\"consent\">\
<input type=\"hidden\" name=\"request\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<h2>Log in as</h2><fieldset id=\"users\">",
            escape(self.request),
            escape(self.csrf)
        ));
        for (i, u) in self.users.iter().enumerate() {
            let initial = u.name.chars().next().unwrap_or('?');
            b.push_str(&format!(
                "<label class=\"user\"><input type=\"radio\" name=\"user\" value=\"{id}\" id=\"user-{id}\"{checked}{required}>\
<span class=\"avatar\">{initial}</span><span><span class=\"name\">{name}</span><br><span class=\"id\">{id}</span></span></label>",
                id = escape(u.id),
                name = escape(u.name),
                initial = escape(&initial.to_string()),
                checked = if u.checked { " checked" } else { "" },
                required = if i == 0 { " required" } else { "" },
            ));
        }
        b.push_str("</fieldset>");
        if let Some(oa) = self.add_friend {
            b.push_str(&format!(
                "<label class=\"friend\"><input type=\"checkbox\" name=\"add_friend\" value=\"1\" id=\"add_friend\" checked>\
Add {} as a friend</label>",
                escape(oa)
            ));
        }
        b.push_str(
            "<div class=\"buttons\"><button type=\"submit\" id=\"cancel\" name=\"decision\" value=\"cancel\" formnovalidate>Cancel</button>\
<button type=\"submit\" class=\"primary\" id=\"allow\" name=\"decision\" value=\"allow\">Allow</button></div></form>",
        );
        layout(&format!("{} - consent", self.channel_name), &b)
    }
}

/// The separate add-friend screen of `bot_prompt=aggressive`.
pub fn friend_page(oa: &str, request: &str, csrf: &str, user_id: &str) -> String {
    let body = format!(
        "<h1>Add {oa} as a friend?</h1><p class=\"sub\">This LINE Official Account is linked to the app you are logging in to.</p>\
<form method=\"post\" action=\"/oauth2/v2.1/authorize/consent\" id=\"friend\">\
<input type=\"hidden\" name=\"request\" value=\"{request}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<input type=\"hidden\" name=\"user\" value=\"{user}\">\
<div class=\"buttons\"><button type=\"submit\" id=\"cancel\" name=\"decision\" value=\"skip\">Not now</button>\
<button type=\"submit\" class=\"primary\" id=\"allow\" name=\"decision\" value=\"add_friend\">Add friend</button></div></form>",
        oa = escape(oa),
        request = escape(request),
        csrf = escape(csrf),
        user = escape(user_id),
    );
    layout("Add friend", &body)
}

/// The `response_mode=form_post` page: an auto-submitting form to the callback.
pub fn form_post_page(action: &str, fields: &[(&str, String)]) -> String {
    let mut inputs = String::new();
    for (k, v) in fields {
        inputs.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(k),
            escape(v)
        ));
    }
    let body = format!(
        "<h1>Returning to the app…</h1><form method=\"post\" action=\"{}\" id=\"form_post\">{inputs}\
<noscript><button type=\"submit\" class=\"primary\" id=\"continue\">Continue</button></noscript></form>\
<script>document.getElementById('form_post').submit()</script>",
        escape(action)
    );
    layout("Redirecting", &body)
}
