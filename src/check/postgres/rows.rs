//! The one reader of simple-query answers: rows, statement by statement,
//! each cell as text. A cell is `None` for NULL and for a column the row
//! does not have (a hostile server may send rows without columns, where
//! tokio-postgres's `get` would panic).

use tokio_postgres::{SimpleQueryMessage, SimpleQueryRow};

/// A simple query's answer, or one statement's part of it.
#[derive(Clone, Copy)]
pub struct Answer<'a> {
    messages: &'a [SimpleQueryMessage],
}

impl<'a> Answer<'a> {
    pub fn new(messages: &'a [SimpleQueryMessage]) -> Answer<'a> {
        Answer { messages }
    }

    /// The part of a multi-statement answer from statement `index` (0-based).
    pub fn statement(self, index: usize) -> Answer<'a> {
        let part = self
            .messages
            .split(|m| matches!(m, SimpleQueryMessage::CommandComplete(_)))
            .nth(index)
            .unwrap_or_default();
        Answer { messages: part }
    }

    /// Every row, in order.
    pub fn rows(self) -> impl Iterator<Item = &'a SimpleQueryRow> {
        self.messages.iter().filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
    }

    /// Cell `column` of the first row.
    pub fn first(self, column: usize) -> Option<&'a str> {
        self.rows().next().and_then(|row| cell(row, column))
    }

    /// Cell `column` of every row that has it.
    pub fn column(self, column: usize) -> impl Iterator<Item = &'a str> {
        self.rows().filter_map(move |row| cell(row, column))
    }
}

/// Cell `column` of `row` as text; `None` for NULL or a missing column.
pub fn cell(row: &SimpleQueryRow, column: usize) -> Option<&str> {
    row.try_get(column).ok().flatten()
}
