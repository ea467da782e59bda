//! `keyplan demo seed`: a realistic, deterministic key-account portfolio written into a running
//! node over the public API (`CommandService/ExecuteBatch`), to try Keyplan on.
//!
//! **What it writes.** Per account: registration, a weighted tier assessment (and, for some, a
//! promotion or a deliberate demotion), the key account team, a decision-making unit of 3 to 6
//! stakeholders whose attitudes and roles change (and, on some accounts, a departure and a
//! successor), a plan with its sections, objectives that progress, opportunities that move
//! through the stages and are won or lost, monthly revenue against a goal, 1 to 3 engagement
//! rules, months of interactions and reviews held at the plan's frequency. Accounts take turns
//! at three stories, so that even a small portfolio shows each: the engagement plan **kept**
//! (account 1, 4, ...), **slipping** (a rule overdue; a stakeholder leaves), **neglected** (a
//! rule never met, a review window missed; every other one re-assessed and demoted). One
//! interaction is logged as an e-mail and then corrected to the lunch meeting it was; another
//! is logged late, after everything that happened since (all events are recorded at seeding
//! time, so "late" shows as its place in the stream, after events whose business time is later).
//!
//! **Determinism.** Everything but the absolute dates comes from `--seed`, through a splitmix64
//! generator written here (a dozen lines; no crate needed), one independent stream per account
//! so that `--accounts 3` gives the first three accounts of `--accounts 12`. Dates are relative
//! to today (UTC): the history covers `--months` months and ends yesterday, every business time
//! lies before today 00:00 UTC, so every command is valid whatever the date.
//!
//! **Running it again.** Every batch carries the idempotency key
//! `demo:<seed>:<account>:<batch number>`. The same seed on the same (UTC) day sends exactly the
//! same commands, which the node answers as retries: nothing new is recorded, and the summary
//! says so (an interrupted run is completed). On another day the dates differ, so the node
//! refuses the reused key; the seed then stops with a message naming the account, writing
//! nothing more (seed another `--tenant` or `--seed`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeZone, Utc};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use keyplan_proto::pb;
use keyplan_proto::pb::command::Kind;
use keyplan_proto::pb::command_service_client::CommandServiceClient;

use super::args::{DemoArgs, DemoCommand, SeedArgs};
use super::output::print_line;
use super::time::timestamp;
use super::{CliError, Session};

/// The tenant seeded when neither `--tenant` nor a token names one.
pub const DEFAULT_TENANT: &str = "demo";
/// `--server`'s default (left out of the commands suggested at the end).
const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";
/// Accounts seeded at the same time (each account's batches are sent in order).
const CONCURRENCY: usize = 4;
/// Most commands in one `ExecuteBatch` (the node's limit).
const MAX_BATCH: usize = 100;

/// Runs one `keyplan demo` subcommand.
pub async fn run(args: DemoArgs) -> Result<(), CliError> {
    let mut client = args.client;
    if client.tenant.is_none() && client.node.token.is_none() {
        client.tenant = Some(DEFAULT_TENANT.to_owned());
    }
    // Without a token or --actor, each batch is written by the person who did it (the key
    // account manager); a node with authentication only accepts the token's subject.
    let fixed_actor = client.actor.is_some() || client.node.token.is_some();
    let server = client.node.server.clone();
    let session = Session::open(&client).await?;
    match args.command {
        DemoCommand::Seed(seed_args) => seed(&session, &seed_args, fixed_actor, &server).await,
    }
}

// ================================================================= sending

/// What one account's batches did on the node.
#[derive(Debug, Default)]
struct Sent {
    events: u64,
    batches: u64,
    repeated: u64,
}

async fn seed(
    s: &Session,
    args: &SeedArgs,
    fixed_actor: bool,
    server: &str,
) -> Result<(), CliError> {
    let started = Instant::now();
    let today = Utc::now().date_naive();
    let scripts = portfolio(args.seed, args.accounts, args.months, today);
    let total: u64 = scripts.iter().map(|a| a.batches.len() as u64).sum();
    let progress = Progress::new(s.out.progress_bars && !s.out.json, total);
    let results: Vec<Result<Sent, CliError>> = futures::stream::iter(
        scripts
            .iter()
            .map(|a| send_account(s, args.seed, a, fixed_actor, &progress)),
    )
    .buffered(CONCURRENCY)
    .collect()
    .await;
    progress.finish();
    let mut sent = Sent::default();
    for result in results {
        let r = result?;
        sent.events += r.events;
        sent.batches += r.batches;
        sent.repeated += r.repeated;
    }
    summary(s, args, &scripts, &sent, started.elapsed(), today, server)
}

async fn send_account(
    s: &Session,
    seed: u64,
    a: &AccountScript,
    fixed_actor: bool,
    progress: &Progress,
) -> Result<Sent, CliError> {
    let mut client = CommandServiceClient::new(s.channel.clone());
    let mut sent = Sent::default();
    let mut version: Option<u64> = None;
    for (n, batch) in a.batches.iter().enumerate() {
        let expected = match version {
            None => pb::expected_version::Kind::NoStream(true),
            Some(v) => pb::expected_version::Kind::Exact(v),
        };
        let request = pb::ExecuteBatchRequest {
            tenant: s.tenant.clone(),
            account_id: a.id.clone(),
            expected_version: Some(pb::ExpectedVersion {
                kind: Some(expected),
            }),
            idempotency_key: format!("demo:{seed}:{}:{n}", a.id),
            actor: if fixed_actor {
                s.actor.clone()
            } else {
                a.actor.clone()
            },
            occurred_at: batch.at.map(timestamp),
            commands: batch
                .commands
                .iter()
                .map(|k| pb::Command {
                    kind: Some(k.clone()),
                })
                .collect(),
            ..Default::default()
        };
        let response = match client.execute_batch(request).await {
            Ok(r) => r.into_inner(),
            Err(status) => return Err(refused(a, n, status)),
        };
        version = Some(response.last_version);
        let events = if response.deduplicated {
            sent.repeated += 1;
            0
        } else {
            sent.batches += 1;
            response.event_ids.len() as u64
        };
        sent.events += events;
        progress.advance(events);
    }
    Ok(sent)
}

/// A refusal, with what to do about it.
fn refused(a: &AccountScript, batch: usize, status: tonic::Status) -> CliError {
    use tonic::Code;
    let first = batch == 0;
    match status.code() {
        Code::Aborted | Code::AlreadyExists | Code::FailedPrecondition if first => {
            CliError::Usage(format!(
                "account {} ({}) already exists on this node with other content (seeded on \
                 another day, with other --months, or by hand), so the demo did not touch it; \
                 seed another tenant (e.g. --tenant demo-2) or another --seed. The node said: {}",
                a.id,
                a.name,
                status.message()
            ))
        }
        Code::FailedPrecondition if status.message().contains("idempotency key") => {
            CliError::Usage(format!(
                "account {} was seeded with this seed before, but with other dates or options, \
                 so the demo stopped rather than mix two histories; seed another tenant (e.g. \
                 --tenant demo-2) or another --seed. The node said: {}",
                a.id,
                status.message()
            ))
        }
        _ => CliError::Usage(format!(
            "the demo's batch {batch} for account {} was refused: {}",
            a.id,
            CliError::Status(status)
        )),
    }
}

/// A bar on a terminal, else a plain line every two seconds and one at the end (on stderr).
struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    done: AtomicU64,
    events: AtomicU64,
    last_line: Mutex<Instant>,
}

