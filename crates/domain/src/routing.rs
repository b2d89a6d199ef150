//! Routing: which human agent takes an escalated call.
//!
//! [`route`] is a pure, deterministic function of the agents and the request.
//!
//! # Eligibility
//!
//! An agent can take the call when they have every required skill, are reachable
//! (a phone number or SIP URI to transfer to), are
//! [`Availability::Available`], and have capacity left. When nobody qualifies,
//! [`NoAgentAvailable::reason`] names the filter that removed the last
//! candidates. The filters run from the most structural problem to the most
//! transient, so the reason says what to do about it:
//!
//! 1. no agents at all → [`NoAgentReason::NoAgents`] (hire);
//! 2. nobody has the skills → [`NoAgentReason::NoneWithSkills`] (hire or train);
//! 3. nobody skilled is reachable → [`NoAgentReason::NoneReachable`] (fix the
//!    agents' transfer numbers);
//! 4. nobody skilled and reachable is available →
//!    [`NoAgentReason::NoneOnline`] (wait, or staff the shift);
//! 5. everyone left is at capacity → [`NoAgentReason::AllAtCapacity`] (wait).
//!
//! # Choice
//!
//! Among eligible agents, the first by:
//!
//! 1. lowest utilisation, `active_calls / max_concurrent_calls` (compared by
//!    integer cross-multiplication, so exactly);
//! 2. most capacity left;
//! 3. fewest skills in total — keeps generalists free for rarer needs;
//! 4. lowest id.
//!
//! The order of the input slice therefore never matters (ids are unique).

use std::cmp::Ordering;
use std::fmt;

use crate::{Availability, HumanAgent, Skill};

/// What an escalated call needs from the agent who takes it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoutingRequest<'a> {
    /// Skills the agent must all have.
    pub required_skills: &'a [Skill],
}

/// Which filter left no agent to route to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoAgentReason {
    /// The organisation has no human agents.
    NoAgents,
    /// No agent has every required skill.
    NoneWithSkills,
    /// No agent with the skills has a phone number or SIP URI.
    NoneReachable,
    /// No reachable agent with the skills is available now.
    NoneOnline,
    /// Every otherwise eligible agent is at capacity.
    AllAtCapacity,
}

impl NoAgentReason {
    /// The stable name used in the API and metrics labels.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NoAgents => "no_agents",
            Self::NoneWithSkills => "none_with_skills",
            Self::NoneReachable => "none_reachable",
            Self::NoneOnline => "none_online",
            Self::AllAtCapacity => "all_at_capacity",
        }
    }
}

impl fmt::Display for NoAgentReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoAgents => "there are no human agents",
            Self::NoneWithSkills => "no agent has the required skills",
            Self::NoneReachable => "no agent with the skills has a phone number or SIP URI",
            Self::NoneOnline => "no agent with the skills is available",
            Self::AllAtCapacity => "every agent with the skills is at capacity",
        })
    }
}

/// No human agent can take the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no human agent can take the call: {reason}")]
pub struct NoAgentAvailable {
    /// Which filter eliminated the last candidates.
    pub reason: NoAgentReason,
}

/// Whether `agent` can take a call needing `request` (see the module docs).
#[must_use]
pub fn is_eligible(agent: &HumanAgent, request: &RoutingRequest<'_>) -> bool {
    agent.has_skills(request.required_skills)
        && agent.is_reachable()
        && agent.availability == Availability::Available
        && agent.capacity_left() > 0
}

/// Picks the agent for an escalated call (rules in the module documentation).
///
/// # Errors
/// [`NoAgentAvailable`] when no agent is eligible, with the reason.
pub fn route<'a>(
    agents: &'a [HumanAgent],
    request: &RoutingRequest<'_>,
) -> Result<&'a HumanAgent, NoAgentAvailable> {
    let fail = |reason| Err(NoAgentAvailable { reason });
    if agents.is_empty() {
        return fail(NoAgentReason::NoAgents);
    }
    let mut candidates: Vec<&HumanAgent> = agents
        .iter()
        .filter(|a| a.has_skills(request.required_skills))
        .collect();
    let filters: [(AgentFilter, NoAgentReason); 3] = [
        (HumanAgent::is_reachable, NoAgentReason::NoneReachable),
        (
            |a| a.availability == Availability::Available,
            NoAgentReason::NoneOnline,
        ),
        (|a| a.capacity_left() > 0, NoAgentReason::AllAtCapacity),
    ];
    if candidates.is_empty() {
        return fail(NoAgentReason::NoneWithSkills);
    }
    for (keep, reason) in filters {
        candidates.retain(|a| keep(a));
        if candidates.is_empty() {
            return fail(reason);
        }
    }
    candidates
        .into_iter()
        .min_by(|a, b| preference(a, b))
        .ok_or(NoAgentAvailable {
            reason: NoAgentReason::NoAgents,
        })
}

