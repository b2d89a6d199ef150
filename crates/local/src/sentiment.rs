//! A lexicon sentiment analyzer: no model, no network, no dependency.
//!
//! [`LexiconSentiment`] scores an utterance the way VADER does (Hutto &
//! Gilbert, *VADER: A Parsimonious Rule-based Model for Sentiment Analysis of
//! Social Media Text*, ICWSM 2014), on a small word list embedded here:
//!
//! - about 380 common English words of customer conversations, each with a
//!   valence from −4 to +4 (most taken from VADER's MIT-licensed lexicon,
//!   © 2016 C.J. Hutto; a few phone-specific ones such as "overcharged" or
//!   "unhelpful" added in its scale). Words that are sentiment-laden in
//!   writing but mostly functional on a call ("like", "yes", "please",
//!   "help", "cancel") are left out on purpose;
//! - **negation**: a negator ("not", "no", "never", any "…n't") up to three
//!   words before a sentiment word multiplies it by −0.74 ("not good" reads
//!   mildly negative, "no problem" mildly positive);
//! - **intensifiers and dampeners** up to three words before ("very", "so",
//!   "really" add 0.293 in the word's direction; "slightly", "kind of",
//!   "a bit" take it away), fading with distance;
//! - **emphasis**: a word in capitals among lower-case words gains 0.733;
//!   each `!` (up to four) adds 0.292 and several `?` up to 0.96, in the
//!   direction of the text;
//! - **"but"**: what comes before it counts half, what comes after one and a
//!   half times ("nice, but the wait was terrible" is negative);
//! - the sum `x` is normalised to −1..1 with `x / sqrt(x² + 15)`.
//!
//! The reasons of a reading are the phrases that drove the score (up to
//! three, strongest first, only those pulling in the score's direction):
//! `"so angry"`, `"not helpful"`, `"love"`.
//!
//! It knows English only, and nothing of sarcasm or context: it is the
//! embedded default so that sentiment works on a laptop and in tests; a
//! model-backed analyzer replaces it when configured. The language argument
//! is ignored.

use async_trait::async_trait;
use iace_domain::Language;
use iace_domain::Sentiment;
use iace_domain::ports::{ProviderError, SentimentAnalyzer, SentimentReading};

/// How much an intensifier adds ("very good").
const BOOST: f64 = 0.293;
/// How much a dampener takes away ("slightly annoyed").
const DAMPEN: f64 = -0.293;
/// How much a word in capitals among lower-case words adds.
const CAPS_BOOST: f64 = 0.733;
/// A negated word's valence is multiplied by this.
const NEGATION: f64 = -0.74;
/// Added per exclamation mark, up to [`MAX_EXCLAMATIONS`].
const EXCLAMATION_BOOST: f64 = 0.292;
/// Exclamation marks beyond this add nothing.
const MAX_EXCLAMATIONS: usize = 4;
/// Added per question mark when there are two or three.
const QUESTION_BOOST: f64 = 0.18;
/// The boost of four or more question marks.
const MAX_QUESTION_BOOST: f64 = 0.96;
/// `x / sqrt(x² + ALPHA)` maps a sum of valences into −1..1.
const ALPHA: f64 = 15.0;
/// How many words back a negator or an intensifier reaches.
const REACH: usize = 3;
/// How an intensifier fades with its distance (1, 2, 3 words back).
const FADE: [f64; REACH] = [1.0, 0.95, 0.9];
/// Reasons given at most.
const MAX_REASONS: usize = 3;

/// Words that turn the next few words' sentiment around ("n't" endings too).
const NEGATORS: &[&str] = &[
    "aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt", "dont", "hadnt",
    "hasnt", "havent", "isnt", "mightnt", "mustnt", "neednt", "neither", "never", "no", "nobody",
    "none", "nope", "nor", "not", "nothing", "nowhere", "oughtnt", "rarely", "seldom", "shant",
    "shouldnt", "wasnt", "werent", "without", "wont", "wouldnt",
];

