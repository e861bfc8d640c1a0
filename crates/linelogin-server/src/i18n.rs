//! English and Japanese page texts, chosen by `?lang=en|ja`, else the `lang` cookie (set by
//! the header's EN/JA switch, see [`LANG_COOKIE`]), else `Accept-Language`.

use axum::extract::FromRequestParts;
use http::request::Parts;

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// English (the default).
    #[default]
    En,
    /// Japanese.
    Ja,
}

impl Lang {
    /// Picks the language from an `Accept-Language` header value: the supported language with
    /// the highest q-value (ties: first listed); English when none matches.
    pub fn from_accept_language(header: Option<&str>) -> Self {
        let Some(header) = header else {
            return Lang::En;
        };
        let mut best: Option<(f32, Lang)> = None;
        for item in header.split(',').take(32) {
            let mut parts = item.trim().split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let lang = match tag.split('-').next() {
                Some("ja") => Lang::Ja,
                Some("en") => Lang::En,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }

    /// Parses `en` / `ja`.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "en" => Some(Lang::En),
            "ja" => Some(Lang::Ja),
            _ => None,
        }
    }

    /// The `?lang=` of a query string, if it names a supported language.
    pub fn from_query(query: Option<&str>) -> Option<Self> {
        query?
            .split('&')
            .find_map(|kv| kv.strip_prefix("lang="))
            .and_then(Lang::from_code)
    }

    /// The language of a request: `?lang=`, else the [`LANG_COOKIE`], else `Accept-Language`.
    pub fn of_request(query: Option<&str>, headers: &http::HeaderMap) -> Self {
        Lang::from_query(query)
            .or_else(|| {
                crate::session::read_cookie(headers, LANG_COOKIE)
                    .as_deref()
                    .and_then(Lang::from_code)
            })
            .unwrap_or_else(|| {
                Lang::from_accept_language(
                    headers
                        .get(http::header::ACCEPT_LANGUAGE)
                        .and_then(|v| v.to_str().ok()),
                )
            })
    }

    /// The `lang` attribute value.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    /// The texts of this language.
    pub fn t(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::Ja => &JA,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Lang::of_request(parts.uri.query(), &parts.headers))
    }
}

/// The cookie that remembers the EN/JA switch (a preference, not a secret; one year).
pub const LANG_COOKIE: &str = "lang";

/// Every text shown on a page (templates see them as `t.<field>`).
#[allow(missing_docs)]
#[derive(Debug, serde::Serialize)]
pub struct Texts {
    pub app_name: &'static str,
    pub home_title: &'static str,
    pub home_intro: &'static str,
    pub login_button: &'static str,
    pub my_page: &'static str,
    pub terms: &'static str,
    pub me_title: &'static str,
    pub user_id: &'static str,
    pub display_name: &'static str,
    pub status: &'static str,
    pub linked: &'static str,
    pub unlinked: &'static str,
    pub logout: &'static str,
    pub unlink_link: &'static str,
    pub unregister_link: &'static str,
    pub unlinked_relogin: &'static str,
    pub unregister_title: &'static str,
    pub unregister_notice: &'static str,
    pub unregister_effects: &'static [&'static str],
    pub unregister_button: &'static str,
    pub unlink_title: &'static str,
    pub unlink_notice: &'static str,
    pub unlink_effects: &'static [&'static str],
    pub unlink_button: &'static str,
    pub relogin_note: &'static str,
    /// The link of a confirmation page opened without a session.
    pub login_to_continue: &'static str,
    pub cancel: &'static str,
    pub unregistered_title: &'static str,
    pub unregistered_body: &'static str,
    pub unlinked_title: &'static str,
    pub unlinked_body: &'static str,
    pub terms_title: &'static str,
    pub terms_body: [&'static str; 3],
    pub terms_deauth_heading: &'static str,
    pub back_home: &'static str,
    pub try_again: &'static str,
    pub error_title: &'static str,
    pub err_state_mismatch: &'static str,
    pub err_bad_callback: &'static str,
    pub err_cancelled_title: &'static str,
    pub err_cancelled: &'static str,
    pub err_line_error: &'static str,
    pub err_id_token: &'static str,
    pub err_unavailable: &'static str,
    pub err_bad_upstream: &'static str,
    pub err_login_required: &'static str,
    pub err_csrf: &'static str,
    pub err_not_found: &'static str,
    pub err_internal: &'static str,
    pub err_busy: &'static str,
    pub err_account_mismatch: &'static str,
    pub err_code_expired: &'static str,
    pub err_method: &'static str,
    pub err_too_large: &'static str,
    pub logged_out: &'static str,
    pub email: &'static str,
    pub terms_unregister_heading: &'static str,
    pub terms_unlink_heading: &'static str,
}

