//! What a verified token says: who calls (`sub`), for which tenant, with which roles.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A role a token can grant. What each may call is [`crate::policy`]'s table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// A member of a key account team: commands and reads in the tenant.
    Rep,
    /// A rep's rights plus the tenant-wide dashboards (portfolio, roll-ups, trends, quiet
    /// accounts) and exports.
    Manager,
    /// Read-only: reads, timelines, compliance, activity and the audit trail; no command.
    Auditor,
    /// An integration (CRM, BI, notifications): reads and subscriptions; commands only if the
    /// token also grants `rep`.
    Service,
    /// Operations (status, rebuilds) and reads across tenants.
    Admin,
}

impl Role {
    /// Every role, in the order the README's table shows them.
    pub const ALL: [Role; 5] = [
        Role::Rep,
        Role::Manager,
        Role::Auditor,
        Role::Service,
        Role::Admin,
    ];

    /// The role's name in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Rep => "rep",
            Role::Manager => "manager",
            Role::Auditor => "auditor",
            Role::Service => "service",
            Role::Admin => "admin",
        }
    }

    /// The role named `name` (exact, lower case), if it is one of Keyplan's.
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of roles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Roles(u8);

impl Roles {
    /// The empty set.
    pub const NONE: Roles = Roles(0);

    /// The set of `roles`.
    pub const fn of(roles: &[Role]) -> Roles {
        let mut bits = 0;
        let mut i = 0;
        while i < roles.len() {
            bits |= 1 << (roles[i] as u8);
            i += 1;
        }
        Roles(bits)
    }

    /// Whether `role` is in the set.
    pub fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    /// Whether the two sets share a role.
    pub fn intersects(self, other: Roles) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The roles in the set, in [`Role::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL
            .into_iter()
            .filter(move |role| self.contains(*role))
    }
}

impl FromIterator<Role> for Roles {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Self {
        Roles(iter.into_iter().fold(0, |bits, role| bits | role.bit()))
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no Keyplan role");
        }
        let names: Vec<&str> = self.iter().map(Role::as_str).collect();
        f.write_str(&names.join(", "))
    }
}

/// A token's claims as Keyplan reads and mints them. `exp` is required; `nbf`, `iss` and
/// `aud` are checked when present (and `iss`/`aud` required when the node is configured with
/// an issuer or audience).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The person or service calling: recorded as the actor of every event it writes.
    pub sub: String,
    /// The one tenant the token acts for (absent only on an `admin` token that acts for none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Role names; names Keyplan does not know are ignored (an identity provider's token may
    /// carry roles meant for other systems).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Expiry (seconds since the Unix epoch).
    pub exp: u64,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience (one value; a list is accepted when verifying).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
}

/// `aud` is a string or a list of strings (RFC 7519, 4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// Who is calling, established from a verified token: what the policy decides on, and what the
/// node records and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's subject.
    pub subject: String,
    /// The tenant the token acts for.
    pub tenant: Option<String>,
    /// The Keyplan roles it grants.
    pub roles: Roles,
    /// The token's `exp` (seconds since the Unix epoch).
    pub expires_at: u64,
}

impl Caller {
    /// The caller a verified token's claims describe.
    pub fn from_claims(claims: &Claims) -> Caller {
        Caller {
            subject: claims.sub.clone(),
            tenant: claims.tenant.clone().filter(|t| !t.is_empty()),
            roles: claims
                .roles
                .iter()
                .filter_map(|name| Role::from_name(name))
                .collect(),
            expires_at: claims.exp,
        }
    }

    /// Whether the caller may read every tenant's data.
    pub fn reads_every_tenant(&self) -> bool {
        self.roles.contains(Role::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_roles_are_ignored_and_known_ones_kept() {
        let claims = Claims {
            sub: "dana.kim".into(),
            tenant: Some("acme".into()),
            roles: vec!["rep".into(), "offline_access".into(), "Auditor".into()],
            exp: 0,
            iat: None,
            nbf: None,
            iss: None,
            aud: None,
        };
        let caller = Caller::from_claims(&claims);
        assert_eq!(caller.roles, Roles::of(&[Role::Rep]));
        assert_eq!(caller.roles.to_string(), "rep");
        assert!(!caller.reads_every_tenant());
    }

    #[test]
    fn role_sets() {
        let set = Roles::of(&[Role::Manager, Role::Admin]);
        assert!(set.contains(Role::Admin) && !set.contains(Role::Rep));
        assert!(set.intersects(Roles::of(&[Role::Rep, Role::Manager])));
        assert!(!set.intersects(Roles::of(&[Role::Auditor])));
        assert_eq!(set.to_string(), "manager, admin");
        assert_eq!(Roles::NONE.to_string(), "no Keyplan role");
    }
}