/// Intensifiers (+) and dampeners (−), single words.
const BOOSTERS: &[(&str, f64)] = &[
    ("absolutely", BOOST),
    ("almost", DAMPEN),
    ("barely", DAMPEN),
    ("bit", DAMPEN),
    ("completely", BOOST),
    ("deeply", BOOST),
    ("entirely", BOOST),
    ("especially", BOOST),
    ("extremely", BOOST),
    ("fairly", DAMPEN),
    ("fucking", BOOST),
    ("fully", BOOST),
    ("hardly", DAMPEN),
    ("highly", BOOST),
    ("hugely", BOOST),
    ("incredibly", BOOST),
    ("kinda", DAMPEN),
    ("little", DAMPEN),
    ("most", BOOST),
    ("particularly", BOOST),
    ("partly", DAMPEN),
    ("quite", BOOST),
    ("really", BOOST),
    ("remarkably", BOOST),
    ("scarcely", DAMPEN),
    ("slightly", DAMPEN),
    ("so", BOOST),
    ("somewhat", DAMPEN),
    ("sorta", DAMPEN),
    ("super", BOOST),
    ("terribly", BOOST),
    ("thoroughly", BOOST),
    ("too", BOOST),
    ("totally", BOOST),
    ("truly", BOOST),
    ("unbelievably", BOOST),
    ("utterly", BOOST),
    ("very", BOOST),
];

