//! The ways a run's results are written: a human table, one JSON document,
//! JUnit XML for CI systems.

pub mod json;
pub mod junit;
pub mod text;
