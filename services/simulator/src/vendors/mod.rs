//! Vendor-native payloads for simulated calls (docs/simulator.md, "Vendor
//! mix"), pure: the model's canonical events, call by call, become what
//! each practice's telephony supplier would send the adapters. Twilio
//! webhooks, Amazon Connect contact records, Asterisk `queue_log` lines and
//! CDRs, Microsoft Teams call records for callbacks made, and canonical
//! JSON (`generic`) for everything else.
//!
//! - [`VendorMix`]: which supplier each practice uses, deterministic for a
//!   seed (30% Twilio, 25% Amazon Connect, 25% Asterisk, 20% generic).
//! - [`PracticeIds`] / [`mapping_toml`]: the practice's numbers, queues and
//!   accounts, and the adapters' practice mapping that finds them.
//! - [`NativeStream`]: the model's deliveries in, native records out, in
//!   delivery order. Live formats (Twilio webhooks, queue_log lines,
//!   generic events) are delivered as each step happens; records written
//!   after a call (contact records, CDRs, call records) when it ends.
//! - [`NativeFaults`]: `--faults` on the records (re-sent, delayed, or a
//!   practice's feed silent), after rendering.
//!
//! What a vendor's format cannot say, and so what the adapters' events
//! differ in from the model's, is listed in docs/simulator.md.

mod amazon_connect;
mod asterisk;
mod faults;
mod teams;
mod twilio;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt::Write as _;

use callpulse_core::{CallEvent, EventKind, Timestamp};

use crate::model::Delivery;
use crate::practices::{fnv1a, splitmix, unit, Practice};

pub use faults::{FaultyRecords, NativeFaults};
pub use twilio::sign as twilio_signature;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VendorError {
    #[error("unknown vendor `{0}`: expected mix, generic, twilio, amazon-connect or asterisk")]
    UnknownVendor(String),
    #[error("unknown format `{0}`: expected canonical or native")]
    UnknownFormat(String),
}

/// A practice's telephony supplier, as the simulator models it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Supplier {
    /// Canonical events (a supplier that already sends callpulse's format).
    Generic,
    Twilio,
    AmazonConnect,
    /// Queue calls from the queue_log, other calls from CDRs, callbacks
    /// made from Microsoft Teams (Asterisk does not log outbound callbacks
    /// in a form the adapter reads).
    Asterisk,
}

impl Supplier {
    pub const ALL: [Supplier; 4] = [
        Supplier::Generic,
        Supplier::Twilio,
        Supplier::AmazonConnect,
        Supplier::Asterisk,
    ];

    /// The adapter's name (`callpulse adapt --vendor`).
    pub fn name(self) -> &'static str {
        match self {
            Supplier::Generic => "generic",
            Supplier::Twilio => "twilio",
            Supplier::AmazonConnect => "amazon-connect",
            Supplier::Asterisk => "asterisk",
        }
    }

    pub fn parse(text: &str) -> Result<Supplier, VendorError> {
        Supplier::ALL
            .into_iter()
            .find(|s| s.name() == text.trim())
            .ok_or_else(|| VendorError::UnknownVendor(text.to_string()))
    }
}

/// Which supplier each practice uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VendorMix {
    /// A deterministic mix by seed and practice: 30% Twilio, 25% Amazon
    /// Connect, 25% Asterisk, 20% generic (domain.md gives no market
    /// shares; these only make every format common).
    Mix,
    /// Every practice on one supplier.
    All(Supplier),
}

impl VendorMix {
    /// `mix`, or one supplier's name.
    pub fn parse(text: &str) -> Result<VendorMix, VendorError> {
        match text.trim() {
            "mix" => Ok(VendorMix::Mix),
            other => Supplier::parse(other).map(VendorMix::All),
        }
    }