/// Sentiment words and their valence (−4..=4), sorted for binary search.
#[rustfmt::skip]
const LEXICON: &[(&str, f64)] = &[
    ("absurd", -1.8), ("abused", -2.3), ("adore", 2.6), ("agree", 1.5), ("agreed", 1.1),
    ("amazing", 2.8), ("anger", -2.7), ("angrier", -2.3), ("angry", -2.3), ("annoy", -1.9),
    ("annoyance", -1.3), ("annoyed", -1.6), ("annoying", -1.7), ("anxious", -1.0),
    ("apologize", 0.4), ("apology", 0.2), ("appalling", -1.5), ("appreciate", 1.7),
    ("appreciated", 2.3), ("appreciation", 2.3), ("appreciative", 2.6), ("argh", -1.8),
    ("ashamed", -2.1), ("atrocious", -2.8), ("attentive", 1.9), ("awesome", 3.1),
    ("awful", -2.0), ("bad", -2.5), ("beautiful", 2.9), ("best", 3.2), ("betrayed", -3.0),
    ("better", 1.9), ("bitter", -1.8), ("blessed", 2.9), ("bonus", 2.5), ("bored", -1.1),
    ("boring", -1.3), ("bother", -1.4), ("bothered", -1.3), ("bothering", -1.6),
    ("brilliant", 2.8), ("broke", -1.8), ("broken", -2.1), ("bug", -1.0), ("bullshit", -2.8),
    ("calm", 1.3), ("careless", -1.5), ("caring", 2.2), ("cheat", -2.0), ("cheated", -2.3),
    ("cheating", -2.6), ("cheerful", 2.5), ("cheers", 2.1), ("comfort", 1.5),
    ("comfortable", 2.3), ("commend", 1.9), ("complain", -1.5), ("complaining", -0.8),
    ("complaint", -1.2), ("complaints", -1.7), ("complicated", -1.0), ("concerned", -1.0),
    ("confident", 2.2), ("confused", -1.3), ("confusing", -0.9), ("confusion", -1.2),
    ("congrats", 2.4), ("congratulations", 2.9), ("considerate", 1.9), ("convenient", 1.5),
    ("cool", 1.3), ("courteous", 2.3), ("crap", -1.6), ("crappy", -2.6), ("crazy", -1.4),
    ("damaged", -1.9), ("damn", -1.7), ("dear", 1.6), ("deceived", -1.9), ("defective", -1.9),
    ("delay", -1.3), ("delayed", -0.9), ("delight", 2.9), ("delighted", 2.3),
    ("depressed", -2.3), ("devastated", -3.0), ("difficult", -1.5), ("disappointed", -2.1),
    ("disappointing", -2.2), ("disappointment", -2.3), ("disaster", -3.1), ("disgrace", -2.2),
    ("disgraceful", -2.4), ("disgusted", -2.4), ("disgusting", -2.4), ("dishonest", -2.7),
    ("dislike", -1.6), ("disliked", -1.7), ("disrespect", -1.8), ("disrespectful", -2.2),
    ("dissatisfied", -1.6), ("dumb", -2.3), ("easier", 1.8), ("easy", 1.9), ("efficient", 1.8),
    ("embarrassed", -1.5), ("embarrassing", -1.6), ("enjoy", 2.2), ("enjoyed", 2.3),
    ("enjoying", 2.4), ("error", -1.7), ("errors", -1.4), ("excellent", 2.7), ("excited", 1.4),
    ("exciting", 2.2), ("exhausted", -1.5), ("fabulous", 2.4), ("fail", -2.5), ("failed", -2.3),
    ("failing", -2.3), ("failure", -2.3), ("fair", 1.3), ("fantastic", 2.6), ("fault", -1.7),
    ("faultless", 2.0), ("faulty", -1.3), ("favorite", 2.0), ("favourite", 2.0), ("fear", -2.2),
    ("fine", 0.8), ("fixed", 1.0), ("flawless", 2.3), ("fortunately", 1.6), ("fraud", -2.8),
    ("friendly", 2.2), ("frustrated", -2.4), ("frustrating", -1.9), ("frustration", -2.1),
    ("fuck", -2.5), ("fun", 2.3), ("furious", -2.7), ("garbage", -2.2), ("generous", 2.3),
    ("glad", 2.0), ("good", 1.9), ("gracious", 2.6), ("grateful", 2.0), ("gratitude", 2.3),
    ("great", 3.1), ("greatest", 3.2), ("haha", 2.0), ("happier", 2.4), ("happily", 2.6),
    ("happy", 2.7), ("harassed", -2.5), ("harassment", -2.5), ("hard", -0.4), ("hassle", -1.6),
    ("hate", -2.7), ("hated", -3.2), ("hates", -1.9), ("hating", -2.3), ("heartbroken", -3.3),
    ("hell", -3.6), ("helped", 1.7), ("helpful", 1.8), ("helpless", -2.0), ("honest", 2.3),
    ("hooray", 2.3), ("hopeful", 2.3), ("hopeless", -2.0), ("horrible", -2.5),
    ("horrified", -2.5), ("hostile", -1.6), ("hurt", -2.4), ("hurts", -2.1), ("idiot", -2.3),
    ("idiotic", -2.6), ("ignore", -1.5), ("ignored", -1.3), ("ignoring", -1.7),
    ("impeccable", 2.5), ("impolite", -1.6), ("impossible", -1.5), ("impressed", 2.1),
    ("impressive", 2.3), ("inaccurate", -1.2), ("incompetent", -2.1), ("inconvenience", -1.5),
    ("inconvenient", -1.4), ("incorrect", -1.2), ("insane", -1.7), ("insult", -2.3),
    ("insulted", -2.3), ("insulting", -2.2), ("irritated", -2.0), ("irritating", -2.0),
    ("issue", -0.8), ("issues", -0.8), ("jerk", -1.4), ("joy", 2.8), ("joyful", 2.9),
    ("kind", 2.4), ("kindly", 2.2), ("knowledgeable", 1.8), ("kudos", 2.3), ("laugh", 2.6),
    ("laughing", 2.2), ("lawsuit", -0.9), ("lawyer", -1.0), ("lazy", -1.5), ("liar", -2.3),
    ("lie", -1.8), ("lied", -1.6), ("lies", -1.8), ("livid", -2.5), ("lol", 1.8),
    ("loser", -2.4), ("lost", -1.3), ("love", 3.2), ("loved", 2.9), ("lovely", 2.8),
    ("loves", 2.7), ("loving", 2.9), ("luckily", 2.3), ("lucky", 1.8), ("lying", -2.4),
    ("mad", -2.2), ("marvelous", 2.9), ("meh", -0.3), ("mess", -1.5), ("miserable", -2.2),
    ("misleading", -1.7), ("misled", -1.9), ("missing", -1.2), ("mistake", -1.4),
    ("mistakes", -1.5), ("moron", -2.2), ("neglected", -2.4), ("nervous", -1.1), ("nice", 1.8),
    ("nightmare", -2.6), ("nonsense", -1.7), ("offended", -1.0), ("offensive", -2.0),
    ("optimistic", 1.3), ("outraged", -2.5), ("outrageous", -2.0), ("outstanding", 3.0),
    ("overcharged", -2.0), ("overpriced", -1.6), ("pain", -2.3), ("painful", -1.9),
    ("panic", -2.3), ("pathetic", -2.7), ("patient", 1.5), ("perfect", 2.7), ("perfectly", 3.2),
    ("pissed", -3.2), ("pleasant", 2.3), ("pleasantly", 2.1), ("pleased", 1.9),
    ("pleasure", 2.7), ("polite", 1.9), ("poor", -2.1), ("poorly", -1.9), ("positive", 2.6),
    ("praise", 2.6), ("praised", 2.2), ("problem", -1.7), ("problems", -1.7),
    ("professional", 1.4), ("recommend", 1.5), ("recommended", 0.8), ("regret", -1.8),
    ("reliable", 1.8), ("relief", 2.1), ("relieved", 1.6), ("resolved", 0.7), ("respect", 2.1),
    ("respectful", 2.0), ("responsive", 1.5), ("reward", 2.7), ("ridiculous", -1.5),
    ("ripoff", -2.6), ("rubbish", -2.0), ("rude", -2.0), ("sad", -2.1), ("sadly", -1.8),
    ("satisfaction", 1.9), ("satisfied", 1.8), ("satisfying", 2.0), ("scam", -2.7),
    ("scammed", -2.8), ("scared", -1.9), ("seamless", 1.8), ("shame", -2.1), ("shameful", -2.2),
    ("shit", -2.6), ("shocked", -1.3), ("shocking", -1.7), ("sick", -2.3), ("slow", -1.0),
    ("smile", 1.5), ("smiling", 2.0), ("smooth", 1.2), ("solved", 1.1), ("sorry", -0.3),
    ("steal", -2.2), ("stole", -2.2), ("stolen", -2.2), ("stress", -1.8), ("stressed", -1.4),
    ("stressful", -2.3), ("struggle", -1.3), ("struggling", -1.8), ("stuck", -1.0),
    ("stupid", -2.4), ("success", 2.7), ("successful", 2.8), ("suck", -1.9), ("sucked", -2.0),
    ("sucks", -1.5), ("sue", -1.5), ("superb", 3.1), ("sweet", 2.0),
    ("terrible", -2.1), ("terrific", 2.1), ("terrified", -3.0), ("thank", 1.5),
    ("thanked", 1.9), ("thankful", 2.7), ("thanks", 1.9), ("threat", -2.4), ("threaten", -1.6),
    ("threatened", -2.0), ("thrilled", 1.9), ("thx", 1.5), ("tired", -1.9), ("trash", -1.8),
    ("trouble", -1.7), ("troubled", -2.0), ("trust", 2.3), ("trusted", 2.1), ("ugh", -1.8),
    ("unacceptable", -2.0), ("unfair", -2.1), ("unfortunate", -2.0), ("unfortunately", -1.4),
    ("unhappy", -1.8), ("unhelpful", -1.9), ("unjust", -2.3), ("unlucky", -1.6),
    ("unprofessional", -2.3), ("unreasonable", -1.5), ("unreliable", -1.9),
    ("unsatisfied", -1.7), ("upset", -1.6), ("upsetting", -2.1), ("useful", 1.9),
    ("useless", -1.8), ("valuable", 2.1), ("waste", -1.8), ("wasted", -2.2), ("wasting", -1.7),
    ("welcome", 2.0), ("wonderful", 2.7), ("worried", -1.2), ("worry", -1.9),
    ("worrying", -1.4), ("worse", -2.1), ("worst", -3.1), ("worth", 0.9), ("worthless", -1.9),
    ("wow", 2.8), ("wrong", -2.1), ("wtf", -2.8), ("yay", 2.4), ("yelled", -1.8),
    ("yelling", -1.8),
];

