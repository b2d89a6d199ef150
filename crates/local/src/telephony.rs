//! Simulated telephony (being written).