/// English.
pub static EN: Texts = Texts {
    app_name: "linelogin",
    home_title: "Welcome",
    home_intro: "Log in with your LINE account to see your profile. You can log out, unlink LINE or delete your account at any time.",
    login_button: "Log in with LINE",
    my_page: "My page",
    terms: "Terms",
    me_title: "My page",
    user_id: "LINE user ID",
    display_name: "Display name",
    status: "LINE link",
    linked: "Linked",
    unlinked: "Not linked",
    logout: "Log out",
    unlink_link: "Unlink LINE…",
    unregister_link: "Delete account…",
    unlinked_relogin: "Your account is not linked with LINE. Log in with LINE again to link it.",
    unregister_title: "Delete account",
    unregister_notice: "If you delete your account, LY Corporation will be notified that you have unregistered, and this service will no longer be linked to your LINE account.",
    unregister_effects: &[
        "Your account and your data here are deleted. This cannot be undone.",
        "This service no longer appears under Linked apps in LINE.",
    ],
    unregister_button: "Delete account",
    unlink_title: "Unlink LINE",
    unlink_notice: "If you unlink LINE, LY Corporation will be notified, and this service will no longer be linked to your LINE account.",
    unlink_effects: &[
        "Your account here stays. Log in with LINE again at any time to link it again.",
        "This service no longer appears under Linked apps in LINE.",
    ],
    unlink_button: "Unlink LINE",
    relogin_note: "If your LINE login here has expired, you will first be asked to log in with LINE once more, so that LY Corporation can be notified.",
    login_to_continue: "Log in with LINE to continue",
    cancel: "Cancel",
    unregistered_title: "Your account is deleted",
    unregistered_body: "Your account and data have been deleted and you have been logged out on every device. LY Corporation is being notified in the background; if LINE is busy, we keep trying.",
    unlinked_title: "LINE is unlinked",
    unlinked_body: "You have been logged out on every device. LY Corporation is being notified in the background; if LINE is busy, we keep trying. Log in with LINE again at any time to link your account again.",
    terms_title: "Terms of use",
    terms_body: [
        "This service lets you log in with your LINE account. We keep your LINE user ID, display name and picture, and the tokens LINE issues to us, encrypted.",
        "We use your LINE tokens only to run the service: to keep you logged in and, when you leave, to end the link with LINE.",
        "You can log out, unlink LINE or delete your account at any time from My page.",
    ],
    terms_deauth_heading: "Deleting your account and unlinking LINE",
    back_home: "Back to the start page",
    try_again: "Try again",
    error_title: "Something went wrong",
    err_state_mismatch: "We could not confirm that this login was started from this browser, or it took too long. Please try logging in again.",
    err_bad_callback: "The login answer we received was not valid. Please try logging in again.",
    err_cancelled_title: "Login cancelled",
    err_cancelled: "You cancelled the login with LINE. Nothing was changed.",
    err_line_error: "LINE could not complete the login. Please try again.",
    err_id_token: "We could not verify the identity LINE sent. Please try logging in again.",
    err_unavailable: "LINE is busy or unreachable right now. Please try again in a moment.",
    err_bad_upstream: "LINE sent an answer we did not understand. Please try again later.",
    err_login_required: "Please log in first.",
    err_csrf: "This request did not come from our own page, so we ignored it. Please go back and try again.",
    err_not_found: "There is no such page.",
    err_internal: "An unexpected error happened on our side. Please try again later.",
    err_busy: "Your earlier request to end the link with LINE is still being sent. Please try again in a few seconds.",
    err_account_mismatch: "You logged in with a different LINE account than the one of this session, so nothing was changed.",
    err_code_expired: "The login took too long or this link was already used. Please log in again.",
    err_method: "This page cannot be used that way.",
    err_too_large: "The request was too large.",
    logged_out: "You are logged out.",
    email: "Email",
    terms_unregister_heading: "Deleting your account",
    terms_unlink_heading: "Unlinking LINE",
};

