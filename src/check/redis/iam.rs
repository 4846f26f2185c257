//! `auth = "iam"`: ElastiCache IAM authentication. For each connection, a
//! fresh token (`aws::token`, signed from the credential chain: the ECS
//! task role on Fargate) is sent as `AUTH <user> <token>`. A rejection is
//! explained with what the probe can see for itself (the endpoint's name
//! against the token's cache name and region) and what it cannot (the
//! user's authentication mode, the policy, the clock).

use crate::aws::token::{self, Resource};
use crate::outcome::{Fault, Reason};
use crate::secret::Secret;

/// The IAM identity a Redis check authenticates as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamAuth {
    pub user: String,
    /// The replication group or Serverless cache name.
    pub cache_name: String,
    pub serverless: bool,
    /// The suite's `[aws] region`; else the environment's, at run time.
    pub region: Option<String>,
}

impl IamAuth {
    /// A fresh token for one connection, sent with the user.
    pub async fn token(&self) -> Result<Secret, Fault> {
        let resource = Resource::ElastiCache {
            cache_name: self.cache_name.clone(),
            user: self.user.clone(),
            serverless: self.serverless,
        };
        token::fresh(self.region.as_deref(), &resource)
            .await
            .map_err(|why| Fault::new(Reason::AuthFailed, why))
    }

    /// A refused token, explained: what the endpoint's own name shows, or
    /// else every cause the server's WRONGPASS may stand for.
    pub fn rejected(&self, fault: Fault, host: &str) -> Fault {
        if fault.reason != Reason::AuthFailed {
            return fault;
        }
        let region = token::region(self.region.as_deref()).unwrap_or_default();
        let why = match token::mismatch(host, &self.cache_name, &region, self.serverless) {
            Some(seen) => format!("the token cannot match this endpoint: {seen}"),
            None => format!(
                "the IAM token for user `{}` on cache `{}` in {region} was refused: the user's authentication mode must be IAM, its user id must equal its user name, the task role's policy must allow elasticache:Connect on both the cache's and the user's ARN, and the task's clock must be right (a token lives 900 s)",
                self.user,
                self.cache_name
            ),
        };
        Fault::new(Reason::AuthFailed, format!("{}; {why}", fault.detail))
    }
}