impl Progress {
    fn new(bar: bool, total: u64) -> Self {
        let bar = bar.then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} seeding [{bar:30}] {pos}/{len} batches, {msg} ({elapsed})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message("0 events");
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            bar,
            total,
            done: AtomicU64::new(0),
            events: AtomicU64::new(0),
            last_line: Mutex::new(Instant::now()),
        }
    }

    fn advance(&self, events: u64) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let written = self.events.fetch_add(events, Ordering::Relaxed) + events;
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                bar.set_message(format!("{written} events"));
            }
            None => {
                if let Ok(mut last) = self.last_line.lock() {
                    if last.elapsed() >= Duration::from_secs(2) {
                        eprintln!(
                            "seeding: {done}/{} batches, {written} events written",
                            self.total
                        );
                        *last = Instant::now();
                    }
                }
            }
        }
    }

    fn finish(&self) {
        let done = self.done.load(Ordering::Relaxed);
        let written = self.events.load(Ordering::Relaxed);
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => eprintln!(
                "seeding: {done}/{} batches, {written} events written",
                self.total
            ),
        }
    }
}

fn summary(
    s: &Session,
    args: &SeedArgs,
    scripts: &[AccountScript],
    sent: &Sent,
    elapsed: Duration,
    today: NaiveDate,
    server: &str,
) -> Result<(), CliError> {
    if s.out.json {
        let accounts: Vec<serde_json::Value> = scripts
            .iter()
            .map(|a| {
                serde_json::json!({
                    "accountId": a.id,
                    "name": a.name,
                    "story": a.story.describe(),
                })
            })
            .collect();
        let value = serde_json::json!({
            "tenant": s.tenant,
            "seed": args.seed.to_string(),
            "months": args.months,
            "accounts": accounts,
            "eventsWritten": sent.events.to_string(),
            "batchesWritten": sent.batches.to_string(),
            "batchesAlreadyStored": sent.repeated.to_string(),
        });
        return print_line(&serde_json::to_string_pretty(&value).unwrap_or_default());
    }
    let seconds = elapsed.as_secs_f64();
    if sent.batches == 0 {
        print_line(&format!(
            "nothing new was recorded: the {} accounts of seed {} were already seeded today in \
             tenant {} (all {} batches were answered as retries) ({seconds:.1} s)",
            scripts.len(),
            args.seed,
            s.tenant,
            sent.repeated
        ))?;
    } else {
        let again = if sent.repeated > 0 {
            format!(
                "; {} batches were already stored and not written again",
                sent.repeated
            )
        } else {
            String::new()
        };
        print_line(&format!(
            "seeded {} accounts in tenant {}: {} events in {} batches, {} months of history up \
             to {} (seed {}), in {seconds:.1} s{again}",
            scripts.len(),
            s.tenant,
            sent.events,
            sent.batches,
            args.months,
            today.pred_opt().unwrap_or(today),
            args.seed
        ))?;
    }
    print_line("")?;
    for a in scripts {
        print_line(&format!(
            "  {:<34} {:<32} {}",
            a.id,
            a.name,
            a.story.describe()
        ))?;
    }
    let mut flags = format!(" --tenant {}", s.tenant);
    if server != DEFAULT_SERVER {
        flags = format!(" --server {server}{flags}");
    }
    print_line("")?;
    print_line("next, try:")?;
    print_line(&format!("  keyplan portfolio{flags}"))?;
    if let Some(first) = scripts.first() {
        print_line(&format!("  keyplan timeline {}{flags}", first.id))?;
    }
    for story in [Story::Slipping, Story::Neglected] {
        if let Some(a) = scripts.iter().find(|a| a.story == story) {
            print_line(&format!("  keyplan compliance {}{flags}", a.id))?;
        }
    }
    print_line(&format!("  keyplan compliance --rollup owner{flags}"))
}

// ================================================================= the portfolio

/// Which story an account tells about its engagement plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Story {
    /// Every rule kept.
    Kept,
    /// Contacts with the technical buyer lapsed: a rule overdue; the gatekeeper left.
    Slipping,
    /// A rule never met, a review window missed; every other one demoted.
    Neglected,
}

impl Story {
    fn describe(self) -> &'static str {
        match self {
            Story::Kept => "engagement plan kept",
            Story::Slipping => "slipping: a rule overdue, a stakeholder left",
            Story::Neglected => "neglected: a rule never met, a review missed",
        }
    }
}

/// One account's commands, in the batches they are sent in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AccountScript {
    pub id: String,
    pub name: String,
    pub story: Story,
    /// Person id recorded as the actor (the key account manager).
    pub actor: String,
    pub batches: Vec<Batch>,
}

/// Commands appended together.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Batch {
    /// Business time of the batch's facts; `None` for a batch of interactions, whose events
    /// each take the time the interaction happened.
    pub at: Option<DateTime<Utc>>,
    pub commands: Vec<Kind>,
}

/// The whole portfolio for `seed`, with history ending the day before `today`.
pub(crate) fn portfolio(
    seed: u64,
    accounts: u32,
    months: u32,
    today: NaiveDate,
) -> Vec<AccountScript> {
    let mut names = Rng::new(seed, u64::MAX);
    let tag = format!("{:04x}", names.next() & 0xffff);
    let mut order: Vec<usize> = (0..COMPANY_WORDS.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, names.below(i as u64 + 1) as usize);
    }
    (0..accounts)
        .map(|i| account(seed, i, months, today, &tag, &order))
        .collect()
}

