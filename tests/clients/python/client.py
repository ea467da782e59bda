#!/usr/bin/env python3
"""A Keyplan integrator's client in Python (grpcio), written from README.md and proto/ only.

Usage: client.py HOST:PORT

Against a live node it registers a key account (ids unique per run), assigns its key account
manager, adds a stakeholder, sets two engagement rules (with expectedVersion.exact, as the
README requires), watches the account (EventStoreService/Watch, opened before logging), logs an
in-person meeting a few hours ago that satisfies one rule and not the other, then checks:
- the watch delivers exactly that InteractionLogged event (ids, position, content);
- ComplianceService/GetAccountCompliance (read-your-writes via minPosition) gives the statuses
  README "The rules, exactly" prescribes: ON_TRACK for the rule met, NEVER_MET (not yet due,
  so counted on track) for the other, with their due dates; and on the AS_KNOWN_AT axis, just
  before the interaction was recorded, the first rule was still NEVER_MET;
- the documented refusals: a stale exact version is ABORTED with the current version and the
  winning event in the trailers; a rule edit without expectedVersion is refused and stores
  nothing; a retry with the same idempotencyKey is deduplicated.
Exits 0 only if every check passed.
"""

import datetime as dt
import os
import queue
import sys
import threading
import time
import uuid

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keyplan_proto  # noqa: E402

pb = keyplan_proto.load()
ev = pb.events_pb2
cmd = pb.commands_pb2
ty = pb.types_pb2
es = pb.event_store_pb2
co = pb.compliance_pb2

UTC = dt.timezone.utc
CADENCE_CFO = 30
CADENCE_EMAIL = 14


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"  ok: {what}")


def ts(when):
    from google.protobuf.timestamp_pb2 import Timestamp

    t = Timestamp()
    t.FromDatetime(when)
    return t


def to_dt(t):
    return t.ToDatetime(tzinfo=UTC)


def day(s):
    return dt.date.fromisoformat(s)


