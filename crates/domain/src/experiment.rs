//! experiment (in progress)
