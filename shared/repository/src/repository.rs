//! The account repository: cached states, command execution.

use std::num::NonZeroUsize;
use std::sync::Arc;

use keyplan_domain::codec;
use keyplan_domain::decide::{decide_all_in_place, needs_interactions};
use keyplan_domain::ids::{AccountId, TenantId};
use keyplan_domain::values::Timestamp;
use keyplan_domain::{AccountCommand, AccountEvent, AccountState, DomainError};
use keyplan_store::{
    AppendMetadata, AppendOutcome, AppendRequest, Direction, EventStore, ExpectedVersion,
    ProposedEvent, StoreError, StreamId,
};
use uuid::Uuid;

use crate::cache::{Slot, StateCache};
use crate::error::{Conflict, RepositoryError};
use crate::snapshot;

/// How far in the future a business time may lie (clock skew between client and server).
const MAX_FUTURE_SKEW_MICROS: i64 = 5 * 60 * 1_000_000;

/// How often an "any version" command is re-decided after losing a race with a writer that
/// bypassed the per-account lock (another repository on the same store).
const MAX_RETRIES: usize = 8;

/// Events read per page while replaying a stream.
const REPLAY_PAGE: usize = 1000;

/// Repository settings.
#[derive(Debug, Clone)]
pub struct RepositoryConfig {
    /// How many account states to keep cached.
    pub cached_accounts: NonZeroUsize,
    /// About how many bytes the cached states may hold together (see [`crate::cache`]).
    pub cache_bytes: usize,
}

impl Default for RepositoryConfig {
    fn default() -> Self {
        Self {
            cached_accounts: NonZeroUsize::new(1024).unwrap_or(NonZeroUsize::MIN),
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

/// The default bound of [`RepositoryConfig::cache_bytes`]: 64 MiB.
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// A command with everything needed to record it.
#[derive(Debug, Clone)]
pub struct CommandEnvelope {
    /// Tenant.
    pub tenant: TenantId,
    /// Account (stream).
    pub account: AccountId,
    /// Version the author saw.
    pub expected: ExpectedVersion,
    /// Retry key: the same key returns the original result.
    pub idempotency_key: Option<String>,
    /// Who issues the command.
    pub actor: String,
    /// Business time; `None` = the interaction's time for interactions, otherwise now.
    pub occurred_at: Option<Timestamp>,
    /// Correlation id (generated if absent).
    pub correlation_id: Option<Uuid>,
    /// Causation id.
    pub causation_id: Option<Uuid>,
    /// The commands, decided in order and appended atomically (usually just one).
    pub commands: Vec<AccountCommand>,
}

/// Most commands one request may carry.
pub const MAX_COMMANDS_PER_REQUEST: usize = 100;

/// What an executed command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecuteOutcome {
    /// Where the events landed (or had landed, for a retry).
    pub append: AppendOutcome,
}

/// Loads accounts and executes commands. Cheap to clone.
#[derive(Clone)]
pub struct AccountRepository {
    store: EventStore,
    cache: Arc<StateCache>,
}

impl std::fmt::Debug for AccountRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRepository").finish_non_exhaustive()
    }
}

impl AccountRepository {
    /// A repository over `store`.
    pub fn new(store: EventStore, config: RepositoryConfig) -> Self {
        Self {
            store,
            cache: Arc::new(StateCache::new(config.cached_accounts, config.cache_bytes)),
        }
    }

    /// The underlying store.
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    fn slot(&self, stream: &StreamId) -> Slot {
        self.cache.slot(stream)
    }

    /// Brings a cached state up to the stream's committed version. When nothing is cached it
    /// starts from the account's latest snapshot (or from scratch), and saves a new snapshot
    /// if it had to replay [`snapshot::INTERVAL`] events or more. Cached states keep no
    /// interactions' facts ([`AccountState::without_interactions`]), so that the cache, its
    /// snapshots and a miss cost bytes per interaction, not allocations.
    fn catch_up(
        &self,
        stream: &StreamId,
        cached: &mut Option<AccountState>,
    ) -> Result<(), RepositoryError> {
        if cached.is_none() {
            let mut state = snapshot::load(&self.store, stream)?
                .unwrap_or_else(AccountState::without_interactions);
            state.drop_interactions();
            *cached = Some(state);
        }
        let state = cached.get_or_insert_with(AccountState::without_interactions);
        let start = state.version;
        if let Some(last_event) = self.replay(stream, state, u64::MAX)? {
            if state.version - start >= snapshot::INTERVAL {
                snapshot::save(&self.store, stream, state, last_event);
            }
        }
        Ok(())
    }

