//! The node's side of identity: the verifier its configuration asks for, the safe default
//! without one, and key rotation while serving. Enforcement itself is `keyplan_auth`'s layer.

use keyplan_auth::SharedVerifier;

use crate::config::{AuthArgs, ServeArgs};
use crate::shutdown::Shutdown;

/// The keys the node verifies tokens with, and where they came from (to reload them).
#[derive(Debug)]
pub struct Identity {
    verifier: SharedVerifier,
    args: AuthArgs,
}

impl Identity {
    /// The identity the configuration asks for, or `None` (authentication off), which is
    /// allowed on a loopback address only unless `--insecure-no-auth` says otherwise, and said
    /// loudly at start. `Err` says what is wrong with the configuration.
    pub fn from_config(args: &ServeArgs) -> Result<Option<Identity>, String> {
        let verifier = args
            .auth
            .verifier()
            .map_err(|e| format!("authentication: {e}"))?;
        let Some(verifier) = verifier else {
            if !args.listen.ip().is_loopback() && !args.auth.insecure_no_auth {
                return Err(format!(
                    "refusing to serve {} without authentication: anyone who can reach it \
                     could read and write every tenant's data. Give --auth-hs256-secret-file \
                     or --auth-jwks-file (see README, \"Security\"), listen on a loopback \
                     address, or pass --insecure-no-auth",
                    args.listen
                ));
            }
            tracing::warn!(
                listen = %args.listen,
                "AUTHENTICATION IS OFF: every caller can read and write every tenant's data \
                 and name any actor. Configure --auth-hs256-secret-file or --auth-jwks-file \
                 for anything but local development"
            );
            return Ok(None);
        };
        Ok(Some(Identity {
            verifier: SharedVerifier::new(verifier),
            args: args.auth.clone(),
        }))
    }

    /// The verifier every call is checked with.
    pub fn verifier(&self) -> SharedVerifier {
        self.verifier.clone()
    }

    /// Reads the key files again on SIGHUP (`systemctl reload`), until `shutdown`: keys
    /// rotate without a restart. Files that do not load leave the keys in force (logged), so a
    /// half-written JWKS cannot lock every caller out.
    pub fn reload_on_hangup(&self, shutdown: Shutdown) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let verifier = self.verifier.clone();
            let args = self.args.clone();
            let mut hangup = match signal(SignalKind::hangup()) {
                Ok(hangup) => hangup,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGHUP: keys reload only on restart");
                    return;
                }
            };
            tokio::spawn(async move {
                let stop = shutdown.triggered();
                tokio::pin!(stop);
                loop {
                    tokio::select! {
                        () = &mut stop => return,
                        received = hangup.recv() => {
                            if received.is_none() {
                                return;
                            }
                            reload(&verifier, &args);
                        }
                    }
                }
            });
        }
        #[cfg(not(unix))]
        let _ = shutdown;
    }
}

/// Puts the keys the files hold now in force, or keeps the previous ones if they do not load.
fn reload(verifier: &SharedVerifier, args: &AuthArgs) {
    match args.verifier() {
        Ok(Some(keys)) => {
            verifier.replace(keys);
            tracing::info!("SIGHUP: authentication keys reloaded");
        }
        Ok(None) => {
            tracing::error!("SIGHUP: no key configured any more; keeping the previous keys")
        }
        Err(error) => tracing::error!(
            %error,
            "SIGHUP: the key files do not load; keeping the previous keys"
        ),
    }
}
