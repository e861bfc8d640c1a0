//! Parsing the callback (`redirect_uri?code=…&state=…` or `?error=…`).
//!
//! [`parse_callback`] turns the raw query string into a [`CallbackResponse`], rejecting
//! duplicated, oversized or malformed parameters (never "first wins" or "last wins").
//! [`CallbackResponse::verify_state`] then compares the state with the one kept for this
//! login in constant time and gives a [`CallbackOutcome`]; a state mismatch is its own
//! outcome, because on LINE it is also how a failed auto login shows up: offer the user a
//! retry with `disable_auto_login=true`.

use std::collections::HashSet;
use std::fmt;

use crate::secret::AuthorizationCode;
use crate::types::State;

/// Largest accepted query string, in bytes.
pub const MAX_QUERY_LEN: usize = 8 * 1024;
/// Largest accepted single value (after percent-decoding), in bytes.
pub const MAX_VALUE_LEN: usize = 2 * 1024;
/// Largest accepted number of parameters.
pub const MAX_PARAMS: usize = 32;

/// The authorization error codes LINE documents, compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthErrorCode {
    /// `INVALID_REQUEST`: malformed or missing parameters.
    InvalidRequest,
    /// `ACCESS_DENIED`: the user cancelled on the consent screen.
    AccessDenied,
    /// `UNSUPPORTED_RESPONSE_TYPE`.
    UnsupportedResponseType,
    /// `INVALID_SCOPE`.
    InvalidScope,
    /// `SERVER_ERROR`.
    ServerError,
    /// `LOGIN_REQUIRED` (`prompt=none` and the user must log in).
    LoginRequired,
    /// `INTERACTION_REQUIRED` (`prompt=none` and auto login impossible).
    InteractionRequired,
    /// Anything else, kept verbatim (never render it unescaped).
    Other(String),
}

impl AuthErrorCode {
    /// Parses a code case-insensitively (LINE documents UPPER_CASE; its SDKs use lowercase).
    pub fn parse(code: &str) -> Self {
        let c = code.to_ascii_lowercase();
        match c.as_str() {
            "invalid_request" => Self::InvalidRequest,
            "access_denied" => Self::AccessDenied,
            "unsupported_response_type" => Self::UnsupportedResponseType,
            "invalid_scope" => Self::InvalidScope,
            "server_error" => Self::ServerError,
            "login_required" => Self::LoginRequired,
            "interaction_required" => Self::InteractionRequired,
            _ => Self::Other(code.to_owned()),
        }
    }

    /// The documented spelling (UPPER_CASE), or `other` for unknown codes — safe to log or
    /// to use as a key for a fixed message.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::AccessDenied => "ACCESS_DENIED",
            Self::UnsupportedResponseType => "UNSUPPORTED_RESPONSE_TYPE",
            Self::InvalidScope => "INVALID_SCOPE",
            Self::ServerError => "SERVER_ERROR",
            Self::LoginRequired => "LOGIN_REQUIRED",
            Self::InteractionRequired => "INTERACTION_REQUIRED",
            Self::Other(_) => "other",
        }
    }
}

impl fmt::Display for AuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A successful callback: the code and what came with it.
#[derive(Debug, Clone)]
pub struct AuthorizationResponse {
    /// The authorization code (10 minutes, single use).
    pub code: AuthorizationCode,
    /// The returned state.
    pub state: State,
    /// `friendship_status_changed`: present only when `bot_prompt` was sent and the
    /// add-friend option was shown.
    pub friendship_status_changed: Option<bool>,
    /// `liffClientId` (only for `liff.login()`).
    pub liff_client_id: Option<String>,
    /// `liffRedirectUri` (only for `liff.login()`). Never use it as a redirect target.
    pub liff_redirect_uri: Option<String>,
}

/// An error callback.
#[derive(Debug, Clone)]
pub struct AuthorizationErrorResponse {
    /// The error code.
    pub error: AuthErrorCode,
    /// The description, if any. Untrusted text: never render it unescaped.
    pub error_description: Option<String>,
    /// The returned state, if any.
    pub state: Option<State>,
}

/// A parsed callback, before the state check.
#[derive(Debug, Clone)]
pub enum CallbackResponse {
    /// `code` + `state`.
    Success(AuthorizationResponse),
    /// `error` (+ `error_description`, `state`).
    Error(AuthorizationErrorResponse),
}

/// The callback after the state check.
#[derive(Debug, Clone)]
pub enum CallbackOutcome {
    /// The state matched and LINE sent a code: exchange it.
    Authorized(AuthorizationResponse),
    /// The state matched and LINE sent an error (e.g. the user cancelled).
    Failed(AuthorizationErrorResponse),
    /// The state was missing or did not match. This is a possible CSRF attempt, or a failed
    /// auto login (LINE then sends an unusable code with a foreign state). Do not exchange
    /// anything; offer a retry with `disable_auto_login=true`.
    StateMismatch {
        /// The error code, if the callback was an error callback.
        error: Option<AuthErrorCode>,
    },
}