    /// The supplier of practice `code` under `seed`.
    pub fn supplier(self, seed: u64, code: &str) -> Supplier {
        match self {
            VendorMix::All(supplier) => supplier,
            VendorMix::Mix => {
                let u = unit(splitmix(seed ^ 0x7e4d_0a11) ^ fnv1a(code.as_bytes()));
                match u {
                    u if u < 0.30 => Supplier::Twilio,
                    u if u < 0.55 => Supplier::AmazonConnect,
                    u if u < 0.80 => Supplier::Asterisk,
                    _ => Supplier::Generic,
                }
            }
        }
    }
}

/// What `callpulse simulate` delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Canonical events (metrics.md §1), as before.
    Canonical,
    /// Each practice's supplier's own records.
    Native(VendorMix),
}

impl Format {
    /// `canonical`, or `native` with the given mix.
    pub fn parse(format: &str, vendors: &str) -> Result<Format, VendorError> {
        match format.trim() {
            "canonical" => Ok(Format::Canonical),
            "native" => VendorMix::parse(vendors).map(Format::Native),
            other => Err(VendorError::UnknownFormat(other.to_string())),
        }
    }
}

/// The simulated Amazon Connect instance.
pub const CONNECT_INSTANCE: &str =
    "arn:aws:connect:eu-west-2:111122223333:instance/0d6a1c3e-5b7f-4e8a-9c21-7f3b2a9e4d10";
/// The simulated Microsoft 365 tenant (shared: never mapped).
pub const TEAMS_TENANT: &str = "37c354b2-85b0-47f5-b222-07b48d774ee3";
/// Where practices divert to NHS 111 (the adapters' default 111 numbers).
pub const NHS_111: &str = "+44111";
/// The queue_log key that books a callback (`[asterisk] callback_keys`).
pub const ASTERISK_CALLBACK_KEY: &str = "1";

/// A practice's identifiers at its supplier: what vendor records name it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PracticeIds {
    pub code: String,
    /// The number patients dial, national form (`01200 981001` without spaces).
    pub number: String,
    /// The same in E.164 (`+441200981001`).
    pub e164: String,
    /// The practice's Twilio subaccount (`<Dial>` legs are found by it).
    pub twilio_account: String,
    pub twilio_queue_sid: String,
    pub connect_queue_arn: String,
    pub connect_queue_name: String,
    /// Asterisk queue (`reception-a81001`).
    pub asterisk_queue: String,
    /// Object id of the practice's Teams "Callbacks" resource account.
    pub teams_callbacks_id: String,
}

impl PracticeIds {
    /// Deterministic from the practice code alone, so one mapping file
    /// serves every seed and mix. The number is `01` + a three-digit area
    /// from the code's letter (200 + A..Z) + `9` + the code's five digits:
    /// a UK geographic number, distinct for every practice code.
    pub fn of(code: &str) -> PracticeIds {
        let letter = code.bytes().next().unwrap_or(b'A');
        let area = 200 + u32::from(letter.saturating_sub(b'A').min(99));
        let digits: String = code.chars().skip(1).filter(char::is_ascii_digit).collect();
        let subscriber = format!("9{digits:0>5}");
        let lower = code.to_ascii_lowercase();
        let queue_id = guid(&format!("connect-queue:{code}"));
        PracticeIds {
            code: code.to_string(),
            number: format!("01{area}{subscriber}"),
            e164: format!("+441{area}{subscriber}"),
            twilio_account: format!("AC{}", hex128(&format!("twilio-account:{code}"))),
            twilio_queue_sid: format!("QU{}", hex128(&format!("twilio-queue:{code}"))),
            connect_queue_arn: format!("{CONNECT_INSTANCE}/queue/{queue_id}"),
            connect_queue_name: format!("GP-{code}-Reception"),
            asterisk_queue: format!("reception-{lower}"),
            teams_callbacks_id: guid(&format!("teams-callbacks:{code}")),
        }
    }
}

