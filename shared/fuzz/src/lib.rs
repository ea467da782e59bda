//! The bodies of the fuzz targets, one module (and file) per target.
//!
//! Each file is also compiled, through `#[path]`, into the ordinary test that replays the
//! target's committed corpus in the crate owning the code under test, so that `cargo test
//! --workspace` runs exactly what the fuzzer ran:
//!
//! | target | code under test | corpus replay |
//! | --- | --- | --- |
//! | `record` | `keyplan_store::layout::RecordView` | `shared/store/tests/fuzz_corpus.rs` |
//! | `stored_event` | `keyplan_domain::codec::decode` | `shared/domain/tests/fuzz_corpus.rs` |
//! | `page_token` | `TimelineQuery::resume` | `services/timeline/tests/fuzz_corpus.rs` |
//! | `command` | `keyplan_proto::convert::command_from_proto` | `shared/proto/tests/fuzz_corpus.rs` |

pub mod command;
pub mod page_token;
pub mod record;
pub mod stored_event;
