//! Human agents: the people escalated calls are transferred to — CRUD and
//! availability.
//!
//! An agent must be reachable: it has a phone number, a SIP URI, or both. The
//! rules on the fields that are not newtypes (name, SIP URI, capacity) are free
//! functions so that the HTTP layer can report every invalid field of a request
//! at once with exactly the rules the service enforces.

use std::collections::BTreeSet;
use std::sync::Arc;

use iace_domain::ports::{AgentRepository, Page, PageRequest};
use iace_domain::{AgentId, Availability, Email, HumanAgent, PhoneNumber, Role, Skill};

use crate::auth::Principal;
use crate::error::{AppError, FieldError};

/// Longest agent name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest SIP URI, in bytes.
pub const MAX_SIP_URI_LEN: usize = 255;
/// Most calls one agent may be configured to handle at once.
pub const MAX_CONCURRENT_CALLS: u32 = 50;
/// Concurrent calls when the client does not say.
pub const DEFAULT_CONCURRENT_CALLS: u32 = 1;

/// The fields a client sets on an agent (already parsed at the edge).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentInput {
    /// Display name, 1–[`MAX_NAME_CHARS`] characters.
    pub name: String,
    /// Contact e-mail.
    pub email: Option<Email>,
    /// Phone number transfers are sent to.
    pub phone: Option<PhoneNumber>,
    /// SIP URI transfers are sent to (`sip:` or `sips:`).
    pub sip_uri: Option<String>,
    /// What the agent can handle.
    pub skills: BTreeSet<Skill>,
    /// Most calls handled at once, 1..=[`MAX_CONCURRENT_CALLS`].
    pub max_concurrent_calls: u32,
}

impl AgentInput {
    /// Every rule the parsed fields break, one entry per field.
    #[must_use]
    pub fn field_errors(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        errors.extend(check_name(&self.name));
        if let Some(uri) = &self.sip_uri {
            errors.extend(check_sip_uri(uri));
        }
        if self.phone.is_none() && self.sip_uri.is_none() {
            errors.extend(unreachable_errors());
        }
        errors.extend(check_max_concurrent_calls(i64::from(
            self.max_concurrent_calls,
        )));
        errors
    }
}

/// The error for a name that is blank or longer than [`MAX_NAME_CHARS`].
#[must_use]
pub fn check_name(name: &str) -> Option<FieldError> {
    let chars = name.trim().chars().count();
    if chars == 0 {
        Some(FieldError::new("name", "required", "the name is empty"))
    } else if chars > MAX_NAME_CHARS {
        Some(FieldError::new(
            "name",
            "too_long",
            format!("names have at most {MAX_NAME_CHARS} characters"),
        ))
    } else {
        None
    }
}

/// The error for a SIP URI that does not start with `sip:` or `sips:`, has
/// nothing after the scheme, contains whitespace or control characters, or is
/// longer than [`MAX_SIP_URI_LEN`].
#[must_use]
pub fn check_sip_uri(uri: &str) -> Option<FieldError> {
    if uri.len() > MAX_SIP_URI_LEN {
        return Some(FieldError::new(
            "sip_uri",
            "too_long",
            format!("SIP URIs have at most {MAX_SIP_URI_LEN} characters"),
        ));
    }
    let lower = uri.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("sips:")
        .or_else(|| lower.strip_prefix("sip:"));
    let well_formed = rest.is_some_and(|rest| {
        !rest.is_empty() && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
    });
    (!well_formed).then(|| {
        FieldError::new(
            "sip_uri",
            "invalid_sip_uri",
            "a SIP URI starts with sip: or sips: (sip:alice@pbx.example.com)",
        )
    })
}

/// The errors for an agent with neither a phone number nor a SIP URI: one on
/// each field, since either would do.
#[must_use]
pub fn unreachable_errors() -> [FieldError; 2] {
    let message = "give a phone number or a SIP URI (or both) to transfer calls to";
    [
        FieldError::new("phone", "phone_or_sip_uri_required", message),
        FieldError::new("sip_uri", "phone_or_sip_uri_required", message),
    ]
}

/// The error for a capacity outside 1..=[`MAX_CONCURRENT_CALLS`] (taken as
/// `i64` so that negative or huge client values are reported, not truncated).
#[must_use]
pub fn check_max_concurrent_calls(value: i64) -> Option<FieldError> {
    (!(1..=i64::from(MAX_CONCURRENT_CALLS)).contains(&value)).then(|| {
        FieldError::new(
            "max_concurrent_calls",
            "out_of_range",
            format!("max_concurrent_calls is 1-{MAX_CONCURRENT_CALLS}"),
        )
    })
}

fn validated(input: AgentInput) -> Result<AgentInput, AppError> {
    let errors = input.field_errors();
    if errors.is_empty() {
        Ok(AgentInput {
            name: input.name.trim().to_owned(),
            ..input
        })
    } else {
        Err(AppError::Validation { errors })
    }
}

/// Human-agent use cases.
#[derive(Clone)]
pub struct AgentService {
    agents: Arc<dyn AgentRepository>,
}

impl std::fmt::Debug for AgentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentService").finish_non_exhaustive()
    }
}

impl AgentService {
    /// Builds the service.
    pub fn new(agents: Arc<dyn AgentRepository>) -> Self {
        Self { agents }
    }