/// A patient's phone number: a UK mobile (`07` + 9 digits), distinct for
/// every caller of one practice (a bijection of the caller's index).
pub fn caller_number(code: &str, caller: u32) -> String {
    let h = fnv1a(code.as_bytes());
    let prefix = [4u64, 5, 7, 8, 9][(h % 5) as usize];
    let offset = splitmix(h) % 100_000_000;
    let n = (u64::from(caller) * 7_919 + offset) % 100_000_000;
    format!("07{prefix}{n:08}")
}

/// The number a caller who withheld theirs gave for a callback on call `call_id`.
pub fn withheld_callback_number(call_id: &str) -> String {
    let h = splitmix(fnv1a(call_id.as_bytes()));
    format!("07700{:06}", h % 1_000_000)
}

/// A national UK number in E.164 (`07700900123` → `+447700900123`).
pub fn e164(national: &str) -> String {
    format!("+44{}", national.trim_start_matches('0'))
}

/// The adapters' practice mapping (docs/adapters.md) for `practices`, for
/// every supplier (so it does not depend on the seed or the mix).
pub fn mapping_toml(practices: &[Practice]) -> String {
    let mut out = String::from(
        "# Practice mapping for simulated vendor traffic (callpulse simulate --format native).\n\
         # Written by `callpulse simulate --write-mapping`; load it with\n\
         # `callpulse adapters --mapping FILE` or `callpulse adapt --mapping FILE`.\n\
         local_time_zone = \"Europe/London\"\n\n\
         [divert_111]\nnumbers = [\"111\", \"+44111\"]\n\n\
         [asterisk]\ncallback_keys = [\"1\"]\n",
    );
    let ids: Vec<PracticeIds> = practices.iter().map(|p| PracticeIds::of(&p.code)).collect();
    type Keys = fn(&PracticeIds) -> Vec<&str>;
    let tables: [(&str, &str, Keys); 4] = [
        (
            "twilio",
            "the number patients dial (To) and the practice's subaccount (<Dial> legs)",
            |p| vec![&p.e164, &p.twilio_account],
        ),
        (
            "amazon-connect",
            "the number dialled (SystemEndpoint) and the queue (callback contacts)",
            |p| vec![&p.e164, &p.connect_queue_arn],
        ),
        (
            "asterisk",
            "the number dialled (CDR dst) and the queue (queue_log)",
            |p| vec![&p.number, &p.asterisk_queue],
        ),
        (
            "teams",
            "each practice's \"Callbacks\" resource account",
            |p| vec![&p.teams_callbacks_id],
        ),
    ];
    for (vendor, comment, keys) in tables {
        let _ = write!(out, "\n[vendors.{vendor}]\n# {comment}\n");
        for p in &ids {
            for key in keys(p) {
                let _ = writeln!(out, "\"{key}\" = \"{}\"", p.code);
            }
        }
    }
    out
}

/// Where a native record goes: an adapter route and a file of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Generic,
    Twilio,
    AmazonConnect,
    AsteriskCdr,
    AsteriskQueueLog,
    Teams,
}

impl Channel {
    pub const ALL: [Channel; 6] = [
        Channel::Generic,
        Channel::Twilio,
        Channel::AmazonConnect,
        Channel::AsteriskCdr,
        Channel::AsteriskQueueLog,
        Channel::Teams,
    ];

    /// The adapter that reads it (`callpulse adapt --vendor`).
    pub fn vendor(self) -> &'static str {
        match self {
            Channel::Generic => "generic",
            Channel::Twilio => "twilio",
            Channel::AmazonConnect => "amazon-connect",
            Channel::AsteriskCdr | Channel::AsteriskQueueLog => "asterisk",
            Channel::Teams => "teams",
        }
    }

    /// The adapters' HTTP route.
    pub fn route(self) -> &'static str {
        match self {
            Channel::Generic => "/v1/events",
            Channel::Twilio => "/v1/twilio",
            Channel::AmazonConnect => "/v1/amazon-connect",
            Channel::AsteriskCdr | Channel::AsteriskQueueLog => "/v1/asterisk",
            Channel::Teams => "/v1/teams",
        }
    }

    /// The file it is written to with `--to file` (in the `--out` directory).
    pub fn file_name(self) -> &'static str {
        match self {
            Channel::Generic => "generic.jsonl",
            Channel::Twilio => "twilio.jsonl",
            Channel::AmazonConnect => "amazon-connect.jsonl",
            Channel::AsteriskCdr => "asterisk-Master.csv",
            Channel::AsteriskQueueLog => "asterisk-queue_log",
            Channel::Teams => "teams.jsonl",
        }
    }
}

