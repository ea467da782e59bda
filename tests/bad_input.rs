//! The bad-input matrix: every RPC of every service, generated from the API's descriptors,
//! over a real gRPC socket to the real `keyplan` binary.
//!
//! For each RPC it sends undecodable bodies (raw bytes through a bytes codec), and for every
//! field reachable from the request (every command kind of `Execute`, nested messages, the
//! unset arms of oneofs) a valid-looking request with that one field broken: oversized
//! strings, control characters, malformed and out-of-range dates, unknown enum values, money
//! extremes, out-of-range timestamps and integer extremes. It asserts, for every case:
//! - the code: `INVALID_ARGUMENT` for malformed input, and never `INTERNAL`, `UNKNOWN`,
//!   `RESOURCE_EXHAUSTED` or `DATA_LOSS` for any of them;
//! - the message is bounded (at most [`MAX_MESSAGE`] bytes), whatever the input's size;
//! - nothing was stored: the log head is unchanged after every case.
//!
//! Every violation is collected and listed before the test fails, so one run shows them all.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::fixtures::*;
use common::raw::RawCodec;
use common::{head, Server};
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    ReflectMessage, Value,
};
use tonic::{Code, Status};

/// Longest status message a caller error may produce, in bytes.
const MAX_MESSAGE: usize = 1024;
/// Size of the oversized strings: far above every limit, well under gRPC's 4 MiB.
const OVERSIZED: usize = 1 << 20;
/// Oversized strings nested in sub-messages (there are many of those).
const OVERSIZED_NESTED: usize = 64 << 10;
/// How deep the walk goes into nested messages.
const MAX_DEPTH: usize = 5;

/// Fields holding `YYYY-MM-DD` dates in requests.
const DATE_FIELDS: &[&str] = &[
    "closed_on",
    "completed_on",
    "departed_on",
    "due_on",
    "end",
    "expected_close_on",
    "from",
    "held_on",
    "occurred_on",
    "opens_on",
    "period_end",
    "period_start",
    "prepared_on",
    "set_on",
    "start",
    "to",
];

/// `min_position` beyond the head makes a read-model query wait 5 s before `UNAVAILABLE`
/// (documented read-your-writes); its extremes would only slow the matrix down.
const SKIP_INTEGER_EXTREMES: &[&str] = &["min_position"];

// ---------------------------------------------------------------- raw bytes over gRPC

/// What a call came back with: `Ok` (accepted) or the status.
type Outcome = Result<(), Status>;

/// Calls `method` with `body` as the request message's bytes.
async fn call(server: &Server, method: &MethodDescriptor, body: Vec<u8>) -> Outcome {
    let mut grpc = tonic::client::Grpc::new(server.channel());
    grpc.ready().await.unwrap();
    let path: http::uri::PathAndQuery =
        format!("/{}/{}", method.parent_service().full_name(), method.name())
            .parse()
            .unwrap();
    let request = tonic::Request::new(body);
    let answer = tokio::time::timeout(Duration::from_secs(20), async {
        if method.is_server_streaming() {
            // A refusal comes as the call's status; an accepted stream is dropped unread.
            grpc.server_streaming(request, path, RawCodec)
                .await
                .map(drop)
        } else {
            grpc.unary(request, path, RawCodec).await.map(drop)
        }
    })
    .await;
    answer.unwrap_or_else(|_| Err(Status::deadline_exceeded("the test gave up after 20 s")))
}

// ---------------------------------------------------------------- valid-looking requests

/// The rich account's version, for `expected_version.exact`.
static STREAM_VERSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The rich account every request names (see `rich_account`).
const ACCOUNT: &str = "globex";

