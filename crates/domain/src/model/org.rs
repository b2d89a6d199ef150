use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{ApiKeyId, Email, OrgId, Plan, RefreshTokenId, UserId};

/// A password hash or the hash of an API key or token. It never prints
/// (`Debug` shows `[redacted]`) and never serializes: it does not leave the
/// service.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretHash(String);

impl SecretHash {
    /// Wraps a hash (PHC string or hex digest).
    #[must_use]
    pub fn new(hash: impl Into<String>) -> Self {
        Self(hash.into())
    }

    /// The hash, for verification and storage only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash([redacted])")
    }
}

impl From<&str> for SecretHash {
    fn from(hash: &str) -> Self {
        Self(hash.to_owned())
    }
}

impl From<String> for SecretHash {
    fn from(hash: String) -> Self {
        Self(hash)
    }
}

/// A tenant: a call centre operator. Every other org-owned entity carries its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    /// Identity.
    pub id: OrgId,
    /// Display name (1–200 characters, trimmed).
    pub name: String,
    /// What it pays for; selects its rate-limit tier.
    pub plan: Plan,
    /// Stripe customer id once billing is set up.
    pub billing_customer_ref: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// What a user may do within their organisation, least to most privileged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads calls, transcripts, reports.
    Viewer,
    /// Also places calls and edits customers, personas, agents and experiments.
    Member,
    /// Also manages users, API keys and billing.
    Admin,
    /// Also deletes the organisation. Exactly one per organisation at creation.
    Owner,
}

impl Role {
    /// The stable name used in tokens and the API.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// Whether this role includes everything `required` may do.
    #[must_use]
    pub fn grants(self, required: Self) -> bool {
        self >= required
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}` (expected viewer, member, admin or owner)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Self::Viewer),
            "member" => Ok(Self::Member),
            "admin" => Ok(Self::Admin),
            "owner" => Ok(Self::Owner),
            _ => Err(UnknownRole(s.chars().take(32).collect())),
        }
    }
}

/// A person who signs in to one organisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Identity.
    pub id: UserId,
    /// Owning organisation.
    pub org_id: OrgId,
    /// Sign-in name; unique across the system.
    pub email: Email,
    /// Argon2/PHC password hash; never leaves the service.
    #[serde(skip)]
    pub password_hash: SecretHash,
    /// What the user may do.
    pub role: Role,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last successful sign-in.
    pub last_login_at: Option<DateTime<Utc>>,
}

/// An API key's metadata. The secret itself is shown once at creation and only its
/// hash is stored; `prefix` lets operators recognise a key in lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Identity.
    pub id: ApiKeyId,
    /// Owning organisation.
    pub org_id: OrgId,
    /// Human label ("billing integration").
    pub name: String,
    /// The first characters of the key, e.g. `iace_live_3fa8`.
    pub prefix: String,
    /// Hash of the full key (never the key).
    #[serde(skip)]
    pub key_hash: SecretHash,
    /// The role a request authenticated with this key acts as.
    pub role: Role,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last request authenticated with it.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Set when revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Optional expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Whether the key may authenticate a request at `now`.
    #[must_use]
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|exp| now < exp)
    }
}

/// A refresh token's metadata. Tokens rotate on use; a token reused after rotation
/// reveals theft, and the whole family is revoked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshToken {
    /// Identity.
    pub id: RefreshTokenId,
    /// Whose session.
    pub user_id: UserId,
    /// The rotation chain this token belongs to (the id of its first token).
    pub family_id: RefreshTokenId,
    /// Hash of the opaque token.
    #[serde(skip)]
    pub token_hash: SecretHash,
    /// Issue time.
    pub issued_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Set when rotated (used) or revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl RefreshToken {
    /// Whether the token may be exchanged at `now`.
    #[must_use]
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn roles_are_ordered_by_privilege() {
        assert!(Role::Owner.grants(Role::Admin));
        assert!(Role::Admin.grants(Role::Member));
        assert!(Role::Member.grants(Role::Member));
        assert!(!Role::Viewer.grants(Role::Member));
        assert_eq!("ADMIN".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn api_key_usability() {
        let now = Utc::now();
        let mut key = ApiKey {
            id: ApiKeyId::new(),
            org_id: OrgId::new(),
            name: "ci".into(),
            prefix: "iace_abcd".into(),
            key_hash: "h".into(),
            role: Role::Member,
            created_at: now,
            last_used_at: None,
            revoked_at: None,
            expires_at: None,
        };
        assert!(key.is_usable(now));
        key.expires_at = Some(now + Duration::seconds(1));
        assert!(key.is_usable(now));
        assert!(!key.is_usable(now + Duration::seconds(1)));
        key.expires_at = None;
        key.revoked_at = Some(now);
        assert!(!key.is_usable(now));
        let json = serde_json::to_string(&key).expect("ser");
        assert!(!json.contains("key_hash"), "hashes never serialize");
        assert!(!format!("{key:?}").contains("\"h\""), "hashes never print");
        let back: ApiKey = serde_json::from_str(&json).expect("round trip without the hash");
        assert_eq!(back.key_hash, SecretHash::default());
    }

    #[test]
    fn refresh_token_usability() {
        let now = Utc::now();
        let id = RefreshTokenId::new();
        let mut t = RefreshToken {
            id,
            user_id: UserId::new(),
            family_id: id,
            token_hash: "h".into(),
            issued_at: now,
            expires_at: now + Duration::days(30),
            revoked_at: None,
        };
        assert!(t.is_usable(now));
        assert!(!t.is_usable(now + Duration::days(30)));
        t.revoked_at = Some(now);
        assert!(!t.is_usable(now));
    }
}

/// How an organisation's calls are placed and answered.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TelephonySettings {
    /// The numbers it answers on (an inbound call to one of them is its call)
    /// and may call from; each belongs to one organisation at most.
    pub numbers: Vec<crate::PhoneNumber>,
    /// Its Telnyx Call Control application id, when not the deployment's.
    pub connection_id: Option<String>,
    /// Where the provider streams call audio to (`wss://…`), when not the
    /// deployment's.
    pub media_base_url: Option<String>,
    /// Said when a machine answers an outbound call; `None` falls back to
    /// the deployment's default (which hangs up unless it has a message).
    pub voicemail_message: Option<String>,
}

