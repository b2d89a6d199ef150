//! ports (in progress)
