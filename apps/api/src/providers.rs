//! The provider adapters, chosen in this one place from configuration: a
//! remote provider when its section is configured, the embedded local
//! provider otherwise (so a laptop runs with no keys at all).

use std::sync::Arc;

use anyhow::Context as _;
use iace_deepgram::DeepgramClient;
use iace_domain::ports::{
    Embedder, LanguageModel, SentimentAnalyzer, SpeechToText, TelephonyGateway, TextToSpeech,
};
use iace_genai::GeminiEmbedder;
use iace_groq::GroqClient;
use iace_http::CircuitBreaker;
use iace_local::embedder::HashingEmbedder;
use iace_local::replies::ScriptedReplies;
use iace_local::sentiment::LexiconSentiment;
use iace_local::speech::{EchoTextToSpeech, TextSpeechToText};
use iace_local::telephony::SimulatedTelephony;
use iace_telnyx::{TelnyxGateway, WebhookVerifier};

use crate::config::Config;

/// The providers this instance uses.
#[derive(Clone)]
pub struct Providers {
    /// Call control: Telnyx, or the simulated provider.
    pub telephony: Arc<dyn TelephonyGateway>,
    /// Embeddings for learned patterns and memories: Gemini, or the hashing
    /// embedder.
    pub embedder: Arc<dyn Embedder>,
    /// Replies: Groq (or any OpenAI-compatible server), or scripted replies
    /// (a demo provider, not an AI).
    pub language_model: Arc<dyn LanguageModel>,
    /// Sentiment per caller turn: Groq, or the lexicon.
    pub sentiment: Arc<dyn SentimentAnalyzer>,
    /// Live transcription: Deepgram, or text-as-audio for the simulator.
    pub speech_to_text: Arc<dyn SpeechToText>,
    /// Speech: Deepgram, or text-as-audio for the simulator.
    pub text_to_speech: Arc<dyn TextToSpeech>,
    /// Verifies Telnyx webhooks (present exactly when Telnyx is configured).
    pub telnyx_webhooks: Option<WebhookVerifier>,
    /// Verifies Stripe webhooks (present exactly when Stripe is configured).
    pub stripe_webhooks: Option<iace_stripe::WebhookVerifier>,
    /// The circuit breakers of the remote providers in use, for readiness
    /// reports and metrics.
    pub breakers: Vec<Arc<CircuitBreaker>>,
    /// Receives the voice runtime's per-reply stage timings (none by
    /// default; the voice benchmark sets one).
    pub voice_observer: Option<Arc<dyn iace_app::voice::VoiceObserver>>,
    /// Which adapter serves each port (`telephony=telnyx`, …), for the
    /// start-up log and readiness.
    pub chosen: Vec<(&'static str, &'static str)>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("chosen", &self.chosen)
            .finish_non_exhaustive()
    }
}

/// Builds the providers `config` asks for.
///
/// # Errors
/// When a configured provider's settings are unusable (a missing key, an
/// invalid webhook public key).
pub fn build(config: &Config) -> anyhow::Result<Providers> {
    use secrecy::ExposeSecret as _;

    let mut breakers = Vec::new();
    let mut chosen = Vec::new();

    let (telephony, telnyx_webhooks): (Arc<dyn TelephonyGateway>, _) = match &config.telnyx {
        Some(telnyx) => {
            anyhow::ensure!(
                !telnyx.api_key.expose_secret().trim().is_empty(),
                "telnyx.api_key is required when [telnyx] is configured"
            );
            anyhow::ensure!(
                !telnyx.connection_id.trim().is_empty(),
                "telnyx.connection_id (the Call Control application id) is required"
            );
            let public_key = telnyx.public_key.as_deref().context(
                "telnyx.public_key (the account's Ed25519 webhook key) is required: unsigned webhooks are refused",
            )?;
            let verifier = WebhookVerifier::new(public_key, telnyx.webhook_tolerance_secs)
                .context("telnyx.public_key")?;
            let gateway = TelnyxGateway::new(telnyx).context("building the Telnyx client")?;
            breakers.push(gateway.breaker().clone());
            chosen.push(("telephony", "telnyx"));
            (Arc::new(gateway), Some(verifier))
        }
        None => {
            // Dials nothing; refuses +1555000… numbers so failures can be tried.
            chosen.push(("telephony", "simulated"));
            (Arc::new(SimulatedTelephony::new()), None)
        }
    };

    // Same dimension as the stored vectors, or searches fail.
    let dimension = config.database.embedding_dimension as usize;
    let embedder: Arc<dyn Embedder> = match &config.genai {
        Some(genai) => {
            anyhow::ensure!(
                genai.dimension == dimension,
                "genai.dimension ({}) must equal database.embedding_dimension ({dimension}): stored vectors and new ones must be comparable",
                genai.dimension
            );
            let gemini = GeminiEmbedder::new(genai).context("building the Gemini embedder")?;
            breakers.push(gemini.breaker().clone());
            chosen.push(("embedder", "gemini"));
            Arc::new(gemini)
        }
        None => {
            chosen.push(("embedder", "hashing"));
            Arc::new(HashingEmbedder::new(dimension))
        }
    };

    let (language_model, sentiment): (Arc<dyn LanguageModel>, Arc<dyn SentimentAnalyzer>) =
        match &config.groq {
            Some(groq) => {
                let client = GroqClient::new(groq.clone()).context("building the Groq client")?;
                breakers.push(client.breaker().clone());
                chosen.push(("language_model", "groq"));
                chosen.push(("sentiment", "groq"));
                let client = Arc::new(client);
                (client.clone(), client)
            }
            None => {
                chosen.push(("language_model", "scripted"));
                chosen.push(("sentiment", "lexicon"));
                (
                    Arc::new(ScriptedReplies::new()),
                    Arc::new(LexiconSentiment::new()),
                )
            }
        };

    let (speech_to_text, text_to_speech): (Arc<dyn SpeechToText>, Arc<dyn TextToSpeech>) =
        match &config.deepgram {
            Some(deepgram) => {
                anyhow::ensure!(
                    !deepgram.api_key.expose_secret().trim().is_empty(),
                    "deepgram.api_key is required when [deepgram] is configured"
                );
                let client =
                    DeepgramClient::new(deepgram).context("building the Deepgram client")?;
                breakers.push(client.breaker().clone());
                chosen.push(("speech_to_text", "deepgram"));
                chosen.push(("text_to_speech", "deepgram"));
                let client = Arc::new(client);
                (client.clone(), client)
            }
            None => {
                chosen.push(("speech_to_text", "text"));
                chosen.push(("text_to_speech", "text"));
                (
                    Arc::new(TextSpeechToText::new()),
                    Arc::new(EchoTextToSpeech::new()),
                )
            }
        };

    let stripe_webhooks = match &config.stripe {
        Some(stripe) => {
            anyhow::ensure!(
                stripe.webhook_secret.expose_secret().starts_with("whsec_"),
                "stripe.webhook_secret must be the endpoint's signing secret (whsec_…)"
            );
            chosen.push(("billing", "stripe"));
            Some(iace_stripe::WebhookVerifier::new(
                stripe.webhook_secret.clone(),
                stripe.tolerance_secs,
            ))
        }
        None => None,
    };

    Ok(Providers {
        telephony,
        stripe_webhooks,
        embedder,
        language_model,
        sentiment,
        speech_to_text,
        text_to_speech,
        telnyx_webhooks,
        breakers,
        voice_observer: None,
        chosen,
    })
}
