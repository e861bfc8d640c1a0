//! Server-rendered HTML, from [minijinja] templates.
//!
//! # Decisions
//!
//! - **minijinja** (not askama/tera): its templates are plain files parsed at run time, so an
//!   operator can replace one without rebuilding, and it auto-escapes every value of a `.html`
//!   template (HTML escaping of `& < > " ' /`), which replaces the hand-written `escape` this
//!   module had. It is small (no proc macros) and maintained by the author of Jinja2.
//! - The built-in templates (`templates/*.html` of this crate) are embedded in the binary with
//!   `include_str!`. `[pages] templates_dir` names a directory whose files replace the
//!   built-in ones of the same name (`layout.html`, `home.html`, `me.html`, `confirm.html`,
//!   `done.html`, `terms.html`, `error.html`); any other name there is ignored. Every file is
//!   read and parsed once, at start, so a syntax error stops the server with the file name and
//!   line (`syntax error: … (in confirm.html:3)`).
//! - No page carries inline script or style (the CSP is `default-src 'self'`); the stylesheet
//!   is `/static/style.css`; `[pages] brand_color` is appended there as a CSS variable, after
//!   validation (`#rgb` / `#rrggbb`), never into a page.
//! - Only our own fixed URLs (`/login?retry=1`, form actions) are passed unescaped
//!   ([`Value::from_safe_string`]); every other value, including the user's name and picture
//!   URL, is escaped by the template engine.
//! - [`Pages::check_notices`] renders the confirm and terms pages *with the configured
//!   templates* and reports whether the unregister / unlink notice (en, ja) is on them; the
//!   `linelogin check` command fails when a template drops one (LINE's development
//!   guidelines require the notice).
//! - `confirm.html` serves a visitor without a session too, so that the notice is shown
//!   before anyone logs in (and `linelogin check --url` can read it): then `csrf` is empty
//!   and `login` is the link to log in and come back, shown instead of the form. An
//!   override should do the same (the built-in one does; [`Pages::check_notices`] renders
//!   both cases).

use std::path::{Path, PathBuf};

use minijinja::value::Serde;
use minijinja::{Environment, Value, context};

use crate::config::PagesConfig;
use crate::i18n::Lang;
use crate::store::{Account, AccountStatus};

/// The names of the built-in templates and their embedded sources.
pub const TEMPLATES: [(&str, &str); 7] = [
    ("layout.html", include_str!("../templates/layout.html")),
    ("home.html", include_str!("../templates/home.html")),
    ("me.html", include_str!("../templates/me.html")),
    ("confirm.html", include_str!("../templates/confirm.html")),
    ("done.html", include_str!("../templates/done.html")),
    ("terms.html", include_str!("../templates/terms.html")),
    ("error.html", include_str!("../templates/error.html")),
];

/// A template could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PagesError {
    /// A file of the templates directory could not be read.
    #[error("template {path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// A template does not parse or failed to render; the message names the file and line.
    #[error("template error: {0}")]
    Template(String),
    /// A `[pages]` value is invalid.
    #[error("[pages] {0}")]
    Config(String),
}

impl From<minijinja::Error> for PagesError {
    fn from(e: minijinja::Error) -> Self {
        PagesError::Template(e.to_string())
    }
}

/// The page renderer: the template environment plus the operator's branding.
#[derive(Debug)]
pub struct Pages {
    env: Environment<'static>,
    app_name: Option<String>,
    logo_url: Option<String>,
    brand_color: Option<String>,
    /// The path every link starts with: `""`, or `[gateway] prefix`.
    base: String,
}

impl Default for Pages {
    fn default() -> Self {
        Self::builtin()
    }
}

/// Which account action a confirmation page is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `/account/unregister`.
    Unregister,
    /// `/account/unlink`.
    Unlink,
}

/// The logged-in user as shown in the page header.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HeaderUser {
    /// The LINE display name.
    pub display_name: String,
    /// The profile picture (only `https://` URLs; otherwise a placeholder is shown).
    pub picture_url: Option<String>,
    /// The first letter of the name, for the placeholder.
    pub initial: String,
}

impl HeaderUser {
    /// The header view of an account.
    pub fn of(account: &Account) -> Self {
        Self {
            display_name: account.display_name.clone(),
            picture_url: safe_picture(account.picture_url.as_deref()),
            initial: account
                .display_name
                .chars()
                .next()
                .map_or_else(|| "?".to_owned(), |c| c.to_uppercase().collect()),
        }
    }
}