/// One vendor record and when the vendor sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeRecord {
    pub deliver_at: Timestamp,
    /// The practice whose call (or 111 switch) it reports.
    pub practice: String,
    pub channel: Channel,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Body {
    /// Webhook parameters (Twilio), in the order Twilio would send them.
    Params(Vec<(String, String)>),
    /// One line: a JSON object, a CSV line or a queue_log line.
    Line(String),
}

impl NativeRecord {
    /// The record as one line of the vendor's file: webhook parameters as
    /// the JSON object a logging receiver writes.
    pub fn file_line(&self) -> String {
        match &self.body {
            Body::Line(line) => line.clone(),
            Body::Params(params) => {
                let object: serde_json::Map<String, serde_json::Value> = params
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect();
                serde_json::Value::Object(object).to_string()
            }
        }
    }

    /// Webhook parameters as an `application/x-www-form-urlencoded` body.
    pub fn form_body(&self) -> Option<String> {
        match &self.body {
            Body::Params(params) => Some(form_encode(params)),
            Body::Line(_) => None,
        }
    }
}

/// `application/x-www-form-urlencoded`, as Twilio encodes its parameters.
pub fn form_encode(params: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_component(&mut out, name);
        out.push('=');
        encode_component(&mut out, value);
    }
    out
}

fn encode_component(out: &mut String, text: &str) {
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
}

/// A call while its events arrive: what the renderers need of it.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub ids: PracticeIds,
    /// The model's call id (`sim-<practice>-<yyyymmdd>-<n>`).
    pub call_id: String,
    /// The caller's number (national), `None` when withheld.
    pub caller: Option<String>,
    pub events: Vec<CallEvent>,
}

impl Call {
    pub fn first(&self, kind: EventKind) -> Option<&CallEvent> {
        self.events.iter().find(|e| e.kind == kind)
    }

    pub fn at(&self, kind: EventKind) -> Option<i64> {
        self.first(kind).map(|e| e.at.0)
    }

    pub fn offered_at(&self) -> i64 {
        self.events.first().map_or(0, |e| e.at.0)
    }

    pub fn outcome(&self) -> Option<&CallEvent> {
        self.events.iter().find(|e| e.kind.is_outcome())
    }

    /// The caller's number for ringing them back: theirs, or for a withheld
    /// caller the number they gave the practice.
    pub fn callback_number(&self) -> String {
        self.caller
            .clone()
            .unwrap_or_else(|| withheld_callback_number(&self.call_id))
    }

    /// A number from the call id, for ids and durations that must not change between runs.
    pub fn hash(&self, salt: &str) -> u64 {
        splitmix(fnv1a(self.call_id.as_bytes()) ^ fnv1a(salt.as_bytes()))
    }
}

/// A booked callback, kept until the day is over for the callbacks made.
#[derive(Debug, Clone)]
pub(crate) struct Booked {
    pub call: Call,
    pub supplier: Supplier,
    pub attempts: u32,
}

/// The calls' model events in, native records out, in delivery order.
/// Deliveries must be the model's fault-free stream in delivery order
/// (a call's events are rendered in order); `--faults` are applied to the
/// records afterwards ([`NativeFaults`]).
pub struct NativeStream<I> {
    inner: I,
    mix: VendorMix,
    seed: u64,
    suppliers: HashMap<String, Supplier>,
    open: HashMap<String, Call>,
    booked: HashMap<String, Booked>,
    held: Held,
    last_sweep: i64,
}