    /// Applies to `state` the stream's events after its version, up to version `last` (or the
    /// stream's end); returns the id of the last event applied, if any.
    fn replay(
        &self,
        stream: &StreamId,
        state: &mut AccountState,
        last: u64,
    ) -> Result<Option<Uuid>, RepositoryError> {
        let mut last_event = None;
        while state.version < last {
            let page = usize::try_from(last - state.version)
                .map_or(REPLAY_PAGE, |left| left.min(REPLAY_PAGE));
            let slice =
                self.store
                    .read_stream(stream, state.version + 1, Direction::Forward, page)?;
            for recorded in &slice.events {
                let event = codec::decode(
                    &recorded.event_type,
                    recorded.schema_version,
                    &recorded.payload,
                )?;
                state.apply(&event);
                last_event = Some(recorded.event_id);
            }
            if slice.next_version.is_none() || slice.events.is_empty() {
                break;
            }
        }
        Ok(last_event)
    }

    /// Gives `state` back its interactions' facts, folded from the stream up to its version,
    /// when deciding `commands` reads them (see [`needs_interactions`]): a full replay of the
    /// stream, paid only by corrections, departures and reused interaction ids.
    fn restore_interactions_if_needed(
        &self,
        stream: &StreamId,
        state: &mut AccountState,
        commands: &[AccountCommand],
    ) -> Result<(), RepositoryError> {
        if needs_interactions(state, commands) {
            let mut full = AccountState::default();
            self.replay(stream, &mut full, state.version)?;
            if full.version != state.version {
                return Err(RepositoryError::Store(StoreError::Unavailable(format!(
                    "account {stream}: replaying its interactions reached version {} instead \
                     of {}; try again",
                    full.version, state.version
                ))));
            }
            state.restore_interactions(full.interactions);
        }
        Ok(())
    }

    /// The current state of an account (a default, non-existent state if it has no events),
    /// as commands are decided on: without its interactions' facts (see
    /// [`AccountState::interactions_dropped`]); the account-state read model has them.
    pub async fn load(
        &self,
        tenant: &TenantId,
        account: &AccountId,
    ) -> Result<AccountState, RepositoryError> {
        let stream = StreamId::new(tenant.as_str(), account.as_str());
        self.with_current(&stream, |state| {
            state
                .cloned()
                .unwrap_or_else(AccountState::without_interactions)
        })
        .await
    }

    /// `read` of the account's cached state, caught up with the log, under the account's lock
    /// (`None`: the account has no events).
    async fn with_current<T>(
        &self,
        stream: &StreamId,
        read: impl FnOnce(Option<&AccountState>) -> T,
    ) -> Result<T, RepositoryError> {
        let slot = self.slot(stream);
        let mut cached = slot.lock().await;
        let caught_up = self.catch_up(stream, &mut cached);
        self.cache.weigh(stream, &slot, cached.as_ref());
        caught_up?;
        Ok(read(cached.as_ref()))
    }

    /// The current state of an account with its interactions' facts, as `GetAccount` shows
    /// it: folded from the whole stream, up to the version the cached state has reached (a
    /// full replay, outside the account's lock, so commands on it are not held up).
    pub async fn load_with_interactions(
        &self,
        tenant: &TenantId,
        account: &AccountId,
    ) -> Result<AccountState, RepositoryError> {
        let stream = StreamId::new(tenant.as_str(), account.as_str());
        // The version only: no copy of the cached state's interaction ids.
        let version = self
            .with_current(&stream, |state| state.map_or(0, |s| s.version))
            .await?;
        let mut full = AccountState::default();
        self.replay(&stream, &mut full, version)?;
        Ok(full)
    }

