//! Authentication: passwords, access tokens (JWT), rotating refresh tokens,
//! API keys, and the principal every other use case is called with.
//!
//! - Passwords are hashed with argon2id (PHC strings).
//! - Access tokens are JWTs (HS256 by default, EdDSA optionally) with `sub`,
//!   `org`, `role`, `iat`, `exp`, `jti` and `iss`; 15 minutes by default. The
//!   algorithm is pinned: a token signed any other way (or `alg: none`) fails.
//! - Refresh tokens are opaque (`rt_<org>_<256 random bits>`), stored only as a
//!   SHA-256 hash, rotated on every use; presenting a rotated token revokes its
//!   whole family (reuse detection).
//! - API keys are `iace_<8 chars>_<256 random bits>`, shown once, stored as a
//!   SHA-256 hash; the first 13 characters are kept as a recognisable prefix.

use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use iace_domain::ports::{
    ApiKeyRepository, Clock, OrgRepository, RefreshTokenRepository, StoreError, UserRepository,
};
use iace_domain::{
    ApiKey, ApiKeyId, Email, OrgId, Organization, Plan, RefreshToken, RefreshTokenId, Role,
    SecretHash, User, UserId,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::AppError;

/// Shortest HS256 secret accepted (bytes): as long as the hash output.
pub const MIN_HS256_SECRET_LEN: usize = 32;
/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;
const API_KEY_PREFIX: &str = "iace_";
const REFRESH_PREFIX: &str = "rt_";

/// Which JWT algorithm signs access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret (default).
    #[default]
    Hs256,
    /// Ed25519 signatures (a key pair in PEM).
    EdDsa,
}

/// Signing keys and lifetimes.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Algorithm of access tokens.
    pub algorithm: JwtAlgorithm,
    /// HS256 secret (at least [`MIN_HS256_SECRET_LEN`] bytes).
    pub hs256_secret: Option<SecretString>,
    /// EdDSA private key (PKCS#8 PEM).
    pub ed25519_private_pem: Option<SecretString>,
    /// EdDSA public key (SPKI PEM).
    pub ed25519_public_pem: Option<String>,
    /// `iss` claim, checked on decode.
    pub issuer: String,
    /// Lifetime of access tokens.
    pub access_ttl: Duration,
    /// Lifetime of refresh tokens.
    pub refresh_ttl: Duration,
    /// How long a resolved credential (API key, or a token's user and role) is
    /// remembered in this process, sparing a database read per request. A key
    /// revoked or a user deleted through another instance stops working within
    /// this time; through this instance, at once. Zero disables the cache.
    pub principal_cache_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            algorithm: JwtAlgorithm::Hs256,
            hs256_secret: None,
            ed25519_private_pem: None,
            ed25519_public_pem: None,
            issuer: "iace".to_owned(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(7 * 24 * 3600),
            principal_cache_ttl: Duration::from_secs(5),
        }
    }
}

/// Credentials resolved recently: key hash (API keys) or `org:user` (tokens)
/// → principal, with the time they were resolved. Bounded: cleared when full.
#[derive(Debug, Default)]
struct PrincipalCache {
    ttl: Duration,
    entries: std::sync::RwLock<std::collections::HashMap<String, (Principal, std::time::Instant)>>,
}

impl PrincipalCache {
    const MAX_ENTRIES: usize = 10_000;

    fn get(&self, key: &str) -> Option<Principal> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(principal, _)| *principal)
    }

    fn put(&self, key: String, principal: Principal) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= Self::MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (principal, std::time::Instant::now()));
    }

    fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// Why the auth configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// HS256 without a secret, or one that is too short.
    #[error("the HS256 secret must be at least {MIN_HS256_SECRET_LEN} bytes")]
    WeakSecret,
    /// EdDSA without both keys.
    #[error("EdDSA needs both ed25519_private_pem and ed25519_public_pem")]
    MissingKeys,
    /// A key that does not parse.
    #[error("the signing key is invalid")]
    InvalidKey(#[source] jsonwebtoken::errors::Error),
}

