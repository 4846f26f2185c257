//! `auth = "iam"` on RDS and Aurora PostgreSQL: a fresh token
//! (`aws::token`, service `rds-db`, for the URL's host, port and user) as
//! the password of each connection, and a refusal explained with what RDS
//! needs: the `rds_iam` role and the `rds-db:connect` permission.

use super::RdsIam;
use crate::aws::token::{self, Resource};
use crate::outcome::{Fault, Reason};
use crate::secret::Secret;

impl RdsIam {
    /// A fresh token for one connection to `host:port` as `user`.
    pub async fn token(&self, host: &str, port: u16, user: &str) -> Result<Secret, Fault> {
        let resource = Resource::Rds {
            host: host.to_string(),
            port,
            user: user.to_string(),
        };
        token::fresh(self.region.as_deref(), &resource)
            .await
            .map_err(|why| Fault::new(Reason::AuthFailed, why))
    }

    /// A refused token, with what RDS requires of the user and the role.
    pub fn rejected(&self, fault: Fault, host: &str, port: u16, user: &str) -> Fault {
        if fault.reason != Reason::AuthFailed {
            return fault;
        }
        let region = token::region(self.region.as_deref()).unwrap_or_default();
        Fault::new(
            Reason::AuthFailed,
            format!(
                "{}; the IAM token for {user} at {host}:{port} ({region}) was refused: the database user must be granted rds_iam (GRANT rds_iam TO {user}), the task role's policy must allow rds-db:connect on arn:aws:rds-db:{region}:<account>:dbuser:<DbiResourceId>/{user}, the token must name the endpoint the client connects to (host and port, not a CNAME of it), and the task's clock must be right",
                fault.detail
            ),
        )
    }
}
