#!/usr/bin/env node
// A Keyplan integrator's client in Node.js (@grpc/grpc-js + @grpc/proto-loader), written from
// README.md and proto/ only. The .proto files are loaded at run time (nothing generated).
//
// Usage: node client.js HOST:PORT
//
// The same flow as ../python/client.py: register a key account (ids unique per run), assign
// its KAM, add a stakeholder, set two engagement rules with expectedVersion.exact, open
// EventStoreService/Watch, log an in-person meeting a few hours ago that meets one rule, then
// check the watched event, the compliance statuses the README prescribes (ON_TRACK / NEVER_MET
// with their due dates, and the AS_KNOWN_AT axis just before the log), and the documented
// refusals (ABORTED with trailers, missing expectedVersion, idempotent retry).
'use strict';

const path = require('node:path');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', '..', 'proto');
const FILES = ['commands', 'events', 'types', 'event_store', 'compliance'].map(
  (f) => `keyplan/v1/${f}.proto`,
);
const packageDefinition = protoLoader.loadSync(FILES, {
  includeDirs: [PROTO_ROOT],
  keepCase: false, // camelCase field names, as in the README's JSON examples
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const proto = grpc.loadPackageDefinition(packageDefinition).keyplan.v1;
// Decodes a keyplan.v1.Event (e.g. the keyplan-conflict-event-bin trailer) with the same options.
const decodeEvent = packageDefinition['keyplan.v1.EventStoreService'].Watch.responseDeserialize;

const CADENCE_CFO = 30;
const CADENCE_EMAIL = 14;
const DAY_MS = 86400000;

function check(cond, what) {
  assert.ok(cond, what);
  console.log(`  ok: ${what}`);
}

// A JS Date has millisecond precision; the server keeps microseconds, so we send whole ms.
function ts(date) {
  const ms = date.getTime();
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}
function tsMillis(t) {
  return Number(t.seconds) * 1000 + Math.round(t.nanos / 1e6);
}
const isoDate = (date) => date.toISOString().slice(0, 10);
const addDays = (yyyyMmDd, n) => isoDate(new Date(Date.parse(`${yyyyMmDd}T00:00:00Z`) + n * DAY_MS));
const daysBetween = (a, b) => Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / DAY_MS);
const window = (c) => Math.min(7, Math.max(1, Math.floor(c / 4)));

function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + 15000 }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

async function expectError(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  return null;
}

