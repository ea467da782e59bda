//! Globex Corporation, 2025: one key account's year, for hand-computed tests.
//!
//! Tenant `acme` (the supplier), account `globex`. All times are UTC. Unless said otherwise a
//! step is recorded at the instant it happened (`recorded_at == occurred_at`); setup steps happen
//! on 2025-01-02 at 09:00, interactions at 10:00 on their date.
//!
//! # Team
//! | person | name | role |
//! |---|---|---|
//! | dana | Dana Kim | key account manager |
//! | lee | Lee Chan | sales |
//! | sam | Sam Ortiz | service |
//! | eve | Eve Stone | executive sponsor |
//!
//! # Decision-making unit (8 stakeholders)
//! | id | name | title | buying role | influence | attitude | reports to |
//! |---|---|---|---|---|---|---|
//! | cfo | Lee Park | CFO | economic buyer | 5 | supporter | – |
//! | cto | Ana Ruiz | CTO | technical buyer | 4 | neutral (supporter from 2025-06-02) | – |
//! | proc | Raj Patel | Head of Procurement | gatekeeper | 4 | critic | cfo |
//! | ops | Mia Wong | Operations Manager | user | 3 | supporter | cto |
//! | eng | Tom Berg | Lead Engineer | influencer | 3 | champion | cto |
//! | qa | Zoe Lund | QA Manager | user | 2 | neutral | ops |
//! | coach | Ben Cole | Strategy Director | coach | 3 | champion | cfo |
//! | legal | Ida Moss | Legal Counsel | gatekeeper | 2 | neutral | cfo |
//!
//! `legal` is never contacted. On 2025-06-02 (with i21) the CTO's attitude changes from
//! neutral to supporter (a `StakeholderProfileChanged`).
//!
//! # Plan
//! `plan-2025`: calendar year 2025-01-01..2025-12-31, prepared by dana on 2025-01-02, reviewed
//! quarterly. Objective `obj-share` (share of wallet, target 35 %, due 2025-12-31, owner dana,
//! on track). Section `risks` revised on 2025-04-01 and 2025-10-01.
//!
//! # Engagement rules (set 2025-01-02 09:00)
//! | rule | target | owner | cadence | channels |
//! |---|---|---|---|---|
//! | r-cfo | stakeholder cfo | dana | 30 days | in person, business review |
//! | r-tech | buying role technical buyer | lee | 14 days | phone call, video call, in person |
//! | r-proc | stakeholder proc | lee | 45 days | email, phone call, in person |
//! | r-users | buying role user | sam | 30 days | site visit, in person |
//! | r-coach | stakeholder coach | dana | 21 days | phone call, video call |
//!
//! `r-coach` is retired on 2025-07-01 09:00 ("coaching now runs through r-cfo").
//!
//! # Interactions (38; at 10:00 on the date)
//! | id | date | channel | stakeholders | participants | sentiment |
//! |---|---|---|---|---|---|
//! | i01 | 2025-01-08 | in person | cfo | dana | positive |
//! | i02 | 2025-01-13 | video call | cto | lee | neutral |
//! | i03 | 2025-01-20 | site visit | ops, qa | sam | positive |
//! | i04 | 2025-01-27 | phone call | cto | lee | positive |
//! | i05 | 2025-02-03 | phone call | coach | dana | very positive |
//! | i06 | 2025-02-05 | in person | cfo | dana, eve | positive |
//! | i07 | 2025-02-10 | video call | cto, eng | lee | positive |
//! | i08 | 2025-02-17 | email | proc | lee | negative |
//! | i09 | 2025-02-24 | video call | cto | lee | neutral |
//! | i10 | 2025-03-03 | site visit | ops | sam | neutral |
//! | i11 | 2025-03-05 | phone call | coach | dana | positive |
//! | i12 | 2025-03-10 | in person | cfo | dana | positive — **recorded 2025-03-14 10:00** (logged 4 days late) |
//! | i13 | 2025-03-24 | phone call | cto | lee | neutral — **corrected** (below) |
//! | i14 | 2025-03-28 | business review | cfo, cto | dana, lee | positive |
//! | i15 | 2025-04-14 | video call | cto | sam | negative |
//! | i16 | 2025-04-22 | in person | proc | lee | neutral |
//! | i17 | 2025-04-30 | site visit | qa | sam | positive |
//! | i18 | 2025-05-06 | in person | cfo | dana | very positive |
//! | i19 | 2025-05-12 | phone call | coach | dana | positive |
//! | i20 | 2025-05-19 | email | cto | lee | neutral |
//! | i21 | 2025-06-02 | phone call | cto | lee | positive |
//! | i22 | 2025-06-16 | video call | eng | lee | positive |
//! | i23 | 2025-06-25 | in person | cfo | eve | positive |
//! | i24 | 2025-07-07 | site visit | ops | sam | neutral |
//! | i25 | 2025-07-14 | phone call | cto | lee | neutral |
//! | i26 | 2025-07-28 | video call | cto | lee | positive |
//! | i27 | 2025-08-05 | in person | cfo | dana | neutral |
//! | i28 | 2025-08-20 | phone call | proc | lee | negative |
//! | i29 | 2025-09-01 | site visit | ops, qa | sam | positive |
//! | i30 | 2025-09-10 | in person | cfo | dana | positive |
//! | i31 | 2025-09-15 | phone call | cto | lee | positive |
//! | i32 | 2025-09-26 | business review | cfo, cto | dana, lee | positive |
//! | i33 | 2025-10-13 | video call | cto | lee | neutral |
//! | i34 | 2025-10-20 | in person | cfo | dana | negative — **recorded 2025-10-27 10:00** (logged 7 days late) |
//! | i35 | 2025-11-03 | site visit | ops | sam | positive |
//! | i36 | 2025-11-17 | phone call | cto | lee | neutral |
//! | i37 | 2025-12-01 | in person | cfo | dana | positive |
//! | i38 | 2025-12-08 | phone call | cto | lee | positive |
//!
//! Every interaction's next step is "Follow up" and its summary "<channel> with <stakeholders>".
//!
//! **Correction** (recorded 2025-03-26 10:00, by lee): i13 actually happened on **2025-03-21**
//! at 10:00, as a **video call** with **cto and eng**, participants lee, sentiment positive,
//! summary "Architecture review (corrected)". Reason: "logged with the wrong date and channel".
//!
//! # Reviews
//! | review | kind | due | attendees (supplier / customer) | outcome |
//! |---|---|---|---|---|
//! | rev-q1 | quarterly business review | 2025-03-31 | dana, lee / cfo | held 2025-03-28 (recorded then, 16:00): approved with changes, amber; decision "Add a procurement engagement plan"; follow-up a-proc "Draft procurement engagement plan" (lee, due 2025-04-30) |
//! | rev-q2 | internal plan review | 2025-06-30 | dana, eve / – | held **2025-07-08** (late; recorded 2025-07-08 16:00): approved, green |
//! | rev-q3 | quarterly business review | 2025-09-30 | dana, lee / cfo, cto | held 2025-09-26 (16:00): approved, green; decision "Expand to digital services" |
//! | rev-q4 | executive review | 2025-12-31 | dana, eve / cfo | scheduled, not held |
//!
//! All four are scheduled on 2025-01-02 09:00, linked to plan-2025.
//!
//! # Opportunities, actions, revenue, tier
//! - opp-coatings "Coatings line": EUR 250,000.00, qualified, close 2025-09-30, owner lee
//!   (2025-01-02); proposal on 2025-05-15; negotiation on 2025-08-01; **won** on 2025-09-20 for
//!   EUR 240,000.00 ("Best total cost").
//! - opp-solvents "Solvents": EUR 80,000.00, identified, close 2025-12-15, owner lee
//!   (2025-04-01 09:00); **lost** on 2025-11-20 ("Price").
//! - opp-digital "Digital services": EUR 120,000.00, qualified, close 2026-03-31, owner dana
//!   (2025-10-01 09:00); open.
//! - Action a-demo "Run coatings demo" (sam, due 2025-05-30, linked to opp-coatings), added
//!   2025-04-02 09:00, completed 2025-05-28 09:00. a-proc (from rev-q1) completed 2025-04-25 09:00.
//! - Revenue (recorded on the first day after the quarter, 09:00): Q1 actual EUR 1,100,000.00 /
//!   goal 1,000,000.00, margin 2200 bp; Q2 950,000.00 / 1,000,000.00, 2000 bp;
//!   Q3 1,200,000.00 / 1,050,000.00, 2300 bp.
//! - Tier assessed 2025-01-02 09:00 by eve: revenue (weight 3, score 8), growth (2, 7),
//!   strategic fit (1, 9) → (24 + 14 + 9) / 6 = 7.833 → 7833; recommended key.