/// Only `https://` pictures are shown (LINE serves them from `profile.line-scdn.net`).
fn safe_picture(url: Option<&str>) -> Option<String> {
    url.filter(|p| p.starts_with("https://")).map(str::to_owned)
}

/// Whether each guideline notice is on the pages that must carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeCheck {
    /// The language checked.
    pub lang: Lang,
    /// `confirm.html` (unregister) carries the unregister notice.
    pub unregister_confirm: bool,
    /// `confirm.html` (unlink) carries the unlink notice.
    pub unlink_confirm: bool,
    /// `terms.html` carries the unregister notice.
    pub unregister_terms: bool,
    /// `terms.html` carries the unlink notice.
    pub unlink_terms: bool,
}

impl NoticeCheck {
    /// All four notices are present.
    pub fn ok(&self) -> bool {
        self.missing().is_empty()
    }

    /// What is missing, as `template (notice)` strings.
    pub fn missing(&self) -> Vec<String> {
        let l = self.lang.code();
        [
            (self.unregister_confirm, "confirm.html", "unregister"),
            (self.unlink_confirm, "confirm.html", "unlink"),
            (self.unregister_terms, "terms.html", "unregister"),
            (self.unlink_terms, "terms.html", "unlink"),
        ]
        .into_iter()
        .filter(|(ok, ..)| !ok)
        .map(|(_, file, notice)| format!("{file} lacks the {notice} notice ({l})"))
        .collect()
    }
}

fn is_hex_color(s: &str) -> bool {
    s.strip_prefix('#')
        .is_some_and(|h| (h.len() == 3 || h.len() == 6) && h.chars().all(|c| c.is_ascii_hexdigit()))
}

