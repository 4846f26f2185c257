//! `prepared_statements`: what asyncpg, pgx, JDBC (after prepareThreshold)
//! and psycopg 3 do: prepare a named statement once, execute it in later
//! transactions on the same connection. A transaction-mode pooler before
//! PgBouncer 1.21 (or without `max_prepared_statements`) hands the next
//! transaction another server, where the statement does not exist.
//!
//! To make that move happen rather than hope for it, a second session
//! holds a transaction open while the first executes: behind a pooler that
//! shares servers, the held transaction takes the server the statement was
//! prepared on (PgBouncer reuses the most recently released one).

use crate::outcome::Fault;
use std::time::Duration;
use tokio_postgres::Client;

/// Executions of the statement, each its own transaction.
const EXECUTIONS: usize = 3;
/// How long an execution may wait for a server before the held
/// transaction is released (a pool of one server would wait for it).
const WAIT_FOR_SERVER: Duration = Duration::from_secs(1);

/// What the statement's executions showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// Every execution ran on the server that prepared it: no pooler, or
    /// session pooling.
    SameServer,
    /// The pooler moved the session and the statement followed
    /// (PgBouncer ≥ 1.21 with `max_prepared_statements`).
    Followed,
    /// The pool had one server; the held transaction had to end first.
    OneServer,
}

impl Finding {
    pub fn describe(self) -> &'static str {
        match self {
            Finding::SameServer => {
                "a named statement ran in later transactions on the server that prepared it"
            }
            Finding::Followed => {
                "the pooler moved the session to another server and the statement followed it"
            }
            Finding::OneServer => {
                "the pool has one server: the statement ran once the other session's transaction ended"
            }
        }
    }
}

/// Prepare on `client`, hold a transaction on `helper`, execute on
/// `client` again; `classify` judges errors as the kind does (26000 and
/// 42P05 are `pooler_incompatible`).
pub async fn across_transactions(
    client: &Client,
    helper: &Client,
    classify: impl Fn(&tokio_postgres::Error) -> Fault,
) -> Result<Finding, Fault> {
    steps(client, helper).await.map_err(|err| classify(&err))
}

async fn steps(client: &Client, helper: &Client) -> Result<Finding, tokio_postgres::Error> {
    // Prepared inside a transaction, so the backend's pid is the one that
    // holds the statement.
    client.batch_execute("BEGIN").await?;
    let prepared_on = backend_pid(client).await?;
    let statement = client.prepare("SELECT pg_backend_pid()").await?;
    client.batch_execute("COMMIT").await?;
    helper.batch_execute("BEGIN").await?;
    backend_pid(helper).await?;
    let mut held = true;
    let mut finding = Finding::SameServer;
    for _ in 0..EXECUTIONS {
        let execute = client.query_one(&statement, &[]);
        futures_util::pin_mut!(execute);
        let row = match tokio::time::timeout(WAIT_FOR_SERVER, &mut execute).await {
            Ok(row) => row,
            Err(_) if held => {
                helper.batch_execute("ROLLBACK").await?;
                held = false;
                finding = Finding::OneServer;
                execute.await
            }
            Err(_) => execute.await,
        };
        let ran_on: i32 = row?.try_get(0)?;
        if ran_on != prepared_on && finding == Finding::SameServer {
            finding = Finding::Followed;
        }
    }
    if held {
        helper.batch_execute("ROLLBACK").await?;
    }
    Ok(finding)
}

async fn backend_pid(client: &Client) -> Result<i32, tokio_postgres::Error> {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .try_get(0)
}