use keyplan_domain::commands::AssessTier;
use keyplan_domain::events::*;
use keyplan_domain::ids::*;
use keyplan_domain::values::*;
use keyplan_domain::AccountCommand as C;
use keyplan_projection::ProjectedEvent;

use crate::{at, date, decide_steps, Step};

/// The tenant.
pub const TENANT: &str = "acme";
/// The account.
pub const ACCOUNT: &str = "globex";

fn id<T>(parse: fn(String) -> Result<T, keyplan_domain::DomainError>, s: &str) -> T {
    parse(s.to_owned()).expect("a valid fixture id")
}
fn person(s: &str) -> PersonId {
    id(PersonId::parse, s)
}
fn sh(s: &str) -> StakeholderId {
    id(StakeholderId::parse, s)
}
fn eur(units: i64) -> Money {
    Money {
        currency: "EUR".into(),
        minor_units: units * 100,
    }
}

struct Script {
    steps: Vec<Step>,
}

impl Script {
    fn at(&mut self, recorded: Timestamp, occurred: Timestamp, actor: &str, command: C) {
        self.steps.push(Step {
            recorded_at: recorded,
            occurred_at: occurred,
            actor: actor.into(),
            command,
        });
    }
    fn now(&mut self, t: Timestamp, actor: &str, command: C) {
        self.at(t, t, actor, command);
    }
}