/// A test an agent must pass to stay a candidate.
type AgentFilter = fn(&HumanAgent) -> bool;

/// `Less` when `a` should take the call before `b`.
fn preference(a: &HumanAgent, b: &HumanAgent) -> Ordering {
    // a.active / a.max < b.active / b.max, exactly (u32 × u32 fits in u64).
    let a_load = u64::from(a.active_calls) * u64::from(b.max_concurrent_calls);
    let b_load = u64::from(b.active_calls) * u64::from(a.max_concurrent_calls);
    a_load
        .cmp(&b_load)
        .then_with(|| b.capacity_left().cmp(&a.capacity_left()))
        .then_with(|| a.skills.len().cmp(&b.skills.len()))
        .then_with(|| a.id.cmp(&b.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AgentId, OrgId, PhoneNumber};
    use proptest::prelude::*;
    use uuid::Uuid;

    fn skill(name: &str) -> Skill {
        Skill::parse(name).expect("valid skill")
    }

    fn agent(n: u128, skills: &[&str], active: u32, max: u32) -> HumanAgent {
        HumanAgent {
            id: AgentId::from_uuid(Uuid::from_u128(n)),
            org_id: OrgId::from_uuid(Uuid::from_u128(1)),
            name: format!("agent {n}"),
            email: None,
            phone: Some(PhoneNumber::parse("+14155550100").expect("valid")),
            sip_uri: None,
            skills: skills.iter().map(|s| skill(s)).collect(),
            availability: Availability::Available,
            max_concurrent_calls: max,
            active_calls: active,
        }
    }

    fn id(n: u128) -> AgentId {
        AgentId::from_uuid(Uuid::from_u128(n))
    }

    fn pick(agents: &[HumanAgent], required: &[Skill]) -> Result<AgentId, NoAgentReason> {
        route(
            agents,
            &RoutingRequest {
                required_skills: required,
            },
        )
        .map(|a| a.id)
        .map_err(|e| e.reason)
    }

    #[test]
    fn picks_the_least_utilised() {
        // 1/3 busy beats 1/2 busy even though both have spare capacity.
        let agents = [
            agent(1, &[], 1, 2),
            agent(2, &[], 1, 3),
            agent(3, &[], 2, 3),
        ];
        assert_eq!(pick(&agents, &[]), Ok(id(2)));
        // 2/4 and 1/2 are equally utilised: exact comparison, no float noise.
        let agents = [
            agent(1, &[], 1, 2),
            agent(2, &[], 2, 4),
            agent(3, &[], 1, 1),
        ];
        assert_eq!(pick(&agents, &[]), Ok(id(2)), "then more capacity left");
    }

    #[test]
    fn then_most_capacity_left() {
        let agents = [
            agent(1, &[], 0, 1),
            agent(2, &[], 0, 3),
            agent(3, &[], 0, 2),
        ];
        assert_eq!(pick(&agents, &[]), Ok(id(2)));
    }

    #[test]
    fn then_fewest_skills_keeps_generalists_free() {
        let agents = [
            agent(1, &["billing", "spanish", "tech"], 0, 2),
            agent(2, &["billing"], 0, 2),
            agent(3, &["billing", "tech"], 0, 2),
        ];
        assert_eq!(pick(&agents, &[skill("billing")]), Ok(id(2)));
        assert_eq!(pick(&agents, &[skill("tech")]), Ok(id(3)));
        assert_eq!(pick(&agents, &[skill("spanish")]), Ok(id(1)));
    }

    #[test]
    fn then_lowest_id() {
        let agents = [
            agent(9, &["a"], 1, 2),
            agent(4, &["b"], 1, 2),
            agent(7, &["c"], 1, 2),
        ];
        assert_eq!(pick(&agents, &[]), Ok(id(4)));
    }

    #[test]
    fn requires_every_skill() {
        let agents = [
            agent(1, &["billing"], 0, 5),
            agent(2, &["billing", "spanish"], 3, 5),
        ];
        assert_eq!(
            pick(&agents, &[skill("billing"), skill("spanish")]),
            Ok(id(2))
        );
        assert_eq!(pick(&agents, &[skill("billing")]), Ok(id(1)));
    }

    #[test]
    fn reason_no_agents() {
        assert_eq!(pick(&[], &[]), Err(NoAgentReason::NoAgents));
    }

    #[test]
    fn reason_none_with_skills() {
        let agents = [agent(1, &["billing"], 0, 1)];
        assert_eq!(
            pick(&agents, &[skill("spanish")]),
            Err(NoAgentReason::NoneWithSkills)
        );
    }

    #[test]
    fn reason_none_reachable() {
        let mut unreachable = agent(1, &["billing"], 0, 1);
        unreachable.phone = None;
        let mut sip = agent(2, &["billing"], 0, 1);
        sip.phone = None;
        sip.sip_uri = Some("sip:bo@pbx.example.com".into());
        let unskilled = agent(3, &[], 0, 1);
        assert_eq!(
            pick(&[unreachable.clone(), unskilled], &[skill("billing")]),
            Err(NoAgentReason::NoneReachable)
        );
        assert_eq!(
            pick(&[unreachable, sip], &[skill("billing")]),
            Ok(id(2)),
            "a SIP URI is enough"
        );
    }

    #[test]
    fn reason_none_online() {
        let mut away = agent(1, &[], 0, 1);
        away.availability = Availability::Away;
        let mut offline = agent(2, &[], 0, 1);
        offline.availability = Availability::Offline;
        assert_eq!(pick(&[away, offline], &[]), Err(NoAgentReason::NoneOnline));
    }

    #[test]
    fn reason_all_at_capacity() {
        let mut away_with_room = agent(3, &[], 0, 5);
        away_with_room.availability = Availability::Away;
        let agents = [agent(1, &[], 2, 2), agent(2, &[], 3, 2), away_with_room];
        assert_eq!(pick(&agents, &[]), Err(NoAgentReason::AllAtCapacity));
        assert_eq!(
            pick(&[agent(1, &[], 0, 0)], &[]),
            Err(NoAgentReason::AllAtCapacity),
            "max 0 means no capacity"
        );
    }

    #[test]
    fn error_display_and_names() {
        let e = NoAgentAvailable {
            reason: NoAgentReason::AllAtCapacity,
        };
        assert_eq!(
            e.to_string(),
            "no human agent can take the call: every agent with the skills is at capacity"
        );
        assert_eq!(NoAgentReason::NoneWithSkills.as_str(), "none_with_skills");
        assert_eq!(NoAgentReason::NoneOnline.as_str(), "none_online");
    }

    fn arb_agents() -> impl Strategy<Value = Vec<HumanAgent>> {
        let pool = ["billing", "spanish", "tech"];
        prop::collection::vec(
            (
                prop::sample::subsequence(pool.to_vec(), 0..=3),
                prop::sample::select(vec![
                    Availability::Available,
                    Availability::Away,
                    Availability::Offline,
                ]),
                0u32..6,
                0u32..5,
                any::<bool>(),
            ),
            0..8,
        )
        .prop_map(|specs| {
            specs
                .into_iter()
                .enumerate()
                .map(|(i, (skills, availability, active, max, reachable))| {
                    let mut a = agent(u128::try_from(i).unwrap_or(0) + 1, &skills, active, max);
                    a.availability = availability;
                    if !reachable {
                        a.phone = None;
                    }
                    a
                })
                .collect()
        })
    }

    fn arb_required() -> impl Strategy<Value = Vec<Skill>> {
        prop::sample::subsequence(vec!["billing", "spanish", "tech"], 0..=2)
            .prop_map(|names| names.into_iter().map(skill).collect())
    }

    proptest! {
        #[test]
        fn chosen_agent_is_eligible_and_found_when_one_exists(agents in arb_agents(), required in arb_required()) {
            let request = RoutingRequest { required_skills: &required };
            let any_eligible = agents.iter().any(|a| is_eligible(a, &request));
            match route(&agents, &request) {
                Ok(chosen) => {
                    prop_assert!(is_eligible(chosen, &request));
                    for other in agents.iter().filter(|a| is_eligible(a, &request)) {
                        prop_assert_ne!(preference(other, chosen), Ordering::Less);
                    }
                }
                Err(_) => prop_assert!(!any_eligible),
            }
        }

        #[test]
        fn result_does_not_depend_on_input_order(
            (agents, shuffled) in arb_agents().prop_flat_map(|a| (Just(a.clone()), Just(a).prop_shuffle())),
            required in arb_required(),
        ) {
            let request = RoutingRequest { required_skills: &required };
            let first = route(&agents, &request).map(|a| a.id);
            let second = route(&shuffled, &request).map(|a| a.id);
            prop_assert_eq!(first, second);
        }
    }
}
