//! How the CLI prints: tables and an indented outline for a person, proto3 JSON for scripts.

use std::io::{IsTerminal, Write};

use comfy_table::{presets, ContentArrangement, Table};
use prost_reflect::{DynamicMessage, Kind, ReflectMessage, SerializeOptions, Value};

use super::enums::{label, pool};
use super::CliError;

/// Where and how answers go.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Print the API's JSON instead of tables.
    pub json: bool,
    /// Colour the statuses (a terminal, and `NO_COLOR` not set).
    pub colour: bool,
    /// stderr is a terminal (progress bars rather than progress lines).
    pub progress_bars: bool,
}

/// What a status means, for its colour.
#[derive(Debug, Clone, Copy)]
pub enum Tone {
    /// Kept, on time.
    Good,
    /// Needs attention soon.
    Warning,
    /// Late, missed, broken.
    Bad,
}

impl Output {
    /// Colours follow <https://no-color.org>: any non-empty `NO_COLOR` turns them off.
    pub fn new(json: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            json,
            colour: !json && !no_color && std::io::stdout().is_terminal(),
            progress_bars: std::io::stderr().is_terminal(),
        }
    }

    /// `text` in the colour of `tone`, when colours are on.
    pub fn paint(&self, text: &str, tone: Tone) -> String {
        if !self.colour || text.is_empty() {
            return text.to_owned();
        }
        let code = match tone {
            Tone::Good => "32",
            Tone::Warning => "33",
            Tone::Bad => "31;1",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// Prints `message` (a `full_name` message of the API) as pretty proto3 JSON.
    pub fn json<M: prost::Message>(&self, full_name: &str, message: &M) -> Result<(), CliError> {
        let value = to_json(full_name, message)?;
        print_line(&serde_json::to_string_pretty(&value).unwrap_or_default())
    }

    /// Prints `message` as JSON on one line (a stream's items).
    pub fn json_line<M: prost::Message>(
        &self,
        full_name: &str,
        message: &M,
    ) -> Result<(), CliError> {
        let value = to_json(full_name, message)?;
        print_line(&value.to_string())
    }
}

/// `message` as proto3 JSON, every field present (defaults too: scripts find every key).
pub fn to_json<M: prost::Message>(
    full_name: &str,
    message: &M,
) -> Result<serde_json::Value, CliError> {
    let dynamic = dynamic(full_name, message)?;
    let options = SerializeOptions::new().skip_default_fields(false);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| CliError::Usage(format!("cannot print {full_name} as JSON: {e}")))
}

fn dynamic<M: prost::Message>(full_name: &str, message: &M) -> Result<DynamicMessage, CliError> {
    let descriptor = pool()
        .get_message_by_name(full_name)
        .ok_or_else(|| CliError::Usage(format!("unknown message {full_name}")))?;
    DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|e| CliError::Usage(format!("cannot read {full_name}: {e}")))
}

/// Prints a line to stdout; a closed pipe (`| head`) ends quietly.
pub fn print_line(line: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{line}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(CliError::Io {
            what: "writing to stdout".to_owned(),
            source: e,
        }),
        Ok(()) => Ok(()),
    }
}

/// A table with a header row and no borders, as wide as the terminal allows.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    table
}

/// Prints a table (and nothing for an empty one but `empty`).
pub fn print_table(table: &Table, empty: &str) -> Result<(), CliError> {
    if table.row_count() == 0 {
        return print_line(empty);
    }
    for line in table.lines() {
        print_line(line.trim_end())?;
    }
    Ok(())
}

/// Prints `message` as an indented outline of its fields (those that are set): enums by their
/// short names, instants in RFC 3339, bytes in hex. For answers too varied for one table.
pub fn outline<M: prost::Message>(full_name: &str, message: &M) -> Result<(), CliError> {
    let dynamic = dynamic(full_name, message)?;
    let mut out = String::new();
    write_message(&mut out, &dynamic, 0);
    print_line(out.trim_end())
}

fn write_message(out: &mut String, message: &DynamicMessage, depth: usize) {
    for (field, value) in message.fields() {
        write_field(out, field.name(), &field.kind(), value, depth);
    }
}