/// One interaction row of the table.
struct Row(
    &'static str,
    (i32, u32, u32),
    Channel,
    &'static [&'static str],
    &'static [&'static str],
    Sentiment,
);

const INTERACTIONS: &[Row] = {
    use Channel::*;
    use Sentiment::*;
    &[
        Row("i01", (2025, 1, 8), InPerson, &["cfo"], &["dana"], Positive),
        Row("i02", (2025, 1, 13), VideoCall, &["cto"], &["lee"], Neutral),
        Row(
            "i03",
            (2025, 1, 20),
            SiteVisit,
            &["ops", "qa"],
            &["sam"],
            Positive,
        ),
        Row(
            "i04",
            (2025, 1, 27),
            PhoneCall,
            &["cto"],
            &["lee"],
            Positive,
        ),
        Row(
            "i05",
            (2025, 2, 3),
            PhoneCall,
            &["coach"],
            &["dana"],
            VeryPositive,
        ),
        Row(
            "i06",
            (2025, 2, 5),
            InPerson,
            &["cfo"],
            &["dana", "eve"],
            Positive,
        ),
        Row(
            "i07",
            (2025, 2, 10),
            VideoCall,
            &["cto", "eng"],
            &["lee"],
            Positive,
        ),
        Row("i08", (2025, 2, 17), Email, &["proc"], &["lee"], Negative),
        Row("i09", (2025, 2, 24), VideoCall, &["cto"], &["lee"], Neutral),
        Row("i10", (2025, 3, 3), SiteVisit, &["ops"], &["sam"], Neutral),
        Row(
            "i11",
            (2025, 3, 5),
            PhoneCall,
            &["coach"],
            &["dana"],
            Positive,
        ),
        Row(
            "i12",
            (2025, 3, 10),
            InPerson,
            &["cfo"],
            &["dana"],
            Positive,
        ),
        Row("i13", (2025, 3, 24), PhoneCall, &["cto"], &["lee"], Neutral),
        Row(
            "i14",
            (2025, 3, 28),
            BusinessReview,
            &["cfo", "cto"],
            &["dana", "lee"],
            Positive,
        ),
        Row(
            "i15",
            (2025, 4, 14),
            VideoCall,
            &["cto"],
            &["sam"],
            Negative,
        ),
        Row("i16", (2025, 4, 22), InPerson, &["proc"], &["lee"], Neutral),
        Row("i17", (2025, 4, 30), SiteVisit, &["qa"], &["sam"], Positive),
        Row(
            "i18",
            (2025, 5, 6),
            InPerson,
            &["cfo"],
            &["dana"],
            VeryPositive,
        ),
        Row(
            "i19",
            (2025, 5, 12),
            PhoneCall,
            &["coach"],
            &["dana"],
            Positive,
        ),
        Row("i20", (2025, 5, 19), Email, &["cto"], &["lee"], Neutral),
        Row("i21", (2025, 6, 2), PhoneCall, &["cto"], &["lee"], Positive),
        Row(
            "i22",
            (2025, 6, 16),
            VideoCall,
            &["eng"],
            &["lee"],
            Positive,
        ),
        Row("i23", (2025, 6, 25), InPerson, &["cfo"], &["eve"], Positive),
        Row("i24", (2025, 7, 7), SiteVisit, &["ops"], &["sam"], Neutral),
        Row("i25", (2025, 7, 14), PhoneCall, &["cto"], &["lee"], Neutral),
        Row(
            "i26",
            (2025, 7, 28),
            VideoCall,
            &["cto"],
            &["lee"],
            Positive,
        ),
        Row("i27", (2025, 8, 5), InPerson, &["cfo"], &["dana"], Neutral),
        Row(
            "i28",
            (2025, 8, 20),
            PhoneCall,
            &["proc"],
            &["lee"],
            Negative,
        ),
        Row(
            "i29",
            (2025, 9, 1),
            SiteVisit,
            &["ops", "qa"],
            &["sam"],
            Positive,
        ),
        Row(
            "i30",
            (2025, 9, 10),
            InPerson,
            &["cfo"],
            &["dana"],
            Positive,
        ),
        Row(
            "i31",
            (2025, 9, 15),
            PhoneCall,
            &["cto"],
            &["lee"],
            Positive,
        ),
        Row(
            "i32",
            (2025, 9, 26),
            BusinessReview,
            &["cfo", "cto"],
            &["dana", "lee"],
            Positive,
        ),
        Row(
            "i33",
            (2025, 10, 13),
            VideoCall,
            &["cto"],
            &["lee"],
            Neutral,
        ),
        Row(
            "i34",
            (2025, 10, 20),
            InPerson,
            &["cfo"],
            &["dana"],
            Negative,
        ),
        Row(
            "i35",
            (2025, 11, 3),
            SiteVisit,
            &["ops"],
            &["sam"],
            Positive,
        ),
        Row(
            "i36",
            (2025, 11, 17),
            PhoneCall,
            &["cto"],
            &["lee"],
            Neutral,
        ),
        Row(
            "i37",
            (2025, 12, 1),
            InPerson,
            &["cfo"],
            &["dana"],
            Positive,
        ),
        Row(
            "i38",
            (2025, 12, 8),
            PhoneCall,
            &["cto"],
            &["lee"],
            Positive,
        ),
    ]
};