/// Records waiting for their delivery time, released in delivery order
/// (records delivered at the same instant in the order they came).
#[derive(Debug)]
struct Held {
    heap: BinaryHeap<Reverse<Pending>>,
    sequence: u64,
    /// The latest input's delivery time: input comes in delivery order and
    /// its records are delivered at or after it, so what is due by then may go.
    now: i64,
    /// The input is over: everything may go.
    done: bool,
}

impl Held {
    fn new() -> Held {
        Held {
            heap: BinaryHeap::new(),
            sequence: 0,
            now: i64::MIN,
            done: false,
        }
    }

    /// An input delivered at `at` has come.
    fn advance(&mut self, at: Timestamp) {
        self.now = self.now.max(at.0);
    }

    fn push(&mut self, record: NativeRecord) {
        self.sequence += 1;
        self.heap.push(Reverse(Pending {
            deliver: record.deliver_at.0,
            sequence: self.sequence,
            record,
        }));
    }

    /// The first record, if it may go.
    fn pop_due(&mut self) -> Option<NativeRecord> {
        let Reverse(top) = self.heap.peek()?;
        (self.done || top.deliver <= self.now).then(|| self.heap.pop().expect("peeked").0.record)
    }
}

/// A stage whose input, in delivery order, becomes [`Held`] records.
trait Stage {
    /// Takes the next input in; false when there is none.
    fn pull(&mut self) -> bool;

    fn held(&mut self) -> &mut Held;

    /// The next record in delivery order.
    fn next_record(&mut self) -> Option<NativeRecord> {
        loop {
            if let Some(record) = self.held().pop_due() {
                return Some(record);
            }
            if self.held().done {
                return None;
            }
            if !self.pull() {
                self.held().done = true;
            }
        }
    }
}

#[derive(Debug)]
struct Pending {
    deliver: i64,
    sequence: u64,
    record: NativeRecord,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.deliver, self.sequence) == (other.deliver, other.sequence)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.deliver, self.sequence).cmp(&(other.deliver, other.sequence))
    }
}

/// What a renderer returns: (deliver at, channel, body).
pub(crate) type Out = Vec<(i64, Channel, Body)>;

impl<I: Iterator<Item = Delivery>> NativeStream<I> {
    pub fn new(inner: I, mix: VendorMix, seed: u64) -> Self {
        NativeStream {
            inner,
            mix,
            seed,
            suppliers: HashMap::new(),
            open: HashMap::new(),
            booked: HashMap::new(),
            held: Held::new(),
            last_sweep: i64::MIN,
        }
    }

    fn supplier(&mut self, code: &str) -> Supplier {
        let (mix, seed) = (self.mix, self.seed);
        *self
            .suppliers
            .entry(code.to_string())
            .or_insert_with(|| mix.supplier(seed, code))
    }

    fn push_all(&mut self, practice: &str, out: Out) {
        for (deliver, channel, body) in out {
            self.held.push(NativeRecord {
                deliver_at: Timestamp(deliver),
                practice: practice.to_string(),
                channel,
                body,
            });
        }
    }

