//! Learned patterns, read-only: the best patterns, the patterns most similar to
//! a text, and one pattern. Patterns are written by the post-call learning job,
//! never through the API.

use std::sync::Arc;

use iace_domain::learning::SuccessPrior;
use iace_domain::ports::{Embedder, PatternFilter, PatternStore, ScoredMatch};
use iace_domain::{LearnedPattern, PatternId, PatternKind, Role};

use crate::auth::Principal;
use crate::error::{AppError, FieldError};

/// Most patterns [`PatternService::top`] returns.
pub const MAX_TOP: u32 = 100;
/// Most matches [`PatternService::similar`] returns.
pub const MAX_MATCHES: u32 = 50;
/// Longest search text, in characters.
pub const MAX_TEXT_LEN: usize = 2_000;

/// Learned-pattern use cases.
#[derive(Clone)]
pub struct PatternService {
    patterns: Arc<dyn PatternStore>,
    embedder: Arc<dyn Embedder>,
    prior: SuccessPrior,
}

impl std::fmt::Debug for PatternService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatternService")
            .field("prior", &self.prior)
            .finish_non_exhaustive()
    }
}

impl PatternService {
    /// Builds the service; patterns are ranked under the domain's default
    /// [`SuccessPrior`].
    pub fn new(patterns: Arc<dyn PatternStore>, embedder: Arc<dyn Embedder>) -> Self {
        Self {
            patterns,
            embedder,
            prior: SuccessPrior::default(),
        }
    }

    /// The prior success rates are smoothed with (for showing them).
    #[must_use]
    pub const fn prior(&self) -> SuccessPrior {
        self.prior
    }

    /// The `limit` (1-100) patterns with the best smoothed success rate, best
    /// first, optionally of one kind and used at least `min_uses` times.
    ///
    /// # Errors
    /// Validation (`limit`); store errors.
    pub async fn top(
        &self,
        who: &Principal,
        kind: Option<PatternKind>,
        min_uses: u32,
        limit: u32,
    ) -> Result<Vec<LearnedPattern>, AppError> {
        who.require(Role::Viewer)?;
        if !(1..=MAX_TOP).contains(&limit) {
            return Err(AppError::invalid(
                "limit",
                "out_of_range",
                format!("limit is 1-{MAX_TOP}"),
            ));
        }
        let filter = PatternFilter { kind, min_uses };
        Ok(self
            .patterns
            .top(who.org_id, &filter, &self.prior, limit)
            .await?)
    }

    /// The `k` (1-50) patterns whose trigger is most similar to `text`, most
    /// similar first, optionally of one kind.
    ///
    /// # Errors
    /// Validation (`text`, `k`); Unavailable when the embedder fails; store
    /// errors.
    pub async fn similar(
        &self,
        who: &Principal,
        text: &str,
        kind: Option<PatternKind>,
        k: u32,
    ) -> Result<Vec<ScoredMatch<LearnedPattern>>, AppError> {
        who.require(Role::Viewer)?;
        let mut errors = Vec::new();
        let len = text.trim().chars().count();
        if len == 0 {
            errors.push(FieldError::new("text", "required", "must not be empty"));
        } else if len > MAX_TEXT_LEN {
            errors.push(FieldError::new(
                "text",
                "too_long",
                format!("at most {MAX_TEXT_LEN} characters"),
            ));
        }
        if !(1..=MAX_MATCHES).contains(&k) {
            errors.push(FieldError::new(
                "k",
                "out_of_range",
                format!("k is 1-{MAX_MATCHES}"),
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation { errors });
        }
        let query = self
            .embedder
            .embed(&[text.trim().to_owned()])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::Internal {
                source: "the embedder returned no embedding for one text".into(),
            })?;
        let filter = PatternFilter { kind, min_uses: 0 };
        Ok(self
            .patterns
            .find_similar(who.org_id, &query, k, &filter)
            .await?)
    }

    /// One pattern.
    ///
    /// # Errors
    /// NotFound; store errors.
    pub async fn get(&self, who: &Principal, id: PatternId) -> Result<LearnedPattern, AppError> {
        who.require(Role::Viewer)?;
        Ok(self.patterns.get(who.org_id, id).await?)
    }
}

#[cfg(test)]
mod tests {
    use iace_domain::ports::ProviderError;
    use iace_domain::ports::providers::MockEmbedder;
    use iace_domain::ports::store::MockPatternStore;
    use iace_domain::{Embedding, OrgId, UserId};

    use super::*;
    use crate::auth::Subject;

    fn viewer() -> Principal {
        Principal {
            org_id: OrgId::new(),
            role: Role::Viewer,
            subject: Subject::User(UserId::new()),
        }
    }

    fn codes(err: AppError) -> Vec<(String, &'static str)> {
        match err {
            AppError::Validation { errors } => {
                errors.into_iter().map(|e| (e.field, e.code)).collect()
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn similar_embeds_the_trimmed_text_and_searches_the_callers_org() {
        let who = viewer();
        let mut embedder = MockEmbedder::new();
        embedder
            .expect_embed()
            .withf(|texts| texts == ["late fee".to_owned()])
            .returning(|_| Ok(vec![Embedding::new(vec![1.0, 0.0]).expect("embedding")]));
        let mut store = MockPatternStore::new();
        let org = who.org_id;
        store
            .expect_find_similar()
            .withf(move |o, q, k, f| {
                *o == org
                    && q.as_slice() == [1.0, 0.0]
                    && *k == 3
                    && f.kind == Some(PatternKind::Resolution)
            })
            .returning(|_, _, _, _| Ok(vec![]));
        let svc = PatternService::new(Arc::new(store), Arc::new(embedder));
        let found = svc
            .similar(&who, "  late fee ", Some(PatternKind::Resolution), 3)
            .await
            .expect("search");
        assert!(found.is_empty());
    }

    #[tokio::test]
    async fn bad_input_is_reported_by_field_before_any_call() {
        let svc = PatternService::new(
            Arc::new(MockPatternStore::new()),
            Arc::new(MockEmbedder::new()),
        );
        let err = svc
            .similar(&viewer(), " ", None, 0)
            .await
            .expect_err("invalid");
        assert_eq!(
            codes(err),
            vec![
                ("text".to_owned(), "required"),
                ("k".to_owned(), "out_of_range")
            ]
        );
        let err = svc.top(&viewer(), None, 0, 0).await.expect_err("invalid");
        assert_eq!(codes(err), vec![("limit".to_owned(), "out_of_range")]);
    }

    #[tokio::test]
    async fn an_embedder_failure_is_unavailable() {
        let mut embedder = MockEmbedder::new();
        embedder
            .expect_embed()
            .returning(|_| Err(ProviderError::Timeout { provider: "gemini" }));
        let svc = PatternService::new(Arc::new(MockPatternStore::new()), Arc::new(embedder));
        let err = svc
            .similar(&viewer(), "hello", None, 5)
            .await
            .expect_err("unavailable");
        assert_eq!(err.code(), "unavailable");
    }
}