/// A random secret for HS256 when none is configured (the embedded default):
/// tokens then stop working when the process restarts.
///
/// # Errors
/// When the operating system has no randomness to give.
pub fn ephemeral_secret() -> Result<SecretString, AppError> {
    Ok(SecretString::from(
        URL_SAFE_NO_PAD.encode(random_bytes::<48>()?),
    ))
}

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    /// The caller's organisation: every use case is scoped to it.
    pub org_id: OrgId,
    /// What the caller may do.
    pub role: Role,
    /// A user or an API key.
    pub subject: Subject,
}

/// The authenticated party.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A signed-in user.
    User(UserId),
    /// A service using an API key.
    ApiKey(ApiKeyId),
}

impl Principal {
    /// Succeeds when the principal's role includes `required`.
    ///
    /// # Errors
    /// [`AppError::Forbidden`].
    pub fn require(&self, required: Role) -> Result<(), AppError> {
        if self.role.grants(required) {
            Ok(())
        } else {
            Err(AppError::Forbidden { required })
        }
    }
}

/// A freshly issued pair of tokens.
#[derive(Debug, Clone, Serialize)]
pub struct TokenPair {
    /// The JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The opaque refresh token (shown once).
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}

/// A new API key: its metadata and the secret, shown once.
#[derive(Debug, Clone)]
pub struct IssuedApiKey {
    /// Stored metadata.
    pub key: ApiKey,
    /// The full key; never stored, never shown again.
    pub secret: SecretString,
}

/// What `org create` returns.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// The new organisation.
    pub org: Organization,
    /// Its owner.
    pub owner: User,
    /// An owner-role API key.
    pub api_key: IssuedApiKey,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    org: String,
    role: Role,
    iat: i64,
    exp: i64,
    jti: String,
    iss: String,
}

/// The repositories and settings authentication works with.
#[derive(Clone)]
pub struct AuthService {
    orgs: Arc<dyn OrgRepository>,
    users: Arc<dyn UserRepository>,
    tokens: Arc<dyn RefreshTokenRepository>,
    keys: Arc<dyn ApiKeyRepository>,
    clock: Arc<dyn Clock>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    algorithm: Algorithm,
    issuer: String,
    access_ttl: Duration,
    refresh_ttl: Duration,
    argon2: Argon2<'static>,
    dummy_hash: String,
    cache: Arc<PrincipalCache>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], AppError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| AppError::Internal {
        source: format!("no randomness available: {e}").into(),
    })?;
    Ok(buf)
}

/// SHA-256 of a token or key, hex-encoded: what is stored and looked up.
#[must_use]
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn unauthenticated(code: &'static str) -> AppError {
    AppError::Unauthenticated { code }
}

