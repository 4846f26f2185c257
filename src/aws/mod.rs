//! Describe-only AWS reads that name the object behind a path's result:
//! the security group rule, route, network ACL entry, peering option or
//! hosted zone, in the app's account and, through a read-only role, the
//! database account.
//!
//! Layout: `settings` (the `[aws]` table), `answer` (what an answer is),
//! `credentials` (the standard chain:
//! environment, profile, container endpoint, instance metadata), `client`
//! (signed EC2 / Route 53 / STS / ECS / Logs calls, one account each), `fetch` (the batched
//! describes into `model`), `rules` (how a security group or network ACL
//! judges one packet), `path` (the TCP walk both ways), `dns` (private
//! zones, VPC DNS attributes, the peering's DNS option), `fix` (the `aws …`
//! command for each finding), `token` (IAM authentication tokens for
//! ElastiCache and RDS, presigned from the same credentials). Nothing here sends traffic to a checked path
//! or knows about `Outcome`: the joining happens in `crate::evidence`.

pub mod answer;
pub mod client;
pub mod credentials;
pub mod dns;
pub mod fetch;
pub mod fix;
pub mod model;
pub mod parse;
pub mod path;
pub mod read;
pub mod rules;
pub mod settings;
pub mod token;
pub mod xml;
