//! Experiments: A/B tests over personas — set-up while a draft, the life cycle
//! (`draft → running ⇄ paused → completed`) and the analysis of the results.
//!
//! There is no delete: [`ExperimentRepository`] has none (a completed
//! experiment is a record worth keeping).
//!
//! Status changes read, check and write without a version: two concurrent
//! transitions of the same experiment are last-writer-wins (the port has no
//! optimistic check for experiments, unlike calls).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use iace_domain::experiment::{
    self, AnalysisConfig, ExperimentError, ExperimentReport, StatsError,
};
use iace_domain::ports::{
    Clock, ExperimentRepository, Page, PageRequest, PersonaRepository, StoreError,
};
use iace_domain::{
    Experiment, ExperimentId, ExperimentMetric, ExperimentStatus, OrgId, PersonaId, Role, Variant,
    VariantId,
};

use crate::auth::{Principal, random_bytes};
use crate::error::{AppError, FieldError};

/// Longest experiment name, in characters.
pub const MAX_NAME_LEN: usize = 200;
/// Longest variant name, in characters.
pub const MAX_VARIANT_NAME_LEN: usize = 100;
/// Longest salt, in characters.
pub const MAX_SALT_LEN: usize = 200;

/// One arm as a client sets it (already parsed at the edge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantInput {
    /// Label, unique in the experiment (ignoring case and surrounding spaces).
    pub name: String,
    /// The persona callers in this arm get; must exist in the organisation.
    pub persona_id: PersonaId,
    /// Relative share of callers, at least 1.
    pub weight: u32,
    /// Whether this arm is the baseline; exactly one is.
    pub is_control: bool,
}

/// The fields a client sets on an experiment (create and full replace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentInput {
    /// Display name, 1-200 characters.
    pub name: String,
    /// Bucketing salt; generated on create when absent, kept on replace.
    pub salt: Option<String>,
    /// What counts as a conversion.
    pub metric: ExperimentMetric,
    /// The arms.
    pub variants: Vec<VariantInput>,
}

/// Experiment use cases.
#[derive(Clone)]
pub struct ExperimentService {
    experiments: Arc<dyn ExperimentRepository>,
    personas: Arc<dyn PersonaRepository>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ExperimentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExperimentService").finish_non_exhaustive()
    }
}

/// A life-cycle change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transition {
    Start,
    Pause,
    Stop,
}

impl Transition {
    const fn verb(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Pause => "pause",
            Self::Stop => "stop",
        }
    }
}

const fn status_name(status: ExperimentStatus) -> &'static str {
    match status {
        ExperimentStatus::Draft => "draft",
        ExperimentStatus::Running => "running",
        ExperimentStatus::Paused => "paused",
        ExperimentStatus::Completed => "completed",
    }
}

/// A salt nobody chose: 18 random bytes, 24 URL-safe characters.
fn generate_salt() -> Result<String, AppError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<18>()?))
}

/// The field error for a broken arm rule of [`experiment::validate_variants`].
fn variants_error(err: &ExperimentError) -> FieldError {
    let code = match err {
        ExperimentError::TooFewVariants { .. } => "too_few_variants",
        ExperimentError::ZeroWeight { .. } => "zero_weight",
        ExperimentError::DuplicateId { .. } => "duplicate_variant_id",
        ExperimentError::DuplicateName { .. } => "duplicate_variant_name",
        ExperimentError::NoControl => "no_control",
        ExperimentError::MultipleControls { .. } => "multiple_controls",
        ExperimentError::TotalWeightOverflow => "weights_too_large",
    };
    FieldError::new("variants", code, err.to_string())
}

/// The field error for an analysis setting, or `None` for any other failure.
fn config_error(err: &StatsError) -> Option<FieldError> {
    match err {
        StatsError::InvalidConfidence { .. } => Some(FieldError::new(
            "confidence",
            "out_of_range",
            err.to_string(),
        )),
        StatsError::InvalidAlpha { .. } => {
            Some(FieldError::new("alpha", "out_of_range", err.to_string()))
        }
        _ => None,
    }
}

