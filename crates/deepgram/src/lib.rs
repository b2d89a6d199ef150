//! iace-deepgram: placeholder until the adapter lands (issue 6).