    /// Validates and records a command. See the crate docs for the concurrency model.
    pub async fn execute(
        &self,
        envelope: CommandEnvelope,
    ) -> Result<ExecuteOutcome, RepositoryError> {
        let now = Timestamp::now();
        check_envelope(&envelope, now)?;
        if let Some(key) = &envelope.idempotency_key {
            if let Some(outcome) = self.stored_retry(&envelope, key)? {
                return Ok(outcome);
            }
        }

        let stream = StreamId::new(envelope.tenant.as_str(), envelope.account.as_str());
        let slot = self.slot(&stream);
        let mut cached = slot.lock().await;
        let outcome = self
            .execute_locked(&envelope, &stream, &mut cached, now)
            .await;
        self.cache.weigh(&stream, &slot, cached.as_ref());
        outcome
    }

    /// [`Self::execute`] under the account's lock, on its cached state.
    async fn execute_locked(
        &self,
        envelope: &CommandEnvelope,
        stream: &StreamId,
        cached: &mut Option<AccountState>,
        now: Timestamp,
    ) -> Result<ExecuteOutcome, RepositoryError> {
        for _ in 0..MAX_RETRIES {
            self.catch_up(stream, cached)?;
            let state = cached.get_or_insert_with(AccountState::without_interactions);
            // A retry that raced its original through the lock: answer it now.
            if let Some(key) = &envelope.idempotency_key {
                if let Some(outcome) = self.stored_retry(envelope, key)? {
                    return Ok(outcome);
                }
            }
            self.check_expected(stream, envelope.expected, state.version)?;
            if let Err(e) = self.restore_interactions_if_needed(stream, state, &envelope.commands) {
                *cached = None;
                return Err(e);
            }

            // Decide on the cached state itself (no copy per request); any failure below
            // discards it, so the next use reloads it from the log.
            let version = state.version;
            let decided = decide_all_in_place(state, &envelope.commands, now);
            state.drop_interactions();
            let events = match decided {
                Ok(events) => events,
                Err(e) => {
                    if state.version != version {
                        // Earlier commands of the refused batch were applied: discard them.
                        *cached = None;
                    }
                    return Err(e.into());
                }
            };
            let request = self.append_request(envelope, stream, version, &events, now);
            match self.store.append(request).await {
                Ok(outcome) => {
                    if outcome.deduplicated || outcome.first_version != version + 1 {
                        // A retry answered from the log: our decision was not stored.
                        *cached = None;
                    }
                    return Ok(ExecuteOutcome { append: outcome });
                }
                Err(StoreError::WrongExpectedVersion { .. }) => {
                    // Another writer got in first; re-read and re-decide (or report the
                    // conflict if the author asked for an exact version).
                    *cached = None;
                    continue;
                }
                Err(e) => {
                    *cached = None;
                    return Err(e.into());
                }
            }
        }
        Err(RepositoryError::Store(StoreError::Unavailable(format!(
            "account {stream} kept changing while the command was being decided; try again"
        ))))
    }

    fn stored_retry(
        &self,
        envelope: &CommandEnvelope,
        key: &str,
    ) -> Result<Option<ExecuteOutcome>, RepositoryError> {
        match self
            .store
            .lookup_idempotency(envelope.tenant.as_str(), key)?
        {
            Some((stream, append)) if stream.stream == envelope.account.as_str() => {
                let stored = self
                    .store
                    .idempotency_fingerprint(envelope.tenant.as_str(), key)?;
                let offered = request_fingerprint(&envelope.commands);
                if !keyplan_store::idempotency::same_request(stored.as_deref(), Some(&offered)) {
                    return Err(RepositoryError::Store(StoreError::IdempotencyKeyMismatch {
                        key: key.to_owned(),
                        first_position: append.first_position,
                    }));
                }
                Ok(Some(ExecuteOutcome { append }))
            }
            Some((stream, _)) => Err(RepositoryError::IdempotencyKeyReused {
                key: key.to_owned(),
                account: stream.stream,
            }),
            None => Ok(None),
        }
    }

    /// Compares the author's expected version with the account's; on a mismatch, reports the
    /// event that got in first.
    fn check_expected(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        current: u64,
    ) -> Result<(), RepositoryError> {
        let seen = match expected {
            ExpectedVersion::Any => return Ok(()),
            ExpectedVersion::NoStream => 0,
            ExpectedVersion::Exact(v) => v,
        };
        if seen == current {
            return Ok(());
        }
        let winning_event = if seen < current {
            self.store
                .read_stream(stream, seen + 1, Direction::Forward, 1)?
                .events
                .into_iter()
                .next()
        } else {
            None
        };
        Err(RepositoryError::Conflict(Box::new(Conflict {
            expected,
            current_version: current,
            winning_event,
        })))
    }

