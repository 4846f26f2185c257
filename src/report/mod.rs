//! The ways a run's results are written: a human table, one JSON document,
//! JUnit XML for CI systems, and the side-by-side comparison of runs from
//! several subnets.

pub mod compare;
pub mod json;
pub mod junit;
pub mod text;