/// The valence of a lower-case word, if it carries sentiment.
fn valence(word: &str) -> Option<f64> {
    LEXICON
        .binary_search_by(|(w, _)| (*w).cmp(word))
        .ok()
        .map(|i| LEXICON[i].1)
}

/// The intensifier or dampener value of a lower-case word.
fn booster(word: &str) -> Option<f64> {
    BOOSTERS.iter().find(|(w, _)| *w == word).map(|(_, v)| *v)
}

/// Whether a lower-case word negates what follows.
fn is_negator(word: &str) -> bool {
    word.ends_with("n't") || NEGATORS.contains(&word.replace('\'', "").as_str())
}

/// A word of the text: as written (punctuation around it removed) and in
/// lower case.
#[derive(Debug)]
struct Token {
    written: String,
    lower: String,
}

impl Token {
    /// Two or more letters, all of them capitals ("GREAT").
    fn is_shouting(&self) -> bool {
        self.written.chars().filter(|c| c.is_alphabetic()).count() >= 2
            && !self.written.chars().any(char::is_lowercase)
    }
}

fn tokenize(text: &str) -> Vec<Token> {
    text.split_whitespace()
        .map(|raw| {
            let written = raw
                .replace(['\u{2019}', '\u{2018}'], "'")
                .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
                .trim_matches('\'')
                .to_owned();
            let lower = written.to_lowercase();
            Token { written, lower }
        })
        .filter(|t| !t.lower.is_empty())
        .collect()
}

