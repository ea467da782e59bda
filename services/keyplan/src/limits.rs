//! The limits a node puts on every gRPC service (see [`LimitArgs`]): one place applies them,
//! so that a service added later cannot be served without them by forgetting a line.

use keyplan_proto::pb::account_service_server::AccountServiceServer;
use keyplan_proto::pb::activity_service_server::ActivityServiceServer;
use keyplan_proto::pb::audit_service_server::AuditServiceServer;
use keyplan_proto::pb::command_service_server::CommandServiceServer;
use keyplan_proto::pb::compliance_service_server::ComplianceServiceServer;
use keyplan_proto::pb::event_store_service_server::EventStoreServiceServer;
use keyplan_proto::pb::operations_service_server::OperationsServiceServer;
use keyplan_proto::pb::timeline_service_server::TimelineServiceServer;
use tonic::transport::server::Server;
use tonic_health::pb::health_server::HealthServer;
use tonic_reflection::server::v1::ServerReflectionServer as ReflectionV1;
use tonic_reflection::server::v1alpha::ServerReflectionServer as ReflectionV1Alpha;

use crate::config::LimitArgs;

/// A generated gRPC server whose message sizes can be bounded.
pub trait MessageLimits: Sized {
    /// Refuses requests and answers larger than `bytes` (tonic's default is 4 MiB for
    /// requests but no limit at all for answers).
    fn max_message_bytes(self, bytes: usize) -> Self;

    /// This service with the node's message size limit, in both directions.
    fn limited(self, limits: &LimitArgs) -> Self {
        self.max_message_bytes(limits.max_message_bytes)
    }
}

macro_rules! message_limits {
    ($($server:ident),* $(,)?) => {
        $(
            impl<T> MessageLimits for $server<T> {
                fn max_message_bytes(self, bytes: usize) -> Self {
                    self.max_decoding_message_size(bytes)
                        .max_encoding_message_size(bytes)
                }
            }
        )*
    };
}

message_limits!(
    AccountServiceServer,
    ActivityServiceServer,
    AuditServiceServer,
    CommandServiceServer,
    ComplianceServiceServer,
    EventStoreServiceServer,
    OperationsServiceServer,
    TimelineServiceServer,
);
message_limits!(HealthServer, ReflectionV1, ReflectionV1Alpha);

/// Refuses limits that would refuse every call.
pub fn check(limits: &LimitArgs) -> Result<(), &'static str> {
    if limits.max_message_bytes == 0 {
        return Err("--max-message-bytes must be at least 1 (every message would be refused)");
    }
    if limits.max_concurrent_streams == 0 {
        return Err("--max-concurrent-streams must be at least 1 (no call could be made)");
    }
    Ok(())
}

/// The connection-level limits: concurrent streams per HTTP/2 connection, and the request
/// timeout (which tonic applies until a call's response headers: a server stream that has
/// started is not cut, a unary call that has not answered is, with CANCELLED).
pub fn server(builder: Server, limits: &LimitArgs) -> Server {
    let builder = builder.max_concurrent_streams(limits.max_concurrent_streams);
    match limits.request_timeout() {
        Some(timeout) => builder.timeout(timeout),
        None => builder,
    }
}
