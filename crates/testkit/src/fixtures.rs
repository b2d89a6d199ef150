//! Valid domain values for tests. Timestamps are whole microseconds, the
//! precision every backend keeps, so values round-trip exactly.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use iace_domain::call::{Call, CallDirection, NewCall};
use iace_domain::{
    AgentId, Availability, Customer, CustomerId, CustomerTier, Embedding, HumanAgent, Language,
    OrgId, Organization, Persona, PersonaId, PhoneNumber, Plan, Skill, Style, Voice,
};

/// Now, truncated to microseconds.
pub fn now() -> DateTime<Utc> {
    micros(Utc::now())
}

/// `at`, truncated to microseconds.
pub fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// A phone number; `n` makes it unique (`+1415555` followed by `n`, 4 digits).
pub fn phone(n: u32) -> PhoneNumber {
    PhoneNumber::parse(&format!("+1415555{:04}", n % 10_000)).unwrap_or_else(|e| panic!("{e}"))
}

/// A new organisation on the free plan.
pub fn org() -> Organization {
    Organization {
        id: OrgId::new(),
        name: "Acme Support".into(),
        plan: Plan::Free,
        billing_customer_ref: None,
        created_at: now(),
    }
}

/// A customer of `org` with phone number `n`.
pub fn customer(org: OrgId, n: u32) -> Customer {
    let mut attributes = BTreeMap::new();
    attributes.insert("account".to_owned(), serde_json::json!("A-1001"));
    Customer {
        id: CustomerId::new(),
        org_id: org,
        phone: phone(n),
        name: Some("Jane Roe".into()),
        email: Some("jane@example.com".parse().unwrap_or_else(|e| panic!("{e}"))),
        tier: CustomerTier::Premium,
        language: Some(Language::default()),
        attributes,
        created_at: now(),
        updated_at: now(),
    }
}

/// A persona of `org`.
pub fn persona(org: OrgId) -> Persona {
    Persona {
        id: PersonaId::new(),
        org_id: org,
        name: "Sam".into(),
        voice: Voice {
            name: "aura-2-thalia-en".into(),
            speed: 1.0,
        },
        system_prompt: "You help customers with billing.".into(),
        greeting: "Hi, this is Sam.".into(),
        style: Style::Friendly,
        language: Language::default(),
        created_at: now(),
        updated_at: now(),
    }
}

/// An available human agent of `org` with `skills`, reachable by phone.
pub fn agent(org: OrgId, skills: &[&str], max: u32) -> HumanAgent {
    HumanAgent {
        id: AgentId::new(),
        org_id: org,
        name: "Ana".into(),
        email: None,
        phone: Some(phone(9_000)),
        sip_uri: None,
        skills: skills
            .iter()
            .map(|s| Skill::parse(s).unwrap_or_else(|e| panic!("{e}")))
            .collect::<BTreeSet<_>>(),
        availability: Availability::Available,
        max_concurrent_calls: max,
        active_calls: 0,
    }
}

/// A new outbound call of `org` (Pending, version 0).
pub fn call(org: OrgId) -> Call {
    Call::new(
        NewCall {
            org_id: org,
            direction: CallDirection::Outbound,
            from: phone(1),
            to: phone(2),
            customer_id: None,
            persona_id: None,
            assignment: None,
            provider_call_id: None,
            provider_session_id: None,
        },
        now(),
    )
}

