//! HTTP ingest (written with issue #5).