/// Interactions recorded later than they happened: (id, recorded on).
const LATE: &[(&str, (i32, u32, u32))] = &[("i12", (2025, 3, 14)), ("i34", (2025, 10, 27))];

fn interaction_command(row: &Row) -> (Timestamp, C) {
    let Row(iid, (y, m, d), channel, stakeholders, participants, sentiment) = row;
    let occurred = at(*y, *m, *d, 10);
    let details = InteractionDetails {
        occurred_at: occurred,
        channel: *channel,
        stakeholders: stakeholders.iter().map(|s| sh(s)).collect(),
        participants: participants.iter().map(|p| person(p)).collect(),
        summary: format!("{} with {}", channel.as_str(), stakeholders.join(", ")),
        sentiment: *sentiment,
        next_step: "Follow up".into(),
        opportunity_id: None,
    };
    (
        occurred,
        C::LogInteraction(InteractionLogged {
            interaction_id: id(InteractionId::parse, iid),
            details,
        }),
    )
}

fn rule(
    rule_id: &str,
    target: RuleTarget,
    owner: &str,
    cadence_days: u32,
    channels: &[Channel],
) -> C {
    C::SetEngagementRule(EngagementRuleSet {
        rule_id: id(RuleId::parse, rule_id),
        target,
        owner: person(owner),
        cadence_days,
        channels: channels.to_vec(),
        opportunity_id: None,
    })
}

