//! Personas: who the AI agent is on a call — CRUD.
//!
//! The bounds are the domain's ([`Persona::validate`]); this module maps them
//! to field errors and reports every broken one, not just the first.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use iace_domain::ports::{
    Cache, CacheKey, Clock, Page, PageRequest, PersonaRepository, StoreError,
};
use iace_domain::{Language, OrgId, Persona, PersonaError, PersonaId, Role, Style, Voice};

use crate::auth::Principal;
use crate::cached::ReadThrough;
use crate::error::{AppError, FieldError};

/// The fields a client sets on a persona (already parsed at the edge).
#[derive(Debug, Clone, PartialEq)]
pub struct PersonaInput {
    /// Display name.
    pub name: String,
    /// Voice for text-to-speech.
    pub voice: Voice,
    /// Instructions for the language model.
    pub system_prompt: String,
    /// First thing said on an answered call.
    pub greeting: String,
    /// Tone.
    pub style: Style,
    /// Language spoken and transcribed.
    pub language: Language,
}

impl PersonaInput {
    /// Every bound of [`Persona::validate`] the fields break, one entry per
    /// field (`name`, `system_prompt`, `greeting`, `voice.name`, `voice.speed`).
    #[must_use]
    pub fn field_errors(&self) -> Vec<FieldError> {
        // The domain reports the first broken bound; to report them all, each
        // one found is recorded and repaired in a probe copy until it passes.
        // Every repair fixes its own bound, so this ends after at most one pass
        // per bound.
        let mut probe = self.persona(PersonaId::new(), OrgId::new(), DateTime::<Utc>::UNIX_EPOCH);
        let mut errors = Vec::new();
        while let Err(err) = probe.validate() {
            errors.push(field_error(&err));
            match err {
                PersonaError::InvalidName => probe.name = "n".into(),
                PersonaError::InvalidSystemPrompt => probe.system_prompt = "p".into(),
                PersonaError::InvalidGreeting => probe.greeting = "g".into(),
                PersonaError::InvalidVoice => probe.voice.name = "v".into(),
                PersonaError::InvalidSpeed(_) => probe.voice.speed = 1.0,
            }
        }
        errors
    }

    fn persona(&self, id: PersonaId, org_id: OrgId, at: DateTime<Utc>) -> Persona {
        Persona {
            id,
            org_id,
            name: self.name.trim().to_owned(),
            voice: Voice {
                name: self.voice.name.trim().to_owned(),
                speed: self.voice.speed,
            },
            system_prompt: self.system_prompt.clone(),
            greeting: self.greeting.trim().to_owned(),
            style: self.style,
            language: self.language.clone(),
            created_at: at,
            updated_at: at,
        }
    }
}

/// The field error for a broken persona bound.
#[must_use]
pub fn field_error(err: &PersonaError) -> FieldError {
    let (field, code) = match err {
        PersonaError::InvalidName => ("name", "invalid_length"),
        PersonaError::InvalidSystemPrompt => ("system_prompt", "invalid_length"),
        PersonaError::InvalidGreeting => ("greeting", "invalid_length"),
        PersonaError::InvalidVoice => ("voice.name", "required"),
        PersonaError::InvalidSpeed(_) => ("voice.speed", "out_of_range"),
    };
    FieldError::new(field, code, err.to_string())
}

fn check(input: &PersonaInput) -> Result<(), AppError> {
    let errors = input.field_errors();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation { errors })
    }
}

/// Persona use cases.
#[derive(Clone)]
pub struct PersonaService {
    personas: Arc<dyn PersonaRepository>,
    clock: Arc<dyn Clock>,
    cache: Option<ReadThrough>,
}

impl std::fmt::Debug for PersonaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonaService").finish_non_exhaustive()
    }
}

impl PersonaService {
    /// Builds the service.
    pub fn new(personas: Arc<dyn PersonaRepository>, clock: Arc<dyn Clock>) -> Self {
        Self {
            personas,
            clock,
            cache: None,
        }
    }

    /// Serves reads of one persona (every inbound call reads its persona)
    /// from `cache` for up to `ttl`; updates and deletes through this service
    /// invalidate them. Cache failures count as misses.
    #[must_use]
    pub fn with_cache(mut self, cache: Arc<dyn Cache>, ttl: std::time::Duration) -> Self {
        self.cache = Some(ReadThrough::new(cache, ttl));
        self
    }

    fn key(org: OrgId, id: PersonaId) -> CacheKey {
        CacheKey::new(org, "persona", &id.to_string())
    }

    async fn forget(&self, org: OrgId, id: PersonaId) {
        if let Some(cache) = &self.cache {
            cache.forget(&Self::key(org, id)).await;
        }
    }

    /// Creates a persona.
    ///
    /// # Errors
    /// Forbidden below member; Validation; store errors.
    pub async fn create(&self, who: &Principal, input: PersonaInput) -> Result<Persona, AppError> {
        who.require(Role::Member)?;
        check(&input)?;
        let persona = input.persona(PersonaId::new(), who.org_id, self.clock.now());
        self.personas.create(&persona).await?;
        Ok(persona)
    }