/// Why telephony settings are invalid (each names its field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelephonySettingsError {
    /// More numbers than [`TelephonySettings::MAX_NUMBERS`].
    #[error("at most {max} numbers")]
    TooManyNumbers {
        /// The limit.
        max: usize,
    },
    /// A number listed twice.
    #[error("a number is listed twice")]
    DuplicateNumber,
    /// The connection id is empty or too long.
    #[error("the connection id must be 1 to 100 characters")]
    ConnectionId,
    /// The media URL is not a `wss://` URL or is too long.
    #[error("the media base URL must be a wss:// URL of at most 2000 characters")]
    MediaBaseUrl,
    /// The voicemail message is empty or too long.
    #[error("the voicemail message must be 1 to 1000 characters")]
    VoicemailMessage,
}

impl TelephonySettingsError {
    /// The field at fault.
    #[must_use]
    pub const fn field(&self) -> &'static str {
        match self {
            Self::TooManyNumbers { .. } | Self::DuplicateNumber => "numbers",
            Self::ConnectionId => "connection_id",
            Self::MediaBaseUrl => "media_base_url",
            Self::VoicemailMessage => "voicemail_message",
        }
    }
}

/// A `wss://host[:port][/path]` base: a host, no whitespace or control
/// characters, no query or fragment (`/media/{id}` is appended), at most 2000
/// characters.
fn valid_media_base(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("wss://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or_default();
    !host.is_empty()
        && url.chars().count() <= 2_000
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#')
}

impl TelephonySettings {
    /// Numbers an organisation may hold.
    pub const MAX_NUMBERS: usize = 100;

    /// Every broken bound, not just the first.
    #[must_use]
    pub fn validate(&self) -> Vec<TelephonySettingsError> {
        let mut errors = Vec::new();
        if self.numbers.len() > Self::MAX_NUMBERS {
            errors.push(TelephonySettingsError::TooManyNumbers {
                max: Self::MAX_NUMBERS,
            });
        }
        let mut seen = std::collections::HashSet::new();
        if !self.numbers.iter().all(|n| seen.insert(n.as_str())) {
            errors.push(TelephonySettingsError::DuplicateNumber);
        }
        if self.connection_id.as_deref().is_some_and(|c| {
            c.trim() != c
                || c.is_empty()
                || c.chars().count() > 100
                || c.chars().any(char::is_control)
        }) {
            errors.push(TelephonySettingsError::ConnectionId);
        }
        if self
            .media_base_url
            .as_deref()
            .is_some_and(|u| !valid_media_base(u))
        {
            errors.push(TelephonySettingsError::MediaBaseUrl);
        }
        if self
            .voicemail_message
            .as_deref()
            .is_some_and(|m| m.trim().is_empty() || m.chars().count() > 1_000)
        {
            errors.push(TelephonySettingsError::VoicemailMessage);
        }
        errors
    }
}

#[cfg(test)]
mod telephony_tests {
    use super::*;

    fn number(raw: &str) -> crate::PhoneNumber {
        crate::PhoneNumber::parse(raw).expect("number")
    }

    #[test]
    fn every_broken_bound_is_reported() {
        assert!(TelephonySettings::default().validate().is_empty());
        let bad = TelephonySettings {
            numbers: vec![number("+14155550100"), number("+14155550100")],
            connection_id: Some("  ".into()),
            media_base_url: Some("http://media.example.com".into()),
            voicemail_message: Some("x".repeat(1_001)),
        };
        let fields: Vec<_> = bad
            .validate()
            .iter()
            .map(TelephonySettingsError::field)
            .collect();
        assert_eq!(
            fields,
            vec![
                "numbers",
                "connection_id",
                "media_base_url",
                "voicemail_message"
            ]
        );
        for bad_url in [
            "wss://",
            "wss:///path",
            "wss://h?x=1",
            "wss://h#f",
            "wss://a b",
            "https://h",
        ] {
            let settings = TelephonySettings {
                media_base_url: Some(bad_url.into()),
                ..TelephonySettings::default()
            };
            assert_eq!(settings.validate().len(), 1, "{bad_url}");
        }
        let good = TelephonySettings {
            numbers: vec![number("+14155550100")],
            connection_id: Some("1494404757140276705".into()),
            media_base_url: Some("wss://iace.example.com".into()),
            voicemail_message: Some("Please call us back.".into()),
        };
        assert!(good.validate().is_empty());
    }
}