/// A deterministic pseudo-random embedding of `dimension` (seeded), unit length.
pub fn embedding(dimension: usize, seed: u64) -> Embedding {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut values: Vec<f32> = (0..dimension)
        .map(|_| {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let x = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    normalise(&mut values);
    Embedding::new(values).unwrap_or_else(|e| panic!("{e}"))
}

/// `base` moved towards the seeded random direction by `amount` (0 = same,
/// larger = less similar), unit length.
pub fn near(base: &Embedding, seed: u64, amount: f32) -> Embedding {
    let noise = embedding(base.dimension(), seed);
    let mut values: Vec<f32> = base
        .as_slice()
        .iter()
        .zip(noise.as_slice())
        .map(|(b, n)| b + amount * n)
        .collect();
    normalise(&mut values);
    Embedding::new(values).unwrap_or_else(|e| panic!("{e}"))
}

fn normalise(values: &mut [f32]) {
    let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        values.iter_mut().for_each(|v| *v /= norm);
    }
}

/// A user of `org` with role `role`; `n` makes the e-mail unique
/// (`user{n}@example.com`).
pub fn user(org: iace_domain::OrgId, n: u32, role: iace_domain::Role) -> iace_domain::User {
    iace_domain::User {
        id: iace_domain::UserId::new(),
        org_id: org,
        email: email(&format!("user{n}@example.com")),
        password_hash: iace_domain::SecretHash::new(format!(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ${n}"
        )),
        role,
        created_at: now(),
        last_login_at: None,
    }
}

/// An e-mail address (lower-cased by parsing).
pub fn email(raw: &str) -> iace_domain::Email {
    iace_domain::Email::parse(raw).unwrap_or_else(|e| panic!("{e}"))
}

/// A live refresh token of `user` in rotation family `family` (`None` starts a
/// new family: the token's own id); `hash` is its stored hash. Expires in 30 days.
pub fn refresh_token(
    user: iace_domain::UserId,
    family: Option<iace_domain::RefreshTokenId>,
    hash: &str,
) -> iace_domain::RefreshToken {
    let id = iace_domain::RefreshTokenId::new();
    let issued_at = now();
    iace_domain::RefreshToken {
        id,
        user_id: user,
        family_id: family.unwrap_or(id),
        token_hash: iace_domain::SecretHash::new(hash),
        issued_at,
        expires_at: issued_at + chrono::Duration::days(30),
        revoked_at: None,
    }
}

/// A live, non-expiring operator API key of `org`; `hash` is its stored hash.
pub fn api_key(org: iace_domain::OrgId, hash: &str) -> iace_domain::ApiKey {
    iace_domain::ApiKey {
        id: iace_domain::ApiKeyId::new(),
        org_id: org,
        name: "billing integration".into(),
        prefix: "iace_live_3fa8".into(),
        key_hash: iace_domain::SecretHash::new(hash),
        role: iace_domain::Role::Member,
        created_at: now(),
        last_used_at: None,
        revoked_at: None,
        expires_at: None,
    }
}

/// A draft experiment of `org` measuring conversions, with one variant per
/// persona in `personas` (the first is the control, weights 1, 2, 3, ...).
/// Variant ids are generated newest-first, so the stored order must come from
/// the variants' positions, not from their ids.
pub fn experiment(org: OrgId, personas: &[iace_domain::PersonaId]) -> iace_domain::Experiment {
    let mut ids: Vec<iace_domain::VariantId> = personas
        .iter()
        .map(|_| iace_domain::VariantId::new())
        .collect();
    ids.reverse();
    let variants = personas
        .iter()
        .zip(ids)
        .zip(1u32..)
        .map(|((persona_id, id), n)| iace_domain::Variant {
            id,
            name: if n == 1 {
                "control".to_owned()
            } else {
                format!("treatment-{n}")
            },
            persona_id: *persona_id,
            weight: n,
            is_control: n == 1,
        })
        .collect();
    iace_domain::Experiment {
        id: iace_domain::ExperimentId::new(),
        org_id: org,
        name: "Friendly greeting".into(),
        salt: format!("salt-{}", uuid::Uuid::new_v4()),
        status: iace_domain::ExperimentStatus::Draft,
        metric: iace_domain::ExperimentMetric::Conversion,
        variants,
        created_at: now(),
        started_at: None,
        ended_at: None,
    }
}

/// A Telnyx `call.answered` event with provider event id `evt-{n}`, received
/// `at`.
pub fn inbox_event(n: u32, at: DateTime<Utc>) -> iace_domain::ports::NewInboxEvent {
    iace_domain::ports::NewInboxEvent {
        provider: "telnyx".into(),
        provider_event_id: format!("evt-{n}"),
        event_type: "call.answered".into(),
        payload: serde_json::json!({ "data": { "id": format!("evt-{n}"), "seq": n } }),
        occurred_at: Some(micros(at - chrono::Duration::seconds(1))),
        received_at: micros(at),
    }
}

/// A learned pattern of `org` (objection handling, never used) with the seeded
/// [`embedding`] of `dimension`.
pub fn pattern(org: OrgId, dimension: usize, seed: u64) -> iace_domain::LearnedPattern {
    iace_domain::LearnedPattern {
        id: iace_domain::PatternId::new(),
        org_id: org,
        kind: iace_domain::PatternKind::ObjectionHandling,
        trigger: format!("caller disputes a late fee ({seed})"),
        response: "Offer to waive the fee once, then explain autopay.".into(),
        embedding: Some(embedding(dimension, seed)),
        uses: 0,
        successes: 0,
        created_at: now(),
        last_used_at: None,
    }
}

/// A memory of `customer` in `org`, importance 0.5, created now, with the
/// seeded [`embedding`] of `dimension`.
pub fn memory(
    org: OrgId,
    customer: CustomerId,
    dimension: usize,
    seed: u64,
) -> iace_domain::CustomerMemory {
    iace_domain::CustomerMemory {
        id: iace_domain::MemoryId::new(),
        org_id: org,
        customer_id: customer,
        call_id: None,
        summary: format!("Asked to move the appointment to Friday ({seed})"),
        facts: vec!["prefers mornings".into(), "account 4411".into()],
        importance: iace_domain::Importance::DEFAULT,
        embedding: Some(embedding(dimension, seed)),
        created_at: now(),
    }
}
