//! Every LINE Login v2.1 API call.

use url::Url;

use super::LineClient;
use super::execute::{Call, decode, expect_empty};
use crate::authorize::PendingAuthorization;
use crate::callback::AuthorizationResponse;
use crate::endpoint::Endpoint;
use crate::error::{Error, LineErrorBody};
use crate::id_token::Expectations;
use crate::secret::{
    AccessToken, AuthorizationCode, ChannelAccessToken, ClientAssertion, CodeVerifier, IdToken,
    RefreshToken,
};
use crate::types::{Nonce, Scope, UserId};
use crate::wire::{
    AccessTokenInfo, ChannelAccessTokenResponse, ChannelTokenKeyIds, DeauthorizeRequest,
    DiscoveryDocument, FriendshipStatus, IdTokenClaims, JwkSet, Profile, TokenResponse, UserInfo,
};

/// The client assertion type for JWT-bearer channel token requests.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The result of a deauthorize call that LINE accepted or found already done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeauthorizeOutcome {
    /// `204`: the app is deauthorized for the user now.
    Deauthorized,
    /// `400 {"message":"invalid token"}`: the user token was already invalid — the user
    /// unlinked in the LINE app, or an earlier call succeeded. Nothing is left to revoke.
    AlreadyInvalid,
}

/// Tokens and verified claims from a completed login.
#[derive(Debug, Clone)]
pub struct LoginResult {
    /// The token response.
    pub tokens: TokenResponse,
    /// The verified ID token claims (when `openid` was requested).
    pub claims: Option<IdTokenClaims>,
}

