//! Server-rendered HTML. Every dynamic value goes through [`escape`]; no page carries inline
//! script or style (the CSP is `default-src 'self'`); the stylesheet is `/static/style.css`.

use std::fmt::Write as _;

use crate::i18n::Lang;
use crate::store::{Account, AccountStatus};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

/// The page frame: header with navigation, main content, footer.
pub fn layout(lang: Lang, title: &str, logged_in: bool, body: &str) -> String {
    let t = lang.t();
    let nav = if logged_in {
        format!("<a href=\"/me\">{}</a>", t.my_page)
    } else {
        format!("<a href=\"/login\">{}</a>", t.login_button)
    };
    format!(
        "<!doctype html>\n<html lang=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · {app}</title>\n<link rel=\"stylesheet\" href=\"/static/style.css\">\n</head>\n<body>\n\
         <header><a class=\"brand\" href=\"/\">{app}</a><nav>{nav} <a href=\"/terms\">{terms}</a></nav></header>\n\
         <main>\n<h1>{title}</h1>\n{body}\n</main>\n\
         <footer><a href=\"/terms\">{terms}</a></footer>\n</body>\n</html>\n",
        code = lang.code(),
        title = escape(title),
        app = t.app_name,
        terms = t.terms,
    )
}

/// `GET /`.
pub fn home(lang: Lang, account: Option<&Account>) -> String {
    let t = lang.t();
    let body = match account {
        Some(_) => format!(
            "<p>{}</p>\n<p><a class=\"button\" href=\"/me\">{}</a></p>",
            t.home_intro, t.my_page
        ),
        None => format!(
            "<p>{}</p>\n<p><a class=\"button line\" id=\"login\" href=\"/login\">{}</a></p>",
            t.home_intro, t.login_button
        ),
    };
    layout(lang, t.home_title, account.is_some(), &body)
}

/// `GET /me`.
pub fn me(lang: Lang, account: &Account, csrf: &str) -> String {
    let t = lang.t();
    let mut body = String::new();
    let _ = write!(body, "<section class=\"profile\">");
    if let Some(pic) = account
        .picture_url
        .as_deref()
        .filter(|p| p.starts_with("https://") || p.starts_with("http://"))
    {
        let _ = write!(
            body,
            "<img class=\"avatar\" src=\"{}\" alt=\"\">",
            escape(pic)
        );
    }
    let status = match account.status {
        AccountStatus::Linked => t.linked,
        AccountStatus::Unlinked => t.unlinked,
    };
    let _ = writeln!(
        body,
        "<dl><dt>{}</dt><dd id=\"display-name\">{}</dd><dt>{}</dt><dd id=\"user-id\"><code>{}</code></dd>\
         <dt>{}</dt><dd id=\"link-status\">{}</dd></dl></section>",
        t.display_name,
        escape(&account.display_name),
        t.user_id,
        escape(&account.sub),
        t.status,
        status
    );
    if account.status == AccountStatus::Unlinked {
        let _ = writeln!(body, "<p class=\"note\">{}</p>", t.unlinked_relogin);
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\
         <button type=\"submit\" id=\"logout\">{}</button></form>\n\
         <p class=\"actions\"><a href=\"/account/unlink\" id=\"unlink-link\">{}</a> · \
         <a href=\"/account/unregister\" id=\"unregister-link\">{}</a></p>",
        escape(csrf),
        t.logout,
        t.unlink_link,
        t.unregister_link
    );
    layout(lang, t.me_title, true, &body)
}

/// Which account action a confirmation page is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `/account/unregister`.
    Unregister,
    /// `/account/unlink`.
    Unlink,
}

fn notice_list(items: &[&str]) -> String {
    let mut s = String::from("<ul class=\"effects\">");
    for i in items {
        let _ = write!(s, "<li>{i}</li>");
    }
    s.push_str("</ul>");
    s
}

/// The confirmation page of unregister / unlink, with the guideline notice next to the button.
pub fn confirm(lang: Lang, action: Action, csrf: &str) -> String {
    let t = lang.t();
    let (title, notice, effects, button, path, id) = match action {
        Action::Unregister => (
            t.unregister_title,
            t.unregister_notice,
            &t.unregister_effects,
            t.unregister_button,
            "/account/unregister",
            "unregister",
        ),
        Action::Unlink => (
            t.unlink_title,
            t.unlink_notice,
            &t.unlink_effects,
            t.unlink_button,
            "/account/unlink",
            "unlink",
        ),
    };
    let body = format!(
        "<form method=\"post\" action=\"{path}\" class=\"confirm\">\n\
         <p class=\"notice\" id=\"notice\">{notice}</p>\n{effects}\n<p class=\"note\">{relogin}</p>\n\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\n\
         <button type=\"submit\" class=\"danger\" id=\"{id}\">{button}</button> \
         <a href=\"/me\" class=\"cancel\">{cancel}</a>\n</form>",
        effects = notice_list(effects),
        relogin = t.relogin_note,
        csrf = escape(csrf),
        cancel = t.cancel,
    );
    layout(lang, title, true, &body)
}

