//! The server behind the port: its role, its address and timeline, and
//! the extensions the suite requires.

use super::classify::{classify, Step};
use super::{PostgresSpec, Role, Session};
use crate::check::Probe;
use crate::outcome::{Failure, Fault, Phase, Reason};
use std::collections::BTreeSet;
use tokio_postgres::SimpleQueryMessage;

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
        if let Some(server) = column_of_statement(&messages, 1, 0) {
            probe.observe("server", server);
        }
        if let Some(timeline) = column_of_statement(&messages, 1, 1) {
            probe.observe("timeline", timeline);
        }
        let mut values = rows(&messages).into_iter();
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
            return Err(Failure::new(
                Phase::Query,
                Fault::new(Reason::WrongRole, detail),
            ));
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
            return Err(Failure::new(
                Phase::Query,
                Fault::new(Reason::MissingExtension, detail),
            ));
        }
        Ok(())
    }
}

/// Column `column` of the first row of statement `statement` (0-based)
/// in a multi-statement simple query's answer.
fn column_of_statement(
    messages: &[SimpleQueryMessage],
    statement: usize,
    column: usize,
) -> Option<String> {
    messages
        .split(|m| matches!(m, SimpleQueryMessage::CommandComplete(_)))
        .nth(statement)?
        .iter()
        .find_map(|message| match message {
            SimpleQueryMessage::Row(row) => row.try_get(column).ok().flatten().map(str::to_string),
            _ => None,
        })
}

/// The first column of every row, across statements.
fn rows(messages: &[SimpleQueryMessage]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|message| match message {
            // A hostile server may send a row without columns: `get` would panic.
            SimpleQueryMessage::Row(row) => row.try_get(0).ok().flatten().map(str::to_string),
            _ => None,
        })
        .collect()
}