/// One sentiment word's contribution to the score.
#[derive(Debug)]
struct Contribution {
    /// The word with the negator or intensifier that changed it.
    phrase: String,
    /// Its adjusted valence.
    value: f64,
}

/// The sum of valences before normalisation, and what made it up.
fn contributions(tokens: &[Token]) -> Vec<Contribution> {
    let shouting = tokens.iter().filter(|t| t.is_shouting()).count();
    // Capitals stand out only when the rest is not in capitals too.
    let mixed_caps = shouting > 0 && shouting < tokens.len();
    let but = tokens.iter().position(|t| t.lower == "but");
    let mut out = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let next_is_of = tokens.get(i + 1).is_some_and(|t| t.lower == "of");
        if matches!(token.lower.as_str(), "kind" | "sort") && next_is_of {
            // "kind of", "sort of": a dampener, not kindness.
            continue;
        }
        let Some(base) = valence(&token.lower) else {
            continue;
        };
        let direction = base.signum();
        let mut value = base;
        if mixed_caps && token.is_shouting() {
            value += direction * CAPS_BOOST;
        }
        let mut first = i;
        let mut negated = false;
        for distance in 1..=REACH.min(i) {
            let j = i - distance;
            let before = &tokens[j];
            let boost = booster(&before.lower).or_else(|| {
                // "kind of good", "sort of happy"
                let hedge = before.lower == "of"
                    && j > 0
                    && matches!(tokens[j - 1].lower.as_str(), "kind" | "sort");
                hedge.then_some(DAMPEN)
            });
            if let Some(boost) = boost {
                let mut scalar = boost * direction * FADE[distance - 1];
                if mixed_caps && before.is_shouting() {
                    scalar += CAPS_BOOST * direction * boost.signum();
                }
                value += scalar;
                first = first.min(if before.lower == "of" { j - 1 } else { j });
            }
            if is_negator(&before.lower) {
                negated = true;
                first = first.min(j);
            }
        }
        if negated {
            value *= NEGATION;
        }
        match but {
            Some(b) if i < b => value *= 0.5,
            Some(b) if i > b => value *= 1.5,
            _ => {}
        }
        let phrase = tokens[first..=i]
            .iter()
            .map(|t| t.lower.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        out.push(Contribution { phrase, value });
    }
    out
}

