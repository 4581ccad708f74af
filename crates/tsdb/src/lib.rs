//! bosun's embedded time-series store (work in progress).