/// After unregister / unlink.
pub fn done(lang: Lang, action: Action) -> String {
    let t = lang.t();
    let (title, body) = match action {
        Action::Unregister => (t.unregistered_title, t.unregistered_body),
        Action::Unlink => (t.unlinked_title, t.unlinked_body),
    };
    let body = format!(
        "<p id=\"done\">{body}</p>\n<p><a href=\"/\">{}</a></p>",
        t.back_home
    );
    layout(lang, title, false, &body)
}

/// `GET /terms`, carrying the unregister / unlink notice.
pub fn terms(lang: Lang, logged_in: bool) -> String {
    let t = lang.t();
    let mut body = String::new();
    for p in t.terms_body {
        let _ = writeln!(body, "<p>{p}</p>");
    }
    let _ = write!(
        body,
        "<h2>{}</h2>\n<p class=\"notice\">{}</p>\n{}\n<p class=\"notice\">{}</p>\n{}",
        t.terms_deauth_heading,
        t.unregister_notice,
        notice_list(&t.unregister_effects),
        t.unlink_notice,
        notice_list(&t.unlink_effects)
    );
    layout(lang, t.terms_title, logged_in, &body)
}

/// An error page: a fixed message, never input, and an optional retry link.
pub fn error(lang: Lang, title: &str, message: &str, retry: Option<&str>) -> String {
    let t = lang.t();
    let mut body = format!(
        "<p class=\"error\" id=\"error\">{}</p>\n<p>",
        escape(message)
    );
    if let Some(href) = retry {
        let _ = write!(
            body,
            "<a class=\"button\" id=\"retry\" href=\"{}\">{}</a> ",
            escape(href),
            t.try_again
        );
    }
    let _ = write!(body, "<a href=\"/\">{}</a></p>", t.back_home);
    layout(lang, title, false, &body)
}

/// The stylesheet.
pub const STYLE_CSS: &str = r#"
:root { --fg: #1f2328; --muted: #59636e; --line: #06c755; --danger: #c62828; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.6 system-ui, -apple-system, "Segoe UI", "Hiragino Sans", "Noto Sans JP", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; justify-content: space-between; align-items: center; padding: .8rem 1.5rem; background: #fff; border-bottom: 1px solid #d0d7de; }
header nav a { margin-left: 1rem; }
.brand { font-weight: 700; color: var(--fg); text-decoration: none; }
main { max-width: 40rem; margin: 2rem auto; padding: 1.5rem 2rem; background: #fff; border: 1px solid #d0d7de; border-radius: 8px; }
h1 { margin-top: 0; font-size: 1.6rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; }
a { color: #0969da; }
.button, button { display: inline-block; padding: .55rem 1.2rem; border: 0; border-radius: 6px; background: #0969da; color: #fff; font: inherit; text-decoration: none; cursor: pointer; }
.button.line { background: var(--line); }
button.danger { background: var(--danger); }
.cancel { margin-left: 1rem; }
.notice { padding: .8rem 1rem; border-left: 4px solid var(--danger); background: #fff5f5; }
.note { color: var(--muted); font-size: .95rem; }
.error { padding: .8rem 1rem; border-left: 4px solid #bf8700; background: #fff8c5; }
.effects li { margin: .3rem 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .4rem 1.2rem; }
dt { color: var(--muted); }
dd { margin: 0; word-break: break-all; }
.avatar { width: 72px; height: 72px; border-radius: 50%; float: right; }
form { margin: 1.2rem 0; }
.actions { margin-top: 1.5rem; }
footer { text-align: center; color: var(--muted); padding: 1rem; font-size: .9rem; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<script>\"'&"), "&lt;script&gt;&quot;&#x27;&amp;");
    }

    #[test]
    fn confirm_pages_carry_notice_and_csrf() {
        for lang in [Lang::En, Lang::Ja] {
            let p = confirm(lang, Action::Unregister, "tok");
            assert!(p.contains("name=\"csrf_token\" value=\"tok\""));
            assert!(p.contains(lang.t().unregister_notice));
            let p = confirm(lang, Action::Unlink, "tok");
            assert!(p.contains(lang.t().unlink_notice));
        }
        assert!(confirm(Lang::En, Action::Unregister, "t").contains("LY Corporation"));
        assert!(confirm(Lang::Ja, Action::Unregister, "t").contains("LINEヤフー株式会社"));
    }
}