def window(cadence):
    # README: w = min(7, max(1, floor(c / 4)))
    return min(7, max(1, cadence // 4))


class Keyplan:
    def __init__(self, address):
        self.channel = grpc.insecure_channel(address)
        grpc.channel_ready_future(self.channel).result(timeout=15)
        self.commands = pb.commands_pb2_grpc.CommandServiceStub(self.channel)
        self.events = pb.event_store_pb2_grpc.EventStoreServiceStub(self.channel)
        self.compliance = pb.compliance_pb2_grpc.ComplianceServiceStub(self.channel)

    def execute(self, tenant, account, command, expected=None, occurred_at=None, key="", actor="kam.ci"):
        req = cmd.ExecuteRequest(tenant=tenant, account_id=account, actor=actor, command=command,
                                 idempotency_key=key)
        if expected is not None:
            req.expected_version.CopyFrom(expected)
        if occurred_at is not None:
            req.occurred_at.CopyFrom(ts(occurred_at))
        return self.commands.Execute(req, timeout=15)


def main():
    if len(sys.argv) != 2:
        print("usage: client.py HOST:PORT", file=sys.stderr)
        return 2
    kp = Keyplan(sys.argv[1])
    run = uuid.uuid4().hex[:12]
    tenant = f"ci-py-{run}"
    account = f"acct-{run}"
    kam, cfo = "kam.ci", "cfo.lee"
    now = dt.datetime.now(UTC)
    # Business times in the past, relative to the clock (never a fixed date): the team and the
    # decision-making unit predate the meeting, so that the KAM was in the team when it happened
    # (README: a qualifying interaction needs a supplier participant who was a team member at
    # the interaction's occurredAt).
    setup_at = now - dt.timedelta(days=2)
    met_at = (now - dt.timedelta(hours=3)).replace(microsecond=123456)
    print(f"python client: tenant={tenant} account={account}")

    # 1. Register, assign the KAM, add the CFO.
    r = kp.execute(tenant, account, cmd.Command(register_account=ev.AccountRegistered(
        name="Globex CI", industry="Chemicals", region="EMEA", headquarters="Rotterdam",
        tier=ty.TIER_KEY)), expected=cmd.ExpectedVersion(no_stream=True), occurred_at=setup_at)
    check(r.first_version == 1 and r.last_version == 1 and len(r.event_ids) == 1,
          f"registered at version 1 (position {r.last_position})")
    r = kp.execute(tenant, account, cmd.Command(assign_team_member=ev.TeamMemberAssigned(
        person_id=kam, name="Kim Kam", role=ty.TEAM_ROLE_KEY_ACCOUNT_MANAGER)),
        expected=cmd.ExpectedVersion(exact=1), occurred_at=setup_at)
    check(r.last_version == 2, "KAM assigned at version 2")
    r = kp.execute(tenant, account, cmd.Command(add_stakeholder=ev.StakeholderAdded(
        stakeholder_id=cfo, name="Lee Park", title="CFO",
        buying_role=ty.BUYING_ROLE_ECONOMIC_BUYER, influence=5, attitude=ty.ATTITUDE_SUPPORTER)),
        occurred_at=setup_at)
    check(r.last_version == 3, "stakeholder added at version 3")
    stakeholder_added_id = r.event_ids[0]

    rule_cfo = ev.EngagementRuleSet(
        rule_id="r-cfo", target=ev.RuleTarget(stakeholder_id=cfo), owner=kam,
        cadence_days=CADENCE_CFO, channels=[ty.CHANNEL_IN_PERSON, ty.CHANNEL_BUSINESS_REVIEW])

    # 2. An engagement-rule edit without expectedVersion.exact is refused and stores nothing.
    try:
        kp.execute(tenant, account, cmd.Command(set_engagement_rule=rule_cfo))
        check(False, "setEngagementRule without expectedVersion is refused")
    except grpc.RpcError as e:
        check(e.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION),
              f"setEngagementRule without expectedVersion refused: {e.code().name} {e.details()!r}")

    # 3. With a stale exact version: ABORTED, trailers name the current version and carry the
    #    winning event (README "Errors").
    try:
        kp.execute(tenant, account, cmd.Command(set_engagement_rule=rule_cfo),
                   expected=cmd.ExpectedVersion(exact=2))
        check(False, "setEngagementRule with a stale version is ABORTED")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.ABORTED, f"stale version ABORTED: {e.details()!r}")
        trailers = dict(e.trailing_metadata() or ())
        check(trailers.get("keyplan-current-version") == "3",
              f"trailer keyplan-current-version = {trailers.get('keyplan-current-version')!r}")
        winner = ev.Event()
        winner.ParseFromString(trailers.get("keyplan-conflict-event-bin", b""))
        check(winner.metadata.event_id == stakeholder_added_id
              and winner.metadata.stream_version == 3
              and winner.metadata.event_type == "StakeholderAdded"
              and winner.payload.WhichOneof("event") == "stakeholder_added",
              "trailer keyplan-conflict-event-bin is the winning StakeholderAdded event")

    # 4. The two rules, each with the exact version seen.
    before_rules = dt.datetime.now(UTC)
    r = kp.execute(tenant, account, cmd.Command(set_engagement_rule=rule_cfo),
                   expected=cmd.ExpectedVersion(exact=3))
    check(r.last_version == 4, "rule r-cfo set at version 4 (nothing stored by the refusals)")
    rule_email = ev.EngagementRuleSet(
        rule_id="r-email", target=ev.RuleTarget(buying_role=ty.BUYING_ROLE_ECONOMIC_BUYER),
        owner=kam, cadence_days=CADENCE_EMAIL, channels=[ty.CHANNEL_EMAIL])
    r = kp.execute(tenant, account, cmd.Command(set_engagement_rule=rule_email),
                   expected=cmd.ExpectedVersion(exact=4))
    after_rules = dt.datetime.now(UTC)
    check(r.last_version == 5, "rule r-email set at version 5")
    rules_position = r.last_position
    time.sleep(0.01)
    before_log = dt.datetime.now(UTC)  # recorded after both rules, before the interaction

    # 5. Watch the account from the next position on, before logging.
    watch = kp.events.Watch(es.WatchRequest(tenant=tenant, account_id=account,
                                            from_position=rules_position + 1), timeout=30)
    received = queue.Queue()

    def pump():
        try:
            for e in watch:
                received.put(e)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                received.put(e)

    threading.Thread(target=pump, daemon=True).start()
    time.sleep(0.2)

    # 6. Log the meeting (in person, with the CFO and the KAM, three hours ago).
    interaction = ev.InteractionLogged(interaction_id="mtg-1", details=ev.InteractionDetails(
        occurred_at=ts(met_at), channel=ty.CHANNEL_IN_PERSON, stakeholders=[cfo],
        participants=[kam], summary="Pricing for next year", sentiment=ty.SENTIMENT_POSITIVE,
        next_step="Send pricing proposal"))
    key = f"meeting-{run}"
    logged = kp.execute(tenant, account, cmd.Command(log_interaction=interaction), key=key)
    check(logged.last_version == 6 and len(logged.event_ids) == 1 and not logged.deduplicated,
          f"interaction logged at version 6, position {logged.last_position}")
    retry = kp.execute(tenant, account, cmd.Command(log_interaction=interaction), key=key)
    check(retry.deduplicated and list(retry.event_ids) == list(logged.event_ids)
          and retry.last_position == logged.last_position,
          "a retry with the same idempotencyKey is deduplicated with the original result")

    # 7. The watch delivers it.
    got = received.get(timeout=20)
    if isinstance(got, Exception):
        raise got
    md = got.metadata
    check(md.event_type == "InteractionLogged", f"watch: event type {md.event_type}")
    check(md.event_id == logged.event_ids[0], f"watch: event id {md.event_id}")
    check(md.tenant == tenant and md.account_id == account, "watch: tenant and account ids")
    check(md.stream_version == 6 and md.global_position == logged.last_position,
          f"watch: stream version {md.stream_version}, position {md.global_position}")
    check(md.idempotency_key == key and md.actor == kam, "watch: idempotency key and actor")
    check(got.payload.WhichOneof("event") == "interaction_logged", "watch: payload interaction_logged")
    il = got.payload.interaction_logged
    check(il.interaction_id == "mtg-1" and list(il.details.stakeholders) == [cfo]
          and list(il.details.participants) == [kam]
          and il.details.channel == ty.CHANNEL_IN_PERSON
          and to_dt(il.details.occurred_at) == met_at,
          "watch: interaction id, participants, channel and occurredAt as sent")
    check(len(md.hash) == 32 and len(md.prev_hash) == 32, "watch: SHA-256 hash chain fields")
    try:
        extra = received.get(timeout=0.5)
        check(False, f"watch: nothing else (got {extra})")
    except queue.Empty:
        check(True, "watch: the deduplicated retry delivered nothing more")
    watch.cancel()

    # 8. Compliance, reading our own write.
    c = kp.compliance.GetAccountCompliance(co.GetAccountComplianceRequest(
        tenant=tenant, account_id=account, min_position=logged.last_position), timeout=15)
    check(c.position >= logged.last_position, f"compliance: position {c.position} includes the log")
    check(c.axis == co.COMPLIANCE_AXIS_AS_HAPPENED_BY, "compliance: default axis AS_HAPPENED_BY")
    today = to_dt(c.as_of).date()
    check([x.rule_id for x in c.rules] == ["r-cfo", "r-email"], "compliance: both rules, by id")
    rc, re_ = c.rules
    set_dates = {before_rules.date(), after_rules.date()}
    check(day(rc.set_on) in set_dates and day(re_.set_on) in set_dates,
          f"compliance: rules set on {rc.set_on}")

    # r-cfo: met by mtg-1 -> due = max(meeting date, set date) + 30, far beyond the window of 7.
    check(rc.status == co.COMPLIANCE_RULE_STATUS_ON_TRACK,
          f"r-cfo status {co.ComplianceRuleStatus.Name(rc.status)} (expected ON_TRACK)")
    check(rc.HasField("last_interaction") and rc.last_interaction.interaction_id == "mtg-1",
          "r-cfo: last qualifying interaction mtg-1")
    check(rc.last_interaction.occurred_on == met_at.date().isoformat()
          and to_dt(rc.last_interaction.occurred_at) == met_at
          and not rc.last_interaction.corrected,
          f"r-cfo: last interaction on {rc.last_interaction.occurred_on}")
    due = max(met_at.date(), day(rc.set_on)) + dt.timedelta(days=CADENCE_CFO)
    check(rc.next_due_on == due.isoformat(), f"r-cfo: next due on {rc.next_due_on}")
    check(rc.days_overdue == 0 and rc.days_until_due == (due - today).days,
          f"r-cfo: due in {rc.days_until_due} days")
    check(rc.due_soon_window_days == window(CADENCE_CFO) == 7, "r-cfo: due-soon window 7")
    check(rc.definition.owner == kam and rc.definition.cadence_days == CADENCE_CFO
          and rc.definition.target.stakeholder_id == cfo, "r-cfo: definition as set")

    # r-email: the meeting was in person, not an email -> never met, first due set date + 14.
    check(re_.status == co.COMPLIANCE_RULE_STATUS_NEVER_MET,
          f"r-email status {co.ComplianceRuleStatus.Name(re_.status)} (expected NEVER_MET)")
    check(not re_.HasField("last_interaction"), "r-email: no qualifying interaction")
    due_e = day(re_.set_on) + dt.timedelta(days=CADENCE_EMAIL)
    check(re_.next_due_on == due_e.isoformat() and re_.days_overdue == 0,
          f"r-email: first due on {re_.next_due_on}, not overdue")
    check(re_.due_soon_window_days == window(CADENCE_EMAIL) == 3, "r-email: due-soon window 3")

    s = c.share
    check(s.active == 2 and s.on_track == 2 and s.HasField("share") and s.share == 1.0,
          f"share on track {s.on_track}/{s.active} = {s.share}")
    check(s.status_on_track == 1 and s.status_never_met == 1 and s.status_due_soon == 0
          and s.status_overdue == 0, "share: counts per status")
    check(len(c.overdue) == 0 and len(c.retired_rules) == 0, "no overdue or retired rule")

    # 9. The two axes: just before the interaction was recorded, it had already happened (so
    #    as happened by then, r-cfo is met) but was not known yet (as known at then: NEVER_MET).
    for axis, want in ((co.COMPLIANCE_AXIS_AS_HAPPENED_BY, co.COMPLIANCE_RULE_STATUS_ON_TRACK),
                       (co.COMPLIANCE_AXIS_AS_KNOWN_AT, co.COMPLIANCE_RULE_STATUS_NEVER_MET)):
        past = kp.compliance.GetAccountCompliance(co.GetAccountComplianceRequest(
            tenant=tenant, account_id=account, as_of=ts(before_log), axis=axis,
            min_position=logged.last_position), timeout=15)
        got_status = {x.rule_id: x.status for x in past.rules}.get("r-cfo")
        check(past.axis == axis and got_status == want,
              f"as of just before logging, {co.ComplianceAxis.Name(axis)}: r-cfo "
              f"{co.ComplianceRuleStatus.Name(got_status or 0)}")

    # 10. Alerts: a rule never met, past its first due date, is alerted on WatchAlerts.
    alerts_flow(kp, tenant, run, now)

    print("python client: all checks passed")
    return 0