impl AuthService {
    /// Builds the service.
    ///
    /// # Errors
    /// [`AuthConfigError`] when keys are missing, weak or malformed.
    pub fn new(
        config: &AuthConfig,
        orgs: Arc<dyn OrgRepository>,
        users: Arc<dyn UserRepository>,
        tokens: Arc<dyn RefreshTokenRepository>,
        keys: Arc<dyn ApiKeyRepository>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthConfigError> {
        let (encoding, decoding, algorithm) = match config.algorithm {
            JwtAlgorithm::Hs256 => {
                let secret = config
                    .hs256_secret
                    .as_ref()
                    .map(|s| s.expose_secret().as_bytes().to_vec())
                    .filter(|s| s.len() >= MIN_HS256_SECRET_LEN)
                    .ok_or(AuthConfigError::WeakSecret)?;
                (
                    EncodingKey::from_secret(&secret),
                    DecodingKey::from_secret(&secret),
                    Algorithm::HS256,
                )
            }
            JwtAlgorithm::EdDsa => {
                let (Some(private), Some(public)) =
                    (&config.ed25519_private_pem, &config.ed25519_public_pem)
                else {
                    return Err(AuthConfigError::MissingKeys);
                };
                (
                    EncodingKey::from_ed_pem(private.expose_secret().as_bytes())
                        .map_err(AuthConfigError::InvalidKey)?,
                    DecodingKey::from_ed_pem(public.as_bytes())
                        .map_err(AuthConfigError::InvalidKey)?,
                    Algorithm::EdDSA,
                )
            }
        };
        let argon2 = Argon2::default();
        // Verified against when the e-mail is unknown, so a wrong e-mail takes
        // as long as a wrong password (no account enumeration by timing).
        let salt =
            SaltString::encode_b64(b"iace-dummy-salt!").map_err(|_| AuthConfigError::WeakSecret)?;
        let dummy_hash = argon2
            .hash_password(b"not-a-real-password", &salt)
            .map_err(|_| AuthConfigError::WeakSecret)?
            .to_string();
        Ok(Self {
            orgs,
            users,
            tokens,
            keys,
            clock,
            encoding,
            decoding,
            algorithm,
            issuer: config.issuer.clone(),
            access_ttl: config.access_ttl,
            refresh_ttl: config.refresh_ttl,
            argon2,
            dummy_hash,
            cache: Arc::new(PrincipalCache {
                ttl: config.principal_cache_ttl,
                ..PrincipalCache::default()
            }),
        })
    }

    /// Hashes a password with argon2id.
    ///
    /// # Errors
    /// [`AppError::Validation`] for a password shorter than [`MIN_PASSWORD_LEN`].
    pub fn hash_password(&self, password: &SecretString) -> Result<SecretHash, AppError> {
        let password = password.expose_secret();
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(AppError::invalid(
                "password",
                "too_short",
                format!("passwords have at least {MIN_PASSWORD_LEN} characters"),
            ));
        }
        let salt =
            SaltString::encode_b64(&random_bytes::<16>()?).map_err(|e| AppError::Internal {
                source: e.to_string().into(),
            })?;
        let hash = self
            .argon2
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| AppError::Internal {
                source: e.to_string().into(),
            })?;
        Ok(SecretHash::new(hash.to_string()))
    }

    fn verify_password(&self, password: &str, hash: &str) -> bool {
        PasswordHash::new(hash)
            .map(|parsed| {
                self.argon2
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    }

    fn issue_access(
        &self,
        org: OrgId,
        user: UserId,
        role: Role,
    ) -> Result<(String, u64), AppError> {
        let now = self.clock.now().timestamp();
        let ttl = self.access_ttl.as_secs();
        let claims = Claims {
            sub: user.to_string(),
            org: org.to_string(),
            role,
            iat: now,
            exp: now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
            jti: uuid::Uuid::new_v4().to_string(),
            iss: self.issuer.clone(),
        };
        let token = jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.encoding)
            .map_err(|e| AppError::Internal {
                source: Box::new(e),
            })?;
        Ok((token, ttl))
    }

    fn refresh_ttl_chrono(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.refresh_ttl).unwrap_or(chrono::Duration::days(7))
    }

    fn new_refresh(
        &self,
        org: OrgId,
        user: UserId,
        family: Option<RefreshTokenId>,
        now: DateTime<Utc>,
    ) -> Result<(String, RefreshToken), AppError> {
        let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        let token = format!("{REFRESH_PREFIX}{}_{secret}", org.as_uuid().simple());
        let id = RefreshTokenId::new();
        let record = RefreshToken {
            id,
            user_id: user,
            family_id: family.unwrap_or(id),
            token_hash: SecretHash::new(token_hash(&token)),
            issued_at: now,
            expires_at: now + self.refresh_ttl_chrono(),
            revoked_at: None,
        };
        Ok((token, record))
    }

    fn pair(&self, access: (String, u64), refresh: String) -> TokenPair {
        TokenPair {
            access_token: access.0,
            token_type: "Bearer",
            expires_in: access.1,
            refresh_token: refresh,
            refresh_expires_in: self.refresh_ttl.as_secs(),
        }
    }

    /// Signs in with e-mail and password.
    ///
    /// # Errors
    /// [`AppError::Unauthenticated`] (`invalid_credentials`) for an unknown e-mail
    /// or a wrong password, indistinguishably; store errors.
    pub async fn login(
        &self,
        email: &Email,
        password: &SecretString,
    ) -> Result<TokenPair, AppError> {
        let user = self.users.find_by_email(email).await?;
        let Some(user) = user else {
            let _ = self.verify_password(password.expose_secret(), &self.dummy_hash);
            return Err(unauthenticated("invalid_credentials"));
        };
        if !self.verify_password(password.expose_secret(), user.password_hash.expose()) {
            return Err(unauthenticated("invalid_credentials"));
        }
        let now = self.clock.now();
        self.users.record_login(user.org_id, user.id, now).await?;
        let (refresh, record) = self.new_refresh(user.org_id, user.id, None, now)?;
        self.tokens.create(&record).await?;
        let access = self.issue_access(user.org_id, user.id, user.role)?;
        Ok(self.pair(access, refresh))
    }

    fn org_of_refresh(token: &str) -> Option<OrgId> {
        let rest = token.strip_prefix(REFRESH_PREFIX)?;
        let (org, _) = rest.split_once('_')?;
        uuid::Uuid::try_parse(org).ok().map(OrgId::from_uuid)
    }

    /// Exchanges a refresh token for a new pair, rotating it. A token that was
    /// already rotated or revoked is theft or a replay: its whole family is
    /// revoked and the request fails.
    ///
    /// # Errors
    /// [`AppError::Unauthenticated`] with `invalid_token`, `token_expired` or
    /// `token_reused`; store errors.
    pub async fn refresh(&self, token: &str) -> Result<TokenPair, AppError> {
        let org = Self::org_of_refresh(token).ok_or_else(|| unauthenticated("invalid_token"))?;
        let stored = self
            .tokens
            .find_by_hash(&token_hash(token))
            .await?
            .ok_or_else(|| unauthenticated("invalid_token"))?;
        let now = self.clock.now();
        if stored.revoked_at.is_some() {
            let revoked = self.tokens.revoke_family(stored.family_id, now).await?;
            tracing::warn!(family = %stored.family_id, revoked, "refresh token reused; family revoked");
            return Err(unauthenticated("token_reused"));
        }
        if now >= stored.expires_at {
            return Err(unauthenticated("token_expired"));
        }
        let user = match self.users.get(org, stored.user_id).await {
            Ok(user) => user,
            Err(StoreError::NotFound { .. }) => return Err(unauthenticated("invalid_token")),
            Err(other) => return Err(other.into()),
        };
        let (refresh, record) = self.new_refresh(org, user.id, Some(stored.family_id), now)?;
        match self.tokens.rotate(stored.id, &record, now).await {
            Ok(()) => {}
            Err(StoreError::Conflict { .. }) => {
                // Rotated concurrently by someone else: treat as reuse.
                self.tokens.revoke_family(stored.family_id, now).await?;
                return Err(unauthenticated("token_reused"));
            }
            Err(other) => return Err(other.into()),
        }
        let access = self.issue_access(org, user.id, user.role)?;
        Ok(self.pair(access, refresh))
    }

    /// Revokes the refresh token's whole family (sign out of that session).
    /// Unknown tokens are accepted silently (revocation is idempotent).
    ///
    /// # Errors
    /// Store errors.
    pub async fn revoke(&self, token: &str) -> Result<(), AppError> {
        if let Some(stored) = self.tokens.find_by_hash(&token_hash(token)).await? {
            self.tokens
                .revoke_family(stored.family_id, self.clock.now())
                .await?;
        }
        Ok(())
    }

    /// Authenticates an `Authorization: Bearer` credential: an API key
    /// (`iace_…`) or an access JWT.
    ///
    /// # Errors
    /// [`AppError::Unauthenticated`] (`invalid_token`, `token_expired`,
    /// `revoked_key`); store errors.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, AppError> {
        if bearer.starts_with(API_KEY_PREFIX) {
            return self.authenticate_key(bearer).await;
        }
        let mut validation = Validation::new(self.algorithm);
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss"]);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Claims>(bearer, &self.decoding, &validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    unauthenticated("token_expired")
                }
                _ => unauthenticated("invalid_token"),
            },
        )?;
        let claims = data.claims;
        let org = claims
            .org
            .parse::<OrgId>()
            .map_err(|_| unauthenticated("invalid_token"))?;
        let user = claims
            .sub
            .parse::<UserId>()
            .map_err(|_| unauthenticated("invalid_token"))?;
        // A deleted user's tokens die with the user; a changed role applies
        // (both within the principal cache's lifetime).
        let cache_key = format!("u:{org}:{user}");
        if let Some(principal) = self.cache.get(&cache_key) {
            return Ok(principal);
        }
        let stored = match self.users.get(org, user).await {
            Ok(stored) => stored,
            Err(StoreError::NotFound { .. }) => return Err(unauthenticated("invalid_token")),
            Err(other) => return Err(other.into()),
        };
        let principal = Principal {
            org_id: org,
            role: stored.role,
            subject: Subject::User(user),
        };
        self.cache.put(cache_key, principal);
        Ok(principal)
    }

    async fn authenticate_key(&self, key: &str) -> Result<Principal, AppError> {
        let hash = token_hash(key);
        if let Some(principal) = self.cache.get(&hash) {
            return Ok(principal);
        }
        let stored = self
            .keys
            .find_by_hash(&hash)
            .await?
            .ok_or_else(|| unauthenticated("invalid_token"))?;
        let now = self.clock.now();
        if !stored.is_usable(now) {
            return Err(unauthenticated("revoked_key"));
        }
        // Last-used time is informational: stamp it at most once a minute.
        let stale = stored
            .last_used_at
            .is_none_or(|t| now - t > chrono::Duration::seconds(60));
        if stale && let Err(err) = self.keys.touch(stored.id, now).await {
            tracing::debug!(error = %err, "could not stamp API key use");
        }
        let principal = Principal {
            org_id: stored.org_id,
            role: stored.role,
            subject: Subject::ApiKey(stored.id),
        };
        // Never remembered past the key's own expiry.
        if stored
            .expires_at
            .is_none_or(|exp| exp - now > chrono::Duration::seconds(60))
        {
            self.cache.put(hash, principal);
        }
        Ok(principal)
    }

    /// Creates an API key for the caller's organisation. The key cannot have
    /// more rights than its creator.
    ///
    /// # Errors
    /// [`AppError::Forbidden`] (needs admin, and `role` at most the caller's);
    /// [`AppError::Validation`] for an empty name; store errors.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        name: &str,
        role: Role,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<IssuedApiKey, AppError> {
        principal.require(Role::Admin)?;
        principal.require(role)?;
        self.issue_key(principal.org_id, name, role, expires_at)
            .await
    }

    async fn issue_key(
        &self,
        org: OrgId,
        name: &str,
        role: Role,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<IssuedApiKey, AppError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::invalid(
                "name",
                "invalid_length",
                "names have 1-100 characters",
            ));
        }
        let visible = URL_SAFE_NO_PAD.encode(random_bytes::<6>()?);
        let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        let full = format!("{API_KEY_PREFIX}{visible}_{secret}");
        let key = ApiKey {
            id: ApiKeyId::new(),
            org_id: org,
            name: name.to_owned(),
            prefix: format!("{API_KEY_PREFIX}{visible}"),
            key_hash: SecretHash::new(token_hash(&full)),
            role,
            created_at: self.clock.now(),
            last_used_at: None,
            revoked_at: None,
            expires_at,
        };
        self.keys.create(&key).await?;
        Ok(IssuedApiKey {
            key,
            secret: SecretString::from(full),
        })
    }

    /// The caller's API keys (revoked ones included), one page.
    ///
    /// # Errors
    /// Forbidden below admin; store errors.
    pub async fn list_api_keys(
        &self,
        principal: &Principal,
        page: iace_domain::ports::PageRequest,
    ) -> Result<iace_domain::ports::Page<ApiKey>, AppError> {
        principal.require(Role::Admin)?;
        Ok(self.keys.list(principal.org_id, page).await?)
    }

    /// Revokes one of the organisation's API keys.
    ///
    /// # Errors
    /// Forbidden below admin; NotFound; store errors.
    pub async fn revoke_api_key(
        &self,
        principal: &Principal,
        id: ApiKeyId,
    ) -> Result<(), AppError> {
        principal.require(Role::Admin)?;
        self.keys
            .revoke(principal.org_id, id, self.clock.now())
            .await?;
        // Revocation takes effect at once on this instance.
        self.cache.clear();
        Ok(())
    }

    /// The signed-in user (`None` for an API key) and the organisation.
    ///
    /// # Errors
    /// NotFound when the user was deleted meanwhile; store errors.
    pub async fn me(
        &self,
        principal: &Principal,
    ) -> Result<(Organization, Option<User>), AppError> {
        let org = self.orgs.get(principal.org_id).await?;
        let user = match principal.subject {
            Subject::User(id) => Some(self.users.get(principal.org_id, id).await?),
            Subject::ApiKey(_) => None,
        };
        Ok((org, user))
    }

    /// Creates an organisation with its owner and an owner API key (the admin
    /// bootstrap). Without a password the owner can only use the API key until
    /// a password is set.
    ///
    /// # Errors
    /// [`AppError::Validation`] for a bad name or password;
    /// [`AppError::Conflict`] when the e-mail is taken; store errors.
    pub async fn bootstrap_org(
        &self,
        name: &str,
        owner_email: Email,
        owner_password: Option<&SecretString>,
    ) -> Result<Bootstrap, AppError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AppError::invalid(
                "name",
                "invalid_length",
                "names have 1-200 characters",
            ));
        }
        let password_hash = match owner_password {
            Some(password) => self.hash_password(password)?,
            // An unusable hash: no password verifies against it.
            None => SecretHash::new("!"),
        };
        let now = self.clock.now();
        let org = Organization {
            id: OrgId::new(),
            name: name.to_owned(),
            plan: Plan::Free,
            billing_customer_ref: None,
            created_at: now,
        };
        if self.users.find_by_email(&owner_email).await?.is_some() {
            return Err(AppError::Conflict {
                code: "already_exists",
                message: "a user with this email already exists".to_owned(),
            });
        }
        self.orgs.create(&org).await?;
        let owner = User {
            id: UserId::new(),
            org_id: org.id,
            email: owner_email,
            password_hash,
            role: Role::Owner,
            created_at: now,
            last_login_at: None,
        };
        self.users.create(&owner).await?;
        let api_key = self
            .issue_key(org.id, "bootstrap", Role::Owner, None)
            .await?;
        Ok(Bootstrap {
            org,
            owner,
            api_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use iace_domain::ports::FixedClock;
    use iace_domain::ports::store::{
        MockApiKeyRepository, MockOrgRepository, MockRefreshTokenRepository, MockUserRepository,
    };

    use super::*;

    fn service(keys: MockApiKeyRepository, cache: Duration) -> AuthService {
        let config = AuthConfig {
            hs256_secret: Some(SecretString::from("0123456789abcdef0123456789abcdef")),
            principal_cache_ttl: cache,
            ..AuthConfig::default()
        };
        AuthService::new(
            &config,
            Arc::new(MockOrgRepository::new()),
            Arc::new(MockUserRepository::new()),
            Arc::new(MockRefreshTokenRepository::new()),
            Arc::new(keys),
            Arc::new(FixedClock::new(Utc::now())),
        )
        .expect("service")
    }

    fn key(org: OrgId) -> ApiKey {
        ApiKey {
            id: ApiKeyId::new(),
            org_id: org,
            name: "k".into(),
            prefix: "iace_abc".into(),
            key_hash: SecretHash::new("h"),
            role: Role::Member,
            created_at: Utc::now(),
            last_used_at: Some(Utc::now()),
            revoked_at: None,
            expires_at: None,
        }
    }

    #[tokio::test]
    async fn resolved_keys_are_cached_until_a_revocation() {
        let org = OrgId::new();
        let stored = key(org);
        let mut keys = MockApiKeyRepository::new();
        let found = stored.clone();
        keys.expect_find_by_hash()
            .times(2)
            .returning(move |_| Ok(Some(found.clone())));
        keys.expect_revoke().times(1).returning(|_, _, _| Ok(()));
        let auth = service(keys, Duration::from_secs(60));
        let first = auth.authenticate("iace_abc_secret").await.expect("first");
        let second = auth.authenticate("iace_abc_secret").await.expect("cached");
        assert_eq!(first, second);
        assert_eq!(first.role, Role::Member);
        let admin = Principal {
            org_id: org,
            role: Role::Admin,
            subject: first.subject,
        };
        auth.revoke_api_key(&admin, stored.id)
            .await
            .expect("revoke");
        // The cache was cleared: the next request reads the store again.
        auth.authenticate("iace_abc_secret").await.expect("re-read");
    }

    #[tokio::test]
    async fn a_zero_ttl_disables_the_cache() {
        let stored = key(OrgId::new());
        let mut keys = MockApiKeyRepository::new();
        keys.expect_find_by_hash()
            .times(3)
            .returning(move |_| Ok(Some(stored.clone())));
        let auth = service(keys, Duration::ZERO);
        for _ in 0..3 {
            auth.authenticate("iace_abc_secret").await.expect("auth");
        }
    }

    #[tokio::test]
    async fn weak_secrets_and_short_passwords_are_refused() {
        let config = AuthConfig {
            hs256_secret: Some(SecretString::from("short")),
            ..AuthConfig::default()
        };
        let built = AuthService::new(
            &config,
            Arc::new(MockOrgRepository::new()),
            Arc::new(MockUserRepository::new()),
            Arc::new(MockRefreshTokenRepository::new()),
            Arc::new(MockApiKeyRepository::new()),
            Arc::new(FixedClock::new(Utc::now())),
        );
        assert!(matches!(built, Err(AuthConfigError::WeakSecret)));
        let auth = service(MockApiKeyRepository::new(), Duration::ZERO);
        assert!(matches!(
            auth.hash_password(&SecretString::from("short")),
            Err(AppError::Validation { .. })
        ));
        let hash = auth
            .hash_password(&SecretString::from("long enough password"))
            .expect("hash");
        assert!(hash.expose().starts_with("$argon2id$"));
        assert!(auth.verify_password("long enough password", hash.expose()));
        assert!(!auth.verify_password("wrong password!!", hash.expose()));
    }

    /// A key pair for tests only (generated with `openssl genpkey -algorithm ed25519`).
    const TEST_ED25519_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIFQ/qufLpszrYHLz7n+gWLytNiHtMwIMyOIDdnn+luk3
-----END PRIVATE KEY-----
";
    const TEST_ED25519_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAmMJ+Y0jDc4LkNr6xoP3A6IeOOAXl46VBVz7Gf1unXHE=
-----END PUBLIC KEY-----
";

    #[tokio::test]
    async fn eddsa_tokens_verify_and_hs256_ones_do_not() {
        let org = OrgId::new();
        let user = User {
            id: UserId::new(),
            org_id: org,
            email: Email::parse("a@example.com").expect("email"),
            password_hash: SecretHash::new("!"),
            role: Role::Admin,
            created_at: Utc::now(),
            last_login_at: None,
        };
        let mut users = MockUserRepository::new();
        let found = user.clone();
        users.expect_get().returning(move |_, _| Ok(found.clone()));
        let config = AuthConfig {
            algorithm: JwtAlgorithm::EdDsa,
            ed25519_private_pem: Some(SecretString::from(TEST_ED25519_PRIVATE)),
            ed25519_public_pem: Some(TEST_ED25519_PUBLIC.to_owned()),
            principal_cache_ttl: Duration::ZERO,
            ..AuthConfig::default()
        };
        let auth = AuthService::new(
            &config,
            Arc::new(MockOrgRepository::new()),
            Arc::new(users),
            Arc::new(MockRefreshTokenRepository::new()),
            Arc::new(MockApiKeyRepository::new()),
            Arc::new(FixedClock::new(Utc::now())),
        )
        .expect("eddsa service");
        let (token, _) = auth.issue_access(org, user.id, user.role).expect("issue");
        let principal = auth.authenticate(&token).await.expect("verifies");
        assert_eq!(principal.role, Role::Admin);
        // A token of the other algorithm is refused even with a valid signature.
        let hs = service(MockApiKeyRepository::new(), Duration::ZERO);
        let (hs_token, _) = hs.issue_access(org, user.id, user.role).expect("issue");
        assert!(matches!(
            auth.authenticate(&hs_token).await,
            Err(AppError::Unauthenticated {
                code: "invalid_token"
            })
        ));
        let missing = AuthConfig {
            algorithm: JwtAlgorithm::EdDsa,
            ..AuthConfig::default()
        };
        let built = AuthService::new(
            &missing,
            Arc::new(MockOrgRepository::new()),
            Arc::new(MockUserRepository::new()),
            Arc::new(MockRefreshTokenRepository::new()),
            Arc::new(MockApiKeyRepository::new()),
            Arc::new(FixedClock::new(Utc::now())),
        );
        assert!(matches!(built, Err(AuthConfigError::MissingKeys)));
    }

    #[tokio::test]
    async fn an_expired_refresh_token_is_refused_and_nothing_is_rotated() {
        let org = OrgId::new();
        let now = Utc::now();
        let family = RefreshTokenId::new();
        let stored = RefreshToken {
            id: family,
            user_id: UserId::new(),
            family_id: family,
            token_hash: SecretHash::new("h"),
            issued_at: now - chrono::Duration::days(31),
            expires_at: now - chrono::Duration::seconds(1),
            revoked_at: None,
        };
        let mut tokens = MockRefreshTokenRepository::new();
        tokens
            .expect_find_by_hash()
            .returning(move |_| Ok(Some(stored.clone())));
        // Neither rotated nor its family revoked: expiry is not theft.
        tokens.expect_rotate().never();
        tokens.expect_revoke_family().never();
        let config = AuthConfig {
            hs256_secret: Some(SecretString::from("0123456789abcdef0123456789abcdef")),
            ..AuthConfig::default()
        };
        let auth = AuthService::new(
            &config,
            Arc::new(MockOrgRepository::new()),
            Arc::new(MockUserRepository::new()),
            Arc::new(tokens),
            Arc::new(MockApiKeyRepository::new()),
            Arc::new(FixedClock::new(now)),
        )
        .expect("service");
        let token = format!("{REFRESH_PREFIX}{}_secret", org.as_uuid().simple());
        assert!(matches!(
            auth.refresh(&token).await,
            Err(AppError::Unauthenticated {
                code: "token_expired"
            })
        ));
    }

    #[test]
    fn token_hashes_are_sha256_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