/// A valid-looking value for a string field, by its name.
fn plausible_string(field: &FieldDescriptor) -> String {
    let name = field.name();
    let value = match name {
        "tenant" => TENANT,
        "account_id" => ACCOUNT,
        "actor" | "owner" | "assessed_by" | "prepared_by" | "person_id" | "participants"
        | "supplier_attendees" | "decided_by" => "dana.kim",
        "stakeholder_id"
        | "stakeholders"
        | "customer_attendees"
        | "reports_to"
        | "target_stakeholder_id" => "cfo",
        "plan_id" => "plan-2026",
        "objective_id" => "obj-share",
        "opportunity_id" => "opp-coatings",
        "review_id" | "from_review_id" | "to_review_id" => "qbr-q1",
        "currency" => "EUR",
        "idempotency_key" => "",
        "correlation_id" | "causation_id" => "0190a5a4-7c3e-7d2a-9f1e-2b3c4d5e6f70",
        "event_types" => "InteractionLogged",
        "names" => "timeline",
        "shard" => "s1",
        "page_token" => "",
        "period_start" | "start" | "from" => "2026-01-01",
        "end" | "period_end" => "2026-12-31",
        "to" => "2026-03-31",
        n if DATE_FIELDS.contains(&n) => "2026-02-15",
        n if n.ends_with("_id") || n.ends_with("_ids") => "x-1",
        _ => "Bad input matrix",
    };
    value.to_owned()
}

/// A valid-looking value for a field (`None`: leave it unset).
fn plausible(field: &FieldDescriptor, depth: usize, command: Option<&str>) -> Option<Value> {
    let single = match field.kind() {
        Kind::String => Value::String(plausible_string(field)),
        Kind::Bool => Value::Bool(false),
        Kind::Enum(e) => Value::EnumNumber(e.values().map(|v| v.number()).find(|n| *n != 0)?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(1),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(if field.name() == "minor_units" {
                100_000
            } else {
                1
            })
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(match field.name() {
            "influence" => 3,
            "cadence_days" => 30,
            "score" => 5,
            "weeks" => 4,
            "days" => 30,
            _ => 1,
        }),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(match field.name() {
            "min_position" => 0,
            "exact" => STREAM_VERSION.load(std::sync::atomic::Ordering::Relaxed),
            _ => 1,
        }),
        Kind::Float => Value::F32(1.0),
        Kind::Double => Value::F64(1.0),
        Kind::Bytes => Value::Bytes(Default::default()),
        Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {
            // 2026-03-01, and a day later for the end of a range.
            let later = if field.name().ends_with("_to") {
                86_400
            } else {
                0
            };
            Value::Message(timestamp(1_772_323_200 + later, 0))
        }
        Kind::Message(m) => {
            if depth >= MAX_DEPTH {
                return None;
            }
            Value::Message(filled(&m, depth + 1, command))
        }
    };
    if field.is_map() {
        return None;
    }
    Some(if field.is_list() {
        Value::List(vec![single])
    } else {
        single
    })
}

fn timestamp(seconds: i64, nanos: i32) -> DynamicMessage {
    let pool = pool();
    let desc = pool
        .get_message_by_name("google.protobuf.Timestamp")
        .unwrap();
    let mut m = DynamicMessage::new(desc);
    m.set_field_by_name("seconds", Value::I64(seconds));
    m.set_field_by_name("nanos", Value::I32(nanos));
    m
}

/// A message with every field set to a valid-looking value; of each oneof only the first arm
/// (or, for `keyplan.v1.Command`, the arm named `command`).
fn filled(desc: &MessageDescriptor, depth: usize, command: Option<&str>) -> DynamicMessage {
    let mut m = DynamicMessage::new(desc.clone());
    for field in desc.fields() {
        if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic()) {
            let chosen = match (desc.full_name(), command) {
                ("keyplan.v1.Command", Some(name)) => name.to_owned(),
                // `any` would refuse every edit of shared content before its fields are read.
                ("keyplan.v1.ExpectedVersion", _) => "exact".to_owned(),
                _ => oneof.fields().next().unwrap().name().to_owned(),
            };
            if field.name() != chosen {
                continue;
            }
        }
        if let Some(value) = plausible(&field, depth, command) {
            m.set_field(&field, value);
        }
    }
    m
}

