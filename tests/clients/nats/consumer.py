#!/usr/bin/env python3
"""A Keyplan fan-out consumer (nats-py, JetStream), written from README.md and proto/ only.

Usage: consumer.py HOST:PORT NATS_URL

It drives a small account over gRPC (register, assign the KAM, add a stakeholder), opens a
JetStream consumer on keyplan.<tenant>.<account>.InteractionLogged (stream KEYPLAN), logs an
interaction over gRPC, and checks the message the relay publishes:
- subject and every header the README lists (Nats-Msg-Id, Keyplan-Event-Id, Keyplan-Position,
  Keyplan-Stream-Version, Keyplan-Event-Type, Keyplan-Schema-Version, Keyplan-Tenant,
  Keyplan-Account) against the command's result;
- the JetStream sequence equals Keyplan's global position;
- the payload decodes as keyplan.v1.Event (the generated Python classes) with the same ids
  and content.
Then it replays keyplan.<tenant>.<account>.> and checks the account's four events arrive once
each, in order, at sequence = position. Exits 0 only if every check passed.
"""

import asyncio
import datetime as dt
import os
import sys
import uuid

import grpc
import nats
import nats.errors

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import keyplan_proto  # noqa: E402

pb = keyplan_proto.load()
ev = pb.events_pb2
cmd = pb.commands_pb2
ty = pb.types_pb2
co = pb.compliance_pb2

UTC = dt.timezone.utc
STREAM = "KEYPLAN"
ALERTS_STREAM = "KEYPLAN_ALERTS"


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"  ok: {what}")


def ts(when):
    from google.protobuf.timestamp_pb2 import Timestamp

    t = Timestamp()
    t.FromDatetime(when)
    return t


async def alerts(js, execute_on, tenant, run, now):
    """A second account whose rule was set 60 days ago with a 30-day cadence and never met:
    NEVER_MET past its first due date, so Keyplan publishes a rule_never_met alert on
    keyplan-alerts.<tenant>.rule_never_met (stream KEYPLAN_ALERTS), Nats-Msg-Id = its alert_id."""
    account, kam, cfo, rule = f"late-{run}", "kam.late", "cfo.late", "r-late"
    setup_at = now - dt.timedelta(days=61)
    rule_at = now - dt.timedelta(days=60)
    info = None
    for _ in range(50):  # the node creates the alerts stream at start
        try:
            info = await js.stream_info(ALERTS_STREAM)
            break
        except Exception:
            await asyncio.sleep(0.2)
    check(info is not None, f"JetStream stream {ALERTS_STREAM} exists")
    # Everything of the tenant's alerts, from the start of the stream (a notification service
    # would use a durable consumer; ordered and ephemeral is enough here).
    sub = await js.subscribe(f"keyplan-alerts.{tenant}.>", stream=ALERTS_STREAM, ordered_consumer=True)
    try:
        execute_on(account, cmd.Command(register_account=ev.AccountRegistered(
            name="Late Corp", industry="Retail", region="EMEA", headquarters="Lyon",
            tier=ty.TIER_KEY)), expected_version=cmd.ExpectedVersion(no_stream=True),
            occurred_at=ts(setup_at))
        execute_on(account, cmd.Command(assign_team_member=ev.TeamMemberAssigned(
            person_id=kam, name="Lou Late", role=ty.TEAM_ROLE_KEY_ACCOUNT_MANAGER)),
            expected_version=cmd.ExpectedVersion(exact=1), occurred_at=ts(setup_at))
        execute_on(account, cmd.Command(add_stakeholder=ev.StakeholderAdded(
            stakeholder_id=cfo, name="Ana Cruz", title="CFO",
            buying_role=ty.BUYING_ROLE_ECONOMIC_BUYER, influence=4,
            attitude=ty.ATTITUDE_NEUTRAL)), expected_version=cmd.ExpectedVersion(exact=2),
            occurred_at=ts(setup_at))
        r = execute_on(account, cmd.Command(set_engagement_rule=ev.EngagementRuleSet(
            rule_id=rule, target=ev.RuleTarget(stakeholder_id=cfo), owner=kam, cadence_days=30,
            channels=[ty.CHANNEL_IN_PERSON])), expected_version=cmd.ExpectedVersion(exact=3),
            occurred_at=ts(rule_at))
        check(r.last_version == 4, f"alerts: rule {rule} set 60 days ago, every 30 days, never met")

        try:
            msg = await sub.next_msg(timeout=20)
        except nats.errors.TimeoutError:
            raise AssertionError(f"no alert message on keyplan-alerts.{tenant}.> within 20 s") from None
        subject = f"keyplan-alerts.{tenant}.rule_never_met"
        check(msg.subject == subject, f"alert subject {msg.subject}")
        check(msg.metadata.stream == ALERTS_STREAM, f"alert from stream {msg.metadata.stream}")
        alert = co.ComplianceAlert()
        alert.ParseFromString(msg.data)
        h = msg.headers or {}
        check(h.get("Nats-Msg-Id") == alert.alert_id != "",
              f"header Nats-Msg-Id = alert_id {alert.alert_id}")
        due = (rule_at.date() + dt.timedelta(days=30)).isoformat()
        check(alert.kind == co.COMPLIANCE_ALERT_KIND_RULE_NEVER_MET,
              f"payload: kind {co.ComplianceAlertKind.Name(alert.kind)}")
        check(alert.tenant == tenant and alert.account_id == account and alert.rule_id == rule
              and alert.owner == kam, "payload: tenant, account, rule and owner")
        check(alert.due_on == due and alert.days_overdue >= 29,
              f"payload: due on {alert.due_on}, {alert.days_overdue} days overdue")
        check(alert.alert_id == f"{tenant}/{account}/rule/{rule}/rule_never_met/{due}",
              "payload: alert_id names the transition")
        check(msg.metadata.num_pending == 0, "no other alert for the tenant")
    finally:
        await sub.unsubscribe()