fn slug(name: &str) -> String {
    name.chars()
        .filter_map(|c| {
            if c.is_ascii_alphanumeric() {
                Some(c.to_ascii_lowercase())
            } else if c == ' ' {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

type Person = (&'static str, &'static str);

const COMPANY_WORDS: &[&str] = &[
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Litware",
    "Adatum",
    "Proseware",
    "Woodgrove",
    "Lucerne",
    "Wingtip",
    "Alpine",
    "Bluewater",
    "Cedar",
    "Driftwood",
    "Everline",
    "Falcon",
    "Granite",
    "Harbor",
    "Ironbridge",
    "Juniper",
    "Kestrel",
    "Lakeside",
    "Meridian",
    "Northstar",
    "Oakridge",
    "Pinnacle",
    "Quarry",
    "Redwood",
    "Silverline",
    "Tidewater",
    "Upland",
    "Vantage",
    "Westfield",
    "Zephyr",
    "Aurora",
    "Beacon",
    "Cobalt",
    "Delta",
    "Evergreen",
    "Summit",
];

/// Industry, company suffixes, the product line sold to it.
const INDUSTRIES: &[(&str, &[&str], &str)] = &[
    (
        "Logistics",
        &["Logistics", "Freight", "Transport"],
        "Fleet telematics",
    ),
    (
        "Manufacturing",
        &["Industries", "Manufacturing", "Works"],
        "Factory automation",
    ),
    (
        "Healthcare",
        &["Health", "Medical", "Care"],
        "Clinical supplies",
    ),
    ("Retail", &["Retail", "Stores", "Markets"], "Store systems"),
    (
        "Energy",
        &["Energy", "Power", "Utilities"],
        "Grid maintenance services",
    ),
    (
        "Food and beverage",
        &["Foods", "Brands", "Beverages"],
        "Packaging",
    ),
];

/// Region, currency, headquarters.
const REGIONS: &[(&str, &str, &[&str])] = &[
    (
        "Europe",
        "EUR",
        &["Rotterdam, NL", "Lyon, FR", "Munich, DE", "Milan, IT"],
    ),
    (
        "North America",
        "USD",
        &["Chicago, US", "Toronto, CA", "Atlanta, US"],
    ),
    (
        "United Kingdom",
        "GBP",
        &["Manchester, UK", "Leeds, UK", "Bristol, UK"],
    ),
    ("Asia-Pacific", "USD", &["Singapore, SG", "Sydney, AU"]),
];

const KAMS: &[Person] = &[
    ("ana.silva", "Ana Silva"),
    ("ben.okafor", "Ben Okafor"),
    ("chloe.martin", "Chloé Martin"),
    ("david.chen", "David Chen"),
    ("eva.novak", "Eva Novak"),
];
const SPONSORS: &[Person] = &[("frank.weber", "Frank Weber"), ("grace.hall", "Grace Hall")];
const SALES: &[Person] = &[
    ("hiro.tanaka", "Hiro Tanaka"),
    ("ines.garcia", "Inés García"),
    ("jon.berg", "Jon Berg"),
];
const SERVICE: &[Person] = &[("kim.lee", "Kim Lee"), ("luca.rossi", "Luca Rossi")];

const FIRST_NAMES: &[&str] = &[
    "Maria", "James", "Sofia", "Lars", "Priya", "Tom", "Yuki", "Olivia", "Ahmed", "Nina", "Pablo",
    "Hannah", "Marco", "Aisha", "Pieter", "Claire", "Raj", "Emma", "Stefan", "Lucia",
];
const LAST_NAMES: &[&str] = &[
    "Jansen",
    "Dubois",
    "Müller",
    "Rossi",
    "Smith",
    "Kowalski",
    "Sato",
    "Patel",
    "Lindqvist",
    "Moreau",
    "O'Brien",
    "Fischer",
    "Costa",
    "Nguyen",
    "Brown",
    "Haddad",
    "Meyer",
    "Alvarez",
];

const CRITERIA: &[(&str, u32)] = &[
    ("revenue", 3),
    ("profitability", 3),
    ("growth potential", 2),
    ("strategic fit", 2),
    ("referral value", 1),
    ("cost to serve", 1),
];

/// A stakeholder's part in the story.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    EconomicBuyer,
    TechnicalBuyer,
    Gatekeeper,
    Coach,
    User,
    Influencer,
}

struct Member {
    id: &'static str,
    part: Part,
    name: String,
}

/// Business time: day `d` of the history (0 = its first day) at a time of day.
#[derive(Debug, Clone, Copy)]
struct Clock {
    start: NaiveDate,
    /// Days of history: day `days - 1` is yesterday.
    days: i64,
}

impl Clock {
    fn date(&self, d: i64) -> NaiveDate {
        let d = d.clamp(0, 36_600) as u64;
        self.start
            .checked_add_days(Days::new(d))
            .unwrap_or(self.start)
    }

    fn day(&self, d: i64) -> String {
        self.date(d).to_string()
    }

    fn at(&self, d: i64, hour: u32, minute: u32) -> DateTime<Utc> {
        let time =
            chrono::NaiveTime::from_hms_opt(hour.min(23), minute.min(59), 0).unwrap_or_default();
        Utc.from_utc_datetime(&self.date(d).and_time(time))
    }

    /// Whether day `d` has passed (is yesterday or before).
    fn past(&self, d: i64) -> bool {
        (0..self.days).contains(&d)
    }

    /// The day number of `date`.
    fn offset(&self, date: NaiveDate) -> i64 {
        (date - self.start).num_days()
    }
}

/// An interaction before its id is known (ids follow the order they happened in).
struct Contact {
    at: DateTime<Utc>,
    channel: pb::Channel,
    stakeholders: Vec<String>,
    participants: Vec<String>,
    summary: String,
    sentiment: pb::Sentiment,
    next_step: String,
    opportunity: String,
    /// Logged with a mistake, corrected two days later to this channel, for this reason.
    fix: Option<(pb::Channel, String)>,
    /// Logged after everything else.
    late: bool,
}

/// Where a command goes in an account's history: (logged late, business time, facts before
/// interactions at the same time, order of creation).
type SortKey = (bool, DateTime<Utc>, u8, usize);
/// A command with its place and its batch's business time (`None`: an interaction's own).
type Item = (SortKey, Option<DateTime<Utc>>, Kind);

/// Collects one account's facts and contacts, then puts them in order.
struct Script {
    clock: Clock,
    facts: Vec<(DateTime<Utc>, Kind)>,
    contacts: Vec<Contact>,
}

impl Script {
    /// A fact on day `d` at 08:00 (days not yet past are dropped by the callers' checks).
    fn fact(&mut self, d: i64, kind: Kind) {
        let at = self.clock.at(d, 8, 0);
        self.facts.push((at, kind));
    }

    /// The batches: facts and interactions in the order they happened (late logs last), facts
    /// of the same time together, runs of interactions together.
    fn batches(mut self) -> Vec<Batch> {
        self.contacts.sort_by_key(|c| c.at);
        let mut items: Vec<Item> = Vec::new();
        let mut n = 0;
        for (at, kind) in self.facts {
            items.push(((false, at, 0, n), Some(at), kind));
            n += 1;
        }
        for (i, c) in self.contacts.into_iter().enumerate() {
            let id = format!("int-{:04}", i + 1);
            let details = pb::InteractionDetails {
                occurred_at: Some(timestamp(c.at)),
                channel: c.channel as i32,
                stakeholders: c.stakeholders,
                participants: c.participants,
                summary: c.summary,
                sentiment: c.sentiment as i32,
                next_step: c.next_step,
                opportunity_id: c.opportunity,
            };
            if let Some((channel, reason)) = c.fix {
                let at = c.at.date_naive() + Days::new(2);
                let at = Utc.from_utc_datetime(&at.and_hms_opt(8, 0, 0).unwrap_or_default());
                let corrected = pb::InteractionDetails {
                    channel: channel as i32,
                    ..details.clone()
                };
                items.push((
                    (false, at, 0, n),
                    Some(at),
                    Kind::CorrectInteraction(pb::InteractionCorrected {
                        interaction_id: id.clone(),
                        details: Some(corrected),
                        reason,
                    }),
                ));
                n += 1;
            }
            items.push((
                (c.late, c.at, 1, n),
                None,
                Kind::LogInteraction(pb::InteractionLogged {
                    interaction_id: id,
                    details: Some(details),
                }),
            ));
            n += 1;
        }
        items.sort_by_key(|item| item.0);
        let mut batches: Vec<Batch> = Vec::new();
        for (_, at, kind) in items {
            match batches.last_mut() {
                Some(b) if b.at == at && b.commands.len() < MAX_BATCH => b.commands.push(kind),
                _ => batches.push(Batch {
                    at,
                    commands: vec![kind],
                }),
            }
        }
        batches
    }
}

fn money(currency: &str, major: i64) -> Option<pb::Money> {
    Some(pb::Money {
        currency: currency.to_owned(),
        minor_units: major * 100,
    })
}

fn weighted_score(criteria: &[pb::TierCriterion]) -> f64 {
    let weight: u32 = criteria.iter().map(|c| c.weight).sum();
    let total: u32 = criteria.iter().map(|c| c.weight * c.score).sum();
    f64::from(total) / f64::from(weight.max(1))
}

fn recommend(score: f64) -> pb::Tier {
    if score >= 7.5 {
        pb::Tier::Strategic
    } else if score >= 5.5 {
        pb::Tier::Key
    } else {
        pb::Tier::Standard
    }
}

fn tier_name(tier: pb::Tier) -> &'static str {
    match tier {
        pb::Tier::Strategic => "strategic",
        pb::Tier::Key => "key",
        _ => "standard",
    }
}

#[allow(clippy::too_many_lines)]
fn account(
    seed: u64,
    index: u32,
    months: u32,
    today: NaiveDate,
    tag: &str,
    order: &[usize],
) -> AccountScript {
    let mut rng = Rng::new(seed, u64::from(index) + 1);
    let story = match index % 3 {
        0 => Story::Kept,
        1 => Story::Slipping,
        _ => Story::Neglected,
    };
    let word = COMPANY_WORDS[order[index as usize % order.len()]];
    let &(industry, suffixes, product) = rng.pick(INDUSTRIES);
    let mut name = format!("{word} {}", rng.pick(suffixes));
    let round = index as usize / order.len();
    if round > 0 {
        name = format!("{name} {}", round + 1);
    }
    let id = format!("{}-{tag}", slug(&name));
    let &(region, currency, hqs) = rng.pick(REGIONS);
    let hq = *rng.pick(hqs);

    let start = today
        .checked_sub_months(Months::new(months))
        .unwrap_or(today);
    let clock = Clock {
        start,
        days: (today - start).num_days(),
    };
    let h = clock.days;
    let mut script = Script {
        clock,
        facts: Vec::new(),
        contacts: Vec::new(),
    };

    // ----------------------------------------------------------- team
    let kam = *rng.pick(KAMS);
    let sponsor = *rng.pick(SPONSORS);
    let sales = *rng.pick(SALES);
    let service = if rng.chance(50) {
        Some(*rng.pick(SERVICE))
    } else {
        None
    };

    // ----------------------------------------------------------- tiering
    let base: i64 = match story {
        Story::Kept => 7,
        Story::Slipping => 6,
        Story::Neglected => 6,
    };
    let criteria: Vec<pb::TierCriterion> = CRITERIA
        .iter()
        .map(|&(name, weight)| pb::TierCriterion {
            name: name.to_owned(),
            weight,
            score: u32::try_from((base + rng.range(-2, 3)).clamp(1, 10)).unwrap_or(5),
        })
        .collect();
    let score = weighted_score(&criteria);
    let recommended = recommend(score);
    let registered = if story != Story::Neglected && rng.chance(35) {
        pb::Tier::Standard
    } else {
        pb::Tier::Key
    };

    // ----------------------------------------------------------- the DMU
    let mut extras = vec![Part::Coach, Part::User, Part::Influencer];
    rng.shuffle(&mut extras);
    extras.truncate(rng.range(0, 3) as usize);
    if story == Story::Kept && !extras.contains(&Part::Coach) && extras.len() < 3 {
        extras.push(Part::Coach); // a champion inside the account is what "kept" looks like
    }
    let mut dmu: Vec<Member> = Vec::new();
    for part in [Part::EconomicBuyer, Part::TechnicalBuyer, Part::Gatekeeper]
        .into_iter()
        .chain(extras)
    {
        let person = format!("{} {}", rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES));
        let id = match part {
            Part::EconomicBuyer => "s-economic-buyer",
            Part::TechnicalBuyer => "s-technical-buyer",
            Part::Gatekeeper => "s-procurement",
            Part::Coach => "s-champion",
            Part::User => "s-site-lead",
            Part::Influencer => "s-sustainability",
        };
        dmu.push(Member {
            id,
            part,
            name: person,
        });
    }
    let has = |part: Part| dmu.iter().any(|m| m.part == part);
    let name_of = |id: &str| {
        dmu.iter()
            .find(|m| m.id == id)
            .map_or_else(|| "them".to_owned(), |m| m.name.clone())
    };

    // ----------------------------------------------------------- onboarding, day 0
    script.fact(
        0,
        Kind::RegisterAccount(pb::AccountRegistered {
            name: name.clone(),
            industry: industry.to_owned(),
            region: region.to_owned(),
            headquarters: hq.to_owned(),
            tier: registered as i32,
        }),
    );
    script.fact(
        0,
        Kind::AssessTier(pb::AssessTier {
            criteria: criteria.clone(),
            recommended_tier: recommended as i32,
            assessed_by: sponsor.0.to_owned(),
        }),
    );
    let mut team = vec![
        (kam, pb::TeamRole::KeyAccountManager),
        (sponsor, pb::TeamRole::ExecutiveSponsor),
        (sales, pb::TeamRole::Sales),
    ];
    if let Some(service) = service {
        team.push((service, pb::TeamRole::Service));
    }
    for ((person, person_name), role) in team {
        script.fact(
            0,
            Kind::AssignTeamMember(pb::TeamMemberAssigned {
                person_id: person.to_owned(),
                name: person_name.to_owned(),
                role: role as i32,
            }),
        );
    }
    for m in &dmu {
        let (title, role, influence, attitude, reports_to) = match m.part {
            Part::EconomicBuyer => (
                *rng.pick(&[
                    "Chief Financial Officer",
                    "Chief Operating Officer",
                    "VP Operations",
                ]),
                pb::BuyingRole::EconomicBuyer,
                5,
                pb::Attitude::Supporter,
                "",
            ),
            Part::TechnicalBuyer => (
                *rng.pick(&[
                    "Head of IT",
                    "Director of Engineering",
                    "Head of Supply Chain Systems",
                ]),
                pb::BuyingRole::TechnicalBuyer,
                4,
                pb::Attitude::Neutral,
                "s-economic-buyer",
            ),
            Part::Gatekeeper => (
                *rng.pick(&["Procurement Manager", "Head of Purchasing"]),
                pb::BuyingRole::Gatekeeper,
                3,
                if story == Story::Neglected {
                    pb::Attitude::Critic
                } else {
                    pb::Attitude::Neutral
                },
                "s-economic-buyer",
            ),
            Part::Coach => (
                *rng.pick(&["Operations Manager", "Programme Manager"]),
                pb::BuyingRole::Coach,
                3,
                pb::Attitude::Champion,
                "s-technical-buyer",
            ),
            Part::User => (
                *rng.pick(&["Plant Manager", "Warehouse Lead", "Site Manager"]),
                pb::BuyingRole::User,
                2,
                pb::Attitude::Supporter,
                "s-technical-buyer",
            ),
            Part::Influencer => (
                *rng.pick(&["Sustainability Lead", "Quality Director"]),
                pb::BuyingRole::Influencer,
                3,
                pb::Attitude::Neutral,
                "s-economic-buyer",
            ),
        };
        script.fact(
            0,
            Kind::AddStakeholder(pb::StakeholderAdded {
                stakeholder_id: m.id.to_owned(),
                name: m.name.clone(),
                title: title.to_owned(),
                reports_to: reports_to.to_owned(),
                buying_role: role as i32,
                influence,
                attitude: attitude as i32,
            }),
        );
    }

    // The plan.
    let plan = format!("plan-{}", start.format("%Y-%m"));
    let (kind, end) = if months < 12 {
        let end = start
            .checked_add_months(Months::new(12))
            .and_then(|d| d.pred_opt())
            .map(|d| d.to_string())
            .unwrap_or_default();
        (pb::PlanPeriodKind::Rolling12Months, end)
    } else {
        (pb::PlanPeriodKind::Perpetual, String::new())
    };
    let monthly = story == Story::Neglected || rng.chance(40);
    let frequency = if monthly {
        pb::ReviewFrequency::Monthly
    } else {
        pb::ReviewFrequency::Quarterly
    };
    script.fact(
        0,
        Kind::DraftPlan(pb::PlanDrafted {
            plan_id: plan.clone(),
            period: Some(pb::PlanPeriod {
                kind: kind as i32,
                start: start.to_string(),
                end,
            }),
            prepared_by: kam.0.to_owned(),
            prepared_on: start.to_string(),
            review_frequency: frequency as i32,
        }),
    );
    let competitor = *rng.pick(&[
        "Orbis Group",
        "Vectra Systems",
        "Helix Partners",
        "a regional low-cost supplier",
    ]);
    let eb = name_of("s-economic-buyer");
    let tb = name_of("s-technical-buyer");
    let sections = [
        (
            pb::PlanSection::AccountOverview,
            format!(
                "{name} is a {} {industry} business headquartered in {hq}, buying {} from us since \
                 {}. Economic buyer: {eb}; technical buyer: {tb}.",
                region,
                product.to_lowercase(),
                2015 + rng.range(0, 8)
            ),
        ),
        (
            pb::PlanSection::CustomerLandscape,
            format!(
                "{name} is consolidating suppliers and modernising two sites this year; purchasing \
                 runs through a formal tender above 250k, with {} approving.",
                eb
            ),
        ),
        (
            pb::PlanSection::Competitors,
            format!("{competitor} holds the second site and is pushing on price."),
        ),
        (
            pb::PlanSection::RevenueSnapshot,
            format!(
                "{product}: revenue tracked monthly against the goal in {currency}; pipeline in the \
                 opportunities below."
            ),
        ),
        (
            pb::PlanSection::Risks,
            "Single-threaded relationship beyond the economic buyer; procurement pressure on \
             price at renewal."
                .to_owned(),
        ),
        (
            pb::PlanSection::Strategy,
            "Win the second site, widen the relationship to operations, prove cost to serve with \
             the pilot."
                .to_owned(),
        ),
    ];
    for (section, text) in sections {
        script.fact(
            0,
            Kind::RevisePlanSection(pb::PlanSectionRevised {
                plan_id: plan.clone(),
                section: section as i32,
                text,
            }),
        );
    }

    // Objectives.
    let objectives: &[(&str, &str, &str)] = &[
        (
            "Grow share of wallet",
            "share of the customer's spend in our categories",
            "from 18% to 25%",
        ),
        (
            "Reduce cost to serve",
            "cost to serve as a share of revenue",
            "below 6%",
        ),
        ("Expand into the second site", "sites served", "2"),
        (
            "Launch the joint sustainability programme",
            "milestones signed off",
            "3 of 3",
        ),
    ];
    let objective_count = 2 + rng.below(2) as usize;
    for (i, (title, metric, target)) in objectives.iter().take(objective_count).enumerate() {
        let owner = if i == 1 { sales.0 } else { kam.0 };
        script.fact(
            0,
            Kind::SetObjective(pb::ObjectiveSet {
                objective_id: format!("obj-{}", i + 1),
                plan_id: plan.clone(),
                title: (*title).to_owned(),
                metric: (*metric).to_owned(),
                target: (*target).to_owned(),
                due_on: clock.day(90 + rng.range(0, 200)),
                owner: owner.to_owned(),
                status: pb::ObjectiveStatus::NotStarted as i32,
            }),
        );
    }

    // Opportunities.
    let opportunity_titles = [
        "Second-site rollout",
        "Three-year service renewal",
        "Analytics add-on",
        "Spare parts framework agreement",
    ];
    let opportunity_count = 2 + rng.below(3) as usize;
    let mut opportunities: Vec<(String, i64, i64)> = Vec::new(); // id, identified on, value
    for (i, title) in opportunity_titles
        .iter()
        .take(opportunity_count)
        .enumerate()
    {
        let d = if i < 2 { 0 } else { rng.range(h / 4, h / 2) };
        let value = (rng.range(4, 80)) * 5_000;
        let oid = format!("opp-{}", i + 1);
        script.fact(
            d,
            Kind::IdentifyOpportunity(pb::OpportunityIdentified {
                opportunity_id: oid.clone(),
                title: (*title).to_owned(),
                value: money(currency, value),
                stage: pb::OpportunityStage::Identified as i32,
                expected_close_on: clock.day(d + 120 + rng.range(0, 60)),
                owner: if i % 2 == 0 { kam.0 } else { sales.0 }.to_owned(),
            }),
        );
        opportunities.push((oid, d, value));
    }
    for (i, (oid, identified, value)) in opportunities.iter().enumerate() {
        let mut d = *identified;
        for stage in [
            pb::OpportunityStage::Qualified,
            pb::OpportunityStage::Proposal,
            pb::OpportunityStage::Negotiation,
        ] {
            d += rng.range(12, 30);
            if !clock.past(d) {
                break;
            }
            script.fact(
                d,
                Kind::ChangeOpportunityStage(pb::OpportunityStageChanged {
                    opportunity_id: oid.clone(),
                    stage: stage as i32,
                    expected_close_on: String::new(),
                }),
            );
        }
        let close = d + rng.range(8, 20);
        if i < 2 && clock.past(close) && d > *identified {
            let won = i == 0 && story != Story::Neglected;
            let kind = if won {
                Kind::WinOpportunity(pb::OpportunityWon {
                    opportunity_id: oid.clone(),
                    value: money(currency, value + rng.range(-4, 4) * 2_500),
                    closed_on: clock.day(close),
                    reason: format!("Best total cost of ownership; the pilot convinced {tb}."),
                })
            } else {
                Kind::LoseOpportunity(pb::OpportunityLost {
                    opportunity_id: oid.clone(),
                    closed_on: clock.day(close),
                    reason: format!("Lost on price to {competitor}."),
                })
            };
            script.fact(close, kind);
        }
    }

    // Engagement rules.
    let mut rules = vec![(
        "rule-economic-buyer",
        pb::rule_target::Target::BuyingRole(pb::BuyingRole::EconomicBuyer as i32),
        kam.0,
        30_u32,
        vec![pb::Channel::InPerson, pb::Channel::VideoCall],
    )];
    let technical_rule = story == Story::Slipping || rng.chance(50);
    if technical_rule {
        rules.push((
            "rule-technical-buyer",
            pb::rule_target::Target::StakeholderId("s-technical-buyer".to_owned()),
            sales.0,
            14,
            vec![pb::Channel::PhoneCall, pb::Channel::VideoCall],
        ));
    }
    let champion_rule = story != Story::Neglected && has(Part::Coach) && rng.chance(60);
    if story == Story::Neglected {
        rules.push((
            "rule-procurement",
            pb::rule_target::Target::StakeholderId("s-procurement".to_owned()),
            kam.0,
            45,
            vec![pb::Channel::InPerson, pb::Channel::VideoCall],
        ));
    } else if champion_rule {
        rules.push((
            "rule-champion",
            pb::rule_target::Target::StakeholderId("s-champion".to_owned()),
            service.map_or(sales.0, |s| s.0),
            21,
            vec![
                pb::Channel::PhoneCall,
                pb::Channel::Email,
                pb::Channel::InPerson,
            ],
        ));
    }
    for (rule_id, target, owner, cadence, channels) in &rules {
        script.fact(
            0,
            Kind::SetEngagementRule(pb::EngagementRuleSet {
                rule_id: (*rule_id).to_owned(),
                target: Some(pb::RuleTarget {
                    target: Some(target.clone()),
                }),
                owner: (*owner).to_owned(),
                cadence_days: *cadence,
                channels: channels.iter().map(|c| *c as i32).collect(),
                opportunity_id: String::new(),
            }),
        );
    }

    // Action plan.
    script.fact(
        0,
        Kind::AddActionItem(pb::ActionItemAdded {
            action_item_id: "act-1".to_owned(),
            title: "Send the revised service-level proposal".to_owned(),
            owner: sales.0.to_owned(),
            due_on: clock.day(14),
            link: Some(pb::ActionLink {
                target: Some(pb::action_link::Target::OpportunityId("opp-1".to_owned())),
            }),
        }),
    );
    script.fact(
        0,
        Kind::AddActionItem(pb::ActionItemAdded {
            action_item_id: "act-2".to_owned(),
            title: "Map the customer's procurement process".to_owned(),
            owner: kam.0.to_owned(),
            due_on: clock.day(30),
            link: Some(pb::ActionLink {
                target: Some(pb::action_link::Target::ObjectiveId("obj-1".to_owned())),
            }),
        }),
    );
    let done = 10 + rng.range(0, 6);
    if clock.past(done) {
        script.fact(
            done,
            Kind::CompleteActionItem(pb::ActionItemCompleted {
                action_item_id: "act-1".to_owned(),
                completed_on: clock.day(done),
                note: "Sent; accepted in principle.".to_owned(),
            }),
        );
    }
    if story == Story::Neglected {
        if clock.past(h / 2) {
            script.fact(
                h / 2,
                Kind::CancelActionItem(pb::ActionItemCancelled {
                    action_item_id: "act-2".to_owned(),
                    reason: "Superseded by the escalation plan.".to_owned(),
                }),
            );
        }
    } else if clock.past(25) {
        script.fact(
            25,
            Kind::CompleteActionItem(pb::ActionItemCompleted {
                action_item_id: "act-2".to_owned(),
                completed_on: clock.day(25),
                note: format!("Mapped with {}.", name_of("s-procurement")),
            }),
        );
    }

    // ----------------------------------------------------------- tier moves
    if (recommended as i32) > (registered as i32) && clock.past(30.min(h - 1)) {
        script.fact(
            30.min(h - 1),
            Kind::PromoteAccount(pb::ChangeTier {
                to: recommended as i32,
                reason: format!(
                    "Weighted score {score:.1}/10 at onboarding; recommended {}.",
                    tier_name(recommended)
                ),
            }),
        );
    }
    // Every other neglected account is demoted (the portfolio lists key and strategic accounts
    // only, so the first neglected one stays in it, with its unmet rule).
    let demoted = story == Story::Neglected && index % 6 == 5;
    if demoted && clock.past(h * 2 / 3) {
        let lower: Vec<pb::TierCriterion> = criteria
            .iter()
            .map(|c| pb::TierCriterion {
                score: c.score.saturating_sub(3).max(1),
                ..c.clone()
            })
            .collect();
        let d = h * 2 / 3;
        script.fact(
            d,
            Kind::AssessTier(pb::AssessTier {
                criteria: lower.clone(),
                recommended_tier: recommend(weighted_score(&lower)) as i32,
                assessed_by: sponsor.0.to_owned(),
            }),
        );
        script.fact(
            d,
            Kind::DemoteAccount(pb::ChangeTier {
                to: pb::Tier::Standard as i32,
                reason: format!(
                    "Re-assessed at {:.1}/10: spend down, reviews missed, procurement not engaged.",
                    weighted_score(&lower)
                ),
            }),
        );
    }

    // ----------------------------------------------------------- the DMU changes
    let (first_change, second_change) = (h / 3, h * 3 / 4);
    if clock.past(first_change) {
        script.fact(
            first_change,
            Kind::ChangeStakeholderProfile(pb::StakeholderProfileChanged {
                stakeholder_id: "s-technical-buyer".to_owned(),
                attitude: Some(pb::Attitude::Supporter as i32),
                note: "The pilot met its acceptance criteria.".to_owned(),
                ..Default::default()
            }),
        );
    }
    if story == Story::Slipping && clock.past(second_change) {
        script.fact(
            second_change,
            Kind::ChangeStakeholderProfile(pb::StakeholderProfileChanged {
                stakeholder_id: "s-technical-buyer".to_owned(),
                attitude: Some(pb::Attitude::Critic as i32),
                note: "Frustrated that our calls lapsed during the migration.".to_owned(),
                ..Default::default()
            }),
        );
    }
    if story == Story::Neglected && clock.past(h / 2) {
        script.fact(
            h / 2,
            Kind::ChangeStakeholderProfile(pb::StakeholderProfileChanged {
                stakeholder_id: "s-economic-buyer".to_owned(),
                attitude: Some(pb::Attitude::Critic as i32),
                note: "Escalated the missed service reviews to our sponsor.".to_owned(),
                ..Default::default()
            }),
        );
    }
    if has(Part::Influencer) && clock.past(h * 2 / 3) {
        script.fact(
            h * 2 / 3,
            Kind::ChangeStakeholderProfile(pb::StakeholderProfileChanged {
                stakeholder_id: "s-sustainability".to_owned(),
                buying_role: Some(pb::BuyingRole::Coach as i32),
                attitude: Some(pb::Attitude::Supporter as i32),
                influence: Some(4),
                note: "Now coaching us through the tender.".to_owned(),
                ..Default::default()
            }),
        );
    }
    if story == Story::Kept && has(Part::Coach) && clock.past(h / 2) {
        script.fact(
            h / 2,
            Kind::ChangeStakeholderProfile(pb::StakeholderProfileChanged {
                stakeholder_id: "s-champion".to_owned(),
                influence: Some(4),
                title: Some("Head of Operations".to_owned()),
                note: "Promoted; now runs both sites.".to_owned(),
                ..Default::default()
            }),
        );
    }
    // The slipping story: the gatekeeper leaves half-way, a successor arrives the same day.
    let departure = (story == Story::Slipping && clock.past(h / 2)).then_some(h / 2);
    if let Some(d) = departure {
        script.fact(
            d,
            Kind::RecordStakeholderDeparture(pb::StakeholderDeparted {
                stakeholder_id: "s-procurement".to_owned(),
                departed_on: clock.day(d),
                reason: format!("Left for {competitor}."),
            }),
        );
        script.fact(
            d,
            Kind::AddStakeholder(pb::StakeholderAdded {
                stakeholder_id: "s-procurement-2".to_owned(),
                name: format!("{} {}", rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES)),
                title: "Procurement Manager".to_owned(),
                reports_to: "s-economic-buyer".to_owned(),
                buying_role: pb::BuyingRole::Gatekeeper as i32,
                influence: 3,
                attitude: pb::Attitude::Neutral as i32,
            }),
        );
    }

    // ----------------------------------------------------------- objectives progress
    let mut step = 1;
    let mut d = 45;
    let mut achieved = false;
    while clock.past(d) {
        for i in 1..=objective_count.min(2) {
            if i == 1 && achieved {
                continue;
            }
            let (status, value, note) = match (story, i, step) {
                (Story::Kept, 1, s) if s >= 3 => {
                    (pb::ObjectiveStatus::Achieved, "25%", "Target reached.")
                }
                (Story::Kept, _, _) => (pb::ObjectiveStatus::OnTrack, "22%", "Ahead of plan."),
                (Story::Slipping, _, _) => (
                    pb::ObjectiveStatus::AtRisk,
                    "19%",
                    "Stalled during the migration.",
                ),
                (Story::Neglected, _, _) => (
                    pb::ObjectiveStatus::OffTrack,
                    "16%",
                    "Spend moving to a competitor.",
                ),
            };
            if i == 1 && status == pb::ObjectiveStatus::Achieved {
                achieved = true;
            }
            script.fact(
                d,
                Kind::ProgressObjective(pb::ObjectiveProgressed {
                    objective_id: format!("obj-{i}"),
                    status: status as i32,
                    current_value: if i == 1 { value } else { "in progress" }.to_owned(),
                    note: note.to_owned(),
                }),
            );
        }
        step += 1;
        d += 45;
    }

    // ----------------------------------------------------------- revenue
    let annual_goal = rng.range(24, 120) * 50_000;
    let monthly_goal = annual_goal / 12;
    let mut month = NaiveDate::from_ymd_opt(start.year(), start.month(), 1).unwrap_or(start);
    while let Some(next) = month.checked_add_months(Months::new(1)) {
        let recorded = clock.offset(next) + 2;
        if !clock.past(recorded) {
            break;
        }
        let share = match story {
            Story::Kept => rng.range(92, 125),
            Story::Slipping => rng.range(80, 108),
            Story::Neglected => rng.range(55, 95),
        };
        script.fact(
            recorded,
            Kind::RecordRevenue(pb::RevenueRecorded {
                period_start: month.to_string(),
                period_end: next.pred_opt().unwrap_or(next).to_string(),
                product: product.to_owned(),
                actual: money(currency, monthly_goal * share / 100),
                goal: money(currency, monthly_goal),
                margin_basis_points: Some(i32::try_from(rng.range(1500, 3500)).unwrap_or(2000)),
            }),
        );
        month = next;
    }

    // ----------------------------------------------------------- reviews
    let step_months = if monthly { 1 } else { 3 };
    let due = |k: u32| {
        start
            .checked_add_months(Months::new(k * step_months))
            .and_then(|d| d.pred_opt())
            .map_or(i64::MAX, |d| clock.offset(d))
    };
    // The neglected story skips two monthly windows (the first is cancelled, the second never
    // scheduled) and catches up with an extra review at the start of the third window.
    let skip = story == Story::Neglected && monthly && clock.past(due(3));
    let mut k = 1;
    loop {
        let due_d = due(k);
        let schedule_d = (due_d - 14).max(0);
        if !clock.past(schedule_d) || due_d > h + 40 {
            break;
        }
        let review_id = format!("rev-{k}");
        let qbr = !monthly && k % 2 == 1;
        let customer: Vec<String> = if qbr {
            let mut c = vec!["s-economic-buyer".to_owned()];
            if has(Part::Coach) {
                c.push("s-champion".to_owned());
            }
            c
        } else {
            Vec::new()
        };
        let supplier = vec![kam.0.to_owned(), sponsor.0.to_owned()];
        let kind = if qbr {
            pb::ReviewKind::QuarterlyBusinessReview
        } else {
            pb::ReviewKind::InternalPlanReview
        };
        if skip && k == 2 {
            k += 1;
            continue;
        }
        script.fact(
            schedule_d,
            Kind::ScheduleReview(pb::ReviewScheduled {
                review_id: review_id.clone(),
                kind: kind as i32,
                plan_id: plan.clone(),
                due_on: clock.day(due_d),
                supplier_attendees: supplier.clone(),
                customer_attendees: customer.clone(),
            }),
        );
        if skip && k == 1 {
            let d = due_d - 3;
            script.fact(
                d.max(schedule_d),
                Kind::CancelReview(pb::ReviewCancelled {
                    review_id,
                    reason: format!("{eb} postponed: budget freeze."),
                }),
            );
            k += 1;
            continue;
        }
        if skip && k == 3 {
            let catch_up = due(2) + 3;
            script.fact(
                catch_up,
                Kind::ScheduleReview(pb::ReviewScheduled {
                    review_id: "rev-catch-up".to_owned(),
                    kind: pb::ReviewKind::Executive as i32,
                    plan_id: plan.clone(),
                    due_on: clock.day(catch_up + 2),
                    supplier_attendees: supplier.clone(),
                    customer_attendees: vec!["s-economic-buyer".to_owned()],
                }),
            );
            script.fact(
                catch_up + 2,
                Kind::RecordReviewOutcome(pb::ReviewOutcomeRecorded {
                    review_id: "rev-catch-up".to_owned(),
                    held_on: clock.day(catch_up + 2),
                    supplier_attendees: supplier.clone(),
                    customer_attendees: vec!["s-economic-buyer".to_owned()],
                    outcome: pb::ReviewOutcome::Escalated as i32,
                    health: pb::HealthRating::Red as i32,
                    decisions: vec![
                        "Two monthly reviews were missed; restore the cadence.".to_owned(),
                        format!("{} to meet {eb} in person.", sponsor.1),
                    ],
                    follow_up_actions: vec![pb::FollowUpAction {
                        action_item_id: "act-catch-up".to_owned(),
                        title: "Recovery plan for the account".to_owned(),
                        owner: kam.0.to_owned(),
                        due_on: clock.day(catch_up + 16),
                    }],
                }),
            );
        }
        let held_d = (due_d - rng.range(0, 4)).max(schedule_d + 1);
        if clock.past(held_d) {
            let (outcome, health) = match story {
                Story::Kept => (
                    if rng.chance(70) {
                        pb::ReviewOutcome::Approved
                    } else {
                        pb::ReviewOutcome::ApprovedWithChanges
                    },
                    pb::HealthRating::Green,
                ),
                Story::Slipping => (
                    pb::ReviewOutcome::ApprovedWithChanges,
                    if k == 1 {
                        pb::HealthRating::Green
                    } else {
                        pb::HealthRating::Amber
                    },
                ),
                Story::Neglected => (
                    if k == 1 {
                        pb::ReviewOutcome::ApprovedWithChanges
                    } else {
                        pb::ReviewOutcome::Rejected
                    },
                    if k == 1 {
                        pb::HealthRating::Amber
                    } else {
                        pb::HealthRating::Red
                    },
                ),
            };
            let decision = *rng.pick(&[
                "Keep the renewal on the current terms.",
                "Bring operations into the next QBR.",
                "Prioritise the second-site rollout.",
                "Offer a cost-to-serve workshop.",
            ]);
            script.fact(
                held_d,
                Kind::RecordReviewOutcome(pb::ReviewOutcomeRecorded {
                    review_id: review_id.clone(),
                    held_on: clock.day(held_d),
                    supplier_attendees: supplier,
                    customer_attendees: customer,
                    outcome: outcome as i32,
                    health: health as i32,
                    decisions: vec![decision.to_owned()],
                    follow_up_actions: vec![pb::FollowUpAction {
                        action_item_id: format!("act-{review_id}"),
                        title: format!("Follow up on {review_id}: {}", decision.to_lowercase()),
                        owner: kam.0.to_owned(),
                        due_on: clock.day(held_d + 21),
                    }],
                }),
            );
            if k == 2 {
                script.fact(
                    held_d,
                    Kind::RevisePlanSection(pb::PlanSectionRevised {
                        plan_id: plan.clone(),
                        section: pb::PlanSection::Strategy as i32,
                        text: format!(
                            "Refreshed after {review_id}: {decision} Keep widening the \
                             relationship beyond {eb}."
                        ),
                    }),
                );
            }
        }
        k += 1;
    }

    // ----------------------------------------------------------- interactions
    let sentiment = |rng: &mut Rng| match story {
        Story::Kept => *rng.pick(&[
            pb::Sentiment::Positive,
            pb::Sentiment::VeryPositive,
            pb::Sentiment::Positive,
        ]),
        Story::Slipping => *rng.pick(&[pb::Sentiment::Neutral, pb::Sentiment::Positive]),
        Story::Neglected => *rng.pick(&[pb::Sentiment::Neutral, pb::Sentiment::Negative]),
    };
    let next_steps = [
        "Send the proposal by Friday.",
        "Book the site visit.",
        "Share the pilot results.",
        "Confirm the QBR agenda.",
        "",
    ];
    let mut misfiled = story == Story::Kept;
    for (rule_id, _, owner, cadence, channels) in &rules {
        let (target, lines): (&str, &[&str]) = match *rule_id {
            "rule-economic-buyer" => (
                "s-economic-buyer",
                &[
                    "Budget for next year and the renewal timeline with {n}.",
                    "Lunch with {n}: the second site and pricing expectations.",
                    "Executive check-in with {n} on service levels and the joint roadmap.",
                ],
            ),
            "rule-technical-buyer" => (
                "s-technical-buyer",
                &[
                    "Integration review with {n}: data feed errors down 40%.",
                    "Went through the pilot's acceptance criteria with {n}.",
                    "Walked {n} through the new API and the migration plan.",
                ],
            ),
            "rule-champion" => (
                "s-champion",
                &[
                    "{n} explained who sits on the evaluation committee.",
                    "Catch-up with {n} on the rollout at the second site.",
                ],
            ),
            // The neglected story's procurement rule is never met.
            _ => continue,
        };
        let cadence = i64::from(*cadence);
        let slipping = story == Story::Slipping && *rule_id == "rule-technical-buyer";
        let last_day = if slipping {
            h - cadence - rng.range(5, 15)
        } else {
            h - 1
        };
        let mut d = rng.range(2, 6);
        let mut n = 0;
        while d <= last_day {
            let channel = *rng.pick(channels);
            let mut stakeholders = vec![target.to_owned()];
            if target == "s-economic-buyer" && has(Part::Coach) && rng.chance(30) {
                stakeholders.push("s-champion".to_owned());
            }
            let mut participants = vec![(*owner).to_owned()];
            if *owner != kam.0 && rng.chance(30) {
                participants.push(kam.0.to_owned());
            }
            n += 1;
            let fix = (misfiled && n == 2 && clock.past(d + 2)).then(|| {
                misfiled = false;
                (
                    pb::Channel::InPerson,
                    "Logged as an e-mail by mistake: it was a lunch meeting.".to_owned(),
                )
            });
            script.contacts.push(Contact {
                at: clock.at(d, 9 + rng.range(0, 8) as u32, 15 * rng.range(0, 3) as u32),
                channel: if fix.is_some() {
                    pb::Channel::Email
                } else {
                    channel
                },
                stakeholders,
                participants,
                summary: rng.pick(lines).replace("{n}", &name_of(target)),
                sentiment: sentiment(&mut rng),
                next_step: (*rng.pick(&next_steps)).to_owned(),
                opportunity: if rng.chance(30) {
                    "opp-1".to_owned()
                } else {
                    String::new()
                },
                fix,
                late: false,
            });
            d += cadence - rng.range(2, (cadence / 4).max(3));
        }
    }
    // Everyday contacts that count for no rule: e-mails and events.
    let mut d = rng.range(1, 8);
    while clock.past(d) {
        let mut pool: Vec<&str> = dmu
            .iter()
            .filter(|m| m.part != Part::Gatekeeper)
            .map(|m| m.id)
            .collect();
        match (story, departure) {
            (Story::Neglected, _) => {}
            (_, Some(gone)) if d >= gone => pool.push("s-procurement-2"),
            _ => pool.push("s-procurement"),
        }
        if departure.is_some_and(|gone| d == gone) {
            pool.retain(|s| *s != "s-procurement-2");
        }
        let who = (*rng.pick(&pool)).to_owned();
        let event = rng.chance(25);
        let line = if event {
            "Met {n} at the industry trade fair."
        } else {
            *rng.pick(&[
                "Sent {n} the monthly service report.",
                "Answered {n}'s questions on invoicing.",
                "Shared the case study {n} asked for.",
                "Confirmed delivery dates with {n}.",
            ])
        };
        let participant = *rng.pick(&[kam.0, sales.0, service.map_or(kam.0, |s| s.0)]);
        script.contacts.push(Contact {
            at: clock.at(d, 10 + rng.range(0, 7) as u32, 0),
            channel: if event {
                pb::Channel::Event
            } else {
                pb::Channel::Email
            },
            summary: line.replace("{n}", &name_of(&who)),
            stakeholders: vec![who],
            participants: vec![participant.to_owned()],
            sentiment: sentiment(&mut rng),
            next_step: String::new(),
            opportunity: String::new(),
            fix: None,
            late: false,
        });
        d += rng.range(4, 14);
    }
    // A site visit logged weeks after it happened, once everything since was on record.
    if story != Story::Neglected && clock.past(h - 25) && h > 30 {
        let d = h - rng.range(15, 25);
        script.contacts.push(Contact {
            at: clock.at(d, 14, 0),
            channel: pb::Channel::SiteVisit,
            stakeholders: vec!["s-economic-buyer".to_owned()],
            participants: vec![kam.0.to_owned()],
            summary: format!(
                "Site visit in {hq} with {eb} (logged late, from the trip notes): the line \
                 upgrade is on schedule."
            ),
            sentiment: pb::Sentiment::Positive,
            next_step: "Send the visit report.".to_owned(),
            opportunity: String::new(),
            fix: None,
            late: true,
        });
    }

    AccountScript {
        id,
        name,
        story,
        actor: kam.0.to_owned(),
        batches: script.batches(),
    }
}