// ---------------------------------------------------------------- the broken variants

/// What a broken request must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Expect {
    /// `INVALID_ARGUMENT`.
    Invalid,
    /// Any answer but a server error (the value may be legal, e.g. a huge page number).
    NoServerError,
    /// `OUT_OF_RANGE`: a message beyond gRPC's 4 MiB limit (tonic's code for it).
    TooLarge,
}

/// One broken request.
struct Case {
    /// `Service/Method field: what`.
    what: String,
    /// Groups cases in the summary.
    kind: &'static str,
    body: Vec<u8>,
    expect: Expect,
    /// The broken field's own name (empty for undecodable bodies).
    leaf: String,
}

/// A broken value for a field, with what it is and what it must get.
struct Broken {
    label: String,
    leaf: String,
    kind: &'static str,
    value: Value,
    expect: Expect,
}

fn broken(label: impl Into<String>, kind: &'static str, value: Value, expect: Expect) -> Broken {
    Broken {
        label: label.into(),
        leaf: String::new(),
        kind,
        value,
        expect,
    }
}

/// The broken values of a scalar (or Timestamp) field.
fn broken_leaf(field: &FieldDescriptor, depth: usize) -> Vec<Broken> {
    use Expect::*;
    let name = field.name();
    match field.kind() {
        Kind::String => {
            // 1 MiB at the top and in every date field (a 1 MB `prepared_on` is what the outside
            // tester sent), 64 KiB in other nested fields.
            let size = if depth == 0 || DATE_FIELDS.contains(&name) {
                OVERSIZED
            } else {
                OVERSIZED_NESTED
            };
            let mut out = vec![
                broken(
                    format!("{size} bytes"),
                    "oversized string",
                    Value::String("7".repeat(size)),
                    Invalid,
                ),
                broken(
                    "NUL",
                    "control character",
                    Value::String(format!("{}\0x", plausible_string(field))),
                    Invalid,
                ),
                broken(
                    "ESC",
                    "control character",
                    Value::String(format!("{}\u{1b}[2J", plausible_string(field))),
                    Invalid,
                ),
            ];
            if DATE_FIELDS.contains(&name) {
                for bad in [
                    "2026-1-1",
                    "2026-01-1",
                    "0000-01-01",
                    "1899-12-31",
                    "2026-02-30",
                    "+2026-01-01",
                    " 2026-01-01",
                    "2026-01-01T00:00:00Z",
                    "20260101",
                    "99999-01-01",
                    "٢٠٢٦-٠١-٠١",
                ] {
                    out.push(broken(
                        format!("{bad:?}"),
                        "bad date",
                        Value::String(bad.into()),
                        Invalid,
                    ));
                }
            }
            out
        }
        Kind::Enum(_) => [99, -1, i32::MAX, i32::MIN]
            .into_iter()
            .map(|n| {
                broken(
                    format!("enum {n}"),
                    "unknown enum value",
                    Value::EnumNumber(n),
                    Invalid,
                )
            })
            .collect(),
        Kind::Int64 if name == "minor_units" => [i64::MAX, i64::MIN, -1, 1_000_000_000_000_001]
            .into_iter()
            .map(|n| {
                broken(
                    format!("money {n}"),
                    "money extreme",
                    Value::I64(n),
                    Invalid,
                )
            })
            .collect(),
        _ if SKIP_INTEGER_EXTREMES.contains(&name) => Vec::new(),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => [i64::MAX, i64::MIN, -1]
            .into_iter()
            .map(|n| {
                broken(
                    format!("{n}"),
                    "integer extreme",
                    Value::I64(n),
                    NoServerError,
                )
            })
            .collect(),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => [i32::MAX, i32::MIN, -1]
            .into_iter()
            .map(|n| {
                broken(
                    format!("{n}"),
                    "integer extreme",
                    Value::I32(n),
                    NoServerError,
                )
            })
            .collect(),
        Kind::Uint64 | Kind::Fixed64 => [u64::MAX, u64::from(u32::MAX) + 1]
            .into_iter()
            .map(|n| {
                broken(
                    format!("{n}"),
                    "integer extreme",
                    Value::U64(n),
                    NoServerError,
                )
            })
            .collect(),
        Kind::Uint32 | Kind::Fixed32 => [u32::MAX, 256, 0]
            .into_iter()
            .map(|n| {
                broken(
                    format!("{n}"),
                    "integer extreme",
                    Value::U32(n),
                    NoServerError,
                )
            })
            .collect(),
        Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => [
            ("seconds i64::MAX", timestamp(i64::MAX, 0)),
            ("seconds i64::MIN", timestamp(i64::MIN, 0)),
            ("year 10000", timestamp(253_402_300_800, 0)),
            ("nanos -1", timestamp(1_772_323_200, -1)),
            ("nanos 10^9", timestamp(1_772_323_200, 1_000_000_000)),
        ]
        .into_iter()
        .map(|(label, t)| broken(label, "bad timestamp", Value::Message(t), Invalid))
        .collect(),
        _ => Vec::new(),
    }
}