#[allow(clippy::too_many_arguments)]
fn stakeholder(
    s: &str,
    name: &str,
    title: &str,
    role: BuyingRole,
    influence: u8,
    attitude: Attitude,
    reports_to: Option<&str>,
) -> C {
    C::AddStakeholder(StakeholderAdded {
        stakeholder_id: sh(s),
        name: name.into(),
        title: title.into(),
        reports_to: reports_to.map(sh),
        buying_role: role,
        influence,
        attitude,
    })
}

fn review(
    r: &str,
    kind: ReviewKind,
    due: (i32, u32, u32),
    supplier: &[&str],
    customer: &[&str],
) -> C {
    C::ScheduleReview(ReviewScheduled {
        review_id: id(ReviewId::parse, r),
        kind,
        plan_id: Some(id(PlanId::parse, "plan-2025")),
        due_on: date(due.0, due.1, due.2),
        supplier_attendees: supplier.iter().map(|p| person(p)).collect(),
        customer_attendees: customer.iter().map(|s| sh(s)).collect(),
    })
}

#[allow(clippy::too_many_arguments)]
fn outcome(
    r: &str,
    held: (i32, u32, u32),
    supplier: &[&str],
    customer: &[&str],
    result: ReviewOutcome,
    health: HealthRating,
    decisions: &[&str],
    follow_ups: Vec<FollowUpAction>,
) -> C {
    C::RecordReviewOutcome(ReviewOutcomeRecorded {
        review_id: id(ReviewId::parse, r),
        held_on: date(held.0, held.1, held.2),
        supplier_attendees: supplier.iter().map(|p| person(p)).collect(),
        customer_attendees: customer.iter().map(|s| sh(s)).collect(),
        outcome: result,
        health,
        decisions: decisions.iter().map(|d| d.to_string()).collect(),
        follow_up_actions: follow_ups,
    })
}

fn revenue(q: u32, actual: i64, goal: i64, margin: i32) -> C {
    let start = date(2025, 3 * (q - 1) + 1, 1);
    let end = match q {
        1 => date(2025, 3, 31),
        2 => date(2025, 6, 30),
        3 => date(2025, 9, 30),
        _ => date(2025, 12, 31),
    };
    C::RecordRevenue(RevenueRecorded {
        period_start: start,
        period_end: end,
        product: String::new(),
        actual: eur(actual),
        goal: eur(goal),
        margin_basis_points: Some(margin),
    })
}