/// Emphasis from `!` and `?`, to add in the text's direction.
fn punctuation_emphasis(text: &str) -> f64 {
    let exclamations = text
        .chars()
        .filter(|c| *c == '!')
        .count()
        .min(MAX_EXCLAMATIONS);
    let questions = text.chars().filter(|c| *c == '?').count();
    let question_boost = match questions {
        0 | 1 => 0.0,
        2 | 3 => QUESTION_BOOST * f64::from(u8::try_from(questions).unwrap_or(3)),
        _ => MAX_QUESTION_BOOST,
    };
    EXCLAMATION_BOOST * f64::from(u8::try_from(exclamations).unwrap_or(4)) + question_boost
}

/// The embedded lexicon analyzer (see the module documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LexiconSentiment;

impl LexiconSentiment {
    /// The analyzer.
    #[must_use]
    pub const fn new() -> Self {
        Self
    }

    /// The reading of `text`: the normalised score and the phrases that drove
    /// it. Empty or sentiment-free text is neutral with no reasons.
    #[must_use]
    pub fn read(&self, text: &str) -> SentimentReading {
        let tokens = tokenize(text);
        let mut contributions = contributions(&tokens);
        let mut sum: f64 = contributions.iter().map(|c| c.value).sum();
        if sum != 0.0 {
            sum += sum.signum() * punctuation_emphasis(text);
        }
        let score = sum / (sum * sum + ALPHA).sqrt();
        let direction = score.signum();
        contributions.retain(|c| score != 0.0 && c.value.signum() == direction);
        contributions.sort_by(|a, b| b.value.abs().total_cmp(&a.value.abs()));
        let mut reasons: Vec<String> = Vec::with_capacity(MAX_REASONS);
        for contribution in contributions {
            if reasons.len() == MAX_REASONS {
                break;
            }
            if !reasons.contains(&contribution.phrase) {
                reasons.push(contribution.phrase);
            }
        }
        SentimentReading {
            sentiment: Sentiment::saturating(score),
            reasons,
        }
    }
}

#[async_trait]
impl SentimentAnalyzer for LexiconSentiment {
    /// # Errors
    /// Never: every text has a reading.
    async fn analyze(
        &self,
        text: &str,
        _language: &Language,
    ) -> Result<SentimentReading, ProviderError> {
        Ok(self.read(text))
    }
}

#[cfg(test)]
mod tests {
    use iace_domain::sentiment::SentimentLabel;

    use super::*;

    fn score(text: &str) -> f64 {
        LexiconSentiment::new().read(text).sentiment.score()
    }

    fn reasons(text: &str) -> Vec<String> {
        LexiconSentiment::new().read(text).reasons
    }

    #[test]
    fn the_lexicon_is_sorted_unique_lower_case_and_in_range() {
        for pair in LEXICON.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        for (word, value) in LEXICON {
            assert_eq!(*word, word.to_lowercase());
            assert!((-4.0..=4.0).contains(value) && *value != 0.0, "{word}");
            assert!(booster(word).is_none(), "{word} is both");
            assert!(!is_negator(word), "{word} is both");
        }
        assert!(LEXICON.len() >= 300);
        assert!(valence("love").is_some_and(|v| v > 0.0));
        assert!(valence("account").is_none());
    }

    #[test]
    fn clear_texts_get_their_label_and_reasons() {
        let reading = LexiconSentiment::new().read("I love this, thank you so much!");
        assert_eq!(reading.sentiment.label(), SentimentLabel::Positive);
        assert_eq!(reading.reasons, vec!["love", "thank"]);
        let reading = LexiconSentiment::new().read("This is terrible, I am so angry.");
        assert_eq!(reading.sentiment.label(), SentimentLabel::Negative);
        assert_eq!(reading.reasons, vec!["so angry", "terrible"]);
        let reading = LexiconSentiment::new().read("My account number is four five six.");
        assert_eq!(reading.sentiment.score(), 0.0);
        assert!(reading.reasons.is_empty());
    }