    fn append_request(
        &self,
        envelope: &CommandEnvelope,
        stream: &StreamId,
        version: u64,
        events: &[AccountEvent],
        now: Timestamp,
    ) -> AppendRequest {
        let correlation_id = envelope.correlation_id.unwrap_or_else(Uuid::now_v7);
        AppendRequest {
            stream: stream.clone(),
            expected: ExpectedVersion::Exact(version),
            events: events
                .iter()
                .map(|event| {
                    // Business time: as given, else when the interaction happened, else now.
                    let occurred_at = envelope.occurred_at.unwrap_or(match event {
                        AccountEvent::InteractionLogged(e) => e.details.occurred_at,
                        _ => now,
                    });
                    let encoded = codec::encode(event);
                    ProposedEvent {
                        event_id: Uuid::now_v7(),
                        event_type: encoded.event_type.to_owned(),
                        schema_version: encoded.schema_version,
                        occurred_at_micros: occurred_at.as_micros(),
                        payload: encoded.payload,
                    }
                })
                .collect(),
            metadata: AppendMetadata {
                actor: envelope.actor.clone(),
                correlation_id,
                causation_id: envelope.causation_id,
                idempotency_key: envelope.idempotency_key.as_deref().map(|key| {
                    keyplan_store::idempotency::join(key, &request_fingerprint(&envelope.commands))
                }),
            },
        }
    }
}

/// The fingerprint stored with an idempotency key: the first 16 bytes of the SHA-256 of the
/// commands' postcard encoding, in hex. A retry repeats the commands, whatever its correlation
/// id or time; a different command under the same key is refused (see
/// `keyplan_store::idempotency`).
fn request_fingerprint(commands: &[AccountCommand]) -> String {
    use sha2::{Digest, Sha256};
    // postcard cannot fail on the domain's commands (integers, strings, sequences, options and
    // enums); an empty encoding would only make every fingerprint equal, never refuse a retry.
    let bytes = postcard::to_allocvec(commands).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..16])
}

/// Checks what the domain does not see: actor, idempotency key, business time, and that edits
/// of shared content name the version their author saw.
fn check_envelope(envelope: &CommandEnvelope, now: Timestamp) -> Result<(), DomainError> {
    if envelope.actor.trim().is_empty() {
        return Err(DomainError::invalid(
            "actor",
            "must name who issues the command (e.g. a person id)",
        ));
    }
    if envelope.actor.len() > 200 {
        return Err(DomainError::invalid(
            "actor",
            "must be at most 200 characters",
        ));
    }
    keyplan_domain::text::check_no_control("actor", &envelope.actor, false)?;
    if let Some(key) = &envelope.idempotency_key {
        if key.is_empty() || key.len() > 128 {
            return Err(DomainError::invalid(
                "idempotency_key",
                "must be 1 to 128 characters",
            ));
        }
        keyplan_domain::text::check_no_control("idempotency_key", key, false)?;
    }
    if let Some(at) = envelope.occurred_at {
        if at.as_micros() > now.as_micros() + MAX_FUTURE_SKEW_MICROS {
            return Err(DomainError::invalid(
                "occurred_at",
                format!("{at} is in the future; business time must not be later than now ({now})"),
            ));
        }
    }
    if envelope.commands.is_empty() {
        return Err(DomainError::invalid(
            "commands",
            "must hold at least one command",
        ));
    }
    if envelope.commands.len() > MAX_COMMANDS_PER_REQUEST {
        return Err(DomainError::invalid(
            "commands",
            format!(
                "at most {MAX_COMMANDS_PER_REQUEST} commands per request, got {}",
                envelope.commands.len()
            ),
        ));
    }
    if let Some(edit) = envelope.commands.iter().find(|c| c.edits_shared_content()) {
        if envelope.expected == ExpectedVersion::Any {
            return Err(DomainError::invalid(
                "expected_version",
                format!(
                    "{} edits content others may be editing too: send the exact version you last read, \
                     so a concurrent edit is reported instead of overwritten",
                    edit.name()
                ),
            ));
        }
    }
    Ok(())
}