    fn process(&mut self, delivery: Delivery) {
        let event = delivery.event;
        self.held.advance(delivery.deliver_at);
        if event.kind.is_practice_level() {
            // A diversion switch is configuration, not a call: no vendor
            // format carries it, so every supplier's practices send it as
            // a canonical event.
            let out = vec![(event.at.0, Channel::Generic, Body::Line(event.to_json()))];
            self.push_all(&event.practice, out);
            return;
        }
        let supplier = self.supplier(&event.practice);
        let Some(call_id) = event.call_id.clone() else {
            return;
        };
        if event.kind == EventKind::CallbackMade {
            let out = match self.booked.get_mut(&call_id) {
                Some(booked) => {
                    booked.attempts += 1;
                    render_callback(booked, &event)
                }
                // Not booked in this run (cannot happen with the model):
                // the event as it is.
                None => generic_event(None, &event),
            };
            self.push_all(&event.practice, out);
            return;
        }
        let call = self.open.entry(call_id.clone()).or_insert_with(|| Call {
            ids: PracticeIds::of(&event.practice),
            call_id: call_id.clone(),
            caller: caller_index(&event).map(|i| caller_number(&event.practice, i)),
            events: Vec::with_capacity(6),
        });
        call.events.push(event.clone());
        let mut out = render_event(supplier, call, &event);
        // A call is over at `ended`, or at its outcome when it never queued
        // (the model sends no `ended` for those).
        let complete = event.kind == EventKind::Ended
            || (event.kind.is_outcome() && call.first(EventKind::Queued).is_none());
        if complete {
            let call = self.open.remove(&call_id).expect("the call is open");
            out.extend(render_complete(supplier, &call));
            if call.first(EventKind::CallbackRequested).is_some() {
                self.booked.insert(
                    call_id,
                    Booked {
                        call,
                        supplier,
                        attempts: 0,
                    },
                );
            }
        }
        self.push_all(&event.practice, out);
        // Callbacks are made the same day: forget bookings a day old.
        let now = self.held.now;
        if now > self.last_sweep.saturating_add(3_600_000) {
            self.booked
                .retain(|_, b| b.call.offered_at() > now - 86_400_000);
            self.last_sweep = now;
        }
    }
}

impl<I: Iterator<Item = Delivery>> Stage for NativeStream<I> {
    fn pull(&mut self) -> bool {
        let delivery = self.inner.next();
        delivery.map(|d| self.process(d)).is_some()
    }

    fn held(&mut self) -> &mut Held {
        &mut self.held
    }
}

impl<I: Iterator<Item = Delivery>> Iterator for NativeStream<I> {
    type Item = NativeRecord;

    fn next(&mut self) -> Option<NativeRecord> {
        self.next_record()
    }
}

/// The records one event gives at once (live formats).
fn render_event(supplier: Supplier, call: &Call, event: &CallEvent) -> Out {
    match supplier {
        Supplier::Generic => generic_event(call.caller.as_deref(), event),
        Supplier::Twilio => twilio::on_event(call, event),
        Supplier::AmazonConnect => Vec::new(),
        Supplier::Asterisk => asterisk::on_event(call, event),
    }
}

/// The records written once a call is over.
fn render_complete(supplier: Supplier, call: &Call) -> Out {
    match supplier {
        Supplier::Generic | Supplier::Twilio => Vec::new(),
        Supplier::AmazonConnect => amazon_connect::contact_record(call),
        Supplier::Asterisk => asterisk::cdr(call),
    }
}

/// A callback made for a booked call.
fn render_callback(booked: &Booked, event: &CallEvent) -> Out {
    match booked.supplier {
        Supplier::Generic => generic_event(None, event),
        Supplier::Twilio => twilio::callback(&booked.call, booked.attempts, event),
        Supplier::AmazonConnect => {
            amazon_connect::callback_contact(&booked.call, booked.attempts, event)
        }
        Supplier::Asterisk => teams::callback_record(&booked.call, booked.attempts, event),
    }
}

/// The canonical event as a generic supplier sends it: the caller as the
/// number it saw (the adapters pseudonymise it).
fn generic_event(caller: Option<&str>, event: &CallEvent) -> Out {
    let mut event = event.clone();
    event.caller = match (&event.caller, caller) {
        (Some(_), Some(number)) => Some(number.to_string()),
        _ => None,
    };
    vec![(event.at.0, Channel::Generic, Body::Line(event.to_json()))]
}

/// The caller's index in the practice's list, from the model's caller
/// (`sim-<practice>-p<hex>`); `None` when withheld.
fn caller_index(event: &CallEvent) -> Option<u32> {
    let caller = event.caller.as_deref()?;
    let (_, hex) = caller.rsplit_once("-p")?;
    u32::from_str_radix(hex, 16).ok()
}