    /// One persona.
    ///
    /// # Errors
    /// NotFound; store errors.
    pub async fn get(&self, who: &Principal, id: PersonaId) -> Result<Persona, AppError> {
        who.require(Role::Viewer)?;
        let key = Self::key(who.org_id, id);
        if let Some(cache) = &self.cache
            && let Some(persona) = cache.lookup::<Persona>(&key).await
        {
            return Ok(persona);
        }
        let persona = self.personas.get(who.org_id, id).await?;
        if let Some(cache) = &self.cache {
            cache.store(&key, &persona).await;
        }
        Ok(persona)
    }

    /// Personas, one page.
    ///
    /// # Errors
    /// Store errors.
    pub async fn list(
        &self,
        who: &Principal,
        page: PageRequest,
    ) -> Result<Page<Persona>, AppError> {
        who.require(Role::Viewer)?;
        Ok(self.personas.list(who.org_id, page).await?)
    }

    /// Replaces a persona's fields.
    ///
    /// # Errors
    /// Forbidden below member; Validation; NotFound; store errors.
    pub async fn update(
        &self,
        who: &Principal,
        id: PersonaId,
        input: PersonaInput,
    ) -> Result<Persona, AppError> {
        who.require(Role::Member)?;
        check(&input)?;
        let current = self.personas.get(who.org_id, id).await?;
        let persona = Persona {
            created_at: current.created_at,
            ..input.persona(id, who.org_id, self.clock.now())
        };
        self.personas.update(&persona).await?;
        self.forget(who.org_id, id).await;
        Ok(persona)
    }

    /// Deletes a persona that no experiment uses.
    ///
    /// # Errors
    /// Forbidden below admin; NotFound; Conflict (`persona_in_use`) while an
    /// experiment uses it; store errors.
    pub async fn delete(&self, who: &Principal, id: PersonaId) -> Result<(), AppError> {
        who.require(Role::Admin)?;
        self.personas
            .delete(who.org_id, id)
            .await
            .map_err(|err| match err {
                StoreError::Conflict { .. } => AppError::Conflict {
                    code: "persona_in_use",
                    message: "persona is used by an experiment".to_owned(),
                },
                other => other.into(),
            })?;
        self.forget(who.org_id, id).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use iace_domain::ports::FixedClock;
    use iace_domain::ports::store::MockPersonaRepository;
    use iace_domain::{ApiKeyId, OrgId};

    use super::*;
    use crate::auth::Subject;

    fn who(role: Role) -> Principal {
        Principal {
            org_id: OrgId::new(),
            role,
            subject: Subject::ApiKey(ApiKeyId::new()),
        }
    }

    fn input() -> PersonaInput {
        PersonaInput {
            name: " Sam ".into(),
            voice: Voice {
                name: "aura-2-thalia-en".into(),
                speed: 1.0,
            },
            system_prompt: "You help customers with billing.".into(),
            greeting: "Hi, this is Sam.".into(),
            style: Style::Friendly,
            language: Language::default(),
        }
    }

    fn service(repo: MockPersonaRepository) -> PersonaService {
        PersonaService::new(Arc::new(repo), Arc::new(FixedClock::new(Utc::now())))
    }

    #[test]
    fn every_broken_bound_is_reported() {
        assert!(input().field_errors().is_empty());
        let broken = PersonaInput {
            name: String::new(),
            voice: Voice {
                name: " ".into(),
                speed: 0.1,
            },
            system_prompt: String::new(),
            greeting: "x".repeat(1001),
            ..input()
        };
        let fields: Vec<_> = broken.field_errors().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "name",
                "system_prompt",
                "greeting",
                "voice.name",
                "voice.speed"
            ]
        );
    }

    #[tokio::test]
    async fn create_trims_and_scopes_to_the_org() {
        let mut repo = MockPersonaRepository::new();
        repo.expect_create().times(1).returning(|_| Ok(()));
        let member = who(Role::Member);
        let persona = service(repo)
            .create(&member, input())
            .await
            .expect("created");
        assert_eq!(persona.name, "Sam");
        assert_eq!(persona.org_id, member.org_id);
        let err = service(MockPersonaRepository::new())
            .create(&who(Role::Viewer), input())
            .await;
        assert!(matches!(err, Err(AppError::Forbidden { .. })));
    }

    #[tokio::test]
    async fn deleting_a_persona_in_use_is_a_clear_conflict() {
        let mut repo = MockPersonaRepository::new();
        repo.expect_delete().returning(|_, _| {
            Err(StoreError::Conflict {
                entity: "persona",
                expected: 0,
            })
        });
        let err = service(repo)
            .delete(&who(Role::Admin), PersonaId::new())
            .await;
        match err {
            Err(AppError::Conflict { code, message }) => {
                assert_eq!(code, "persona_in_use");
                assert_eq!(message, "persona is used by an experiment");
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        let err = service(MockPersonaRepository::new())
            .delete(&who(Role::Member), PersonaId::new())
            .await;
        assert!(matches!(err, Err(AppError::Forbidden { .. })));
    }
}
