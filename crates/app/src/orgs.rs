//! The organisation's own settings: how its calls are placed and answered.

use std::sync::Arc;

use iace_domain::ports::{Clock, OrgRepository, StoreError};
use iace_domain::{Role, TelephonySettings, TelephonySettingsError};

use crate::auth::Principal;
use crate::error::{AppError, FieldError};

/// Organisation settings use cases.
#[derive(Clone)]
pub struct OrgService {
    orgs: Arc<dyn OrgRepository>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for OrgService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgService").finish_non_exhaustive()
    }
}

fn field_error(err: &TelephonySettingsError) -> FieldError {
    let code = match err {
        TelephonySettingsError::TooManyNumbers { .. } => "too_many",
        TelephonySettingsError::DuplicateNumber => "duplicate",
        TelephonySettingsError::ConnectionId | TelephonySettingsError::VoicemailMessage => {
            "invalid_length"
        }
        TelephonySettingsError::MediaBaseUrl => "invalid_url",
    };
    FieldError::new(err.field(), code, err.to_string())
}

impl OrgService {
    /// Builds the service.
    pub fn new(orgs: Arc<dyn OrgRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { orgs, clock }
    }

    /// The organisation's telephony settings.
    ///
    /// # Errors
    /// NotFound; store errors.
    pub async fn telephony(&self, who: &Principal) -> Result<TelephonySettings, AppError> {
        who.require(Role::Viewer)?;
        Ok(self.orgs.telephony(who.org_id).await?)
    }

    /// Every broken bound of `settings`.
    ///
    /// # Errors
    /// Validation, one entry per broken bound.
    pub fn check(&self, settings: &TelephonySettings) -> Result<(), AppError> {
        let errors: Vec<FieldError> = settings.validate().iter().map(field_error).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation { errors })
        }
    }

    /// Replaces the organisation's telephony settings.
    ///
    /// # Errors
    /// Forbidden below admin; Validation (every broken bound); Conflict
    /// `number_taken` when a number belongs to another organisation; store
    /// errors.
    pub async fn set_telephony(
        &self,
        who: &Principal,
        settings: TelephonySettings,
    ) -> Result<TelephonySettings, AppError> {
        who.require(Role::Admin)?;
        self.check(&settings)?;
        match self
            .orgs
            .set_telephony(who.org_id, &settings, self.clock.now())
            .await
        {
            Ok(()) => Ok(settings),
            Err(StoreError::AlreadyExists { .. }) => Err(AppError::Conflict {
                code: "number_taken",
                message: "a number belongs to another organisation".to_owned(),
            }),
            Err(other) => Err(other.into()),
        }
    }
}