/// Every broken variant of `message`: one field broken at a time, nested fields included.
fn broken_variants(message: &DynamicMessage, depth: usize) -> Vec<Broken> {
    let desc = message.descriptor();
    let mut out = Vec::new();
    for field in desc.fields() {
        if field.is_map() {
            continue;
        }
        // The other commands are baselines of their own.
        if desc.full_name() == "keyplan.v1.Command" && !message.has_field(&field) {
            continue;
        }
        let current = if message.has_field(&field) {
            message.get_field(&field).into_owned()
        } else {
            match plausible(&field, depth, None) {
                Some(v) => v,
                None => continue,
            }
        };
        let element = match &current {
            Value::List(items) => match items.first() {
                Some(first) => first.clone(),
                None => continue,
            },
            other => other.clone(),
        };
        let mut variants = broken_leaf(&field, depth);
        for b in &mut variants {
            // Money is refused naming the amount's field and "minor units".
            b.leaf = match field.name() {
                "minor_units" => "minor units".to_owned(),
                name => name.to_owned(),
            };
        }
        if let (Kind::Message(m), Value::Message(inner)) = (field.kind(), &element) {
            if m.full_name() != "google.protobuf.Timestamp" && depth < MAX_DEPTH {
                for b in broken_variants(inner, depth + 1) {
                    variants.push(Broken {
                        label: format!(".{}", b.label),
                        ..b
                    });
                }
            }
        }
        for b in variants {
            let mut m = message.clone();
            let value = if field.is_list() {
                Value::List(vec![b.value])
            } else {
                b.value
            };
            m.set_field(&field, value);
            let label = if b.label.starts_with('.') {
                format!("{}{}", field.name(), b.label)
            } else {
                format!("{}: {}", field.name(), b.label)
            };
            out.push(Broken {
                label,
                leaf: b.leaf,
                kind: b.kind,
                value: Value::Message(m),
                expect: b.expect,
            });
        }
    }
    out
}

/// Bodies no protobuf decoder accepts; `string_field` is the number of a top-level string
/// field, if the request has one.
fn undecodable(string_field: Option<u32>) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![
        ("bytes 0e 01 (wire type 6)", vec![0x0e, 0x01]),
        ("truncated varint", vec![0x08, 0xff]),
        ("11-byte varint", {
            let mut v = vec![0x08];
            v.extend([0xff; 10]);
            v.push(0x01);
            v
        }),
        ("field number 0", vec![0x00, 0x01]),
        ("length beyond the body", vec![0x0a, 0x7f, 0x61]),
        ("groups nested 200 deep", vec![0x0b; 200]),
        ("unterminated group", vec![0x0b, 0x08, 0x01]),
    ];
    if let Some(n) = string_field {
        let mut v = Vec::new();
        prost::encoding::encode_key(n, prost::encoding::WireType::LengthDelimited, &mut v);
        v.extend([0x03, 0x61, 0xff, 0xfe]);
        out.push(("invalid UTF-8 in a string field", v));
    }
    out
}

