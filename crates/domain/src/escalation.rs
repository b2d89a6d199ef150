//! escalation (in progress)