impl LineClient {
    /// `POST /oauth2/v2.1/token` with `grant_type=authorization_code`. Never retried: a code
    /// is single use (only a connection that provably never reached LINE is retried).
    pub async fn exchange_code(
        &self,
        code: &AuthorizationCode,
        redirect_uri: &Url,
        code_verifier: Option<&CodeVerifier>,
    ) -> Result<TokenResponse, Error> {
        let endpoint = Endpoint::ExchangeCode;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.secret()),
            ("redirect_uri", redirect_uri.as_str()),
            ("client_id", self.inner.channel_id.as_str()),
            ("client_secret", self.inner.channel_secret.secret()),
        ];
        if let Some(v) = code_verifier {
            form.push(("code_verifier", v.secret()));
        }
        let resp = self
            .execute(Call::new(endpoint, self.endpoint_url(endpoint)?).form(&form))
            .await?;
        let tokens: TokenResponse = decode(endpoint, &resp)?;
        check_bearer(endpoint, &tokens.token_type, resp.status.as_u16())?;
        Ok(tokens)
    }

    /// Completes a login: exchanges the callback's code with the pending authorization's
    /// redirect URI and PKCE verifier, then verifies the ID token locally (HS256, pinned) with
    /// the pending nonce and `max_age`. With `openid` requested, a missing ID token is an error.
    pub async fn complete_login(
        &self,
        pending: &PendingAuthorization,
        response: &AuthorizationResponse,
    ) -> Result<LoginResult, Error> {
        let tokens = self
            .exchange_code(
                &response.code,
                &pending.redirect_uri,
                pending.code_verifier.as_ref(),
            )
            .await?;
        let claims = match (&tokens.id_token, pending.scopes.contains(&Scope::OpenId)) {
            (Some(id_token), _) => {
                let expected = Expectations {
                    nonce: pending.nonce.as_ref(),
                    max_age: pending.max_age,
                    subject: None,
                };
                Some(self.id_token_verifier().verify_now(id_token, &expected)?)
            }
            (None, true) => {
                return Err(Error::Decode {
                    endpoint: Endpoint::ExchangeCode,
                    status: 200,
                    request_id: None,
                    reason: "no id_token although openid was requested".into(),
                });
            }
            (None, false) => None,
        };
        Ok(LoginResult { tokens, claims })
    }

    /// `POST /oauth2/v2.1/token` with `grant_type=refresh_token`. Store the refresh token
    /// that comes back, whether or not it changed.
    pub async fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenResponse, Error> {
        let endpoint = Endpoint::RefreshToken;
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.secret()),
            ("client_id", self.inner.channel_id.as_str()),
            ("client_secret", self.inner.channel_secret.secret()),
        ];
        let resp = self
            .execute(Call::new(endpoint, self.endpoint_url(endpoint)?).form(&form))
            .await?;
        let tokens: TokenResponse = decode(endpoint, &resp)?;
        check_bearer(endpoint, &tokens.token_type, resp.status.as_u16())?;
        Ok(tokens)
    }

    /// `GET /oauth2/v2.1/verify?access_token=…`. When accepting a token from elsewhere, check
    /// that `client_id` is your channel and `expires_in` is positive
    /// ([`verify_access_token_for_channel`](Self::verify_access_token_for_channel) does both).
    pub async fn verify_access_token(&self, token: &AccessToken) -> Result<AccessTokenInfo, Error> {
        let endpoint = Endpoint::VerifyAccessToken;
        let mut url = self.endpoint_url(endpoint)?;
        url.query_pairs_mut()
            .append_pair("access_token", token.secret());
        let resp = self.execute(Call::new(endpoint, url)).await?;
        decode(endpoint, &resp)
    }

    /// Verifies an access token and checks it belongs to this channel and has not expired.
    /// Returns `Ok(None)` for a valid token of another channel or with no time left.
    pub async fn verify_access_token_for_channel(
        &self,
        token: &AccessToken,
    ) -> Result<Option<AccessTokenInfo>, Error> {
        let info = self.verify_access_token(token).await?;
        Ok((info.client_id == self.inner.channel_id && info.expires_in > 0).then_some(info))
    }

    /// `POST /oauth2/v2.1/verify` with an ID token: LINE verifies it and returns its claims.
    /// Prefer the local [`id_token_verifier`](Self::id_token_verifier), which costs no call.
    pub async fn verify_id_token_remote(
        &self,
        id_token: &IdToken,
        nonce: Option<&Nonce>,
        user_id: Option<&UserId>,
    ) -> Result<IdTokenClaims, Error> {
        let endpoint = Endpoint::VerifyIdToken;
        let mut form = vec![
            ("id_token", id_token.secret()),
            ("client_id", self.inner.channel_id.as_str()),
        ];
        if let Some(n) = nonce {
            form.push(("nonce", n.as_str()));
        }
        if let Some(u) = user_id {
            form.push(("user_id", u.as_str()));
        }
        let resp = self
            .execute(Call::new(endpoint, self.endpoint_url(endpoint)?).form(&form))
            .await?;
        decode(endpoint, &resp)
    }

    /// `POST /oauth2/v2.1/revoke` for a user access token. 200 with an empty body (or `{}`).
    pub async fn revoke(&self, token: &AccessToken) -> Result<(), Error> {
        self.revoke_form(Endpoint::Revoke, ("access_token", token.secret()))
            .await
    }

    /// `POST /oauth2/v2.1/revoke` with `refresh_token` (as LINE's SDKs do): revokes the refresh
    /// token and the access tokens derived from it. Not in the v2.1 reference.
    pub async fn revoke_refresh_token(&self, token: &RefreshToken) -> Result<(), Error> {
        self.revoke_form(Endpoint::Revoke, ("refresh_token", token.secret()))
            .await
    }

    /// `POST /oauth2/v2.1/revoke` for a channel access token v2.1.
    pub async fn revoke_channel_token_v21(&self, token: &ChannelAccessToken) -> Result<(), Error> {
        self.revoke_form(
            Endpoint::RevokeChannelTokenV21,
            ("access_token", token.secret()),
        )
        .await
    }

    async fn revoke_form(&self, endpoint: Endpoint, token: (&str, &str)) -> Result<(), Error> {
        let form = [
            token,
            ("client_id", self.inner.channel_id.as_str()),
            ("client_secret", self.inner.channel_secret.secret()),
        ];
        let resp = self
            .execute(Call::new(endpoint, self.endpoint_url(endpoint)?).form(&form))
            .await?;
        expect_empty(endpoint, &resp)
    }

    /// `GET /oauth2/v2.1/userinfo` (needs `openid`).
    pub async fn userinfo(&self, token: &AccessToken) -> Result<UserInfo, Error> {
        self.bearer_get(Endpoint::UserInfo, token.secret()).await
    }

    /// `GET /v2/profile` (needs `profile`).
    pub async fn profile(&self, token: &AccessToken) -> Result<Profile, Error> {
        self.bearer_get(Endpoint::Profile, token.secret()).await
    }

    /// `GET /friendship/v1/status` (needs `profile`).
    pub async fn friendship_status(&self, token: &AccessToken) -> Result<FriendshipStatus, Error> {
        self.bearer_get(Endpoint::FriendshipStatus, token.secret())
            .await
    }

    async fn bearer_get<T: serde::de::DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        token: &str,
    ) -> Result<T, Error> {
        let call = Call::new(endpoint, self.endpoint_url(endpoint)?).bearer(token)?;
        let resp = self.execute(call).await?;
        decode(endpoint, &resp)
    }

    /// `POST /oauth2/v3/token`: a stateless channel access token (15 minutes, no issue limit),
    /// from the channel ID and secret.
    pub async fn issue_stateless_channel_token(&self) -> Result<ChannelAccessTokenResponse, Error> {
        let form = self.client_credentials();
        self.channel_token(Endpoint::StatelessChannelToken, &form)
            .await
    }

    /// `POST /oauth2/v3/token` with a JWT assertion instead of the secret.
    pub async fn issue_stateless_channel_token_with_assertion(
        &self,
        assertion: &ClientAssertion,
    ) -> Result<ChannelAccessTokenResponse, Error> {
        let form = assertion_form(assertion);
        self.channel_token(Endpoint::StatelessChannelToken, &form)
            .await
    }

    /// `POST /oauth2/v2.1/token` with `client_credentials` and a JWT assertion: a channel
    /// access token v2.1 (at most 30 valid per channel; never retried). See
    /// [`crate::assertion`] to sign the assertion.
    pub async fn issue_channel_token_v21(
        &self,
        assertion: &ClientAssertion,
    ) -> Result<ChannelAccessTokenResponse, Error> {
        let form = assertion_form(assertion);
        self.channel_token(Endpoint::IssueChannelTokenV21, &form)
            .await
    }

    /// `POST /v2/oauth/accessToken`: a short-lived channel access token (30 days; issuing a
    /// 31st revokes the oldest; never retried).
    pub async fn issue_short_lived_channel_token(
        &self,
    ) -> Result<ChannelAccessTokenResponse, Error> {
        let form = self.client_credentials();
        self.channel_token(Endpoint::IssueShortLivedChannelToken, &form)
            .await
    }

    /// `POST /v2/oauth/verify` for a short-lived channel access token.
    pub async fn verify_short_lived_channel_token(
        &self,
        token: &ChannelAccessToken,
    ) -> Result<AccessTokenInfo, Error> {
        let endpoint = Endpoint::VerifyShortLivedChannelToken;
        let form = [("access_token", token.secret())];
        let resp = self
            .execute(Call::new(endpoint, self.endpoint_url(endpoint)?).form(&form))
            .await?;
        decode(endpoint, &resp)
    }

    /// `POST /v2/oauth/revoke` for a short-lived channel access token.
    pub async fn revoke_short_lived_channel_token(
        &self,
        token: &ChannelAccessToken,
    ) -> Result<(), Error> {
        let endpoint = Endpoint::RevokeShortLivedChannelToken;
        let form = [("access_token", token.secret())];
        let resp = self
            .execute(Call::new(endpoint, self.endpoint_url(endpoint)?).form(&form))
            .await?;
        expect_empty(endpoint, &resp)
    }

    fn client_credentials(&self) -> [(&str, &str); 3] {
        [
            ("grant_type", "client_credentials"),
            ("client_id", self.inner.channel_id.as_str()),
            ("client_secret", self.inner.channel_secret.secret()),
        ]
    }

    async fn channel_token(
        &self,
        endpoint: Endpoint,
        form: &[(&str, &str)],
    ) -> Result<ChannelAccessTokenResponse, Error> {
        let resp = self
            .execute(Call::new(endpoint, self.endpoint_url(endpoint)?).form(form))
            .await?;
        let token: ChannelAccessTokenResponse = decode(endpoint, &resp)?;
        check_bearer(endpoint, &token.token_type, resp.status.as_u16())?;
        Ok(token)
    }

    /// `GET /oauth2/v2.1/tokens/kid`: the key IDs of the valid channel access tokens v2.1.
    pub async fn channel_token_key_ids(
        &self,
        assertion: &ClientAssertion,
    ) -> Result<ChannelTokenKeyIds, Error> {
        let endpoint = Endpoint::ChannelTokenKeyIds;
        let mut url = self.endpoint_url(endpoint)?;
        url.query_pairs_mut()
            .append_pair("client_assertion_type", JWT_BEARER)
            .append_pair("client_assertion", assertion.secret());
        let resp = self.execute(Call::new(endpoint, url)).await?;
        decode(endpoint, &resp)
    }

    /// `POST /user/v1/deauthorize`: revokes every permission the user granted this channel, as
    /// LINE's development guidelines require when a user unregisters or unlinks.
    ///
    /// `channel_token` must be a stateless or v2.1 channel access token of this channel.
    /// A `400 {"message":"invalid token"}` answer means there was nothing left to revoke and
    /// comes back as [`DeauthorizeOutcome::AlreadyInvalid`], not as an error.
    pub async fn deauthorize(
        &self,
        channel_token: &ChannelAccessToken,
        user_access_token: &AccessToken,
    ) -> Result<DeauthorizeOutcome, Error> {
        let endpoint = Endpoint::Deauthorize;
        let body = serde_json::to_vec(&DeauthorizeRequest {
            user_access_token: user_access_token.clone(),
        })
        .map_err(|e| {
            // The class only: serde_json's message could quote the token being encoded.
            Error::Config(format!("cannot encode deauthorize body: {}", e.classify() as u8).into())
        })?;
        let call = Call::new(endpoint, self.endpoint_url(endpoint)?)
            .json(body)
            .bearer(channel_token.secret())?;
        match self.execute(call).await {
            Ok(resp) => expect_empty(endpoint, &resp).map(|()| DeauthorizeOutcome::Deauthorized),
            Err(Error::Api(e))
                if e.status == http::StatusCode::BAD_REQUEST
                    && matches!(&e.body, LineErrorBody::Message(m) if m.message.eq_ignore_ascii_case("invalid token")) =>
            {
                Ok(DeauthorizeOutcome::AlreadyInvalid)
            }
            Err(e) => Err(e),
        }
    }

    /// `GET /oauth2/v2.1/certs`: the ES256 ID token keys.
    pub async fn jwks(&self) -> Result<JwkSet, Error> {
        let endpoint = Endpoint::Jwks;
        let resp = self
            .execute(Call::new(endpoint, self.endpoint_url(endpoint)?))
            .await?;
        decode(endpoint, &resp)
    }

    /// `GET /.well-known/openid-configuration` on the authorization host.
    pub async fn discovery(&self) -> Result<DiscoveryDocument, Error> {
        let endpoint = Endpoint::Discovery;
        let resp = self
            .execute(Call::new(endpoint, self.endpoint_url(endpoint)?))
            .await?;
        decode(endpoint, &resp)
    }
}

fn assertion_form(assertion: &ClientAssertion) -> [(&str, &str); 3] {
    [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.secret()),
    ]
}

fn check_bearer(endpoint: Endpoint, token_type: &str, status: u16) -> Result<(), Error> {
    if token_type.eq_ignore_ascii_case("bearer") {
        Ok(())
    } else {
        Err(Error::Decode {
            endpoint,
            status,
            request_id: None,
            reason: "token_type is not Bearer".into(),
        })
    }
}