impl Pages {
    /// The built-in templates, no branding.
    pub fn builtin() -> Self {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            // The built-in templates are tested to parse (`builtin_templates_parse`).
            if let Err(e) = env.add_template(name, src) {
                tracing::error!(error = %e, "built-in template does not parse");
            }
        }
        Self {
            env,
            app_name: None,
            logo_url: None,
            brand_color: None,
            base: String::new(),
        }
    }

    /// Puts every link, form action and the stylesheet under `base` (the `[gateway]`
    /// prefix; `""` without one). Templates see it as `base` (prepend it to every path of
    /// linelogin's) and `home` (the start page: `base`, or `/`).
    pub fn with_base(mut self, base: &str) -> Self {
        self.base = base.to_owned();
        self
    }

    /// A path of linelogin's (`/me`) as linked from a page: under the base path.
    pub fn url(&self, path: &str) -> String {
        if path == "/" && !self.base.is_empty() {
            self.base.clone()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// The built-in templates, replaced by the files of `[pages] templates_dir` of the same
    /// name, with the configured branding.
    pub fn load(config: &PagesConfig) -> Result<Self, PagesError> {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            match config.templates_dir.as_deref() {
                Some(dir) if dir.join(name).is_file() => {
                    let src = read_template(&dir.join(name))?;
                    env.add_template_owned(name.to_owned(), src)?;
                }
                _ => env.add_template(name, src)?,
            }
        }
        if let Some(c) = config.brand_color.as_deref()
            && !is_hex_color(c)
        {
            return Err(PagesError::Config(format!(
                "brand_color {c:?} is not #rgb or #rrggbb"
            )));
        }
        if let Some(u) = config.logo_url.as_deref()
            && !(u.starts_with("https://") || u.starts_with('/'))
        {
            return Err(PagesError::Config(
                "logo_url must start with https:// or /".to_owned(),
            ));
        }
        Ok(Self {
            env,
            app_name: config.app_name.clone().filter(|n| !n.trim().is_empty()),
            logo_url: config.logo_url.clone(),
            brand_color: config.brand_color.clone(),
            base: String::new(),
        })
    }

    fn render(
        &self,
        name: &str,
        lang: Lang,
        title: &str,
        user: Option<&HeaderUser>,
        here: &str,
        page: Value,
    ) -> Result<String, PagesError> {
        let t = lang.t();
        let (other, other_name) = match lang {
            Lang::En => ("ja", "日本語"),
            Lang::Ja => ("en", "English"),
        };
        let base = context! {
            lang => lang.code(),
            t => Value::from(Serde(t)),
            app_name => self.app_name.as_deref().unwrap_or(t.app_name),
            logo_url => self.logo_url.as_deref(),
            title => title,
            user => user.map(|u| Value::from(Serde(u))),
            here => Value::from_safe_string(self.url(here)),
            base => Value::from_safe_string(self.base.clone()),
            home => Value::from_safe_string(self.url("/")),
            other_lang => other,
            other_lang_name => other_name,
        };
        let ctx = context! { ..page, ..base };
        Ok(self.env.get_template(name)?.render(ctx)?)
    }

    /// `GET /`; `logged_out` adds the "You are logged out" line.
    pub fn home(
        &self,
        lang: Lang,
        user: Option<&HeaderUser>,
        logged_out: bool,
    ) -> Result<String, PagesError> {
        let t = lang.t();
        self.render(
            "home.html",
            lang,
            t.home_title,
            user,
            "/",
            context! { logged_out },
        )
    }

    /// `GET /me`; `email` comes from the verified ID token (scope `email`), when granted.
    pub fn me(
        &self,
        lang: Lang,
        account: &Account,
        email: Option<&str>,
        csrf: &str,
    ) -> Result<String, PagesError> {
        let t = lang.t();
        let user = HeaderUser::of(account);
        let view = context! {
            display_name => &account.display_name,
            picture_url => safe_picture(account.picture_url.as_deref()),
            sub => &account.sub,
            email => email,
            linked => account.status == AccountStatus::Linked,
        };
        self.render(
            "me.html",
            lang,
            t.me_title,
            Some(&user),
            "/me",
            context! { account => view, csrf },
        )
    }

    /// The confirmation page of unregister / unlink, with the guideline notice next to the
    /// button. Without a session (`csrf` is `None`) the page still says beforehand what the
    /// action does, and offers a link to log in and come back here instead of the form
    /// (templates see `csrf` empty and `login`, the link).
    pub fn confirm(
        &self,
        lang: Lang,
        action: Action,
        user: Option<&HeaderUser>,
        csrf: Option<&str>,
    ) -> Result<String, PagesError> {
        let t = lang.t();
        let (title, notice, effects, button, path, id) = match action {
            Action::Unregister => (
                t.unregister_title,
                t.unregister_notice,
                t.unregister_effects,
                t.unregister_button,
                "/account/unregister",
                "unregister",
            ),
            Action::Unlink => (
                t.unlink_title,
                t.unlink_notice,
                t.unlink_effects,
                t.unlink_button,
                "/account/unlink",
                "unlink",
            ),
        };
        self.render(
            "confirm.html",
            lang,
            title,
            user,
            path,
            context! {
                notice, button, id,
                csrf => csrf.unwrap_or_default(),
                effects => Value::from(Serde(effects)),
                path => Value::from_safe_string(self.url(path)),
                login => Value::from_safe_string(format!(
                    "{}?next={}",
                    self.url("/login"),
                    self.url(path)
                )),
            },
        )
    }

    /// After unregister / unlink (the session is gone).
    pub fn done(&self, lang: Lang, action: Action) -> Result<String, PagesError> {
        let t = lang.t();
        let (title, body) = match action {
            Action::Unregister => (t.unregistered_title, t.unregistered_body),
            Action::Unlink => (t.unlinked_title, t.unlinked_body),
        };
        self.render("done.html", lang, title, None, "/", context! { body })
    }

    /// `GET /terms`, carrying the unregister / unlink notice.
    pub fn terms(&self, lang: Lang, user: Option<&HeaderUser>) -> Result<String, PagesError> {
        let t = lang.t();
        self.render(
            "terms.html",
            lang,
            t.terms_title,
            user,
            "/terms",
            context! {},
        )
    }

    /// An error page: a fixed message, never input, and an optional retry link (one of our
    /// own fixed URLs).
    pub fn error(
        &self,
        lang: Lang,
        title: &str,
        message: &str,
        retry: Option<&'static str>,
        user: Option<&HeaderUser>,
    ) -> Result<String, PagesError> {
        self.render(
            "error.html",
            lang,
            title,
            user,
            "/",
            context! {
                message,
                retry => retry.map(|r| Value::from_safe_string(self.url(r))),
            },
        )
    }

    /// The stylesheet, with `[pages] brand_color` appended as `--brand` when set.
    pub fn style_css(&self) -> String {
        match &self.brand_color {
            Some(c) => format!("{STYLE_CSS}:root {{ --brand: {c}; }}\n"),
            None => STYLE_CSS.to_owned(),
        }
    }

    /// Whether the confirmation page of `action` carries its notice, both as a logged-in user
    /// sees it (the form) and as a visitor without a session does (the login link).
    fn confirm_carries(&self, lang: Lang, action: Action) -> Result<bool, PagesError> {
        let t = lang.t();
        let notice = match action {
            Action::Unregister => t.unregister_notice,
            Action::Unlink => t.unlink_notice,
        };
        for csrf in [Some("x"), None] {
            if !self.confirm(lang, action, None, csrf)?.contains(notice) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Renders the confirm and terms pages with these templates and reports, per language,
    /// whether each guideline notice is on them (`linelogin check`).
    pub fn check_notices(&self) -> Result<Vec<NoticeCheck>, PagesError> {
        let mut out = Vec::new();
        for lang in [Lang::En, Lang::Ja] {
            let t = lang.t();
            let terms = self.terms(lang, None)?;
            out.push(NoticeCheck {
                lang,
                unregister_confirm: self.confirm_carries(lang, Action::Unregister)?,
                unlink_confirm: self.confirm_carries(lang, Action::Unlink)?,
                unregister_terms: terms.contains(t.unregister_notice),
                unlink_terms: terms.contains(t.unlink_notice),
            });
        }
        Ok(out)
    }
}

fn read_template(path: &Path) -> Result<String, PagesError> {
    std::fs::read_to_string(path).map_err(|e| PagesError::Read {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// A minimal page used only when a template fails to render (the failure is logged).
pub fn fallback_page(lang: Lang) -> String {
    fallback_page_at(lang, "")
}

/// [`fallback_page`] with its links under `base` (the `[gateway]` prefix).
pub fn fallback_page_at(lang: Lang, base: &str) -> String {
    let t = lang.t();
    let home = if base.is_empty() { "/" } else { base };
    format!(
        "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <link rel=\"stylesheet\" href=\"{base}/static/style.css\"></head><body><main><h1>{}</h1>\
         <p class=\"error\">{}</p><p><a href=\"{home}\">{}</a></p></main></body></html>\n",
        lang.code(),
        t.error_title,
        t.error_title,
        t.err_internal,
        t.back_home
    )
}

/// The stylesheet. The LINE Login button follows LINE's "LINE Login button" design
/// guidelines: base `#06C755` with white text and a logo area separated by a thin line,
/// hover = base + 10% black overlay, pressed = base + 30% black overlay, disabled = white with
/// a `#E5E5E5` border and grey text; overlays are a `linear-gradient` over the green, so the
/// base colour stays exact.
pub const STYLE_CSS: &str = include_str!("../templates/style.css");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_templates_parse() {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            env.add_template(name, src).unwrap();
        }
    }

    #[test]
    fn values_are_escaped() {
        let pages = Pages::builtin();
        let html = pages
            .error(Lang::En, "<script>\"'&", "m", None, None)
            .unwrap();
        assert!(html.contains("&lt;script&gt;&quot;&#x27;&amp;"), "{html}");
    }

    #[test]
    fn confirm_pages_carry_notice_and_csrf() {
        let pages = Pages::builtin();
        for lang in [Lang::En, Lang::Ja] {
            let p = pages
                .confirm(lang, Action::Unregister, None, Some("tok"))
                .unwrap();
            assert!(p.contains("name=\"csrf_token\" value=\"tok\""));
            assert!(p.contains(lang.t().unregister_notice));
            let p = pages
                .confirm(lang, Action::Unlink, None, Some("tok"))
                .unwrap();
            assert!(p.contains(lang.t().unlink_notice));
        }
        let en = pages.confirm(Lang::En, Action::Unregister, None, Some("t"));
        assert!(en.unwrap().contains("LY Corporation"));
        let ja = pages.confirm(Lang::Ja, Action::Unregister, None, Some("t"));
        assert!(ja.unwrap().contains("LINEヤフー株式会社"));
        assert!(pages.check_notices().unwrap().iter().all(NoticeCheck::ok));
    }

    #[test]
    fn an_override_replaces_the_builtin_and_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("done.html"),
            "{% extends \"layout.html\" %}{% block content %}OVERRIDDEN{% endblock %}",
        )
        .unwrap();
        let config = PagesConfig {
            templates_dir: Some(dir.path().to_owned()),
            app_name: Some("Acme".into()),
            ..PagesConfig::default()
        };
        let pages = Pages::load(&config).unwrap();
        let html = pages.done(Lang::En, Action::Unlink).unwrap();
        assert!(
            html.contains("OVERRIDDEN") && html.contains("Acme"),
            "{html}"
        );
        std::fs::write(dir.path().join("me.html"), "line 1\n{% if %}\n").unwrap();
        let err = Pages::load(&config).unwrap_err().to_string();
        assert!(err.contains("me.html:2"), "{err}");
    }
}