/// Why a callback query was rejected outright.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The query string is longer than [`MAX_QUERY_LEN`].
    #[error("the callback query is too large")]
    QueryTooLarge,
    /// More than [`MAX_PARAMS`] parameters.
    #[error("the callback has too many parameters")]
    TooManyParameters,
    /// A parameter appears more than once.
    #[error("the callback parameter {0} appears more than once")]
    DuplicateParameter(String),
    /// A value is longer than [`MAX_VALUE_LEN`].
    #[error("the callback parameter {0} is too long")]
    ValueTooLong(&'static str),
    /// A value is empty or holds characters outside printable ASCII.
    #[error("the callback parameter {0} is malformed")]
    Malformed(&'static str),
    /// Both `code` and `error` are present.
    #[error("the callback carries both a code and an error")]
    Conflicting,
    /// Neither `code` nor `error` is present.
    #[error("the callback carries neither a code nor an error")]
    MissingCodeOrError,
    /// `code` is present but `state` is missing.
    #[error("the callback has a code but no state")]
    MissingState,
}

const KNOWN: &[&str] = &[
    "code",
    "state",
    "error",
    "error_description",
    "friendship_status_changed",
    "liffClientId",
    "liffRedirectUri",
];

/// Parses a callback query string (without the leading `?`).
///
/// Unknown extra parameters are tolerated and ignored (LINE may add some), but no known
/// parameter may appear twice, and `code`/`state` must be non-empty printable ASCII.
pub fn parse_callback(query: &str) -> Result<CallbackResponse, CallbackError> {
    if query.len() > MAX_QUERY_LEN {
        return Err(CallbackError::QueryTooLarge);
    }
    let mut seen: HashSet<String> = HashSet::new();
    let mut fields: [Option<String>; 7] = Default::default();
    let mut count = 0usize;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        count += 1;
        if count > MAX_PARAMS {
            return Err(CallbackError::TooManyParameters);
        }
        if !seen.insert(k.to_string()) {
            return Err(CallbackError::DuplicateParameter(truncate_name(&k)));
        }
        if let Some(i) = KNOWN.iter().position(|n| *n == k) {
            if v.len() > MAX_VALUE_LEN {
                return Err(CallbackError::ValueTooLong(KNOWN[i]));
            }
            fields[i] = Some(v.into_owned());
        }
    }
    let [
        code,
        state,
        error,
        error_description,
        friendship,
        liff_client_id,
        liff_redirect_uri,
    ] = fields;

    let state = match state {
        Some(s) => Some(State::new(printable(s, "state")?)),
        None => None,
    };
    match (code, error) {
        (Some(_), Some(_)) => Err(CallbackError::Conflicting),
        (None, None) => Err(CallbackError::MissingCodeOrError),
        (Some(code), None) => {
            let code = AuthorizationCode::new(printable(code, "code")?);
            let state = state.ok_or(CallbackError::MissingState)?;
            let friendship_status_changed = match friendship.as_deref() {
                None => None,
                Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
                Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
                Some(_) => return Err(CallbackError::Malformed("friendship_status_changed")),
            };
            Ok(CallbackResponse::Success(AuthorizationResponse {
                code,
                state,
                friendship_status_changed,
                liff_client_id,
                liff_redirect_uri,
            }))
        }
        (None, Some(error)) => Ok(CallbackResponse::Error(AuthorizationErrorResponse {
            error: AuthErrorCode::parse(&printable(error, "error")?),
            error_description,
            state,
        })),
    }
}

impl CallbackResponse {
    /// The state the callback carries, if any.
    pub fn state(&self) -> Option<&State> {
        match self {
            CallbackResponse::Success(s) => Some(&s.state),
            CallbackResponse::Error(e) => e.state.as_ref(),
        }
    }

    /// Compares the callback's state with the expected one, in constant time.
    pub fn verify_state(self, expected: &State) -> CallbackOutcome {
        let matches = self
            .state()
            .is_some_and(|s| !expected.as_str().is_empty() && s.ct_eq(expected));
        match (self, matches) {
            (CallbackResponse::Success(s), true) => CallbackOutcome::Authorized(s),
            (CallbackResponse::Error(e), true) => CallbackOutcome::Failed(e),
            (CallbackResponse::Success(_), false) => CallbackOutcome::StateMismatch { error: None },
            (CallbackResponse::Error(e), false) => CallbackOutcome::StateMismatch {
                error: Some(e.error),
            },
        }
    }
}

/// Parses a callback query and checks its state in one step.
pub fn verify_callback(query: &str, expected: &State) -> Result<CallbackOutcome, CallbackError> {
    Ok(parse_callback(query)?.verify_state(expected))
}

fn printable(value: String, name: &'static str) -> Result<String, CallbackError> {
    if value.is_empty() || !value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(CallbackError::Malformed(name));
    }
    Ok(value)
}

