//! bosun data pipeline (work in progress).
