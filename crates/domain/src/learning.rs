//! learning (in progress)