/// Character count after trimming is within `1..=max`.
fn check_length(errors: &mut Vec<FieldError>, field: impl Into<String>, value: &str, max: usize) {
    let len = value.trim().chars().count();
    if len == 0 {
        errors.push(FieldError::new(field, "required", "must not be empty"));
    } else if len > max {
        errors.push(FieldError::new(
            field,
            "too_long",
            format!("at most {max} characters"),
        ));
    }
}

impl ExperimentService {
    /// Builds the service.
    pub fn new(
        experiments: Arc<dyn ExperimentRepository>,
        personas: Arc<dyn PersonaRepository>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            experiments,
            personas,
            clock,
        }
    }

    /// Checks `input` and turns its arms into variants, reporting every invalid
    /// field at once. An arm whose name matches one of `existing` (trimmed,
    /// ignoring case) keeps that arm's id, so a draft's ids survive edits.
    async fn variants(
        &self,
        org: OrgId,
        input: &ExperimentInput,
        existing: &[Variant],
    ) -> Result<Vec<Variant>, AppError> {
        let mut errors = Vec::new();
        check_length(&mut errors, "name", &input.name, MAX_NAME_LEN);
        if let Some(salt) = &input.salt {
            check_length(&mut errors, "salt", salt, MAX_SALT_LEN);
        }
        let key = |name: &str| name.trim().to_lowercase();
        let variants: Vec<Variant> = input
            .variants
            .iter()
            .map(|v| Variant {
                id: existing
                    .iter()
                    .find(|e| key(&e.name) == key(&v.name))
                    .map_or_else(VariantId::new, |e| e.id),
                name: v.name.trim().to_owned(),
                persona_id: v.persona_id,
                weight: v.weight,
                is_control: v.is_control,
            })
            .collect();
        for (i, v) in variants.iter().enumerate() {
            check_length(
                &mut errors,
                format!("variants[{i}].name"),
                &v.name,
                MAX_VARIANT_NAME_LEN,
            );
        }
        if let Err(err) = experiment::validate_variants(&variants) {
            errors.push(variants_error(&err));
        }
        // Every persona must be in the organisation; each is looked up once.
        let mut known: HashMap<PersonaId, bool> = HashMap::new();
        for (i, v) in variants.iter().enumerate() {
            let exists = match known.get(&v.persona_id) {
                Some(exists) => *exists,
                None => {
                    let exists = match self.personas.get(org, v.persona_id).await {
                        Ok(_) => true,
                        Err(StoreError::NotFound { .. }) => false,
                        Err(err) => return Err(err.into()),
                    };
                    known.insert(v.persona_id, exists);
                    exists
                }
            };
            if !exists {
                errors.push(FieldError::new(
                    format!("variants[{i}].persona_id"),
                    "unknown_persona",
                    "no persona with this id in the organisation",
                ));
            }
        }
        if errors.is_empty() {
            Ok(variants)
        } else {
            Err(AppError::Validation { errors })
        }
    }

    /// Creates a draft experiment.
    ///
    /// # Errors
    /// Forbidden below member; Validation (name, salt, arms, unknown personas);
    /// store errors.
    pub async fn create(
        &self,
        who: &Principal,
        input: ExperimentInput,
    ) -> Result<Experiment, AppError> {
        who.require(Role::Member)?;
        let variants = self.variants(who.org_id, &input, &[]).await?;
        let salt = match input.salt {
            Some(salt) => salt.trim().to_owned(),
            None => generate_salt()?,
        };
        let experiment = Experiment {
            id: ExperimentId::new(),
            org_id: who.org_id,
            name: input.name.trim().to_owned(),
            salt,
            status: ExperimentStatus::Draft,
            metric: input.metric,
            variants,
            created_at: self.clock.now(),
            started_at: None,
            ended_at: None,
        };
        self.experiments.create(&experiment).await?;
        Ok(experiment)
    }

    /// One experiment.
    ///
    /// # Errors
    /// NotFound; store errors.
    pub async fn get(&self, who: &Principal, id: ExperimentId) -> Result<Experiment, AppError> {
        who.require(Role::Viewer)?;
        Ok(self.experiments.get(who.org_id, id).await?)
    }

    /// Experiments, one page.
    ///
    /// # Errors
    /// Store errors.
    pub async fn list(
        &self,
        who: &Principal,
        page: PageRequest,
    ) -> Result<Page<Experiment>, AppError> {
        who.require(Role::Viewer)?;
        Ok(self.experiments.list(who.org_id, page).await?)
    }

    /// Replaces a draft's name, metric and arms (and its salt, when given).
    ///
    /// # Errors
    /// Forbidden below member; NotFound; Conflict `experiment_not_draft` once it
    /// has started; Validation as on create; store errors.
    pub async fn replace(
        &self,
        who: &Principal,
        id: ExperimentId,
        input: ExperimentInput,
    ) -> Result<Experiment, AppError> {
        who.require(Role::Member)?;
        let mut experiment = self.experiments.get(who.org_id, id).await?;
        if experiment.status != ExperimentStatus::Draft {
            return Err(AppError::Conflict {
                code: "experiment_not_draft",
                message: format!(
                    "the experiment is {}; only a draft can be changed",
                    status_name(experiment.status)
                ),
            });
        }
        experiment.variants = self
            .variants(who.org_id, &input, &experiment.variants)
            .await?;
        experiment.name = input.name.trim().to_owned();
        experiment.metric = input.metric;
        if let Some(salt) = input.salt {
            experiment.salt = salt.trim().to_owned();
        }
        self.experiments.update(&experiment).await?;
        Ok(experiment)
    }

    /// Starts (or resumes) an experiment: draft or paused → running. The start
    /// time is set the first time only.
    ///
    /// # Errors
    /// Forbidden below member; NotFound; Conflict `invalid_experiment_state`
    /// when it is running or completed; store errors.
    pub async fn start(&self, who: &Principal, id: ExperimentId) -> Result<Experiment, AppError> {
        self.transition(who, id, Transition::Start).await
    }

    /// Pauses a running experiment: it assigns nobody until started again.
    ///
    /// # Errors
    /// Forbidden below member; NotFound; Conflict `invalid_experiment_state`
    /// unless it is running; store errors.
    pub async fn pause(&self, who: &Principal, id: ExperimentId) -> Result<Experiment, AppError> {
        self.transition(who, id, Transition::Pause).await
    }

    /// Ends an experiment for good: running or paused → completed.
    ///
    /// # Errors
    /// Forbidden below member; NotFound; Conflict `invalid_experiment_state`
    /// when it is a draft or already completed; store errors.
    pub async fn stop(&self, who: &Principal, id: ExperimentId) -> Result<Experiment, AppError> {
        self.transition(who, id, Transition::Stop).await
    }

    async fn transition(
        &self,
        who: &Principal,
        id: ExperimentId,
        transition: Transition,
    ) -> Result<Experiment, AppError> {
        use ExperimentStatus::{Completed, Draft, Paused, Running};

        who.require(Role::Member)?;
        let mut experiment = self.experiments.get(who.org_id, id).await?;
        let now = self.clock.now();
        match (transition, experiment.status) {
            (Transition::Start, Draft | Paused) => {
                experiment.status = Running;
                experiment.started_at.get_or_insert(now);
            }
            (Transition::Pause, Running) => experiment.status = Paused,
            (Transition::Stop, Running | Paused) => {
                experiment.status = Completed;
                experiment.ended_at = Some(now);
            }
            (transition, status) => {
                return Err(AppError::Conflict {
                    code: "invalid_experiment_state",
                    message: format!(
                        "cannot {} an experiment that is {}",
                        transition.verb(),
                        status_name(status)
                    ),
                });
            }
        }
        self.experiments.update(&experiment).await?;
        Ok(experiment)
    }

    /// Per-arm rates, Wilson intervals and tests against the control, and the
    /// decision, from the counts recorded so far.
    ///
    /// # Errors
    /// Validation (`confidence`, `alpha` outside 0..1); NotFound; Internal when
    /// the stored counts do not fit the experiment; store errors.
    pub async fn results(
        &self,
        who: &Principal,
        id: ExperimentId,
        config: &AnalysisConfig,
    ) -> Result<ExperimentReport, AppError> {
        who.require(Role::Viewer)?;
        // The domain reports the first bad setting; check each on its own (the
        // other at its default) so that both are reported at once.
        let defaults = AnalysisConfig::default();
        let errors: Vec<FieldError> = [
            AnalysisConfig {
                alpha: defaults.alpha,
                ..*config
            },
            AnalysisConfig {
                confidence: defaults.confidence,
                ..*config
            },
        ]
        .iter()
        .filter_map(|c| c.validate().err())
        .filter_map(|err| config_error(&err))
        .collect();
        if !errors.is_empty() {
            return Err(AppError::Validation { errors });
        }
        let experiment = self.experiments.get(who.org_id, id).await?;
        let counts = self.experiments.counts(who.org_id, id).await?;
        experiment::analyze(&experiment, &counts, config).map_err(|err| match config_error(&err) {
            Some(field) => AppError::Validation {
                errors: vec![field],
            },
            None => AppError::Internal {
                source: Box::new(err),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::{DateTime, Utc};
    use iace_domain::Persona;
    use iace_domain::ports::{
        FixedClock, store::MockExperimentRepository, store::MockPersonaRepository,
    };

    use super::*;
    use crate::auth::Subject;

    fn who(role: Role) -> Principal {
        Principal {
            org_id: OrgId::new(),
            role,
            subject: Subject::User(iace_domain::UserId::new()),
        }
    }

    fn arm(name: &str, persona: PersonaId, is_control: bool) -> VariantInput {
        VariantInput {
            name: name.to_owned(),
            persona_id: persona,
            weight: 1,
            is_control,
        }
    }

    fn input(persona: PersonaId) -> ExperimentInput {
        ExperimentInput {
            name: " Greeting test ".to_owned(),
            salt: None,
            metric: ExperimentMetric::Conversion,
            variants: vec![
                arm("control", persona, true),
                arm("friendly", persona, false),
            ],
        }
    }

    fn at() -> DateTime<Utc> {
        DateTime::UNIX_EPOCH
    }

    /// A service whose persona repository knows exactly `known`, and whose
    /// experiment repository stores one experiment in memory.
    fn service(known: Vec<PersonaId>, stored: Arc<Mutex<Option<Experiment>>>) -> ExperimentService {
        let mut personas = MockPersonaRepository::new();
        personas.expect_get().returning(move |org, id| {
            if known.contains(&id) {
                Ok(persona(org, id))
            } else {
                Err(StoreError::NotFound { entity: "persona" })
            }
        });
        let mut experiments = MockExperimentRepository::new();
        let (s1, s2, s3) = (stored.clone(), stored.clone(), stored);
        experiments.expect_create().returning(move |e| {
            *s1.lock().expect("lock") = Some(e.clone());
            Ok(())
        });
        experiments.expect_update().returning(move |e| {
            *s2.lock().expect("lock") = Some(e.clone());
            Ok(())
        });
        experiments.expect_get().returning(move |org, id| {
            s3.lock()
                .expect("lock")
                .clone()
                .filter(|e| e.org_id == org && e.id == id)
                .ok_or(StoreError::NotFound {
                    entity: "experiment",
                })
        });
        ExperimentService::new(
            Arc::new(experiments),
            Arc::new(personas),
            Arc::new(FixedClock::new(at())),
        )
    }

    fn persona(org: OrgId, id: PersonaId) -> Persona {
        Persona {
            id,
            org_id: org,
            name: "Sam".to_owned(),
            voice: iace_domain::Voice {
                name: "aura".to_owned(),
                speed: 1.0,
            },
            system_prompt: "Be helpful.".to_owned(),
            greeting: "Hi".to_owned(),
            style: iace_domain::Style::Friendly,
            language: iace_domain::Language::parse("en-US").expect("language"),
            created_at: at(),
            updated_at: at(),
        }
    }

    fn fields(err: AppError) -> Vec<(String, &'static str)> {
        match err {
            AppError::Validation { errors } => {
                errors.into_iter().map(|e| (e.field, e.code)).collect()
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn create_makes_a_draft_with_a_generated_salt() {
        let persona = PersonaId::new();
        let svc = service(vec![persona], Arc::default());
        let who = who(Role::Member);
        let e = svc.create(&who, input(persona)).await.expect("created");
        assert_eq!(e.status, ExperimentStatus::Draft);
        assert_eq!(e.name, "Greeting test");
        assert_eq!(e.org_id, who.org_id);
        assert!(e.salt.len() >= 16, "{}", e.salt);
        let other = svc.create(&who, input(persona)).await.expect("created");
        assert_ne!(e.salt, other.salt, "salts are random");
    }

    #[tokio::test]
    async fn create_reports_every_invalid_field() {
        let (known, unknown) = (PersonaId::new(), PersonaId::new());
        let svc = service(vec![known], Arc::default());
        let mut bad = input(known);
        bad.name = "  ".to_owned();
        bad.variants = vec![
            arm("control", known, false),
            arm("", unknown, false),
            arm("other", unknown, false),
        ];
        let err = svc
            .create(&who(Role::Member), bad)
            .await
            .expect_err("invalid");
        assert_eq!(
            fields(err),
            vec![
                ("name".to_owned(), "required"),
                ("variants[1].name".to_owned(), "required"),
                ("variants".to_owned(), "no_control"),
                ("variants[1].persona_id".to_owned(), "unknown_persona"),
                ("variants[2].persona_id".to_owned(), "unknown_persona"),
            ]
        );
    }

    #[tokio::test]
    async fn viewers_cannot_write() {
        let svc = service(vec![], Arc::default());
        let err = svc
            .create(&who(Role::Viewer), input(PersonaId::new()))
            .await
            .expect_err("forbidden");
        assert!(matches!(
            err,
            AppError::Forbidden {
                required: Role::Member
            }
        ));
    }

    #[tokio::test]
    async fn life_cycle_and_invalid_transitions() {
        let persona = PersonaId::new();
        let svc = service(vec![persona], Arc::default());
        let who = who(Role::Member);
        let e = svc.create(&who, input(persona)).await.expect("created");
        let err = svc.stop(&who, e.id).await.expect_err("draft cannot stop");
        assert_eq!(err.code(), "invalid_experiment_state");
        let running = svc.start(&who, e.id).await.expect("start");
        assert_eq!(running.status, ExperimentStatus::Running);
        assert_eq!(running.started_at, Some(at()));
        assert_eq!(
            svc.start(&who, e.id).await.expect_err("twice").code(),
            "invalid_experiment_state"
        );
        let err = svc
            .replace(&who, e.id, input(persona))
            .await
            .expect_err("not a draft");
        assert_eq!(err.code(), "experiment_not_draft");
        assert_eq!(
            svc.pause(&who, e.id).await.expect("pause").status,
            ExperimentStatus::Paused
        );
        assert_eq!(
            svc.start(&who, e.id).await.expect("resume").started_at,
            Some(at())
        );
        let done = svc.stop(&who, e.id).await.expect("stop");
        assert_eq!(
            (done.status, done.ended_at),
            (ExperimentStatus::Completed, Some(at()))
        );
        assert_eq!(
            svc.start(&who, e.id).await.expect_err("completed").code(),
            "invalid_experiment_state"
        );
    }

    #[tokio::test]
    async fn replace_keeps_ids_of_arms_with_the_same_name() {
        let persona = PersonaId::new();
        let svc = service(vec![persona], Arc::default());
        let who = who(Role::Member);
        let e = svc.create(&who, input(persona)).await.expect("created");
        let mut changed = input(persona);
        changed.variants[1].name = "concise".to_owned();
        let replaced = svc.replace(&who, e.id, changed).await.expect("replaced");
        assert_eq!(replaced.salt, e.salt, "the salt is kept when not given");
        assert_eq!(replaced.variants[0].id, e.variants[0].id);
        assert_ne!(replaced.variants[1].id, e.variants[1].id);
    }

    #[tokio::test]
    async fn results_reject_bad_settings_by_field() {
        let svc = service(vec![], Arc::default());
        let config = AnalysisConfig {
            confidence: 1.5,
            alpha: 0.0,
            min_trials_per_variant: 1,
        };
        let err = svc
            .results(&who(Role::Viewer), ExperimentId::new(), &config)
            .await
            .expect_err("invalid");
        assert_eq!(
            fields(err),
            vec![
                ("confidence".to_owned(), "out_of_range"),
                ("alpha".to_owned(), "out_of_range"),
            ]
        );
    }
}