    /// Creates an agent; new agents are `offline` until they say otherwise.
    ///
    /// # Errors
    /// Forbidden below member; Validation; store errors.
    pub async fn create(&self, who: &Principal, input: AgentInput) -> Result<HumanAgent, AppError> {
        who.require(Role::Member)?;
        let input = validated(input)?;
        let agent = HumanAgent {
            id: AgentId::new(),
            org_id: who.org_id,
            name: input.name,
            email: input.email,
            phone: input.phone,
            sip_uri: input.sip_uri,
            skills: input.skills,
            availability: Availability::Offline,
            max_concurrent_calls: input.max_concurrent_calls,
            active_calls: 0,
        };
        self.agents.create(&agent).await?;
        Ok(agent)
    }

    /// One agent.
    ///
    /// # Errors
    /// NotFound; store errors.
    pub async fn get(&self, who: &Principal, id: AgentId) -> Result<HumanAgent, AppError> {
        who.require(Role::Viewer)?;
        Ok(self.agents.get(who.org_id, id).await?)
    }

    /// Agents, one page.
    ///
    /// # Errors
    /// Store errors.
    pub async fn list(
        &self,
        who: &Principal,
        page: PageRequest,
    ) -> Result<Page<HumanAgent>, AppError> {
        who.require(Role::Viewer)?;
        Ok(self.agents.list(who.org_id, page).await?)
    }

    /// Replaces an agent's fields; availability and active calls are kept.
    ///
    /// # Errors
    /// Forbidden below member; Validation; NotFound; store errors.
    pub async fn update(
        &self,
        who: &Principal,
        id: AgentId,
        input: AgentInput,
    ) -> Result<HumanAgent, AppError> {
        who.require(Role::Member)?;
        let input = validated(input)?;
        let mut agent = self.agents.get(who.org_id, id).await?;
        agent.name = input.name;
        agent.email = input.email;
        agent.phone = input.phone;
        agent.sip_uri = input.sip_uri;
        agent.skills = input.skills;
        agent.max_concurrent_calls = input.max_concurrent_calls;
        self.agents.update(&agent).await?;
        Ok(agent)
    }

    /// Sets whether the agent takes calls now.
    ///
    /// # Errors
    /// Forbidden below member; NotFound; store errors.
    pub async fn set_availability(
        &self,
        who: &Principal,
        id: AgentId,
        availability: Availability,
    ) -> Result<HumanAgent, AppError> {
        who.require(Role::Member)?;
        let mut agent = self.agents.get(who.org_id, id).await?;
        agent.availability = availability;
        self.agents.update(&agent).await?;
        Ok(agent)
    }

    /// Deletes an agent.
    ///
    /// # Errors
    /// Forbidden below admin; NotFound; store errors.
    pub async fn delete(&self, who: &Principal, id: AgentId) -> Result<(), AppError> {
        who.require(Role::Admin)?;
        Ok(self.agents.delete(who.org_id, id).await?)
    }
}

#[cfg(test)]
mod tests {
    use iace_domain::ports::store::MockAgentRepository;
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

    fn input() -> AgentInput {
        AgentInput {
            name: "  Ana  ".into(),
            email: None,
            phone: None,
            sip_uri: Some("sip:ana@pbx.example.com".into()),
            skills: BTreeSet::new(),
            max_concurrent_calls: 2,
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn sip_uris_need_a_scheme_and_a_target() {
        for ok in [
            "sip:ana@pbx.example.com",
            "sips:ana@pbx.example.com",
            "SIP:1000@pbx",
        ] {
            assert_eq!(check_sip_uri(ok), None, "{ok}");
        }
        let too_long = format!("sip:{}", "a".repeat(MAX_SIP_URI_LEN));
        for bad in [
            "ana@pbx",
            "sip:",
            "sip:ana @pbx",
            "tel:+14155550100",
            &too_long,
        ] {
            assert!(check_sip_uri(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn every_broken_rule_is_reported() {
        let broken = AgentInput {
            name: " ".into(),
            sip_uri: None,
            max_concurrent_calls: 51,
            ..input()
        };
        assert_eq!(
            fields(&broken.field_errors()),
            ["name", "phone", "sip_uri", "max_concurrent_calls"]
        );
        assert!(input().field_errors().is_empty());
        assert!(check_max_concurrent_calls(0).is_some());
        assert!(check_max_concurrent_calls(-1).is_some());
        assert_eq!(check_max_concurrent_calls(50), None);
        assert!(check_name(&"x".repeat(101)).is_some());
    }

    #[tokio::test]
    async fn create_checks_role_and_fields_before_storing() {
        let service = AgentService::new(Arc::new(MockAgentRepository::new()));
        let err = service.create(&who(Role::Viewer), input()).await;
        assert!(matches!(err, Err(AppError::Forbidden { .. })));
        let broken = AgentInput {
            sip_uri: None,
            ..input()
        };
        let err = service.create(&who(Role::Member), broken).await;
        assert!(matches!(err, Err(AppError::Validation { .. })));
    }

    #[tokio::test]
    async fn create_trims_the_name_and_starts_offline() {
        let mut repo = MockAgentRepository::new();
        repo.expect_create().times(1).returning(|_| Ok(()));
        let service = AgentService::new(Arc::new(repo));
        let who = who(Role::Member);
        let agent = service.create(&who, input()).await.expect("created");
        assert_eq!(agent.name, "Ana");
        assert_eq!(agent.org_id, who.org_id);
        assert_eq!(agent.availability, Availability::Offline);
        assert_eq!(agent.active_calls, 0);
    }

    #[tokio::test]
    async fn deleting_needs_admin() {
        let service = AgentService::new(Arc::new(MockAgentRepository::new()));
        let err = service.delete(&who(Role::Member), AgentId::new()).await;
        assert!(matches!(
            err,
            Err(AppError::Forbidden {
                required: Role::Admin
            })
        ));
    }
}