fn truncate_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect();
    if safe.is_empty() {
        "(unprintable)".to_owned()
    } else {
        safe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st() -> State {
        State::new("n5B9b9FR2BWjloDzEskZMmGysITRTYpjLkM6oD5qfmA")
    }

    #[test]
    fn success_with_extras() {
        let q = "code=Zfl2WjsWcn2XBBWApcty&state=n5B9b9FR2BWjloDzEskZMmGysITRTYpjLkM6oD5qfmA&friendship_status_changed=true&liffClientId=123&liffRedirectUri=https%3A%2F%2Fevil&foo=bar";
        match verify_callback(q, &st()).unwrap() {
            CallbackOutcome::Authorized(r) => {
                assert_eq!(r.code.secret(), "Zfl2WjsWcn2XBBWApcty");
                assert_eq!(r.friendship_status_changed, Some(true));
                assert_eq!(r.liff_client_id.as_deref(), Some("123"));
                assert_eq!(r.liff_redirect_uri.as_deref(), Some("https://evil"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn error_codes_case_insensitive() {
        for q in [
            "error=ACCESS_DENIED&error_description=The+resource+owner+denied+the+request.&state=n5B9b9FR2BWjloDzEskZMmGysITRTYpjLkM6oD5qfmA",
            "error=access_denied&state=n5B9b9FR2BWjloDzEskZMmGysITRTYpjLkM6oD5qfmA",
        ] {
            match verify_callback(q, &st()).unwrap() {
                CallbackOutcome::Failed(e) => assert_eq!(e.error, AuthErrorCode::AccessDenied),
                other => panic!("unexpected {other:?}"),
            }
        }
        for (raw, code) in [
            ("INVALID_REQUEST", AuthErrorCode::InvalidRequest),
            (
                "unsupported_response_type",
                AuthErrorCode::UnsupportedResponseType,
            ),
            ("Invalid_Scope", AuthErrorCode::InvalidScope),
            ("SERVER_ERROR", AuthErrorCode::ServerError),
            ("login_required", AuthErrorCode::LoginRequired),
            ("INTERACTION_REQUIRED", AuthErrorCode::InteractionRequired),
        ] {
            assert_eq!(AuthErrorCode::parse(raw), code);
        }
        assert_eq!(AuthErrorCode::parse("<script>").as_str(), "other");
    }

    #[test]
    fn state_mismatch_is_its_own_outcome() {
        let q = "code=abc&state=other";
        assert!(matches!(
            verify_callback(q, &st()).unwrap(),
            CallbackOutcome::StateMismatch { error: None }
        ));
        let q = "error=ACCESS_DENIED";
        assert!(matches!(
            verify_callback(q, &st()).unwrap(),
            CallbackOutcome::StateMismatch {
                error: Some(AuthErrorCode::AccessDenied)
            }
        ));
        // An empty expected state never matches (the "None == None" fail-open).
        assert!(matches!(
            verify_callback("code=abc&state=x", &State::new("")).unwrap(),
            CallbackOutcome::StateMismatch { .. }
        ));
    }

    #[test]
    fn duplicates_and_conflicts_rejected() {
        assert_eq!(
            parse_callback("code=a&code=b&state=S").unwrap_err(),
            CallbackError::DuplicateParameter("code".into())
        );
        assert_eq!(
            parse_callback("code=a&state=S&state=S2").unwrap_err(),
            CallbackError::DuplicateParameter("state".into())
        );
        assert_eq!(
            parse_callback("code=a&error=ACCESS_DENIED&state=S").unwrap_err(),
            CallbackError::Conflicting
        );
        assert_eq!(
            parse_callback("code=a").unwrap_err(),
            CallbackError::MissingState
        );
        assert_eq!(
            parse_callback("").unwrap_err(),
            CallbackError::MissingCodeOrError
        );
    }

    #[test]
    fn oversized_and_malformed_rejected() {
        let long = "a".repeat(MAX_VALUE_LEN + 1);
        assert_eq!(
            parse_callback(&format!("code={long}&state=S")).unwrap_err(),
            CallbackError::ValueTooLong("code")
        );
        assert_eq!(
            parse_callback(&format!("code=a&state={}", "s".repeat(MAX_QUERY_LEN))).unwrap_err(),
            CallbackError::QueryTooLarge
        );
        let many: Vec<String> = (0..40).map(|i| format!("p{i}=1")).collect();
        assert_eq!(
            parse_callback(&many.join("&")).unwrap_err(),
            CallbackError::TooManyParameters
        );
        assert_eq!(
            parse_callback("code=&state=S").unwrap_err(),
            CallbackError::Malformed("code")
        );
        assert_eq!(
            parse_callback("code=a%0d%0a&state=S").unwrap_err(),
            CallbackError::Malformed("code")
        );
        assert_eq!(
            parse_callback("code=a%00&state=S").unwrap_err(),
            CallbackError::Malformed("code")
        );
        assert_eq!(
            parse_callback("code=%C3%A9&state=S").unwrap_err(),
            CallbackError::Malformed("code")
        );
        assert_eq!(
            parse_callback("code=a&state=S&friendship_status_changed=maybe").unwrap_err(),
            CallbackError::Malformed("friendship_status_changed")
        );
    }
}