/// The vendor's `call_id` for a model call, as the adapters will report it
/// (Teams callbacks are calls of their own and have none of this).
pub fn vendor_call_id(supplier: Supplier, call_id: &str, offered_at: Timestamp) -> String {
    match supplier {
        Supplier::Generic => call_id.to_string(),
        Supplier::Twilio => twilio::call_sid(call_id),
        Supplier::AmazonConnect => amazon_connect::contact_id(call_id, 0),
        Supplier::Asterisk => asterisk::uniqueid(call_id, offered_at.0),
    }
}

/// 32 lower-case hex digits from a text: stable vendor ids.
pub(crate) fn hex128(text: &str) -> String {
    let a = splitmix(fnv1a(text.as_bytes()));
    let b = splitmix(a ^ 0x9e37_79b9_7f4a_7c15);
    format!("{a:016x}{b:016x}")
}

/// A GUID (version 4 shape) from a text.
pub(crate) fn guid(text: &str) -> String {
    let h = hex128(text);
    format!(
        "{}-{}-4{}-{}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        ["8", "9", "a", "b"][usize::from(h.as_bytes()[16] % 4)],
        &h[17..20],
        &h[20..32]
    )
}

/// A whole number of seconds in `[from, to)` from a hash.
pub(crate) fn seconds_between(hash: u64, from: i64, to: i64) -> i64 {
    from + (hash % (to - from) as u64) as i64
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn iso_millis(ms: i64) -> String {
    Timestamp(ms).to_rfc3339_millis()
}

pub(crate) fn floor_seconds(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn practice_numbers_are_uk_and_distinct() {
        let ids = PracticeIds::of("A81001");
        assert_eq!(ids.number, "01200981001");
        assert_eq!(ids.e164, "+441200981001");
        assert_ne!(PracticeIds::of("B81001").number, ids.number);
        assert!(PracticeIds::of("Y63045").number.starts_with("01224"));
    }

    #[test]
    fn caller_numbers_are_uk_mobiles_and_distinct_per_practice() {
        let numbers: std::collections::HashSet<String> =
            (0..50_000).map(|i| caller_number("A81001", i)).collect();
        assert_eq!(numbers.len(), 50_000);
        assert!(numbers.iter().all(|n| n.len() == 11
            && n.starts_with("07")
            && n.bytes().all(|b| b.is_ascii_digit())));
        assert_eq!(e164("07700900123"), "+447700900123");
    }

    #[test]
    fn the_mix_is_deterministic_and_near_its_shares() {
        let mut counts = HashMap::new();
        for i in 0..4_000 {
            let code = crate::practice_code(i);
            let s = VendorMix::Mix.supplier(7, &code);
            assert_eq!(s, VendorMix::Mix.supplier(7, &code));
            *counts.entry(s).or_insert(0) += 1;
        }
        let share = |s| f64::from(counts[&s]) / 4_000.0;
        assert!(
            (0.26..0.34).contains(&share(Supplier::Twilio)),
            "{counts:?}"
        );
        assert!((0.21..0.29).contains(&share(Supplier::AmazonConnect)));
        assert!((0.21..0.29).contains(&share(Supplier::Asterisk)));
        assert!((0.16..0.24).contains(&share(Supplier::Generic)));
        assert_eq!(
            VendorMix::parse("asterisk").unwrap(),
            VendorMix::All(Supplier::Asterisk)
        );
        assert!(VendorMix::parse("teams").is_err());
        assert!(Format::parse("native", "mix").is_ok());
        assert!(Format::parse("xml", "mix").is_err());
    }

    #[test]
    fn form_encoding_is_what_twilio_sends() {
        let params = vec![
            ("From".to_string(), "+447700900123".to_string()),
            (
                "Timestamp".to_string(),
                "Mon, 23 Nov 2026 08:00:01 +0000".to_string(),
            ),
        ];
        assert_eq!(
            form_encode(&params),
            "From=%2B447700900123&Timestamp=Mon%2C+23+Nov+2026+08%3A00%3A01+%2B0000"
        );
    }
}