fn pool() -> DescriptorPool {
    static POOL: std::sync::OnceLock<DescriptorPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(keyplan_proto::FILE_DESCRIPTOR_SET).unwrap())
        .clone()
}

/// The valid-looking request of every RPC that stores nothing (all but the commands and
/// RebuildProjections, which would start a rebuild).
fn read_baselines() -> Vec<(MethodDescriptor, Vec<u8>)> {
    let pool = pool();
    let mut out = Vec::new();
    for service in pool.services() {
        for method in service.methods() {
            if service.name() == "CommandService" || method.name() == "RebuildProjections" {
                continue;
            }
            out.push((
                method.clone(),
                filled(&method.input(), 0, None).encode_to_vec(),
            ));
        }
    }
    out
}

/// Every case of every keyplan RPC.
fn matrix() -> Vec<(MethodDescriptor, Case)> {
    let pool = pool();
    let commands: Vec<String> = pool
        .get_message_by_name("keyplan.v1.Command")
        .unwrap()
        .fields()
        .map(|f| f.name().to_owned())
        .collect();
    let mut out = Vec::new();
    // The health service (tonic-health's, with its own codec) gets the undecodable bodies too.
    let health = DescriptorPool::decode(tonic_health::pb::FILE_DESCRIPTOR_SET).unwrap();
    for service in health.services() {
        for method in service.methods() {
            let rpc = format!("{}/{}", service.name(), method.name());
            for (what, body) in undecodable(Some(1)) {
                out.push((
                    method.clone(),
                    Case {
                        what: format!("{rpc}: {what}"),
                        kind: "undecodable body",
                        body,
                        expect: Expect::Invalid,
                        leaf: String::new(),
                    },
                ));
            }
        }
    }
    for service in pool.services() {
        for method in service.methods() {
            let rpc = format!("{}/{}", service.name(), method.name());
            let input = method.input();
            let string_field = input
                .fields()
                .find(|f| matches!(f.kind(), Kind::String))
                .map(|f| f.number());
            for (what, body) in undecodable(string_field) {
                out.push((
                    method.clone(),
                    Case {
                        what: format!("{rpc}: {what}"),
                        kind: "undecodable body",
                        body,
                        expect: Expect::Invalid,
                        leaf: String::new(),
                    },
                ));
            }
            // A message beyond the 4 MiB limit: a 5 MiB string in the first string field.
            if let Some(n) = string_field {
                let mut body = Vec::new();
                prost::encoding::string::encode(n, &"x".repeat(5 << 20), &mut body);
                out.push((
                    method.clone(),
                    Case {
                        what: format!("{rpc}: a 5 MiB message"),
                        kind: "message too large",
                        body,
                        expect: Expect::TooLarge,
                        leaf: String::new(),
                    },
                ));
            }
            // One baseline per command kind for requests holding commands: every kind's fields
            // are broken in Execute; ExecuteBatch breaks its envelope and one command kind.
            let holds_commands = input.fields().any(
                |f| matches!(f.kind(), Kind::Message(m) if m.full_name() == "keyplan.v1.Command"),
            );
            let baselines: Vec<Option<&str>> = match (holds_commands, method.name()) {
                (false, _) => vec![None],
                (true, "Execute") => commands.iter().map(|c| Some(c.as_str())).collect(),
                (true, _) => vec![Some("log_interaction")],
            };
            for (i, command) in baselines.into_iter().enumerate() {
                let baseline = filled(&input, 0, command);
                for b in broken_variants(&baseline, 0) {
                    // The envelope's fields once, the command's for every kind.
                    if i > 0 && !b.label.starts_with("command") {
                        continue;
                    }
                    let Value::Message(m) = b.value else {
                        unreachable!()
                    };
                    let label = match command {
                        Some(c) if b.label.starts_with("command") => format!("[{c}] {}", b.label),
                        _ => b.label,
                    };
                    out.push((
                        method.clone(),
                        Case {
                            what: format!("{rpc} {label}"),
                            kind: b.kind,
                            body: m.encode_to_vec(),
                            expect: b.expect,
                            leaf: b.leaf,
                        },
                    ));
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------- the run

/// Sets up an account with a plan, an objective, an opportunity, a stakeholder and a review,
/// so that the broken requests name things that exist.
async fn rich_account(server: &Server) {
    onboard(server, ACCOUNT).await;
    let mut c = server.commands();
    let setup = [pb_kind_objective(), pb_kind_opportunity(), pb_kind_review()];
    for (i, kind) in setup.into_iter().enumerate() {
        // Onboarding wrote versions 1-5.
        c.execute(exact(request(ACCOUNT, kind), 5 + i as u64))
            .await
            .expect("setup command succeeds");
    }
}

fn pb_kind_objective() -> keyplan_proto::pb::command::Kind {
    use keyplan_proto::pb;
    pb::command::Kind::SetObjective(pb::ObjectiveSet {
        objective_id: "obj-share".into(),
        plan_id: "plan-2026".into(),
        title: "Grow share of wallet".into(),
        metric: "share of wallet".into(),
        target: "35%".into(),
        due_on: "2026-12-31".into(),
        owner: "dana.kim".into(),
        status: pb::ObjectiveStatus::OnTrack as i32,
    })
}

fn pb_kind_opportunity() -> keyplan_proto::pb::command::Kind {
    use keyplan_proto::pb;
    pb::command::Kind::IdentifyOpportunity(pb::OpportunityIdentified {
        opportunity_id: "opp-coatings".into(),
        title: "Coatings line".into(),
        value: Some(pb::Money {
            currency: "EUR".into(),
            minor_units: 25_000_000,
        }),
        stage: pb::OpportunityStage::Qualified as i32,
        expected_close_on: "2026-09-30".into(),
        owner: "lee.chan".into(),
    })
}

fn pb_kind_review() -> keyplan_proto::pb::command::Kind {
    use keyplan_proto::pb;
    pb::command::Kind::ScheduleReview(pb::ReviewScheduled {
        review_id: "qbr-q1".into(),
        kind: pb::ReviewKind::QuarterlyBusinessReview as i32,
        plan_id: "plan-2026".into(),
        due_on: "2026-12-15".into(),
        supplier_attendees: vec!["dana.kim".into()],
        customer_attendees: vec!["cfo".into()],
    })
}

/// An `expected_version.exact` of `version` for a command request, as bytes to append.
fn current_version(method: &MethodDescriptor, version: u64) -> Vec<u8> {
    use keyplan_proto::pb;
    let expected = Some(pb::ExpectedVersion {
        kind: Some(pb::expected_version::Kind::Exact(version)),
    });
    match method.name() {
        "Execute" => pb::ExecuteRequest {
            expected_version: expected,
            ..Default::default()
        }
        .encode_to_vec(),
        "ExecuteBatch" => pb::ExecuteBatchRequest {
            expected_version: expected,
            ..Default::default()
        }
        .encode_to_vec(),
        _ => Vec::new(),
    }
}

/// Why a case failed, if it did.
fn verdict(expect: Expect, outcome: &Outcome, head_moved: bool) -> Option<String> {
    let mut problems = Vec::new();
    match (expect, outcome) {
        (Expect::Invalid, Ok(())) => problems.push("accepted".to_owned()),
        (Expect::Invalid, Err(s)) if s.code() != Code::InvalidArgument => {
            problems.push(format!("{:?}", s.code()))
        }
        (Expect::TooLarge, Ok(())) => problems.push("accepted".to_owned()),
        (Expect::TooLarge, Err(s)) if s.code() != Code::OutOfRange => {
            problems.push(format!("{:?}", s.code()))
        }
        (Expect::NoServerError, Err(s))
            if matches!(
                s.code(),
                Code::Internal | Code::Unknown | Code::ResourceExhausted | Code::DataLoss
            ) =>
        {
            problems.push(format!("{:?}", s.code()))
        }
        _ => {}
    }
    if let Err(s) = outcome {
        if s.message().len() > MAX_MESSAGE {
            problems.push(format!("message of {} bytes", s.message().len()));
        }
    }
    if head_moved && expect != Expect::NoServerError {
        problems.push("stored events".to_owned());
    }
    (!problems.is_empty()).then(|| problems.join(", "))
}

#[tokio::test]
async fn every_rpc_refuses_bad_input_with_invalid_argument_a_bounded_message_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    rich_account(&server).await;
    STREAM_VERSION.store(head(&server).await, std::sync::atomic::Ordering::Relaxed);

    let cases = matrix();
    if std::env::var_os("BAD_INPUT_LIST").is_some() {
        for (_, case) in &cases {
            println!("CASE [{}] {}", case.kind, case.what);
        }
    }
    let mut failures: Vec<(String, &'static str, String)> = Vec::new();
    let mut per_kind: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    let mut rpcs = std::collections::BTreeSet::new();
    let mut last_head = head(&server).await;
    let (mut named, mut refused) = (0, 0);
    for (method, case) in &cases {
        rpcs.insert(method.full_name().to_owned());
        let mut body = case.body.clone();
        if case.kind != "undecodable body" && !case.what.contains("expected_version") {
            // The account's current version (last field wins), so that a case stored by
            // mistake is reported once rather than failing every later edit with ABORTED.
            body.extend(current_version(method, last_head));
        }
        let outcome = call(&server, method, body).await;
        let now = head(&server).await;
        let moved = now != last_head;
        last_head = now;
        if let (Err(s), false) = (&outcome, case.leaf.is_empty()) {
            if s.code() == Code::InvalidArgument {
                refused += 1;
                if s.message().contains(case.leaf.as_str()) {
                    named += 1;
                } else if std::env::var_os("BAD_INPUT_UNNAMED").is_some() {
                    println!(
                        "UNNAMED {} -> {}",
                        case.what.chars().take(150).collect::<String>(),
                        s.message().chars().take(200).collect::<String>()
                    );
                }
            }
        }
        let entry = per_kind.entry(case.kind).or_default();
        entry.0 += 1;
        if let Some(problem) = verdict(case.expect, &outcome, moved) {
            entry.1 += 1;
            let message: String = match &outcome {
                Ok(()) => String::new(),
                Err(s) => s.message().chars().take(160).collect(),
            };
            failures.push((
                case.what.chars().take(200).collect(),
                case.kind,
                format!("{problem}: {message}"),
            ));
        }
    }

    // The valid-looking requests themselves pass validation, so the refusals above are the
    // broken field's doing.
    for (method, body) in read_baselines() {
        let outcome = call(&server, &method, body).await;
        if let Err(s) = &outcome {
            if matches!(
                s.code(),
                Code::InvalidArgument | Code::Internal | Code::Unknown | Code::ResourceExhausted
            ) {
                failures.push((
                    format!("{} (the valid-looking request)", method.full_name()),
                    "baseline",
                    format!("{:?}: {}", s.code(), s.message()),
                ));
            }
        }
    }

    println!(
        "bad-input matrix: {} cases over {} RPCs",
        cases.len(),
        rpcs.len()
    );
    println!("  {named} of {refused} refusals of a broken field name that field in the message");
    for (kind, (sent, failed)) in &per_kind {
        println!("  {kind:<20} {sent:>5} sent, {failed:>4} wrong");
    }
    for (what, kind, problem) in &failures {
        println!("FAIL [{kind}] {what} -> {problem}");
    }
    assert!(
        rpcs.len() >= 27,
        "the matrix covers every RPC, got {rpcs:?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs got a wrong answer (listed above)",
        failures.len(),
        cases.len()
    );
}
