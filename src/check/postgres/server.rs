//! The server behind the port: its role, its address and timeline, and
//! the extensions the suite requires.

use super::classify::{classify, Step};
use super::rows::Answer;
use super::{PostgresSpec, Role, Session};
use crate::check::Probe;
use crate::outcome::{Failure, Fault, Phase, Reason, ServerIdentity};
use std::collections::BTreeSet;

impl PostgresSpec {
    /// The role behind the port and the required extensions.
    pub(super) async fn check_server(
        &self,
        probe: &mut Probe<'_>,
        session: &Session,
    ) -> Result<(), Failure> {
        let heard = &session.heard;
        // The server behind the port, and its timeline on a primary, so a
        // report or a metric shows when the primary behind HAProxy changed.
        let sql = "SELECT CASE WHEN pg_is_in_recovery() THEN 'replica' ELSE 'primary' END; \
                   SELECT host(inet_server_addr()) || ':' || inet_server_port(), \
                   CASE WHEN pg_is_in_recovery() THEN NULL \
                   ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END; \
                   SELECT extname FROM pg_extension";
        let messages = probe
            .phase(Phase::Query, async {
                let rows = session.client.simple_query(sql).await;
                rows.map_err(|err| classify(&err, heard, self.sslmode, Step::Query, None))
            })
            .await?;
        let answer = Answer::new(&messages);
        let server = answer.statement(1).first(0).map(str::to_string);
        let timeline = answer.statement(1).first(1).map(str::to_string);
        if let Some(server) = &server {
            probe.observe("server", server.clone());
        }
        if let Some(timeline) = &timeline {
            probe.observe("timeline", timeline.clone());
        }
        let mut values = answer.column(0).map(str::to_string);
        let role = values.next().unwrap_or_default();
        values.next(); // the server, read above
        if role.is_empty() {
            let detail = "the server answered the role query (pg_is_in_recovery()) without a value";
            return Err(Failure::new(
                Phase::Query,
                Fault::new(Reason::UnexpectedResponse, detail),
            ));
        }
        let extensions: BTreeSet<String> = values.collect();
        probe.observe("role", role.clone());
        probe.server = server.map(|server| ServerIdentity {
            server,
            role: role.clone(),
            timeline,
        });
        self.judge(&role, &extensions)
            .map_err(|fault| Failure::new(Phase::Query, fault))
    }

    /// The role the suite expects, and every extension it requires.
    fn judge(&self, role: &str, extensions: &BTreeSet<String>) -> Result<(), Fault> {
        let wrong_role = match self.expect_role {
            Role::Any => false,
            Role::Primary => role != "primary",
            Role::Replica => role != "replica",
        };
        if wrong_role {
            let detail = format!(
                "expected a {:?} but the server is a {role}",
                self.expect_role
            )
            .to_lowercase();
            return Err(Fault::new(Reason::WrongRole, detail));
        }
        let missing: Vec<&str> = self
            .expect_extensions
            .iter()
            .filter(|name| !extensions.contains(*name))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            let detail = format!(
                "not installed in database {}: {}",
                self.dbname,
                missing.join(", ")
            );
            return Err(Fault::new(Reason::MissingExtension, detail));
        }
        Ok(())
    }
}