async function main() {
  const address = process.argv[2];
  if (!address) {
    console.error('usage: node client.js HOST:PORT');
    process.exit(2);
  }
  const creds = grpc.credentials.createInsecure();
  const commands = new proto.CommandService(address, creds);
  const events = new proto.EventStoreService(address, creds);
  const compliance = new proto.ComplianceService(address, creds);

  const run = crypto.randomBytes(6).toString('hex');
  const tenant = `ci-node-${run}`;
  const accountId = `acct-${run}`;
  const kam = 'kam.ci';
  const cfo = 'cfo.lee';
  const now = Date.now();
  const setupAt = new Date(now - 2 * DAY_MS); // the team and DMU predate the meeting
  const metAt = new Date(now - 4 * 3600 * 1000); // a few hours ago, never a fixed date
  console.log(`node client: tenant=${tenant} account=${accountId}`);

  const execute = (command, extra = {}) =>
    unary(commands, 'Execute', { tenant, accountId, actor: kam, command, ...extra });

  let r = await execute(
    { registerAccount: { name: 'Globex CI', industry: 'Chemicals', region: 'EMEA', headquarters: 'Rotterdam', tier: 'TIER_KEY' } },
    { expectedVersion: { noStream: true }, occurredAt: ts(setupAt) },
  );
  check(r.firstVersion === '1' && r.lastVersion === '1' && r.eventIds.length === 1, `registered at version 1 (position ${r.lastPosition})`);
  r = await execute(
    { assignTeamMember: { personId: kam, name: 'Kim Kam', role: 'TEAM_ROLE_KEY_ACCOUNT_MANAGER' } },
    { expectedVersion: { exact: '1' }, occurredAt: ts(setupAt) },
  );
  check(r.lastVersion === '2', 'KAM assigned at version 2');
  r = await execute(
    {
      addStakeholder: {
        stakeholderId: cfo, name: 'Lee Park', title: 'CFO', buyingRole: 'BUYING_ROLE_ECONOMIC_BUYER', influence: 5, attitude: 'ATTITUDE_SUPPORTER',
      },
    },
    { occurredAt: ts(setupAt) },
  );
  check(r.lastVersion === '3', 'stakeholder added at version 3');
  const stakeholderAddedId = r.eventIds[0];

  const ruleCfo = {
    ruleId: 'r-cfo', target: { stakeholderId: cfo }, owner: kam, cadenceDays: CADENCE_CFO, channels: ['CHANNEL_IN_PERSON', 'CHANNEL_BUSINESS_REVIEW'],
  };

  // Without expectedVersion: refused, nothing stored.
  let err = await expectError(execute({ setEngagementRule: ruleCfo }));
  check(err && [grpc.status.INVALID_ARGUMENT, grpc.status.FAILED_PRECONDITION].includes(err.code),
    `setEngagementRule without expectedVersion refused: ${err && grpc.status[err.code]} ${err && JSON.stringify(err.details)}`);

  // Stale exact version: ABORTED with the current version and the winning event in the trailers.
  err = await expectError(execute({ setEngagementRule: ruleCfo }, { expectedVersion: { exact: '2' } }));
  check(err && err.code === grpc.status.ABORTED, `stale version ABORTED: ${err && JSON.stringify(err.details)}`);
  check(String(err.metadata.get('keyplan-current-version')[0]) === '3', 'trailer keyplan-current-version = 3');
  const winner = decodeEvent(err.metadata.get('keyplan-conflict-event-bin')[0]);
  check(winner.metadata.eventId === stakeholderAddedId && winner.metadata.streamVersion === '3'
    && winner.metadata.eventType === 'StakeholderAdded' && winner.payload.event === 'stakeholderAdded',
  'trailer keyplan-conflict-event-bin is the winning StakeholderAdded event');

  const beforeRules = new Date();
  r = await execute({ setEngagementRule: ruleCfo }, { expectedVersion: { exact: '3' } });
  check(r.lastVersion === '4', 'rule r-cfo set at version 4 (nothing stored by the refusals)');
  r = await execute(
    {
      setEngagementRule: {
        ruleId: 'r-email', target: { buyingRole: 'BUYING_ROLE_ECONOMIC_BUYER' }, owner: kam, cadenceDays: CADENCE_EMAIL, channels: ['CHANNEL_EMAIL'],
      },
    },
    { expectedVersion: { exact: '4' } },
  );
  const afterRules = new Date();
  check(r.lastVersion === '5', 'rule r-email set at version 5');
  const rulesPosition = BigInt(r.lastPosition);
  await new Promise((res) => setTimeout(res, 10));
  const beforeLog = new Date();

  // Watch the account from the next position, before logging.
  const received = [];
  let watchError = null;
  let wake = () => {};
  const watch = events.Watch(
    { tenant, accountId, fromPosition: String(rulesPosition + 1n) },
    { deadline: Date.now() + 30000 },
  );
  watch.on('data', (e) => { received.push(e); wake(); });
  watch.on('error', (e) => { if (e.code !== grpc.status.CANCELLED) { watchError = e; wake(); } });
  const nextEvent = (ms) => new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      if (watchError) reject(watchError); else resolve(received.shift());
    };
    const timer = setTimeout(() => resolve(undefined), ms);
    if (received.length || watchError) done(); else wake = done;
  });
  await new Promise((res) => setTimeout(res, 200));

  const interaction = {
    interactionId: 'mtg-1',
    details: {
      occurredAt: ts(metAt), channel: 'CHANNEL_IN_PERSON', stakeholders: [cfo], participants: [kam],
      summary: 'Pricing for next year', sentiment: 'SENTIMENT_POSITIVE', nextStep: 'Send pricing proposal',
    },
  };
  const key = `meeting-${run}`;
  const logged = await execute({ logInteraction: interaction }, { idempotencyKey: key });
  check(logged.lastVersion === '6' && logged.eventIds.length === 1 && !logged.deduplicated, `interaction logged at version 6, position ${logged.lastPosition}`);
  const retry = await execute({ logInteraction: interaction }, { idempotencyKey: key });
  check(retry.deduplicated && retry.eventIds[0] === logged.eventIds[0] && retry.lastPosition === logged.lastPosition,
    'a retry with the same idempotencyKey is deduplicated with the original result');

  const got = await nextEvent(20000);
  check(got !== undefined, 'watch delivered an event');
  const md = got.metadata;
  check(md.eventType === 'InteractionLogged', `watch: event type ${md.eventType}`);
  check(md.eventId === logged.eventIds[0], `watch: event id ${md.eventId}`);
  check(md.tenant === tenant && md.accountId === accountId, 'watch: tenant and account ids');
  check(md.streamVersion === '6' && md.globalPosition === logged.lastPosition, `watch: stream version ${md.streamVersion}, position ${md.globalPosition}`);
  check(md.idempotencyKey === key && md.actor === kam, 'watch: idempotency key and actor');
  check(got.payload.event === 'interactionLogged', 'watch: payload interactionLogged');
  const il = got.payload.interactionLogged;
  check(il.interactionId === 'mtg-1' && il.details.stakeholders.join() === cfo && il.details.participants.join() === kam
    && il.details.channel === 'CHANNEL_IN_PERSON' && tsMillis(il.details.occurredAt) === metAt.getTime(),
  'watch: interaction id, participants, channel and occurredAt as sent');
  check(md.hash.length === 32 && md.prevHash.length === 32, 'watch: SHA-256 hash chain fields');
  check((await nextEvent(500)) === undefined, 'watch: the deduplicated retry delivered nothing more');
  watch.cancel();

  // Compliance, reading our own write.
  const c = await unary(compliance, 'GetAccountCompliance', { tenant, accountId, minPosition: logged.lastPosition });
  check(BigInt(c.position) >= BigInt(logged.lastPosition), `compliance: position ${c.position} includes the log`);
  check(c.axis === 'COMPLIANCE_AXIS_AS_HAPPENED_BY', 'compliance: default axis AS_HAPPENED_BY');
  const today = isoDate(new Date(tsMillis(c.asOf)));
  check(c.rules.map((x) => x.ruleId).join() === 'r-cfo,r-email', 'compliance: both rules, by id');
  const [rc, re] = c.rules;
  const setDates = [isoDate(beforeRules), isoDate(afterRules)];
  check(setDates.includes(rc.setOn) && setDates.includes(re.setOn), `compliance: rules set on ${rc.setOn}`);

  check(rc.status === 'COMPLIANCE_RULE_STATUS_ON_TRACK', `r-cfo status ${rc.status} (expected ON_TRACK)`);
  check(rc.lastInteraction && rc.lastInteraction.interactionId === 'mtg-1', 'r-cfo: last qualifying interaction mtg-1');
  check(rc.lastInteraction.occurredOn === isoDate(metAt) && tsMillis(rc.lastInteraction.occurredAt) === metAt.getTime()
    && rc.lastInteraction.corrected === false, `r-cfo: last interaction on ${rc.lastInteraction.occurredOn}`);
  const due = addDays([isoDate(metAt), rc.setOn].sort()[1], CADENCE_CFO);
  check(rc.nextDueOn === due, `r-cfo: next due on ${rc.nextDueOn}`);
  check(rc.daysOverdue === 0 && rc.daysUntilDue === daysBetween(today, due), `r-cfo: due in ${rc.daysUntilDue} days`);
  check(rc.dueSoonWindowDays === window(CADENCE_CFO) && rc.dueSoonWindowDays === 7, 'r-cfo: due-soon window 7');
  check(rc.definition.owner === kam && rc.definition.cadenceDays === CADENCE_CFO && rc.definition.target.stakeholderId === cfo,
    'r-cfo: definition as set');

  check(re.status === 'COMPLIANCE_RULE_STATUS_NEVER_MET', `r-email status ${re.status} (expected NEVER_MET)`);
  check(re.lastInteraction == null, 'r-email: no qualifying interaction');
  check(re.nextDueOn === addDays(re.setOn, CADENCE_EMAIL) && re.daysOverdue === 0, `r-email: first due on ${re.nextDueOn}, not overdue`);
  check(re.dueSoonWindowDays === window(CADENCE_EMAIL) && re.dueSoonWindowDays === 3, 'r-email: due-soon window 3');

  const s = c.share;
  check(s.active === 2 && s.onTrack === 2 && s._share === 'share' && s.share === 1, `share on track ${s.onTrack}/${s.active} = ${s.share}`);
  check(s.statusOnTrack === 1 && s.statusNeverMet === 1 && s.statusDueSoon === 0 && s.statusOverdue === 0, 'share: counts per status');
  check(c.overdue.length === 0 && c.retiredRules.length === 0, 'no overdue or retired rule');

  for (const [axis, want] of [
    ['COMPLIANCE_AXIS_AS_HAPPENED_BY', 'COMPLIANCE_RULE_STATUS_ON_TRACK'],
    ['COMPLIANCE_AXIS_AS_KNOWN_AT', 'COMPLIANCE_RULE_STATUS_NEVER_MET'],
  ]) {
    const past = await unary(compliance, 'GetAccountCompliance', {
      tenant, accountId, asOf: ts(beforeLog), axis, minPosition: logged.lastPosition,
    });
    const status = (past.rules.find((x) => x.ruleId === 'r-cfo') || {}).status;
    check(past.axis === axis && status === want, `as of just before logging, ${axis}: r-cfo ${status}`);
  }

  // Alerts: a rule never met, past its first due date, is alerted on WatchAlerts.
  await alertsFlow({ commands, compliance, tenant, run, now });

  commands.close();
  events.close();
  compliance.close();
  console.log('node client: all checks passed');
}

