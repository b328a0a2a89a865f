//! Publishing canonical events and dead letters to Kafka (written with issue #5).