fn write_field(out: &mut String, name: &str, kind: &Kind, value: &Value, depth: usize) {
    let indent = "  ".repeat(depth);
    match value {
        Value::List(items) => {
            out.push_str(&format!("{indent}{name}:\n"));
            // As YAML writes a list: a message item's fields two levels deeper, the first
            // one's indent turned into a `- ` marker; a scalar after the marker.
            let deeper = "  ".repeat(depth + 2);
            let marker = format!("{indent}  - ");
            for item in items {
                let mut one = String::new();
                match item {
                    Value::Message(m)
                        if m.descriptor().full_name() != "google.protobuf.Timestamp" =>
                    {
                        write_message(&mut one, m, depth + 2);
                        out.push_str(&marker);
                        out.push_str(one.strip_prefix(&deeper).unwrap_or(&one));
                    }
                    _ => {
                        write_field(&mut one, "", kind, item, 0);
                        out.push_str(&marker);
                        out.push_str(one.strip_prefix(": ").unwrap_or(&one));
                    }
                }
            }
        }
        Value::Message(m) if m.descriptor().full_name() == "google.protobuf.Timestamp" => {
            let t = prost_types::Timestamp {
                seconds: m
                    .get_field_by_name("seconds")
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0),
                nanos: m
                    .get_field_by_name("nanos")
                    .and_then(|v| v.as_i32())
                    .unwrap_or(0),
            };
            out.push_str(&format!("{indent}{name}: {}\n", super::time::rfc3339(&t)));
        }
        Value::Message(m) => {
            out.push_str(&format!("{indent}{name}:\n"));
            write_message(out, m, depth + 1);
        }
        Value::EnumNumber(n) => {
            let text = match kind {
                Kind::Enum(e) => label(e.full_name(), *n),
                _ => n.to_string(),
            };
            out.push_str(&format!("{indent}{name}: {text}\n"));
        }
        Value::Bytes(b) => out.push_str(&format!("{indent}{name}: {}\n", hex(b))),
        Value::String(s) if s.contains('\n') => {
            out.push_str(&format!("{indent}{name}: |\n"));
            for line in s.lines() {
                out.push_str(&format!("{indent}  {line}\n"));
            }
        }
        Value::String(s) => out.push_str(&format!("{indent}{name}: {s}\n")),
        Value::Bool(b) => out.push_str(&format!("{indent}{name}: {b}\n")),
        Value::I32(n) => out.push_str(&format!("{indent}{name}: {n}\n")),
        Value::I64(n) => out.push_str(&format!("{indent}{name}: {n}\n")),
        Value::U32(n) => out.push_str(&format!("{indent}{name}: {n}\n")),
        Value::U64(n) => out.push_str(&format!("{indent}{name}: {n}\n")),
        Value::F32(n) => out.push_str(&format!("{indent}{name}: {n}\n")),
        Value::F64(n) => out.push_str(&format!("{indent}{name}: {n}\n")),
        Value::Map(map) => {
            out.push_str(&format!("{indent}{name}:\n"));
            for (key, value) in map {
                write_field(out, &format!("{key:?}"), kind, value, depth + 1);
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `text` cut to `max` characters, with an ellipsis when cut (tables stay one line per row).
pub fn cut(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\r', '\t'], " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// The number of decimals of a currency's minor unit (ISO 4217; 2 for those not listed).
pub fn currency_decimals(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// Money as `12,500.00 EUR`, with the currency's ISO 4217 number of decimals (the API
/// carries minor units, so the amount is exact).
pub fn money(m: &keyplan_proto::pb::Money) -> String {
    let decimals = currency_decimals(&m.currency);
    let scale = 10_i64.pow(decimals);
    let digits = (m.minor_units / scale).unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if m.minor_units < 0 { "-" } else { "" };
    let fraction = if decimals == 0 {
        String::new()
    } else {
        format!(
            ".{:0width$}",
            (m.minor_units % scale).unsigned_abs(),
            width = decimals as usize
        )
    };
    format!("{sign}{grouped}{fraction} {}", m.currency)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use keyplan_proto::pb;

    #[test]
    fn json_names_fields_as_the_api_does_and_keeps_defaults() {
        let summary = pb::AccountSummary {
            account_id: "globex".into(),
            tier: pb::Tier::Key as i32,
            version: 7,
            ..Default::default()
        };
        let json = to_json("keyplan.v1.AccountSummary", &summary).unwrap();
        assert_eq!(json["accountId"], "globex");
        assert_eq!(json["tier"], "TIER_KEY");
        assert_eq!(json["version"], "7");
        assert_eq!(json["stakeholders"], 0);
    }

    #[test]
    fn money_and_cut() {
        let m = pb::Money {
            currency: "EUR".into(),
            minor_units: 125_000_005,
        };
        assert_eq!(money(&m), "1,250,000.05 EUR");
        let yen = pb::Money {
            currency: "JPY".into(),
            minor_units: 1500,
        };
        assert_eq!(money(&yen), "1,500 JPY");
        assert_eq!(cut("a\nbcdef", 4), "a b…");
    }
}
