//! callpulse's pure core: everything that can be decided without a socket.
//!
//! - [`event`]: the canonical call event and its validation (metrics.md §1)
//! - [`call`]: per-call state and what a call contributes to windows (§2)
//! - [`window`]: tumbling windows, UTC and London days (§3)
//! - [`engine`]: the event-time engine: watermark, lateness, emission
//! - [`record`]: the window metrics record (§4), call summaries, late events
//! - [`calendar`]: GP core hours and bank holidays (§5)
//! - [`batch`]: the contract over a whole input at once, for replay
//! - [`replay`]: a file of JSON lines through [`batch`] and the alert rules
//! - [`alert`]: alert rules: 111 diversions in core hours (issue #7)
//! - [`thresholds`]: threshold alerts over window records, and the rules' configuration
//! - [`feed_silence`]: a practice whose events stop in core hours (for operators)

pub mod alert;
pub mod alert_stream;
pub mod batch;
pub mod calendar;
pub mod call;
pub mod engine;
pub mod event;
pub mod feed_silence;
pub mod practice;
pub mod record;
pub mod replay;
pub mod thresholds;
pub mod time;
pub mod window;

pub use alert::{
    diversion_alert_id, diversion_alerts, Alert, AlertKind, AlertState, AlertTracker, Opening,
    Resolution,
};
pub use calendar::CoreHours;
pub use engine::{Emitted, Engine, EngineConfig, Ingested, Lateness, RestartPoint};
pub use event::{CallEvent, EventError, EventKind};
pub use feed_silence::FeedSilence;
pub use record::{CallSummary, LateEvent, WindowMetrics};
pub use thresholds::{AlertRules, PracticeIcbs, ThresholdTracker};
pub use time::Timestamp;
pub use window::WindowSize;