// ================================================================= randomness

/// splitmix64 (Steele, Lea and Flood 2014): tiny, fast, and fixed forever, so that a seed means
/// the same portfolio in every version of Keyplan.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    /// Stream `stream` of `seed` (each account has its own).
    fn new(seed: u64, stream: u64) -> Self {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// Uniform in `lo..=hi` (`lo` when the range is empty).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = u64::try_from(hi - lo).unwrap_or(0) + 1;
        lo + i64::try_from(self.below(span)).unwrap_or(0)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = self.below(items.len() as u64) as usize;
        &items[i.min(items.len().saturating_sub(1))]
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use keyplan_domain::decide::decide_all_in_place;
    use keyplan_domain::state::AccountState;
    use keyplan_domain::values::Timestamp;
    use keyplan_proto::convert;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 31).unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_portfolio() {
        let a = portfolio(7, 6, 6, today());
        assert_eq!(a, portfolio(7, 6, 6, today()));
        let b = portfolio(8, 6, 6, today());
        assert_ne!(
            a.iter().map(|x| &x.id).collect::<Vec<_>>(),
            b.iter().map(|x| &x.id).collect::<Vec<_>>()
        );
        // Fewer accounts: the same first ones.
        assert_eq!(portfolio(7, 3, 6, today())[..], a[..3]);
        let ids: std::collections::BTreeSet<_> = portfolio(7, 100, 3, today())
            .into_iter()
            .map(|x| x.id)
            .collect();
        assert_eq!(ids.len(), 100, "account ids are distinct");
    }

    /// Every command is accepted by the domain's rules, on the day the seed runs, for several
    /// seeds, sizes and dates (the node checks the same rules).
    #[test]
    fn every_command_is_valid() {
        for (seed, months, today) in [
            (2026, 6, today()),
            (1, 1, NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()),
            (99, 3, NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
            (5, 13, NaiveDate::from_ymd_opt(2027, 12, 31).unwrap()),
            (123_456, 36, NaiveDate::from_ymd_opt(2026, 7, 1).unwrap()),
        ] {
            let now = Timestamp(
                today
                    .and_hms_opt(0, 0, 1)
                    .unwrap()
                    .and_utc()
                    .timestamp_micros(),
            );
            for a in portfolio(seed, 9, months, today) {
                let mut state = AccountState::default();
                for (n, batch) in a.batches.iter().enumerate() {
                    assert!(!batch.commands.is_empty() && batch.commands.len() <= MAX_BATCH);
                    if let Some(at) = batch.at {
                        assert!(at.date_naive() < today, "{} batch {n} at {at}", a.id);
                    }
                    let commands: Vec<_> = batch
                        .commands
                        .iter()
                        .map(|k| convert::command_from_proto(k.clone()).unwrap())
                        .collect();
                    decide_all_in_place(&mut state, &commands, now).unwrap_or_else(|e| {
                        panic!("seed {seed} months {months}: {} batch {n}: {e}", a.id)
                    });
                }
            }
        }
    }

    #[test]
    fn the_portfolio_tells_every_story() {
        let accounts = portfolio(2026, 6, 3, today());
        let stories: Vec<_> = accounts.iter().map(|a| a.story).collect();
        assert_eq!(
            stories[..3],
            [Story::Kept, Story::Slipping, Story::Neglected]
        );
        let all: Vec<&Kind> = accounts
            .iter()
            .flat_map(|a| a.batches.iter().flat_map(|b| &b.commands))
            .collect();
        let count = |f: fn(&Kind) -> bool| all.iter().filter(|k| f(k)).count();
        assert!(count(|k| matches!(k, Kind::CorrectInteraction(_))) >= 1);
        assert!(count(|k| matches!(k, Kind::RecordStakeholderDeparture(_))) >= 1);
        assert!(count(|k| matches!(k, Kind::DemoteAccount(_))) >= 1);
        assert!(count(|k| matches!(k, Kind::WinOpportunity(_))) >= 1);
        assert!(count(|k| matches!(k, Kind::LoseOpportunity(_))) >= 1);
        assert!(count(|k| matches!(k, Kind::CancelReview(_))) >= 1);
        assert!(count(|k| matches!(k, Kind::ChangeStakeholderProfile(_))) >= 3);
        // The late log is the last batch of the first account, dated weeks back.
        let last = accounts[0].batches.last().unwrap();
        let Some(Kind::LogInteraction(late)) = last.commands.last() else {
            panic!("the first account ends with its late log");
        };
        let at = late.details.as_ref().unwrap().occurred_at.as_ref().unwrap();
        assert!(
            at.seconds
                < timestamp(Utc.from_utc_datetime(&today().and_hms_opt(0, 0, 0).unwrap())).seconds
                    - 14 * 86_400
        );
    }
}