class AlertWatch:
    """One ComplianceService/WatchAlerts call, read by a thread into a queue."""

    def __init__(self, kp, request, what):
        self.what = what
        self.call = kp.compliance.WatchAlerts(request, timeout=60)
        # The server subscribes before it answers with headers: once they are here, no alert
        # raised from now on can be missed.
        self.call.initial_metadata()
        self.received = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        try:
            for a in self.call:
                self.received.put(a)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                self.received.put(e)

    def wait_for(self, account, seconds):
        """The first alert for `account` within `seconds` (others are kept for the message)."""
        deadline = time.monotonic() + seconds
        others = []
        while True:
            left = deadline - time.monotonic()
            try:
                got = self.received.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise AssertionError(
                    f"{self.what}: no alert for account {account} within {seconds} s "
                    f"(other alerts received: {[a.alert_id for a in others]})") from None
            if isinstance(got, Exception):
                raise AssertionError(f"{self.what}: the stream failed: {got.code().name} {got.details()!r}")
            if got.account_id == account:
                return got
            others.append(got)

    def cancel(self):
        self.call.cancel()


def alerts_flow(kp, tenant, run, now):
    """A second account whose rule was set 60 days ago with a 30-day cadence and never met:
    NEVER_MET past its first due date (set date + 30), so a RULE_NEVER_MET alert within seconds."""
    account = f"late-{run}"
    kam, cfo, rule = "kam.late", "cfo.late", "r-late"
    setup_at = now - dt.timedelta(days=61)
    rule_at = now - dt.timedelta(days=60)

    # Opened before anything is written: the whole tenant, and one filtered to the account and kind.
    tenant_watch = AlertWatch(kp, co.WatchAlertsRequest(tenant=tenant), "WatchAlerts(tenant)")
    filtered = AlertWatch(kp, co.WatchAlertsRequest(
        tenant=tenant, account_id=account, kinds=[co.COMPLIANCE_ALERT_KIND_RULE_NEVER_MET]),
        "WatchAlerts(account, RULE_NEVER_MET)")
    check(True, "alerts: WatchAlerts opened for the tenant (and filtered) before writing")

    kp.execute(tenant, account, cmd.Command(register_account=ev.AccountRegistered(
        name="Late Corp", industry="Retail", region="EMEA", headquarters="Lyon", tier=ty.TIER_KEY)),
        expected=cmd.ExpectedVersion(no_stream=True), occurred_at=setup_at)
    kp.execute(tenant, account, cmd.Command(assign_team_member=ev.TeamMemberAssigned(
        person_id=kam, name="Lou Late", role=ty.TEAM_ROLE_KEY_ACCOUNT_MANAGER)),
        expected=cmd.ExpectedVersion(exact=1), occurred_at=setup_at)
    kp.execute(tenant, account, cmd.Command(add_stakeholder=ev.StakeholderAdded(
        stakeholder_id=cfo, name="Ana Cruz", title="CFO",
        buying_role=ty.BUYING_ROLE_ECONOMIC_BUYER, influence=4, attitude=ty.ATTITUDE_NEUTRAL)),
        expected=cmd.ExpectedVersion(exact=2), occurred_at=setup_at)
    r = kp.execute(tenant, account, cmd.Command(set_engagement_rule=ev.EngagementRuleSet(
        rule_id=rule, target=ev.RuleTarget(stakeholder_id=cfo), owner=kam, cadence_days=30,
        channels=[ty.CHANNEL_IN_PERSON])), expected=cmd.ExpectedVersion(exact=3), occurred_at=rule_at)
    check(r.last_version == 4, f"alerts: rule {rule} set 60 days ago, every 30 days, never met "
          f"(position {r.last_position})")

    a = tenant_watch.wait_for(account, 20)
    due = rule_at.date() + dt.timedelta(days=30)
    raised_on = to_dt(a.raised_at).date()
    check(a.kind == co.COMPLIANCE_ALERT_KIND_RULE_NEVER_MET,
          f"alert kind {co.ComplianceAlertKind.Name(a.kind)} (expected RULE_NEVER_MET)")
    check(a.tenant == tenant and a.account_id == account and a.account_name == "Late Corp",
          "alert: tenant, account and account name")
    check(a.rule_id == rule and a.owner == kam and a.owner_name == "Lou Late",
          f"alert: rule {a.rule_id}, owner {a.owner} ({a.owner_name})")
    check(a.target_description != "" and a.plan_id == "" and a.review_window == 0,
          f"alert: target {a.target_description!r}, no plan window")
    check(a.due_on == due.isoformat(), f"alert: due on {a.due_on} (set date + 30)")
    check(a.days_overdue == (raised_on - due).days and a.days_overdue >= 29 and a.days_until_due == 0,
          f"alert: {a.days_overdue} days overdue on {raised_on}")
    check(a.alert_id == f"{tenant}/{account}/rule/{rule}/rule_never_met/{a.due_on}",
          f"alert: id {a.alert_id}")
    check(a.position >= r.last_position, f"alert: raised at read-model position {a.position}")
    b = filtered.wait_for(account, 20)
    check(b.alert_id == a.alert_id and b.kind == a.kind,
          "alert: the same alert on the stream filtered by account and kind")
    tenant_watch.cancel()
    filtered.cancel()


if __name__ == "__main__":
    sys.exit(main())