/// Japanese.
pub static JA: Texts = Texts {
    app_name: "linelogin",
    home_title: "ようこそ",
    home_intro: "LINEアカウントでログインすると、プロフィールを確認できます。ログアウト、LINE連携の解除、退会はいつでも行えます。",
    login_button: "LINEでログイン",
    my_page: "マイページ",
    terms: "利用規約",
    me_title: "マイページ",
    user_id: "LINEユーザーID",
    display_name: "表示名",
    status: "LINE連携",
    linked: "連携中",
    unlinked: "未連携",
    logout: "ログアウト",
    unlink_link: "LINE連携を解除…",
    unregister_link: "退会…",
    unlinked_relogin: "このアカウントはLINEと連携していません。もう一度LINEでログインすると連携されます。",
    unregister_title: "退会",
    unregister_notice: "退会すると、退会したことがLINEヤフー株式会社に通知され、本サービスとLINEアカウントの連携が解除されます。",
    unregister_effects: &[
        "本サービスのアカウントとデータは削除されます。元に戻すことはできません。",
        "LINEの「連動アプリ」に本サービスが表示されなくなります。",
    ],
    unregister_button: "退会する",
    unlink_title: "LINE連携の解除",
    unlink_notice: "連携を解除すると、LINEヤフー株式会社に通知され、本サービスとLINEアカウントの連携が解除されます。",
    unlink_effects: &[
        "本サービスのアカウントは残ります。もう一度LINEでログインすると、いつでも再び連携できます。",
        "LINEの「連動アプリ」に本サービスが表示されなくなります。",
    ],
    unlink_button: "連携を解除する",
    relogin_note: "LINEのログイン状態が切れている場合は、LINEヤフー株式会社に通知するため、先にもう一度LINEでログインしていただきます。",
    login_to_continue: "続けるにはLINEでログインしてください",
    cancel: "キャンセル",
    unregistered_title: "退会しました",
    unregistered_body: "アカウントとデータを削除し、すべての端末でログアウトしました。LINEヤフー株式会社への通知はバックグラウンドで行います（LINEが混雑している場合は再試行します）。",
    unlinked_title: "LINE連携を解除しました",
    unlinked_body: "すべての端末でログアウトしました。LINEヤフー株式会社への通知はバックグラウンドで行います（LINEが混雑している場合は再試行します）。もう一度LINEでログインすると、いつでも再び連携できます。",
    terms_title: "利用規約",
    terms_body: [
        "本サービスではLINEアカウントでログインできます。LINEユーザーID、表示名、プロフィール画像、およびLINEが発行するトークン（暗号化して保存）を保持します。",
        "LINEのトークンは、ログイン状態の維持と、退会・連携解除時のLINE連携の解除にのみ使用します。",
        "ログアウト、LINE連携の解除、退会は、マイページからいつでも行えます。",
    ],
    terms_deauth_heading: "退会とLINE連携の解除について",
    back_home: "トップページへ戻る",
    try_again: "もう一度試す",
    error_title: "エラーが発生しました",
    err_state_mismatch: "ログインを確認できませんでした。時間がかかりすぎたか、別のブラウザーで開始された可能性があります。もう一度ログインしてください。",
    err_bad_callback: "LINEからのログイン結果を正しく受け取れませんでした。もう一度ログインしてください。",
    err_cancelled_title: "ログインがキャンセルされました",
    err_cancelled: "LINEでのログインをキャンセルしました。何も変更されていません。",
    err_line_error: "LINEでログインを完了できませんでした。もう一度お試しください。",
    err_id_token: "LINEから受け取ったユーザー情報を確認できませんでした。もう一度ログインしてください。",
    err_unavailable: "現在LINEが混雑しているか、接続できません。しばらくしてからもう一度お試しください。",
    err_bad_upstream: "LINEから予期しない応答がありました。しばらくしてからもう一度お試しください。",
    err_login_required: "先にログインしてください。",
    err_csrf: "このリクエストは本サービスのページから送信されていないため、処理しませんでした。前のページに戻ってもう一度お試しください。",
    err_not_found: "ページが見つかりません。",
    err_internal: "予期しないエラーが発生しました。しばらくしてからもう一度お試しください。",
    err_busy: "前回のLINE連携解除を処理しています。数秒後にもう一度お試しください。",
    err_account_mismatch: "このセッションとは別のLINEアカウントでログインしたため、何も変更していません。",
    err_code_expired: "ログインの有効期限が切れたか、このリンクはすでに使用されています。もう一度ログインしてください。",
    err_method: "このページはこの方法ではご利用いただけません。",
    err_too_large: "リクエストが大きすぎます。",
    logged_out: "ログアウトしました。",
    email: "メールアドレス",
    terms_unregister_heading: "退会について",
    terms_unlink_heading: "LINE連携の解除について",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_by_q_value() {
        assert_eq!(
            Lang::from_accept_language(Some("ja-JP,ja;q=0.9,en;q=0.8")),
            Lang::Ja
        );
        assert_eq!(Lang::from_accept_language(Some("en-US,ja;q=0.5")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("fr, ja;q=0.3")), Lang::Ja);
        assert_eq!(Lang::from_accept_language(Some("ja;q=0")), Lang::En);
        assert_eq!(Lang::from_accept_language(None), Lang::En);
        assert_eq!(Lang::from_accept_language(Some(";;,,q=")), Lang::En);
    }
}
