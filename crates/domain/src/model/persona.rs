use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Language, OrgId, PersonaId};

/// The voice a persona speaks with: a provider voice/model name and speaking rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Voice {
    /// Provider voice or model id, e.g. `aura-2-thalia-en`.
    pub name: String,
    /// Speaking-rate multiplier, 0.5..=2.0 (1.0 is normal).
    pub speed: f32,
}

/// How the persona talks; folded into the system prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// Polite and precise.
    #[default]
    Professional,
    /// Warm, informal.
    Friendly,
    /// Short answers, no small talk.
    Concise,
    /// Patient, acknowledges feelings first.
    Empathetic,
}

impl Style {
    /// One sentence appended to the system prompt.
    #[must_use]
    pub const fn instruction(self) -> &'static str {
        match self {
            Self::Professional => "Speak politely and precisely, like an experienced professional.",
            Self::Friendly => "Speak warmly and informally, like a helpful friend.",
            Self::Concise => "Keep every answer short; no small talk.",
            Self::Empathetic => {
                "Acknowledge the caller's feelings before solving the problem; be patient."
            }
        }
    }
}

/// Why persona settings are invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PersonaError {
    /// Name empty or longer than 100 characters.
    #[error("persona name must be 1-100 characters")]
    InvalidName,
    /// System prompt empty or longer than 20 000 characters.
    #[error("system prompt must be 1-20000 characters")]
    InvalidSystemPrompt,
    /// Greeting empty or longer than 1 000 characters.
    #[error("greeting must be 1-1000 characters")]
    InvalidGreeting,
    /// Voice name empty.
    #[error("voice name is empty")]
    InvalidVoice,
    /// Speed outside 0.5..=2.0.
    #[error("voice speed {0} is outside 0.5..=2.0")]
    InvalidSpeed(f32),
}

/// Who the AI agent is on a call: its voice, instructions, greeting, style and
/// language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Persona {
    /// Identity.
    pub id: PersonaId,
    /// Owning organisation.
    pub org_id: OrgId,
    /// Display name ("Sam from Support").
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
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Persona {
    /// Checks every field's bounds.
    ///
    /// # Errors
    /// The first [`PersonaError`] found.
    pub fn validate(&self) -> Result<(), PersonaError> {
        let len = |s: &str| s.trim().chars().count();
        if !(1..=100).contains(&len(&self.name)) {
            return Err(PersonaError::InvalidName);
        }
        if !(1..=20_000).contains(&len(&self.system_prompt)) {
            return Err(PersonaError::InvalidSystemPrompt);
        }
        if !(1..=1_000).contains(&len(&self.greeting)) {
            return Err(PersonaError::InvalidGreeting);
        }
        if self.voice.name.trim().is_empty() {
            return Err(PersonaError::InvalidVoice);
        }
        if !(0.5..=2.0).contains(&self.voice.speed) {
            return Err(PersonaError::InvalidSpeed(self.voice.speed));
        }
        Ok(())
    }

    /// The system prompt with the style instruction and language appended.
    #[must_use]
    pub fn full_system_prompt(&self) -> String {
        format!(
            "{}\n\n{} Answer in the language `{}`. You are on a phone call: answer in short spoken sentences, without lists or markup.",
            self.system_prompt.trim(),
            self.style.instruction(),
            self.language
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn persona() -> Persona {
        Persona {
            id: PersonaId::new(),
            org_id: OrgId::new(),
            name: "Sam".into(),
            voice: Voice {
                name: "aura-2-thalia-en".into(),
                speed: 1.0,
            },
            system_prompt: "You help customers with billing.".into(),
            greeting: "Hi, this is Sam.".into(),
            style: Style::Empathetic,
            language: Language::default(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn a_complete_persona_validates() {
        assert_eq!(persona().validate(), Ok(()));
    }

    #[test]
    fn each_bound_is_checked() {
        let mut p = persona();
        p.name = "  ".into();
        assert_eq!(p.validate(), Err(PersonaError::InvalidName));
        let mut p = persona();
        p.system_prompt = String::new();
        assert_eq!(p.validate(), Err(PersonaError::InvalidSystemPrompt));
        let mut p = persona();
        p.greeting = "x".repeat(1001);
        assert_eq!(p.validate(), Err(PersonaError::InvalidGreeting));
        let mut p = persona();
        p.voice.name = String::new();
        assert_eq!(p.validate(), Err(PersonaError::InvalidVoice));
        let mut p = persona();
        p.voice.speed = 3.0;
        assert_eq!(p.validate(), Err(PersonaError::InvalidSpeed(3.0)));
    }

    #[test]
    fn full_prompt_carries_style_and_language() {
        let prompt = persona().full_system_prompt();
        assert!(prompt.starts_with("You help customers with billing."));
        assert!(prompt.contains(Style::Empathetic.instruction()));
        assert!(prompt.contains("en-US"));
    }
}