// Opens ComplianceService/WatchAlerts and resolves once the server has answered with headers
// (it subscribes before answering, so no alert raised from then on is missed).
function watchAlerts(compliance, request, what) {
  const received = [];
  let failure = null;
  let wake = () => {};
  const call = compliance.WatchAlerts(request, { deadline: Date.now() + 60000 });
  call.on('data', (a) => { received.push(a); wake(); });
  call.on('error', (e) => { if (e.code !== grpc.status.CANCELLED) { failure = e; wake(); } });
  // The first alert for `accountId` within `ms`, or a clear failure.
  const waitFor = async (accountId, ms) => {
    const deadline = Date.now() + ms;
    const others = [];
    for (;;) {
      while (received.length) {
        const a = received.shift();
        if (a.accountId === accountId) return a;
        others.push(a.alertId);
      }
      if (failure) throw new Error(`${what}: the stream failed: ${grpc.status[failure.code]} ${failure.details}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: no alert for account ${accountId} within ${ms} ms (other alerts received: ${JSON.stringify(others)})`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => { clearTimeout(timer); resolve(); };
      });
    }
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no response headers within 15 s`)), 15000);
    call.on('metadata', () => { clearTimeout(timer); resolve({ call, waitFor }); });
    call.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

// A second account whose rule was set 60 days ago with a 30-day cadence and never met: NEVER_MET
// past its first due date (set date + 30), so a RULE_NEVER_MET alert within seconds.
async function alertsFlow({ commands, compliance, tenant, run, now }) {
  const accountId = `late-${run}`;
  const kam = 'kam.late';
  const cfo = 'cfo.late';
  const rule = 'r-late';
  const setupAt = new Date(now - 61 * DAY_MS);
  const ruleAt = new Date(now - 60 * DAY_MS);
  const execute = (command, extra) => unary(commands, 'Execute', { tenant, accountId, actor: kam, command, ...extra });

  const tenantWatch = await watchAlerts(compliance, { tenant }, 'WatchAlerts(tenant)');
  const filtered = await watchAlerts(
    compliance,
    { tenant, accountId, kinds: ['COMPLIANCE_ALERT_KIND_RULE_NEVER_MET'] },
    'WatchAlerts(account, RULE_NEVER_MET)',
  );
  check(true, 'alerts: WatchAlerts opened for the tenant (and filtered) before writing');

  await execute(
    { registerAccount: { name: 'Late Corp', industry: 'Retail', region: 'EMEA', headquarters: 'Lyon', tier: 'TIER_KEY' } },
    { expectedVersion: { noStream: true }, occurredAt: ts(setupAt) },
  );
  await execute(
    { assignTeamMember: { personId: kam, name: 'Lou Late', role: 'TEAM_ROLE_KEY_ACCOUNT_MANAGER' } },
    { expectedVersion: { exact: '1' }, occurredAt: ts(setupAt) },
  );
  await execute(
    {
      addStakeholder: {
        stakeholderId: cfo, name: 'Ana Cruz', title: 'CFO', buyingRole: 'BUYING_ROLE_ECONOMIC_BUYER', influence: 4, attitude: 'ATTITUDE_NEUTRAL',
      },
    },
    { expectedVersion: { exact: '2' }, occurredAt: ts(setupAt) },
  );
  const r = await execute(
    {
      setEngagementRule: {
        ruleId: rule, target: { stakeholderId: cfo }, owner: kam, cadenceDays: 30, channels: ['CHANNEL_IN_PERSON'],
      },
    },
    { expectedVersion: { exact: '3' }, occurredAt: ts(ruleAt) },
  );
  check(r.lastVersion === '4', `alerts: rule ${rule} set 60 days ago, every 30 days, never met (position ${r.lastPosition})`);

  const a = await tenantWatch.waitFor(accountId, 20000);
  const due = addDays(isoDate(ruleAt), 30);
  const raisedOn = isoDate(new Date(tsMillis(a.raisedAt)));
  check(a.kind === 'COMPLIANCE_ALERT_KIND_RULE_NEVER_MET', `alert kind ${a.kind} (expected RULE_NEVER_MET)`);
  check(a.tenant === tenant && a.accountId === accountId && a.accountName === 'Late Corp', 'alert: tenant, account and account name');
  check(a.ruleId === rule && a.owner === kam && a.ownerName === 'Lou Late', `alert: rule ${a.ruleId}, owner ${a.owner} (${a.ownerName})`);
  check(a.targetDescription !== '' && a.planId === '' && a.reviewWindow === 0, `alert: target ${JSON.stringify(a.targetDescription)}, no plan window`);
  check(a.dueOn === due, `alert: due on ${a.dueOn} (set date + 30)`);
  check(a.daysOverdue === daysBetween(due, raisedOn) && a.daysOverdue >= 29 && a.daysUntilDue === 0,
    `alert: ${a.daysOverdue} days overdue on ${raisedOn}`);
  check(a.alertId === `${tenant}/${accountId}/rule/${rule}/rule_never_met/${a.dueOn}`, `alert: id ${a.alertId}`);
  check(BigInt(a.position) >= BigInt(r.lastPosition), `alert: raised at read-model position ${a.position}`);
  const b = await filtered.waitFor(accountId, 20000);
  check(b.alertId === a.alertId && b.kind === a.kind, 'alert: the same alert on the stream filtered by account and kind');
  tenantWatch.call.cancel();
  filtered.call.cancel();
}

main().catch((e) => {
  console.error(`node client FAILED: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
