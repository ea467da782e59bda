//! Identity, tenancy and roles: who calls, for which tenant, allowed to do what.
//!
//! - [`verify`]: bearer JWTs checked against the node's keys (an HS256 secret file, a JWKS
//!   file), issuer, audience and expiry; the result is a [`Caller`].
//! - [`policy`]: the one role x RPC table, and the tenancy rules every request is held to.
//! - [`layer`]: the tower layer that applies both to every gRPC call, in one place.
//! - [`mint`]: development tokens signed with the HS256 secret (`keyplan token mint`).

pub mod claims;
pub mod layer;
pub mod mint;
pub mod policy;
pub mod scope;
pub mod verify;

pub use claims::{Caller, Claims, Role, Roles};
pub use layer::{AuthLayer, CredentialsExpire};
pub use verify::{AuthError, KeyError, SharedVerifier, Verifier};