    #[test]
    fn the_score_follows_vader_normalisation() {
        // "good" = 1.9: 1.9 / sqrt(1.9² + 15).
        let expected = 1.9 / (1.9f64.powi(2) + 15.0).sqrt();
        assert!((score("good") - expected).abs() < 1e-9);
        assert!(score(&"wonderful ".repeat(2_000)) <= 1.0);
        assert!(score(&"awful ".repeat(2_000)) >= -1.0);
        assert!(score(&"wonderful ".repeat(2_000)) > 0.99);
    }

    #[test]
    fn negation_turns_the_word_around() {
        assert!(score("The agent was helpful") > 0.25);
        assert!(score("The agent was not helpful") < 0.0);
        assert!(score("The agent wasn't helpful at all") < 0.0);
        assert!(
            score("The agent wasn\u{2019}t helpful") < 0.0,
            "curly apostrophe"
        );
        assert!(score("That was bad") < 0.0);
        assert!(score("That was not bad") > 0.0);
        assert!(score("No problem at all") > 0.0);
        assert!(score("I have a problem") < 0.0);
        assert_eq!(reasons("The agent was not helpful"), vec!["not helpful"]);
        assert!(
            score("I never said it was good, it was nice") > 0.0,
            "a negator reaches three words, no further"
        );
    }

    #[test]
    fn intensifiers_and_dampeners_scale_the_word() {
        let plain = score("the service was good");
        let very = score("the service was very good");
        let really_very = score("the service was really very good");
        let slightly = score("the service was slightly good");
        let kind_of = score("the service was kind of good");
        assert!(very > plain, "{very} > {plain}");
        assert!(really_very > very);
        assert!(slightly < plain && slightly > 0.0);
        assert!(kind_of < plain && kind_of > 0.0);
        assert!(score("I am very angry") < score("I am angry"));
        assert_eq!(reasons("I am very angry"), vec!["very angry"]);
        assert_eq!(
            reasons("the service was kind of good"),
            vec!["kind of good"]
        );
        assert_eq!(score("that is very kind of you"), 0.0);
    }

    #[test]
    fn capitals_and_exclamations_add_emphasis() {
        assert!(score("this is GREAT service") > score("this is great service"));
        assert!(
            (score("THIS IS GREAT SERVICE") - score("this is great service")).abs() < 1e-9,
            "all capitals is not emphasis"
        );
        assert!(score("great!!!") > score("great"));
        assert!(score("terrible!!!") < score("terrible"));
        assert_eq!(
            score("great!!!!!!!!"),
            score("great!!!!"),
            "at most four count"
        );
        assert_eq!(score("hello!!!"), 0.0, "no emphasis without sentiment");
    }

    #[test]
    fn but_shifts_the_weight_to_what_follows() {
        let reading = LexiconSentiment::new().read("The agent was nice but the wait was terrible");
        assert_eq!(reading.sentiment.label(), SentimentLabel::Negative);
        assert_eq!(reading.reasons, vec!["terrible"]);
        assert!(score("It was terrible but you were wonderful") > 0.0);
    }

    #[test]
    fn reasons_are_the_strongest_three_in_the_score_direction() {
        let reading = LexiconSentiment::new()
            .read("Great, just great: excellent, amazing, wonderful, though a bit slow");
        assert_eq!(reading.sentiment.label(), SentimentLabel::Positive);
        assert_eq!(reading.reasons, vec!["great", "amazing", "excellent"]);
    }

    #[tokio::test]
    async fn analyze_never_fails() {
        let analyzer = LexiconSentiment::new();
        let language = Language::default();
        for text in ["", "   ", "?!", "¿Qué tal? Très bien", "I hate waiting"] {
            let reading = analyzer.analyze(text, &language).await.expect("reading");
            assert!((-1.0..=1.0).contains(&reading.sentiment.score()));
        }
    }
}
