//! Per-call sentiment aggregation (in progress).
#![allow(unreachable_pub, missing_docs)]
#[derive(Debug)]
pub struct SentimentSummary;
#[derive(Debug)]
pub struct SentimentTracker;
#[derive(Debug)]
pub struct SentimentTrend;
#[derive(Debug)]
pub struct TrackerConfig;
