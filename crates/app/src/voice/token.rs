//! Media-stream tokens: who may open a call's media WebSocket.
//!
//! The telephony provider connects to our media endpoint on its own; the
//! stream URL we give it (and its auth-token header) carries a token that
//! names the call and expires: `v1.<call id>.<expiry, unix s>.<HMAC-SHA256,
//! base64url>`, signed with the deployment's media secret. Only someone who
//! saw the answer or dial command can present it, and only until it expires
//! (long enough for an outbound call to ring). Verification is constant-time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use iace_domain::CallId;
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

const VERSION: &str = "v1";

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of ours.
    #[error("malformed media token")]
    Malformed,
    /// The signature does not match.
    #[error("invalid media token")]
    Invalid,
    /// Past its expiry.
    #[error("expired media token")]
    Expired,
}

impl TokenError {
    /// The stable snake_case code.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Malformed => "malformed_media_token",
            Self::Invalid => "invalid_media_token",
            Self::Expired => "expired_media_token",
        }
    }
}

/// Issues and checks media-stream tokens.
#[derive(Clone)]
pub struct MediaTokens {
    secret: SecretSlice<u8>,
    ttl: chrono::Duration,
}

impl std::fmt::Debug for MediaTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaTokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl MediaTokens {
    /// Tokens signed with `secret` (every instance must share it), valid for
    /// `ttl`.
    #[must_use]
    pub fn new(secret: &[u8], ttl: std::time::Duration) -> Self {
        Self {
            secret: SecretSlice::from(secret.to_vec()),
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
        }
    }

    /// Tokens signed with a key derived from another secret of the
    /// deployment (the JWT secret), so that the two are never the same key.
    #[must_use]
    pub fn derived_from(secret: &[u8], ttl: std::time::Duration) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(b"iace media-stream token key");
        Self::new(&mac.finalize().into_bytes(), ttl)
    }

    fn mac(&self, call: CallId, expires: i64) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.secret.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(format!("iace-media|{call}|{expires}").as_bytes());
        mac
    }

    /// A token for `call`, valid from `now` for the configured time.
    #[must_use]
    pub fn issue(&self, call: CallId, now: DateTime<Utc>) -> String {
        let expires = now
            .checked_add_signed(self.ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
            .timestamp();
        let signature = URL_SAFE_NO_PAD.encode(self.mac(call, expires).finalize().into_bytes());
        format!("{VERSION}.{call}.{expires}.{signature}")
    }

    /// The call a token opens.
    ///
    /// # Errors
    /// [`TokenError`] when it is malformed, forged or expired.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<CallId, TokenError> {
        let mut parts = token.split('.');
        let (Some(VERSION), Some(call), Some(expires), Some(signature), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TokenError::Malformed);
        };
        let call: CallId = call.parse().map_err(|_| TokenError::Malformed)?;
        let expires: i64 = expires.parse().map_err(|_| TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        self.mac(call, expires)
            .verify_slice(&signature)
            .map_err(|_| TokenError::Invalid)?;
        if now.timestamp() > expires {
            return Err(TokenError::Expired);
        }
        Ok(call)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn tokens() -> MediaTokens {
        MediaTokens::new(
            b"a media secret of the deployment",
            Duration::from_secs(600),
        )
    }

    #[test]
    fn a_token_opens_its_call_until_it_expires() {
        let now = Utc::now();
        let call = CallId::new();
        let token = tokens().issue(call, now);
        assert_eq!(tokens().verify(&token, now), Ok(call));
        assert_eq!(
            tokens().verify(&token, now + chrono::Duration::seconds(599)),
            Ok(call)
        );
        assert_eq!(
            tokens().verify(&token, now + chrono::Duration::seconds(601)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_derived_key_is_not_the_secret_itself() {
        let now = Utc::now();
        let call = CallId::new();
        let secret = b"the jwt secret of the deployment";
        let derived = MediaTokens::derived_from(secret, Duration::from_secs(60));
        let token = derived.issue(call, now);
        assert_eq!(
            MediaTokens::derived_from(secret, Duration::from_secs(60)).verify(&token, now),
            Ok(call)
        );
        assert_eq!(
            MediaTokens::new(secret, Duration::from_secs(60)).verify(&token, now),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn forged_altered_and_foreign_tokens_are_refused() {
        let now = Utc::now();
        let call = CallId::new();
        let token = tokens().issue(call, now);
        let other = MediaTokens::new(b"another deployment", Duration::from_secs(600));
        assert_eq!(other.verify(&token, now), Err(TokenError::Invalid));
        // Another call id with the same signature.
        let swapped = token.replace(&call.to_string(), &CallId::new().to_string());
        assert_eq!(tokens().verify(&swapped, now), Err(TokenError::Invalid));
        // A later expiry with the same signature.
        let parts: Vec<&str> = token.split('.').collect();
        let extended = format!(
            "{}.{}.{}.{}",
            parts[0], parts[1], 9_999_999_999i64, parts[3]
        );
        assert_eq!(tokens().verify(&extended, now), Err(TokenError::Invalid));
        for bad in [
            "",
            "v1",
            "v2.x.1.y",
            "v1.not-a-uuid.1.AAAA",
            "v1.a.b.c.d",
            &format!("{token}."),
        ] {
            assert_eq!(
                tokens().verify(bad, now),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }
}
