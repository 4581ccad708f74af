//! bosun analytics (work in progress).