async def main():
    if len(sys.argv) != 3:
        print("usage: consumer.py HOST:PORT NATS_URL", file=sys.stderr)
        return 2
    address, nats_url = sys.argv[1], sys.argv[2]
    channel = grpc.insecure_channel(address)
    grpc.channel_ready_future(channel).result(timeout=15)
    commands = pb.commands_pb2_grpc.CommandServiceStub(channel)

    run = uuid.uuid4().hex[:12]
    tenant, account = f"ci-nats-{run}", f"acct-{run}"
    kam, cfo = "kam.ci", "cfo.lee"
    now = dt.datetime.now(UTC)
    setup_at = now - dt.timedelta(days=2)
    met_at = (now - dt.timedelta(hours=5)).replace(microsecond=654321)
    print(f"nats consumer: tenant={tenant} account={account}")

    def execute(command, **kw):
        req = cmd.ExecuteRequest(tenant=tenant, account_id=account, actor=kam, command=command, **kw)
        return commands.Execute(req, timeout=15)

    def execute_on(acct, command, **kw):
        req = cmd.ExecuteRequest(tenant=tenant, account_id=acct, actor=kam, command=command, **kw)
        return commands.Execute(req, timeout=15)

    nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=3)
    try:
        js = nc.jetstream()
        info = None
        for _ in range(50):  # the relay creates the stream at start
            try:
                info = await js.stream_info(STREAM)
                break
            except Exception:
                await asyncio.sleep(0.2)
        check(info is not None, f"JetStream stream {STREAM} exists")

        results = [
            execute(cmd.Command(register_account=ev.AccountRegistered(
                name="Initech CI", industry="Software", region="NA", headquarters="Austin",
                tier=ty.TIER_STRATEGIC)), expected_version=cmd.ExpectedVersion(no_stream=True),
                occurred_at=ts(setup_at)),
            execute(cmd.Command(assign_team_member=ev.TeamMemberAssigned(
                person_id=kam, name="Kim Kam", role=ty.TEAM_ROLE_KEY_ACCOUNT_MANAGER)),
                occurred_at=ts(setup_at)),
            execute(cmd.Command(add_stakeholder=ev.StakeholderAdded(
                stakeholder_id=cfo, name="Lee Park", title="CFO",
                buying_role=ty.BUYING_ROLE_ECONOMIC_BUYER, influence=4,
                attitude=ty.ATTITUDE_NEUTRAL)), occurred_at=ts(setup_at)),
        ]
        check([r.last_version for r in results] == [1, 2, 3], "account set up at versions 1..3")

        # Consumer opened before the interaction is logged (ordered, ephemeral, deliver all).
        subject = f"keyplan.{tenant}.{account}.InteractionLogged"
        sub = await js.subscribe(subject, stream=STREAM, ordered_consumer=True)

        logged = execute(cmd.Command(log_interaction=ev.InteractionLogged(
            interaction_id="call-1", details=ev.InteractionDetails(
                occurred_at=ts(met_at), channel=ty.CHANNEL_VIDEO_CALL, stakeholders=[cfo],
                participants=[kam], summary="Renewal terms", sentiment=ty.SENTIMENT_NEUTRAL))),
            idempotency_key=f"call-{run}")
        results.append(logged)
        check(logged.last_version == 4 and len(logged.event_ids) == 1, "interaction logged at version 4")
        event_id, position = logged.event_ids[0], logged.last_position

        msg = await sub.next_msg(timeout=20)
        check(msg.subject == subject, f"subject {msg.subject}")
        h = msg.headers or {}
        print(f"  headers: {h}")
        check(h.get("Nats-Msg-Id") == event_id, "header Nats-Msg-Id = event id")
        check(h.get("Keyplan-Event-Id") == event_id, "header Keyplan-Event-Id = event id")
        check(h.get("Keyplan-Position") == str(position), f"header Keyplan-Position = {position}")
        check(h.get("Keyplan-Stream-Version") == "4", "header Keyplan-Stream-Version = 4")
        check(h.get("Keyplan-Event-Type") == "InteractionLogged", "header Keyplan-Event-Type")
        check(h.get("Keyplan-Tenant") == tenant, "header Keyplan-Tenant")
        check(h.get("Keyplan-Account") == account, "header Keyplan-Account")
        check(msg.metadata.stream == STREAM and msg.metadata.sequence.stream == position,
              f"JetStream sequence {msg.metadata.sequence.stream} = Keyplan position {position}")

        event = ev.Event()
        event.ParseFromString(msg.data)
        md = event.metadata
        check(md.event_id == event_id and md.tenant == tenant and md.account_id == account,
              "payload: keyplan.v1.Event with the event, tenant and account ids")
        check(md.event_type == "InteractionLogged" and md.stream_version == 4
              and md.global_position == position, "payload: type, stream version and position")
        check(h.get("Keyplan-Schema-Version") == str(md.schema_version) and md.schema_version >= 1,
              f"header Keyplan-Schema-Version = {md.schema_version}")
        check(md.idempotency_key == f"call-{run}" and md.actor == kam, "payload: idempotency key and actor")
        check(event.payload.WhichOneof("event") == "interaction_logged", "payload: interaction_logged")
        il = event.payload.interaction_logged
        check(il.interaction_id == "call-1" and list(il.details.stakeholders) == [cfo]
              and list(il.details.participants) == [kam]
              and il.details.channel == ty.CHANNEL_VIDEO_CALL
              and il.details.occurred_at.ToDatetime(tzinfo=UTC) == met_at
              and il.details.summary == "Renewal terms",
              "payload: interaction content as logged")
        check(msg.metadata.num_pending == 0, "no other InteractionLogged message for the account")
        await sub.unsubscribe()

        # Replay the whole account: every event once, in order, sequence = position.
        sub = await js.subscribe(f"keyplan.{tenant}.{account}.>", stream=STREAM, ordered_consumer=True)
        want_types = ["AccountRegistered", "TeamMemberAssigned", "StakeholderAdded", "InteractionLogged"]
        seen = []
        for i, (r, want) in enumerate(zip(results, want_types), start=1):
            m = await sub.next_msg(timeout=10)
            e = ev.Event()
            e.ParseFromString(m.data)
            ok = (m.subject == f"keyplan.{tenant}.{account}.{want}"
                  and m.headers.get("Keyplan-Event-Type") == want
                  and m.headers.get("Nats-Msg-Id") == r.event_ids[0] == e.metadata.event_id
                  and m.metadata.sequence.stream == r.last_position == e.metadata.global_position
                  and m.headers.get("Keyplan-Stream-Version") == str(i) == str(e.metadata.stream_version))
            check(ok, f"replay {i}: {want} at position {r.last_position}")
            seen.append(m.metadata.num_pending)
        check(seen[-1] == 0, "replay: nothing after the account's four events")
        await sub.unsubscribe()

        await alerts(js, execute_on, tenant, run, now)
    finally:
        await nc.close()
        channel.close()
    print("nats consumer: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