/// Every step of the year, in the order Keyplan recorded them.
pub fn steps() -> Vec<Step> {
    use Attitude::*;
    use BuyingRole::*;
    use Channel::*;
    let mut s = Script { steps: Vec::new() };
    let setup = at(2025, 1, 2, 9);
    s.now(
        setup,
        "dana",
        C::RegisterAccount(AccountRegistered {
            name: "Globex Corporation".into(),
            industry: "Chemicals".into(),
            region: "EMEA".into(),
            headquarters: "Rotterdam".into(),
            tier: Tier::Key,
        }),
    );
    for (p, name, role) in [
        ("dana", "Dana Kim", TeamRole::KeyAccountManager),
        ("lee", "Lee Chan", TeamRole::Sales),
        ("sam", "Sam Ortiz", TeamRole::Service),
        ("eve", "Eve Stone", TeamRole::ExecutiveSponsor),
    ] {
        s.now(
            setup,
            "dana",
            C::AssignTeamMember(TeamMemberAssigned {
                person_id: person(p),
                name: name.into(),
                role,
            }),
        );
    }
    s.now(
        setup,
        "dana",
        C::DraftPlan(PlanDrafted {
            plan_id: id(PlanId::parse, "plan-2025"),
            period: PlanPeriod {
                kind: PlanPeriodKind::CalendarYear,
                start: date(2025, 1, 1),
                end: Some(date(2025, 12, 31)),
            },
            prepared_by: person("dana"),
            prepared_on: date(2025, 1, 2),
            review_frequency: ReviewFrequency::Quarterly,
        }),
    );
    for c in [
        stakeholder("cfo", "Lee Park", "CFO", EconomicBuyer, 5, Supporter, None),
        stakeholder(
            "cto",
            "Ana Ruiz",
            "CTO",
            TechnicalBuyer,
            4,
            Attitude::Neutral,
            None,
        ),
        stakeholder(
            "proc",
            "Raj Patel",
            "Head of Procurement",
            Gatekeeper,
            4,
            Critic,
            Some("cfo"),
        ),
        stakeholder(
            "ops",
            "Mia Wong",
            "Operations Manager",
            User,
            3,
            Supporter,
            Some("cto"),
        ),
        stakeholder(
            "eng",
            "Tom Berg",
            "Lead Engineer",
            Influencer,
            3,
            Champion,
            Some("cto"),
        ),
        stakeholder(
            "qa",
            "Zoe Lund",
            "QA Manager",
            User,
            2,
            Attitude::Neutral,
            Some("ops"),
        ),
        stakeholder(
            "coach",
            "Ben Cole",
            "Strategy Director",
            Coach,
            3,
            Champion,
            Some("cfo"),
        ),
        stakeholder(
            "legal",
            "Ida Moss",
            "Legal Counsel",
            Gatekeeper,
            2,
            Attitude::Neutral,
            Some("cfo"),
        ),
    ] {
        s.now(setup, "dana", c);
    }
    for c in [
        rule(
            "r-cfo",
            RuleTarget::Stakeholder(sh("cfo")),
            "dana",
            30,
            &[InPerson, BusinessReview],
        ),
        rule(
            "r-tech",
            RuleTarget::BuyingRole(TechnicalBuyer),
            "lee",
            14,
            &[PhoneCall, VideoCall, InPerson],
        ),
        rule(
            "r-proc",
            RuleTarget::Stakeholder(sh("proc")),
            "lee",
            45,
            &[Email, PhoneCall, InPerson],
        ),
        rule(
            "r-users",
            RuleTarget::BuyingRole(User),
            "sam",
            30,
            &[SiteVisit, InPerson],
        ),
        rule(
            "r-coach",
            RuleTarget::Stakeholder(sh("coach")),
            "dana",
            21,
            &[PhoneCall, VideoCall],
        ),
    ] {
        s.now(setup, "dana", c);
    }
    s.now(
        setup,
        "eve",
        C::AssessTier(AssessTier {
            criteria: vec![
                TierCriterion {
                    name: "revenue".into(),
                    weight: 3,
                    score: 8,
                },
                TierCriterion {
                    name: "growth".into(),
                    weight: 2,
                    score: 7,
                },
                TierCriterion {
                    name: "strategic fit".into(),
                    weight: 1,
                    score: 9,
                },
            ],
            recommended_tier: Tier::Key,
            assessed_by: person("eve"),
        }),
    );
    s.now(
        setup,
        "lee",
        C::IdentifyOpportunity(OpportunityIdentified {
            opportunity_id: id(OpportunityId::parse, "opp-coatings"),
            title: "Coatings line".into(),
            value: eur(250_000),
            stage: OpportunityStage::Qualified,
            expected_close_on: date(2025, 9, 30),
            owner: person("lee"),
        }),
    );
    s.now(
        setup,
        "dana",
        C::SetObjective(ObjectiveSet {
            objective_id: id(ObjectiveId::parse, "obj-share"),
            plan_id: id(PlanId::parse, "plan-2025"),
            title: "Grow share of wallet".into(),
            metric: "share of wallet".into(),
            target: "35%".into(),
            due_on: date(2025, 12, 31),
            owner: person("dana"),
            status: ObjectiveStatus::OnTrack,
        }),
    );
    for c in [
        review(
            "rev-q1",
            ReviewKind::QuarterlyBusinessReview,
            (2025, 3, 31),
            &["dana", "lee"],
            &["cfo"],
        ),
        review(
            "rev-q2",
            ReviewKind::InternalPlanReview,
            (2025, 6, 30),
            &["dana", "eve"],
            &[],
        ),
        review(
            "rev-q3",
            ReviewKind::QuarterlyBusinessReview,
            (2025, 9, 30),
            &["dana", "lee"],
            &["cfo", "cto"],
        ),
        review(
            "rev-q4",
            ReviewKind::Executive,
            (2025, 12, 31),
            &["dana", "eve"],
            &["cfo"],
        ),
    ] {
        s.now(setup, "dana", c);
    }

    // The year, in the order things were recorded.
    let mut dated: Vec<(Timestamp, Timestamp, &str, C)> = Vec::new();
    for row in INTERACTIONS {
        let (occurred, command) = interaction_command(row);
        let recorded = LATE
            .iter()
            .find(|(iid, _)| *iid == row.0)
            .map_or(occurred, |(_, (y, m, d))| at(*y, *m, *d, 10));
        let actor = row.4[0];
        dated.push((recorded, occurred, actor, command));
    }
    let nine = |y, m, d| at(y, m, d, 9);
    let sixteen = |y, m, d| at(y, m, d, 16);
    let mut other = |recorded: Timestamp, actor: &'static str, command: C| {
        dated.push((recorded, recorded, actor, command))
    };
    other(
        at(2025, 3, 26, 10),
        "lee",
        C::CorrectInteraction(InteractionCorrected {
            interaction_id: id(InteractionId::parse, "i13"),
            details: InteractionDetails {
                occurred_at: at(2025, 3, 21, 10),
                channel: VideoCall,
                stakeholders: vec![sh("cto"), sh("eng")],
                participants: vec![person("lee")],
                summary: "Architecture review (corrected)".into(),
                sentiment: Sentiment::Positive,
                next_step: "Follow up".into(),
                opportunity_id: None,
            },
            reason: "logged with the wrong date and channel".into(),
        }),
    );
    other(
        sixteen(2025, 3, 28),
        "dana",
        outcome(
            "rev-q1",
            (2025, 3, 28),
            &["dana", "lee"],
            &["cfo"],
            ReviewOutcome::ApprovedWithChanges,
            HealthRating::Amber,
            &["Add a procurement engagement plan"],
            vec![FollowUpAction {
                action_item_id: id(ActionItemId::parse, "a-proc"),
                title: "Draft procurement engagement plan".into(),
                owner: person("lee"),
                due_on: date(2025, 4, 30),
            }],
        ),
    );
    other(
        nine(2025, 4, 1),
        "lee",
        C::IdentifyOpportunity(OpportunityIdentified {
            opportunity_id: id(OpportunityId::parse, "opp-solvents"),
            title: "Solvents".into(),
            value: eur(80_000),
            stage: OpportunityStage::Identified,
            expected_close_on: date(2025, 12, 15),
            owner: person("lee"),
        }),
    );
    other(
        nine(2025, 4, 1),
        "dana",
        revenue(1, 1_100_000, 1_000_000, 2200),
    );
    other(
        nine(2025, 4, 1),
        "dana",
        C::RevisePlanSection(PlanSectionRevised {
            plan_id: id(PlanId::parse, "plan-2025"),
            section: PlanSection::Risks,
            text: "Procurement pushes for a second supplier.".into(),
        }),
    );
    other(
        nine(2025, 4, 2),
        "sam",
        C::AddActionItem(ActionItemAdded {
            action_item_id: id(ActionItemId::parse, "a-demo"),
            title: "Run coatings demo".into(),
            owner: person("sam"),
            due_on: date(2025, 5, 30),
            link: Some(ActionLink::Opportunity(id(
                OpportunityId::parse,
                "opp-coatings",
            ))),
        }),
    );
    other(
        nine(2025, 4, 25),
        "lee",
        C::CompleteActionItem(ActionItemCompleted {
            action_item_id: id(ActionItemId::parse, "a-proc"),
            completed_on: date(2025, 4, 25),
            note: "Shared with procurement".into(),
        }),
    );
    other(
        nine(2025, 5, 15),
        "lee",
        C::ChangeOpportunityStage(OpportunityStageChanged {
            opportunity_id: id(OpportunityId::parse, "opp-coatings"),
            stage: OpportunityStage::Proposal,
            expected_close_on: None,
        }),
    );
    other(
        nine(2025, 5, 28),
        "sam",
        C::CompleteActionItem(ActionItemCompleted {
            action_item_id: id(ActionItemId::parse, "a-demo"),
            completed_on: date(2025, 5, 28),
            note: "Demo went well".into(),
        }),
    );
    other(
        at(2025, 6, 2, 11),
        "lee",
        C::ChangeStakeholderProfile(StakeholderProfileChanged {
            stakeholder_id: sh("cto"),
            title: None,
            reports_to: None,
            clear_reports_to: false,
            buying_role: None,
            influence: None,
            attitude: Some(Supporter),
            note: "Warmed up after the architecture review".into(),
        }),
    );
    other(
        nine(2025, 7, 1),
        "dana",
        C::RetireEngagementRule(EngagementRuleRetired {
            rule_id: id(RuleId::parse, "r-coach"),
            reason: "coaching now runs through r-cfo".into(),
        }),
    );
    other(
        nine(2025, 7, 1),
        "dana",
        revenue(2, 950_000, 1_000_000, 2000),
    );
    other(
        sixteen(2025, 7, 8),
        "dana",
        outcome(
            "rev-q2",
            (2025, 7, 8),
            &["dana", "eve"],
            &[],
            ReviewOutcome::Approved,
            HealthRating::Green,
            &[],
            vec![],
        ),
    );
    other(
        nine(2025, 8, 1),
        "lee",
        C::ChangeOpportunityStage(OpportunityStageChanged {
            opportunity_id: id(OpportunityId::parse, "opp-coatings"),
            stage: OpportunityStage::Negotiation,
            expected_close_on: None,
        }),
    );
    other(
        nine(2025, 9, 20),
        "lee",
        C::WinOpportunity(OpportunityWon {
            opportunity_id: id(OpportunityId::parse, "opp-coatings"),
            value: eur(240_000),
            closed_on: date(2025, 9, 20),
            reason: "Best total cost".into(),
        }),
    );
    other(
        sixteen(2025, 9, 26),
        "dana",
        outcome(
            "rev-q3",
            (2025, 9, 26),
            &["dana", "lee"],
            &["cfo", "cto"],
            ReviewOutcome::Approved,
            HealthRating::Green,
            &["Expand to digital services"],
            vec![],
        ),
    );
    other(
        nine(2025, 10, 1),
        "dana",
        C::IdentifyOpportunity(OpportunityIdentified {
            opportunity_id: id(OpportunityId::parse, "opp-digital"),
            title: "Digital services".into(),
            value: eur(120_000),
            stage: OpportunityStage::Qualified,
            expected_close_on: date(2026, 3, 31),
            owner: person("dana"),
        }),
    );
    other(
        nine(2025, 10, 1),
        "dana",
        revenue(3, 1_200_000, 1_050_000, 2300),
    );
    other(
        nine(2025, 10, 1),
        "dana",
        C::RevisePlanSection(PlanSectionRevised {
            plan_id: id(PlanId::parse, "plan-2025"),
            section: PlanSection::Risks,
            text: "Procurement pushes for a second supplier; solvents pricing under pressure."
                .into(),
        }),
    );
    other(
        nine(2025, 11, 20),
        "lee",
        C::LoseOpportunity(OpportunityLost {
            opportunity_id: id(OpportunityId::parse, "opp-solvents"),
            closed_on: date(2025, 11, 20),
            reason: "Price".into(),
        }),
    );
    // Stable sort: same-instant steps keep the order written above (interactions first).
    dated.sort_by_key(|(recorded, ..)| *recorded);
    for (recorded, occurred, actor, command) in dated {
        s.at(recorded, occurred, actor, command);
    }
    s.steps
}

/// The year's events as the domain decides them, positions 1..=N in recorded order.
pub fn events() -> Vec<ProjectedEvent> {
    decide_steps(TENANT, ACCOUNT, &steps(), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_is_accepted_by_the_domain_and_has_the_documented_shape() {
        let events = events();
        let count = |t: &str| events.iter().filter(|e| e.event.event_type() == t).count();
        assert_eq!(count("StakeholderAdded"), 8);
        assert_eq!(count("EngagementRuleSet"), 5);
        assert_eq!(count("EngagementRuleRetired"), 1);
        assert_eq!(count("InteractionLogged"), 38);
        assert_eq!(count("InteractionCorrected"), 1);
        assert_eq!(count("ReviewScheduled"), 4);
        assert_eq!(count("ReviewOutcomeRecorded"), 3);
        assert!(
            events
                .windows(2)
                .all(|w| w[0].recorded_at <= w[1].recorded_at),
            "recorded order"
        );
        assert!(events
            .iter()
            .enumerate()
            .all(|(i, e)| e.position == i as u64 + 1 && e.stream_version == i as u64 + 1));
    }
}
