//! `SentimentAnalyzer` contract: scores and labels as the provider reads
//! them, reasons, any input handled, provider failures.

use std::sync::Arc;

use async_trait::async_trait;
use iace_domain::Language;
use iace_domain::ports::SentimentAnalyzer;
use iace_domain::sentiment::SentimentLabel;

use super::provider_failure::{self, Failure};

/// Makes analyzers whose provider behaves as asked; `None` skips the case.
#[async_trait]
pub trait SentimentFixture: Send + Sync {
    /// An analyzer whose provider reads `text` as it really is (a lexicon), or
    /// a fake that answers by keywords: "love"/"thank" positive, "terrible"/
    /// "angry" negative, otherwise neutral.
    async fn reading(&self) -> Arc<dyn SentimentAnalyzer>;
    /// The provider answers `score` with `reasons`, whatever the text.
    async fn scoring(&self, score: f64, reasons: &[&str]) -> Option<Arc<dyn SentimentAnalyzer>>;
    /// The provider fails this way.
    async fn failing(&self, failure: Failure) -> Option<Arc<dyn SentimentAnalyzer>>;
}

fn en() -> Language {
    Language::parse("en-US").expect("language")
}

/// Runs every case.
pub async fn run<F: SentimentFixture>(fixture: &F) {
    super::announce("sentiment: clear texts get the right label");
    let analyzer = fixture.reading().await;
    for (text, label) in [
        ("I love this, thank you so much!", SentimentLabel::Positive),
        ("This is terrible, I am so angry.", SentimentLabel::Negative),
        (
            "My account number is four five six.",
            SentimentLabel::Neutral,
        ),
    ] {
        let reading = analyzer.analyze(text, &en()).await.expect("analyze");
        assert_eq!(reading.sentiment.label(), label, "{text}");
    }

    super::announce("sentiment: empty and long inputs are fine");
    for text in [String::new(), "word ".repeat(2_000)] {
        let reading = analyzer.analyze(&text, &en()).await.expect("analyze");
        assert!((-1.0..=1.0).contains(&reading.sentiment.score()));
    }

    if let Some(analyzer) = fixture
        .scoring(-0.8, &["asked for a manager", "repeated the complaint"])
        .await
    {
        super::announce("sentiment: the provider's score and reasons");
        let reading = analyzer.analyze("whatever", &en()).await.expect("analyze");
        assert!(
            (reading.sentiment.score() + 0.8).abs() < 1e-6,
            "{reading:?}"
        );
        assert_eq!(reading.sentiment.label(), SentimentLabel::Negative);
        assert_eq!(
            reading.reasons,
            vec![
                "asked for a manager".to_owned(),
                "repeated the complaint".to_owned()
            ]
        );
    }
    if let Some(analyzer) = fixture.scoring(1.7, &[]).await {
        super::announce("sentiment: an overshooting score is clamped");
        let reading = analyzer.analyze("whatever", &en()).await.expect("analyze");
        assert!(
            (reading.sentiment.score() - 1.0).abs() < 1e-9,
            "{reading:?}"
        );
    }

    for failure in provider_failure::ALL {
        let Some(analyzer) = fixture.failing(failure).await else {
            continue;
        };
        let case = format!("sentiment: {failure:?}");
        super::announce(&case);
        let err = analyzer
            .analyze("This is terrible.", &en())
            .await
            .expect_err("an error");
        provider_failure::assert_maps(&case, failure, &err);
    }
}
